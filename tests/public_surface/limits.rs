//! Failures counted per resolved account and per client address, in the database: shared by
//! every server, never handed back when a client goes away; the owner's device cookie keeps
//! strangers' failures from locking the owner out; sign-ups that cost a hash are limited per
//! address, and the cheap checks come first.

use std::time::Duration;

use reqwest::header::HeaderValue;
use serde_json::json;

use crate::common::server::{config, TestServer};
use crate::support::Site;
use crate::{behind_proxy, counts, device_cookie, login_from};

/// Signs in to `url` as `login` with `password`; the status.
async fn login_at(http: &reqwest::Client, url: &str, login: &str, password: &str) -> u16 {
    http.post(format!("{url}/api/auth/email/login"))
        .json(&json!({"login": login, "password": password}))
        .send()
        .await
        .expect("answer")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_database_share_the_account_limit() {
    let site = Site::new().await;
    site.register("ann").await;
    let other_dir = tempfile::tempdir().expect("dir");
    std::fs::copy(
        site.dir.path().join("db.selection.json"),
        other_dir.path().join("db.selection.json"),
    )
    .expect("selection file");
    let other = TestServer::start(&config(site.db.connection.clone(), other_dir.path())).await;
    other.wait_initialized().await;
    let http = reqwest::Client::new();
    for n in 0..10 {
        let url = if n % 2 == 0 {
            &site.server.url
        } else {
            &other.url
        };
        // By email on one server, by username on the other: one account.
        let login = if n % 2 == 0 { "ANN@example.com" } else { "Ann" };
        assert_eq!(login_at(&http, url, login, "wrong-password").await, 400);
    }
    for url in [&site.server.url, &other.url] {
        assert_eq!(login_at(&http, url, "ann", "password-ann").await, 429);
    }
    other.stop().await;
    site.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_with_a_device_cookie_signs_in_while_strangers_hold_the_account() {
    let site = behind_proxy().await;
    site.register("ann").await;
    site.register("bob").await;
    let owner = login_from(&site, "192.0.2.10", "ann", "password-ann").await;
    assert_eq!(owner.status, 200);
    let device = device_cookie(&owner);
    let bobs_device = device_cookie(&login_from(&site, "192.0.2.11", "bob", "password-bob").await);
    // Strangers, from many addresses, hold ann's account.
    for n in 0..12 {
        login_from(&site, &format!("203.0.113.{n}"), "ann", "guess").await;
    }
    let stranger = login_from(&site, "203.0.113.99", "ann", "password-ann").await;
    assert_eq!(stranger.status, 429, "{}", stranger.body);
    let with_device = |cookie: String| {
        let site = &site;
        async move {
            let request = site
                .server
                .http
                .post(site.url("/api/auth/email/login"))
                .header("x-forwarded-for", "192.0.2.10")
                .header(
                    "cookie",
                    HeaderValue::from_str(&format!("device={cookie}")).expect("cookie"),
                )
                .json(&json!({"login": "ann", "password": "password-ann"}));
            site.send(request, None).await
        }
    };
    let reply = with_device(device.clone()).await;
    assert_eq!(reply.status, 200, "the owner signs in: {}", reply.body);
    assert_ne!(device_cookie(&reply), device, "a fresh device cookie");
    // The owner's success does not free the account for strangers.
    let stranger = login_from(&site, "203.0.113.98", "ann", "password-ann").await;
    assert_eq!(stranger.status, 429, "{}", stranger.body);
    // Another account's device cookie, or a forged one, is a stranger's.
    assert_eq!(with_device(bobs_device).await.status, 429);
    let forged = format!("{}0", &device[..device.len() - 1]);
    assert_eq!(with_device(forged).await.status, 429);
    site.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_with_too_many_failures_of_its_own_is_a_stranger_again() {
    let site = behind_proxy().await;
    site.register("ann").await;
    let device = device_cookie(&login_from(&site, "192.0.2.10", "ann", "password-ann").await);
    let attempt = |password: &'static str| {
        let site = &site;
        let device = device.clone();
        async move {
            let request = site
                .server
                .http
                .post(site.url("/api/auth/email/login"))
                .header("x-forwarded-for", "192.0.2.10")
                .header("cookie", format!("device={device}"))
                .json(&json!({"login": "ann", "password": password}));
            site.send(request, None).await.status
        }
    };
    for _ in 0..10 {
        assert_eq!(attempt("wrong-password").await, 400);
    }
    // The device's own failures did not touch the account's count.
    assert!(!counts(&site)
        .await
        .iter()
        .any(|(k, _)| k.starts_with("account:")));
    // From now on it counts as a stranger: under the account's limit and its address's.
    assert_eq!(attempt("wrong-password").await, 400);
    assert!(counts(&site)
        .await
        .iter()
        .any(|(k, n)| k.starts_with("account:") && *n == 1));
    site.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disconnecting_clients_attempt_stays_counted() {
    let site = Site::with(|cfg| cfg.accounts.hash_concurrency = 1).await;
    site.register("ann").await;
    // The hasher is kept busy (sixteen hashes ahead of each sign-in below): each waits in
    // line, counted, when it is abandoned.
    let busy = tokio_util::sync::CancellationToken::new();
    let mut hashers = Vec::new();
    for _ in 0..16 {
        let state = site.server.state.clone();
        let busy = busy.clone();
        hashers.push(tokio::spawn(async move {
            while !busy.is_cancelled() {
                let _ = state
                    .accounts
                    .passwords()
                    .hash("keep-the-hasher-busy".to_owned().into())
                    .await;
            }
        }));
    }
    for n in 1..=10 {
        let http = site.server.http.clone();
        let url = site.url("/api/auth/email/login");
        let attempt = tokio::spawn(async move {
            http.post(url)
                .json(&json!({"login": "ann", "password": "password-ann"}))
                .send()
                .await
        });
        crate::common::wait_until(
            "the attempt to be counted",
            Duration::from_secs(20),
            || async {
                counts(&site)
                    .await
                    .iter()
                    .any(|(k, hits)| k.starts_with("account:") && *hits == n)
            },
        )
        .await;
        // The client goes away while its password waits for the hasher.
        attempt.abort();
        let _ = attempt.await;
    }
    busy.cancel();
    for h in hashers {
        h.await.expect("hasher");
    }
    // Ten attempts, each with the right password, none answered: nothing was handed back.
    let reply = site.login("ann", "password-ann").await;
    assert_eq!(reply.status, 429, "{}", reply.body);
    site.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_ups_that_cannot_succeed_cost_no_hash() {
    let site = Site::new().await;
    site.register("ann").await;
    let passwords = || site.server.state.accounts.passwords().computed();
    let before = passwords();
    for n in 0..200 {
        let (email, username) = if n % 2 == 0 {
            ("ANN@example.com".to_owned(), format!("new{n}"))
        } else {
            (format!("new{n}@example.com"), "ANN".to_owned())
        };
        let reply = site
            .post(
                "/api/auth/email/register",
                json!({"username": username, "email": email, "password": "12345678"}),
                None,
            )
            .await;
        assert_eq!(reply.status, 400, "{}", reply.body);
    }
    site.server
        .state
        .settings
        .set("global.enable_email_registration", "false")
        .await
        .expect("set");
    for n in 0..20 {
        let reply = site
            .post(
                "/api/auth/email/register",
                json!({"username": format!("x{n}"), "email": format!("x{n}@example.com"), "password": "12345678"}),
                None,
            )
            .await;
        assert_eq!(reply.status, 403);
    }
    assert_eq!(passwords(), before, "no password was hashed for them");
    let registrations: Vec<i32> = counts(&site)
        .await
        .into_iter()
        .filter(|(k, _)| k.starts_with("register:"))
        .map(|(_, n)| n)
        .collect();
    assert_eq!(registrations, [1], "only ann's sign-up counted");
    site.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_ups_that_cost_a_hash_are_limited_per_address() {
    let site = behind_proxy().await;
    let register = |n: u32, from: &'static str| {
        let site = &site;
        async move {
            let request = site
                .server
                .http
                .post(site.url("/api/auth/email/register"))
                .header("x-forwarded-for", from)
                .json(
                    &json!({"username": format!("user{n}"), "email": format!("user{n}@example.com"),
                              "password": "12345678"}),
                );
            site.send_with(request, None, true).await
        }
    };
    for n in 0..10 {
        assert_eq!(register(n, "198.51.100.1").await.status, 201);
    }
    let refused = register(10, "198.51.100.1").await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    let retry: u64 = refused.headers["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("secs");
    assert!((1..=600).contains(&retry), "{retry}");
    assert!(
        refused.body["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("Too many registrations")),
        "{}",
        refused.body
    );
    assert_eq!(register(11, "198.51.100.2").await.status, 201);
    site.server.stop().await;
}
