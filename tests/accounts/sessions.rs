//! Sessions end when they should and live on when they should: expiry and renewal (the
//! session row shifted in time), a deleted user, two servers registering the first account
//! at once, and the settings gates changed by another process.

use serde_json::json;

use crate::common::process::command;
use crate::common::server::{config, TestServer};
use crate::support::Site;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_is_renewed_with_less_than_half_left_and_refused_once_expired() {
    let site = Site::new().await;
    let token = site.register("ann").await.session();
    let days_left = || async {
        site.rows(
            "SELECT (extract(epoch FROM expires_at - now()) / 86400)::float8 FROM auth_sessions",
        )
        .await[0]
            .get::<_, f64>(0)
    };
    assert!((29.9..=30.0).contains(&days_left().await));
    // 20 days left: more than half, untouched.
    site.sql("UPDATE auth_sessions SET expires_at = now() + interval '20 days'")
        .await;
    assert_eq!(site.get("/api/users/me", Some(&token)).await.status, 200);
    assert!((19.9..=20.0).contains(&days_left().await));
    // 10 days left: extended to 30 days again.
    site.sql("UPDATE auth_sessions SET expires_at = now() + interval '10 days'")
        .await;
    assert_eq!(site.get("/api/users/me", Some(&token)).await.status, 200);
    assert!(
        (29.9..=30.0).contains(&days_left().await),
        "{}",
        days_left().await
    );
    // Expired a second ago: refused, whatever the cookie says.
    site.sql("UPDATE auth_sessions SET expires_at = now() - interval '1 second'")
        .await;
    let me = site.get("/api/users/me", Some(&token)).await;
    assert_eq!(me.status, 401);
    assert_eq!(
        me.body,
        json!({"success": false, "error": "Authentication required"})
    );
    site.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_users_session_stops_working_at_once() {
    let site = Site::new().await;
    site.register("ann").await;
    let bob = site.register("bob").await;
    let token = bob.session();
    assert_eq!(site.get("/api/users/me", Some(&token)).await.status, 200);
    let id = bob.body["user"]["id"].as_str().expect("id");
    // An owned team must go first (the foreign key refuses otherwise).
    site.sql(&format!(
        "DELETE FROM teams WHERE owner_id = '{id}'; DELETE FROM users WHERE id = '{id}'"
    ))
    .await;
    assert_eq!(site.get("/api/users/me", Some(&token)).await.status, 401);
    assert_eq!(
        site.rows("SELECT count(*) FROM auth_sessions").await[0].get::<_, i64>(0),
        1,
        "only ann's session is left"
    );
    site.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_registering_at_once_make_exactly_one_administrator() {
    let site = Site::new().await;
    let other_dir = tempfile::tempdir().expect("dir");
    std::fs::copy(
        site.dir.path().join("db.selection.json"),
        other_dir.path().join("db.selection.json"),
    )
    .expect("selection file");
    let other = TestServer::start(&config(site.db.connection.clone(), other_dir.path())).await;
    other.wait_initialized().await;
    let http = reqwest::Client::new();
    let grant = site.server.grant_cookie().expect("the setup set a grant");
    let mut attempts = Vec::new();
    for n in 0..8 {
        let url = if n % 2 == 0 {
            &site.server.url
        } else {
            &other.url
        };
        // Every sign-up may become the first administrator: only one does.
        attempts.push(
            http.post(format!("{url}/api/auth/email/register"))
                .header("cookie", &grant)
                .json(
                    &json!({"username": format!("user{n}"), "email": format!("user{n}@example.com"),
                              "password": "12345678"}),
                )
                .send(),
        );
    }
    let replies = futures_util::future::join_all(attempts).await;
    let mut admins = 0;
    for reply in replies {
        let reply = reply.expect("answer");
        assert_eq!(reply.status().as_u16(), 201);
        let body: serde_json::Value = reply.json().await.expect("json");
        if body["user"]["role_id"] == "global_admin" {
            admins += 1;
        }
    }
    assert_eq!(admins, 1);
    let rows = site
        .rows("SELECT count(*) FILTER (WHERE role_id = 'global_admin'), count(*) FROM users")
        .await;
    assert_eq!((rows[0].get::<_, i64>(0), rows[0].get::<_, i64>(1)), (1, 8));
    other.stop().await;
    site.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_settings_gates_follow_settings_set_from_another_process_without_restart() {
    let site = Site::new().await;
    site.register("ann").await;
    let mut vars = crate::common::process::external_env(&site.db, site.dir.path());
    vars.push((
        "DEPLOYSTACK_ENCRYPTION_SECRET",
        "test-encryption-secret".into(),
    ));
    let settings_set = |key: &'static str, value: &'static str| {
        let vars = vars.clone();
        let log = site.dir.path().join("cli.log");
        async move {
            let status = command(&vars, &log)
                .args(["settings", "set", key, value])
                .status()
                .await
                .expect("run settings set");
            assert!(
                status.success(),
                "{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
    };
    settings_set("global.enable_login", "false").await;
    crate::common::wait_until(
        "the login gate to close",
        std::time::Duration::from_secs(10),
        || async { site.login("ann", "password-ann").await.status == 403 },
    )
    .await;
    settings_set("global.enable_login", "true").await;
    crate::common::wait_until(
        "the login gate to open",
        std::time::Duration::from_secs(10),
        || async { site.login("ann", "password-ann").await.status == 200 },
    )
    .await;
    settings_set("global.enable_email_registration", "false").await;
    crate::common::wait_until(
        "the sign-up gate to close",
        std::time::Duration::from_secs(10),
        || async {
            site.post(
                "/api/auth/email/register",
                json!({"username": "bob", "email": "bob@example.com", "password": "12345678"}),
                None,
            )
            .await
            .status
                == 403
        },
    )
    .await;
    site.server.stop().await;
}
