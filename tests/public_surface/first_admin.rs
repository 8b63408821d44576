//! While no administrator exists, only a sign-up carrying the setup grant (the cookie of the
//! browser that ran the setup) or the setup token (log and `setup.token`) becomes one;
//! everyone else is refused, however early they come.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use serde_json::json;

use crate::common::server::{config, TestServer};
use crate::support::Site;

fn ann() -> serde_json::Value {
    json!({"username": "ann", "email": "ann@example.com", "password": "password-ann"})
}

/// Signs up ann without the grant, with `token` as `setup_token` when given.
async fn register_without_grant(site: &Site, token: Option<&str>) -> crate::support::Reply {
    let mut body = ann();
    if let Some(token) = token {
        body["setup_token"] = token.into();
    }
    let request = site
        .server
        .http
        .post(site.url("/api/auth/email/register"))
        .json(&body);
    site.send(request, None).await
}

/// The setup token file in `dir`, once the server wrote it.
async fn token_in(dir: &std::path::Path) -> String {
    let path = dir.join("setup.token");
    crate::common::wait_until("the setup token file", Duration::from_secs(20), || async {
        path.exists()
    })
    .await;
    let mode = std::fs::metadata(&path)
        .expect("metadata")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "only the server's user reads it");
    std::fs::read_to_string(&path)
        .expect("token")
        .trim()
        .to_owned()
}

/// The setup token file of `site`'s server.
async fn token_file(site: &Site) -> String {
    token_in(site.dir.path()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_sign_up_without_grant_or_token_is_refused() {
    let site = Site::new().await;
    let reply = register_without_grant(&site, None).await;
    assert_eq!(reply.status, 403, "{}", reply.body);
    assert_eq!(
        reply.body["error"],
        "The first administrator can only be created with the setup grant or the setup token."
    );
    assert!(
        reply.body["message"]
            .as_str()
            .is_some_and(|m| m.contains("setup.token")),
        "says how to get the token: {}",
        reply.body
    );
    assert!(reply.headers.get("set-cookie").is_none());
    let bad = register_without_grant(&site, Some(&"0".repeat(64))).await;
    assert_eq!(bad.status, 403);
    assert_eq!(
        site.rows("SELECT count(*) FROM users").await[0].get::<_, i64>(0),
        0
    );
    site.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_setup_grant_makes_the_first_administrator_once() {
    let site = Site::new().await;
    let grant = site.server.grant_cookie().expect("the setup set a grant");
    assert_eq!(grant.len(), "setup_grant=".len() + 64);
    let reply = site.register("ann").await;
    assert_eq!(reply.body["user"]["role_id"], "global_admin");
    // Every proof is spent: the grant and the token make nobody else administrator.
    let reply = site.register("bob").await;
    assert_eq!(reply.body["user"]["role_id"], "global_user");
    assert_eq!(
        site.rows("SELECT count(*) FROM first_admin_tokens").await[0].get::<_, i64>(0),
        0
    );
    site.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grant_cookie_is_strict_short_lived_and_for_the_account_routes() {
    let site = Site::new().await;
    // Setup ran already; a second server of the same database finds it done: no grant.
    let resp = site
        .server
        .http
        .post(site.url("/api/db/setup"))
        .json(&json!({"type": "postgresql"}))
        .send()
        .await
        .expect("POST");
    assert_eq!(resp.status(), 409);
    assert!(resp.headers().get("set-cookie").is_none());
    site.server.stop().await;

    let db = crate::common::pg::TestDb::new().await;
    let dir = tempfile::tempdir().expect("dir");
    let server = TestServer::start(&config(db.connection.clone(), dir.path())).await;
    let resp = server
        .http
        .post(format!("{}/api/db/setup", server.url))
        .json(&json!({"type": "postgresql"}))
        .send()
        .await
        .expect("POST");
    let cookie = resp.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let (_, attributes) = cookie.split_once(';').expect("attributes");
    assert_eq!(
        attributes,
        " Path=/api/auth; Max-Age=3600; HttpOnly; SameSite=Strict"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_setup_token_admits_the_first_administrator_and_goes_with_it() {
    let site = Site::new().await;
    let token = token_file(&site).await;
    assert_eq!(token.len(), 64);
    let reply = register_without_grant(&site, Some(&token)).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.body["user"]["role_id"], "global_admin");
    site.server.stop().await;
    // The next start finds an administrator: no token, and the file is removed.
    let server = TestServer::start(&config(site.db.connection.clone(), site.dir.path())).await;
    server.wait_initialized().await;
    crate::common::wait_until(
        "the stale token file to go",
        Duration::from_secs(20),
        || async { !site.dir.path().join("setup.token").exists() },
    )
    .await;
    server.stop().await;
}

/// One thread: the capturing subscriber is this thread's default.
#[tokio::test(flavor = "current_thread")]
async fn each_start_without_an_administrator_logs_a_new_token() {
    let capture = crate::common::log_capture::LogCapture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let site = Site::new().await;
    let first = token_file(&site).await;
    assert!(
        capture.text().contains(&format!("setup_token={first}")),
        "not logged: {}",
        capture.text()
    );
    site.server.stop().await;
    std::fs::remove_file(site.dir.path().join("setup.token")).expect("remove");
    let server = TestServer::start(&config(site.db.connection.clone(), site.dir.path())).await;
    let second = token_in(site.dir.path()).await;
    assert_ne!(first, second, "a new token at each start");
    assert!(capture.text().contains(&format!("setup_token={second}")));
    server.stop().await;
}
