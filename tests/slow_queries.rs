//! The query instrumentation: a statement slower than `POSTGRES_SLOW_QUERY_MS` is logged once,
//! with its text and duration and the request's id from its span, never a parameter's value;
//! fast statements are not logged.

mod common;

use std::time::Duration;

use common::log_capture::LogCapture;
use common::pg::TestDb;
use common::server::{config, TestServer};
use diesel::sql_types::{Double, Text};
use diesel_async::RunQueryDsl;
use tracing::Instrument;

/// One thread: the capturing subscriber is this thread's default, and every task runs on it.
#[tokio::test(flavor = "current_thread")]
async fn a_slow_statement_is_logged_once_without_its_parameters() {
    let capture = LogCapture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("dir");
    let mut cfg = config(db.connection.clone(), dir.path());
    cfg.pool.slow_query = Duration::from_millis(150);
    cfg.jobs.concurrency = 0;
    let server = TestServer::start(&cfg).await;
    assert_eq!(server.setup().await.0, 200);
    capture.clear();

    let request = tracing::info_span!("request", request_id = "req-slow-42");
    async {
        let mut conn = server.state.database.conn().await.expect("connection");
        diesel::sql_query("SELECT pg_sleep($1), $2 AS marker")
            .bind::<Double, _>(0.3)
            .bind::<Text, _>("parameter-value-kept-out")
            .execute(&mut conn)
            .await
            .expect("slow statement");
        diesel::sql_query("SELECT $1 AS fast")
            .bind::<Text, _>("fast-parameter")
            .execute(&mut conn)
            .await
            .expect("fast statement");
    }
    .instrument(request)
    .await;
    server.stop().await;

    let log = capture.text();
    let slow: Vec<&str> = log.lines().filter(|l| l.contains("slow query")).collect();
    assert_eq!(slow.len(), 1, "{log}");
    let line = slow[0];
    assert!(
        line.contains("SELECT pg_sleep($1), $2 AS marker")
            && line.contains("req-slow-42")
            && line.contains("duration_ms="),
        "{line}"
    );
    assert!(!log.contains("parameter-value-kept-out"), "{log}");
    assert!(
        !log.contains("fast-parameter") && !log.contains("AS fast"),
        "{log}"
    );
}
