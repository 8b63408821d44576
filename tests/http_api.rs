//! The HTTP contract end to end, through a real listening server and a real PostgreSQL.

mod common;
#[path = "http_api/conformance.rs"]
mod conformance;
#[path = "http_api/metrics.rs"]
mod metrics;
#[path = "http_api/observability.rs"]
mod observability;

use common::pg::TestDb;
use common::server::{config, json_of, TestServer};
use serde_json::{json, Value};

async fn server_for(db: &TestDb) -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("data dir");
    let server = TestServer::start(&config(db.connection.clone(), dir.path())).await;
    (server, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reports_configured_then_initialized_after_setup() {
    let db = TestDb::new().await;
    let (server, dir) = server_for(&db).await;

    let (code, body) = server.get("/api/db/status").await;
    assert_eq!(code, 200);
    let target = format!(
        "{}:{}/{}",
        db.connection.host, db.connection.port, db.connection.database
    );
    assert_eq!(
        body,
        json!({"configured": true, "initialized": false, "dialect": "postgresql", "state": "setup_required",
               "database": {"kind": "external", "target": target}})
    );
    assert!(
        !body.to_string().contains(&db.connection.user),
        "no credentials"
    );
    assert!(
        !db.exists().await,
        "nothing touches the database before setup"
    );

    let (code, body) = server.setup().await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body,
        json!({
            "message": "Database setup successful. All services have been initialized and are ready to use.",
            "restart_required": false,
            "database_type": "postgresql"
        })
    );

    // Anonymous callers get upstream's fields; an administrator sees where the data is.
    let (code, body) = server.get("/api/db/status").await;
    assert_eq!(code, 200);
    assert_eq!(
        body,
        json!({"configured": true, "initialized": true, "dialect": "postgresql"})
    );
    assert_eq!(
        server.admin_status().await,
        json!({"configured": true, "initialized": true, "dialect": "postgresql", "state": "ready",
               "database": {"kind": "external", "target": target}})
    );

    // The selection file is upstream's format.
    let file: Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("db.selection.json")).expect("selection file"),
    )
    .expect("selection JSON");
    assert_eq!(file["type"], "postgresql");
    assert_eq!(file["version"], "1.0");
    let selected_at = file["selectedAt"].as_str().expect("selectedAt");
    assert!(
        chrono::DateTime::parse_from_rfc3339(selected_at).is_ok(),
        "{selected_at}"
    );

    // The database was created, migrated and marked.
    let rows = db
        .query("SELECT count(*) FROM __diesel_schema_migrations")
        .await;
    let applied: i64 = rows[0].get(0);
    assert_eq!(applied as usize, embedded_migration_count());
    let rows = db
        .query("SELECT database_type FROM deploystack_setup")
        .await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, String>(0), "postgresql");

    let (code, body) = server.get("/api/health/ready").await;
    assert_eq!((code, body), (200, json!({"status": "ok"})));
    let (code, body) = server.get("/").await;
    assert_eq!(code, 200);
    assert_eq!(body["status"], "Database Connected");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_setup_is_409_with_upstream_body() {
    let db = TestDb::new().await;
    let (server, _dir) = server_for(&db).await;
    assert_eq!(server.setup().await.0, 200);
    let (code, body) = server.setup().await;
    assert_eq!(code, 409);
    assert_eq!(
        body,
        json!({"message": "Database setup has already been performed.", "database_type": "postgresql"})
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_answer_503_before_setup() {
    let db = TestDb::new().await;
    let (server, _dir) = server_for(&db).await;
    let (code, body) = server.get("/api/health/ready").await;
    assert_eq!(code, 503);
    assert_eq!(body["error"], "Database not initialized");
    assert_eq!(
        body["message"],
        "Database not available. Please complete the setup process at /setup first."
    );
    let (code, body) = server.get("/").await;
    assert_eq!(code, 200);
    assert_eq!(
        body["status"],
        "Database Not Configured/Connected - Use /api/db/status and /api/db/setup"
    );
    assert_eq!(
        server.get("/api/health").await,
        (200, json!({"status": "ok"}))
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_setup_bodies_are_400_json_and_change_nothing() {
    let db = TestDb::new().await;
    let (server, dir) = server_for(&db).await;
    let url = format!("{}/api/db/setup", server.url);
    let cases: Vec<(&str, &str)> = vec![
        ("application/json", "{\"type\":"),
        ("application/json", "not json"),
        ("application/json", "{}"),
        ("application/json", "[]"),
        ("application/json", "{\"type\":\"sqlite\"}"),
        ("application/json", "{\"type\":42}"),
        (
            "application/json",
            "{\"type\":\"postgresql\",\"password\":\"x\"}",
        ),
        ("application/json", ""),
    ];
    for (content_type, body) in cases {
        let resp = server
            .http
            .post(&url)
            .header("content-type", content_type)
            .body(body.to_owned())
            .send()
            .await
            .expect("POST");
        let (code, json) = json_of(resp).await;
        assert_eq!(code, 400, "{content_type} {body:?} → {json}");
        assert_eq!(json["error"], "Invalid request body", "{json}");
        assert!(
            json["message"].as_str().is_some_and(|m| m.len() > 20),
            "{json}"
        );
    }
    assert!(!dir.path().join("db.selection.json").exists());
    assert!(!db.exists().await);
    // After all that, a valid call still works.
    assert_eq!(server.setup().await.0, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incomplete_credentials_are_400_naming_the_variable() {
    let db = TestDb::new().await;
    let mut connection = db.connection.clone();
    connection.password = None;
    let dir = tempfile::tempdir().expect("dir");
    let server = TestServer::start(&config(connection, dir.path())).await;
    let (code, body) = server.get("/api/db/status").await;
    assert_eq!(code, 200);
    assert_eq!(body["configured"], false);
    let (code, body) = server.setup().await;
    assert_eq!(code, 400);
    assert_eq!(
        body["error"],
        "Database configuration incomplete. Please check environment variables."
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("POSTGRES_PASSWORD"),
        "{body}"
    );
    assert!(!dir.path().join("db.selection.json").exists());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_postgres_is_503_and_leaves_no_file() {
    let db = TestDb::new().await;
    let mut connection = db.connection.clone();
    connection.port = common::free_port();
    let dir = tempfile::tempdir().expect("dir");
    let server = TestServer::start(&config(connection, dir.path())).await;
    let (code, body) = server.setup().await;
    assert_eq!(code, 503, "{body}");
    assert_eq!(body["error"], "Database unavailable");
    // A short public reason: where the database lives stays in the log.
    let text = body.to_string();
    assert!(
        !text.contains("127.0.0.1") && !text.contains(&db.connection.database),
        "{body}"
    );
    assert!(!dir.path().join("db.selection.json").exists());
    let status = server.get("/api/db/status").await.1;
    assert_eq!(status["initialized"], false);
    assert_eq!(status["state"], "database_unavailable", "{status}");
    let (code, body) = server.get("/api/health/ready").await;
    assert_eq!(code, 503);
    assert!(!body.to_string().contains("127.0.0.1"), "{body}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_fails_without_leaking_it() {
    let db = TestDb::new().await;
    let mut connection = db.connection.clone();
    let secret = "Sup3rS3cretValue-never-shown";
    connection.password = Some(secret.to_owned().into());
    let dir = tempfile::tempdir().expect("dir");
    let server = TestServer::start(&config(connection, dir.path())).await;
    let resp = server
        .http
        .post(format!("{}/api/db/setup", server.url))
        .json(&json!({"type": "postgresql"}))
        .send()
        .await
        .expect("POST");
    let code = resp.status().as_u16();
    let text = resp.text().await.expect("text");
    assert_eq!(code, 500, "{text}");
    // PostgreSQL's answer (naming the role) goes to the log only.
    assert!(!text.contains("authentication"), "{text}");
    assert!(
        !text.contains(&db.connection.user) && !text.contains("127.0.0.1"),
        "{text}"
    );
    assert!(!text.contains(secret));
    assert!(!dir.path().join("db.selection.json").exists());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framework_errors_are_json() {
    let db = TestDb::new().await;
    let (server, _dir) = server_for(&db).await;

    let (code, body) = server.get("/api/nope").await;
    assert_eq!(code, 404);
    assert_eq!(body["error"], "Not Found");

    let resp = server
        .http
        .delete(format!("{}/api/db/status", server.url))
        .send()
        .await
        .expect("DELETE");
    let (code, body) = json_of(resp).await;
    assert_eq!(code, 405);
    assert_eq!(body["error"], "Method Not Allowed");

    // Over 1 MiB, announced by Content-Length.
    let big = format!(
        "{{\"type\":\"{}\"}}",
        "x".repeat(deploystack_backend::api::MAX_BODY_BYTES)
    );
    let resp = server
        .http
        .post(format!("{}/api/db/setup", server.url))
        .header("content-type", "application/json")
        .body(big.clone())
        .send()
        .await
        .expect("POST");
    let (code, body) = json_of(resp).await;
    assert_eq!(code, 413);
    assert_eq!(body["error"], "Payload Too Large");

    // Over 1 MiB, chunked (no Content-Length).
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = big
        .into_bytes()
        .chunks(64 * 1024)
        .map(|c| Ok(c.to_vec()))
        .collect();
    let resp = server
        .http
        .post(format!("{}/api/db/setup", server.url))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .expect("POST");
    let (code, body) = json_of(resp).await;
    assert_eq!(code, 413);
    assert_eq!(body["error"], "Payload Too Large");

    // A small chunked body still reaches the handler.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        vec![Ok(b"{\"type\":".to_vec()), Ok(b"\"mysql\"}".to_vec())];
    let resp = server
        .http
        .post(format!("{}/api/db/setup", server.url))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .expect("POST");
    let (code, body) = json_of(resp).await;
    assert_eq!(code, 400, "{body}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swagger_ui_and_spec_are_served_without_a_cdn() {
    let db = TestDb::new().await;
    let (server, _dir) = server_for(&db).await;
    let resp = server
        .http
        .get(format!("{}/documentation", server.url))
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.status().as_u16(), 200);
    let html = resp.text().await.expect("html");
    assert!(html.contains("SwaggerUIBundle"));
    assert!(!html.contains("<script src=\"http"), "no external script");
    assert!(!html.contains("cdn"), "no CDN reference");
    let (code, spec) = server.get("/documentation/json").await;
    assert_eq!(code, 200);
    for path in [
        "/api/db/status",
        "/api/db/setup",
        "/api/health",
        "/api/health/ready",
        "/",
    ] {
        assert!(spec["paths"].get(path).is_some(), "spec lacks {path}");
    }
    server.stop().await;
}

fn embedded_migration_count() -> usize {
    use diesel::migration::MigrationSource;
    MigrationSource::<diesel::pg::Pg>::migrations(&deploystack_backend::db::migrations::MIGRATIONS)
        .expect("embedded migrations")
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browsers_are_sent_to_the_wizard_which_shows_the_next_step() {
    let db = TestDb::new().await;
    let (server, _dir) = server_for(&db).await;
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let browser_get = || {
        no_redirect
            .get(format!("{}/", server.url))
            .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
            .send()
    };
    let resp = browser_get().await.expect("GET /");
    assert_eq!(resp.status().as_u16(), 303);
    assert_eq!(resp.headers()["location"], "/setup");
    // API clients keep the JSON banner.
    assert_eq!(server.get("/").await.0, 200);

    let resp = server
        .http
        .get(format!("{}/setup", server.url))
        .send()
        .await
        .expect("GET /setup");
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.headers()["content-security-policy"]
        .to_str()
        .unwrap_or("")
        .contains("default-src 'none'"));
    let html = resp.text().await.expect("html");
    assert!(
        html.contains("/setup/setup.js") && !html.contains("http://") && !html.contains("https://")
    );
    for (asset, kind) in [
        ("/setup/setup.js", "text/javascript"),
        ("/setup/setup.css", "text/css"),
    ] {
        let resp = server
            .http
            .get(format!("{}{asset}", server.url))
            .send()
            .await
            .expect("asset");
        assert_eq!(resp.status().as_u16(), 200, "{asset}");
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap_or("")
                .starts_with(kind),
            "{asset}"
        );
    }

    // After setup too: the wizard shows the next step (the administrator, the frontend);
    // API clients still get the banner.
    assert_eq!(server.setup().await.0, 200);
    let resp = browser_get().await.expect("GET /");
    assert_eq!(resp.status().as_u16(), 303);
    assert_eq!(resp.headers()["location"], "/setup");
    assert_eq!(server.get("/").await.0, 200);
    server.stop().await;
}
