//! What answers must not keep or tell: no cache keeps account or settings data; turning a
//! secret into plaintext is a reveal; anonymous callers learn nothing about the database
//! once it is set up.

use serde_json::json;

use crate::common::server::{config, TestServer};
use crate::support::Site;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_cache_keeps_account_or_settings_answers() {
    let site = Site::new().await;
    let admin = site.register("admin").await.session();
    for path in [
        "/api/users/me",
        "/api/settings?reveal=true",
        "/api/settings/global.page_url",
        "/api/auth/status",
        "/api/admin/jobs/stats",
        "/api/nothing-here",
    ] {
        let reply = site.get(path, Some(&admin)).await;
        assert_eq!(
            reply
                .headers
                .get("cache-control")
                .and_then(|v| v.to_str().ok()),
            Some("no-store"),
            "{path}"
        );
    }
    let reply = site.login("admin", "password-admin").await;
    assert_eq!(reply.headers["cache-control"], "no-store");
    site.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_callers_get_upstreams_fields_only_once_set_up() {
    let db = crate::common::pg::TestDb::new().await;
    let dir = tempfile::tempdir().expect("dir");
    let server = TestServer::start(&config(db.connection.clone(), dir.path())).await;
    // Before setup the wizard needs to know which database it is about to set up.
    let (_, before) = server.get("/api/db/status").await;
    assert!(before["database"]["target"].is_string(), "{before}");
    assert_eq!(before["state"], "setup_required");
    assert_eq!(server.setup().await.0, 200);
    let (_, after) = server.get("/api/db/status").await;
    assert_eq!(
        after,
        json!({"configured": true, "initialized": true, "dialect": "postgresql"})
    );
    // A signed-in user who is not an administrator learns no more.
    server.register("admin").await;
    server.register("user").await;
    let login = server
        .http
        .post(format!("{}/api/auth/email/login", server.url))
        .json(&json!({"login": "user", "password": "password-user"}))
        .send()
        .await
        .expect("login");
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .split(';')
        .next()
        .expect("cookie")
        .to_owned();
    let user_view: serde_json::Value = server
        .http
        .get(format!("{}/api/db/status", server.url))
        .header("cookie", cookie)
        .send()
        .await
        .expect("status")
        .json()
        .await
        .expect("JSON");
    assert_eq!(user_view, after);
    let admin_view = server.admin_status().await;
    assert_eq!(admin_view["state"], "ready");
    assert!(admin_view["database"]["target"].is_string(), "{admin_view}");
    server.stop().await;
}

/// One thread: the capturing subscriber is this thread's default.
#[tokio::test(flavor = "current_thread")]
async fn turning_a_secret_into_plaintext_is_a_logged_reveal() {
    let capture = crate::common::log_capture::LogCapture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let site = Site::new().await;
    let admin = site.register("admin").await.session();
    let create = site
        .server
        .http
        .post(site.url("/api/settings"))
        .json(&json!({"key": "custom.api_key", "value": "k3y-value-123", "type": "string", "encrypted": true}));
    assert_eq!(site.send(create, Some(&admin)).await.status, 201);
    let decrypt = site
        .server
        .http
        .put(site.url("/api/settings/custom.api_key"))
        .json(&json!({"encrypted": false}));
    let reply = site.send(decrypt, Some(&admin)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body["data"]["value"], "********",
        "shown only with reveal=true"
    );
    let bulk = site
        .server
        .http
        .post(site.url("/api/settings/bulk"))
        .json(&json!({"settings": [{"key": "custom.api_key", "encrypted": true}]}));
    site.send(bulk, Some(&admin)).await;
    let bulk = site
        .server
        .http
        .post(site.url("/api/settings/bulk"))
        .json(&json!({"settings": [{"key": "custom.api_key", "encrypted": false}]}));
    let reply = site.send(bulk, Some(&admin)).await;
    assert_eq!(reply.body["data"][0]["value"], "********", "{}", reply.body);
    site.server.stop().await;
    let log = capture.text();
    let reveals = log
        .lines()
        .filter(|l| l.contains("revealed an encrypted setting") && l.contains("custom.api_key"))
        .count();
    assert_eq!(reveals, 2, "{log}");
    assert!(!log.contains("k3y-value-123"), "the value is never logged");
}
