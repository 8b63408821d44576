//! Request ids, the request log (JSON format through the real binary) and panics answered as
//! JSON 500 by the production middleware stack.

use std::sync::OnceLock;
use std::time::Duration;

use deploystack_backend::api;
use deploystack_backend::telemetry::{self, LogFormat};
use poem::{get, handler, Route, Server};
use serde_json::{json, Value};
use tracing_subscriber::EnvFilter;

use super::server_for;
use crate::common::log_capture::LogCapture;
use crate::common::pg::TestDb;
use crate::common::process::{command, external_env, BackendProcess};
use crate::common::server::json_of;

/// What the panicking handler says; must never reach a client.
const PANIC_DETAIL: &str = "internal-detail-7c1e: secret state";

/// Log lines of this test binary, written by the production JSON formatter.
fn captured_logs() -> LogCapture {
    static LOGS: OnceLock<LogCapture> = OnceLock::new();
    LOGS.get_or_init(|| {
        let capture = LogCapture::default();
        let writer = capture.clone();
        let subscriber =
            telemetry::subscriber(LogFormat::Json, EnvFilter::new("info"), move || {
                writer.clone()
            });
        tracing::subscriber::set_global_default(subscriber).expect("first subscriber");
        capture
    })
    .clone()
}

/// Every JSON log line (other tests of this binary log too).
fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// The line with `message` logged in the span of request `id`.
fn line_of<'a>(lines: &'a [Value], id: &str, message: &str) -> &'a Value {
    lines
        .iter()
        .find(|l| l["span"]["request_id"] == id && l["fields"]["message"] == message)
        .unwrap_or_else(|| panic!("no `{message}` line for request {id}: {lines:?}"))
}

#[handler]
fn panics() -> String {
    panic!("{PANIC_DETAIL}")
}

#[handler]
fn fine() -> &'static str {
    "fine"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panics_are_json_500_without_detail_and_the_server_keeps_serving() {
    let logs = captured_logs();
    let app = api::harden(
        Route::new()
            .at("/panics", get(panics))
            .at("/fine", get(fine)),
    );
    let (acceptor, port) = crate::common::server::loopback_acceptor().await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        Server::new_with_acceptor(acceptor).run_with_graceful_shutdown(
            app,
            async move {
                let _ = stopped.await;
            },
            Some(Duration::from_secs(5)),
        ),
    );
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    for round in 0..2 {
        let id = format!("panic-test-{round}");
        let resp = http
            .get(format!("{url}/panics"))
            .header("x-request-id", &id)
            .send()
            .await
            .expect("an answer, not a dropped connection");
        assert_eq!(resp.headers()["x-request-id"], id.as_str());
        let code = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        assert_eq!(code, 500, "{text}");
        assert!(!text.contains("internal-detail"), "{text}");
        let body: Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(
            body,
            json!({
                "error": "Internal server error",
                "message": "The server failed to handle this request. It was logged; quote the \
                            `x-request-id` header of this answer when reporting it."
            })
        );
        let resp = http.get(format!("{url}/fine")).send().await.expect("GET");
        assert_eq!(resp.status().as_u16(), 200);
        assert_eq!(resp.text().await.expect("text"), "fine");
    }
    let _ = stop.send(());
    let _ = server.await;

    let text = logs.text();
    let lines = json_lines(&text);
    let panic = line_of(&lines, "panic-test-0", "request handler panicked");
    assert_eq!(panic["level"], "ERROR");
    assert_eq!(
        panic["fields"]["panic"], PANIC_DETAIL,
        "the log has the detail"
    );
    let done = line_of(&lines, "panic-test-0", "request completed");
    assert_eq!(done["span"]["status"], 500, "{done}");
    // The router's template does not survive a panic; the raw path is there.
    assert_eq!(done["span"]["path"], "/panics", "{done}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_are_echoed_when_well_formed_and_generated_otherwise() {
    let db = TestDb::new().await;
    let (server, _dir) = server_for(&db).await;
    let id_of = |resp: &reqwest::Response| {
        resp.headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .unwrap_or_default()
    };
    let is_generated = |id: &str| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit());
    let health = format!("{}/api/health", server.url);

    for given in ["abc-123", "trace.id:42_x", &"a".repeat(128)] {
        let resp = server
            .http
            .get(&health)
            .header("x-request-id", given)
            .send()
            .await
            .expect("GET");
        assert_eq!(id_of(&resp), given);
    }
    let mut generated = Vec::new();
    for malformed in [
        None,
        Some(""),
        Some("has space"),
        Some("a/b"),
        Some(&*"a".repeat(129)),
    ] {
        let mut request = server.http.get(&health);
        if let Some(value) = malformed {
            request = request.header("x-request-id", value);
        }
        let id = id_of(&request.send().await.expect("GET"));
        assert!(is_generated(&id), "{malformed:?} → {id}");
        generated.push(id);
    }
    generated.sort();
    generated.dedup();
    assert_eq!(generated.len(), 5, "fresh ids: {generated:?}");

    // Error answers carry it too.
    let not_found = server.http.get(format!("{}/nope", server.url)).send();
    let wrong_method = server.http.delete(&health).send();
    for resp in [not_found.await, wrong_method.await] {
        assert!(is_generated(&id_of(&resp.expect("answer"))));
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_request_id_method_route_status_and_latency() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("dir");
    let mut env = external_env(&db, dir.path());
    env.push(("LOG_FORMAT", "json".to_owned()));
    let log = dir.path().join("server.log");
    let process = BackendProcess::start(&env, &log).await;
    let http = reqwest::Client::new();
    let resp = http
        .get(format!("{}/api/health", process.url))
        .header("x-request-id", "json-log-1")
        .send()
        .await
        .expect("GET");
    assert_eq!(json_of(resp).await.0, 200);
    let resp = http
        .delete(format!("{}/api/db/status", process.url))
        .header("x-request-id", "json-log-2")
        .send()
        .await
        .expect("DELETE");
    assert_eq!(json_of(resp).await.0, 405);
    assert!(process.terminate().await.success());

    let lines = json_lines(&std::fs::read_to_string(&log).expect("log"));
    assert!(
        lines.iter().any(|l| l["fields"]["message"] == "listening"),
        "start-up lines are JSON too"
    );
    for (id, method, route, status) in [
        ("json-log-1", "GET", "/api/health", 200),
        ("json-log-2", "DELETE", "/api/db/status", 405),
    ] {
        let line = line_of(&lines, id, "request completed");
        let span = &line["span"];
        assert_eq!(line["level"], "INFO", "{line}");
        assert_eq!(span["method"], method, "{line}");
        assert_eq!(span["route"], route, "{line}");
        assert_eq!(span["status"], status, "{line}");
        assert!(span["latency_ms"].is_number(), "{line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_log_format_stops_the_process_naming_the_variable() {
    let dir = tempfile::tempdir().expect("dir");
    let log = dir.path().join("log");
    let vars = [
        ("LOG_FORMAT", "xml".to_owned()),
        ("PERSISTENT_DATA_DIR", dir.path().display().to_string()),
    ];
    let status = tokio::time::timeout(Duration::from_secs(30), command(&vars, &log).status())
        .await
        .expect("exits at once")
        .expect("run");
    assert!(!status.success());
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(
        text.contains("LOG_FORMAT") && text.contains("xml"),
        "{text}"
    );
}
