//! Hashing never takes the server: past what the hasher drains within its queue wait,
//! requests are answered 503 with `Retry-After` at once, and a browser that signed in before
//! (its device cookie) is served ahead of the queue.

use std::time::Duration;

use serde_json::json;

use crate::support::Site;
use crate::{device_cookie, login_from};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_is_refused_past_the_queue_wait_and_the_owner_goes_first() {
    let site = Site::with(|cfg| {
        cfg.http.trusted_proxies =
            deploystack_backend::net::TrustedProxies::parse("127.0.0.1").expect("valid");
        cfg.accounts.hash_concurrency = 1;
        cfg.accounts.hash_queue_wait = Duration::from_secs(1);
    })
    .await;
    site.register("ann").await;
    let device = device_cookie(&login_from(&site, "192.0.2.1", "ann", "password-ann").await);
    // 200 sign-ins at once, each from its own address (no per-address limit holds them):
    // far more than one hasher drains in a second.
    let flood: Vec<_> = (0..200u32)
        .map(|n| {
            let http = site.server.http.clone();
            let url = site.url("/api/auth/email/login");
            tokio::spawn(async move {
                let resp = http
                    .post(url)
                    .header("x-forwarded-for", format!("10.{}.{}.1", n / 256, n % 256))
                    .json(&json!({"login": format!("nobody{n}@example.com"), "password": "guess-guess"}))
                    .send()
                    .await
                    .expect("answer");
                let status = resp.status().as_u16();
                let retry = resp
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().expect("ascii").to_owned());
                let body: serde_json::Value = resp.json().await.expect("JSON");
                (status, retry, body)
            })
        })
        .collect();
    let request = site
        .server
        .http
        .post(site.url("/api/auth/email/login"))
        .header("x-forwarded-for", "192.0.2.1")
        .header("cookie", format!("device={device}"))
        .json(&json!({"login": "ann", "password": "password-ann"}));
    let owner = site.send(request, None).await;
    assert_eq!(
        owner.status, 200,
        "the owner is served during the flood: {}",
        owner.body
    );
    let mut refused = 0;
    for answer in flood {
        let (status, retry, body) = answer.await.expect("task");
        match status {
            400 => {}
            503 => {
                refused += 1;
                let retry: u64 = retry.expect("Retry-After").parse().expect("seconds");
                assert!(retry >= 1, "{retry}");
                assert_eq!(
                    body["error"],
                    "Too many sign-ins at once. Try again shortly."
                );
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(
        refused > 0,
        "the flood went past what the hasher drains in its wait"
    );
    site.server.stop().await;
}
