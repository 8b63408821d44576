//! Setup and start-up against a real PostgreSQL: failures and retries, concurrency,
//! restarts with pending migrations, the database disappearing while serving, and TLS.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use deploystack_backend::config::TlsMode;
use deploystack_backend::db::LivePool;
use deploystack_backend::lifecycle::Initializer;
use futures_util::future::BoxFuture;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use common::pg::{shared, OwnCluster, TestDb};
use common::server::{config, TestServer};

/// Counts its runs and fails when told to.
struct CountingInitializer {
    runs: AtomicUsize,
    fail: bool,
}

impl Initializer for CountingInitializer {
    fn name(&self) -> &'static str {
        "counting"
    }

    fn run<'a>(&'a self, pool: &'a LivePool) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            // Prove the pool it gets is usable.
            let _conn = pool.get().await?;
            self.runs.fetch_add(1, Ordering::SeqCst);
            anyhow::ensure!(!self.fail, "told to fail");
            Ok(())
        })
    }
}

fn counting(fail: bool) -> Arc<CountingInitializer> {
    Arc::new(CountingInitializer {
        runs: AtomicUsize::new(0),
        fail,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_fails_while_postgres_is_down_and_succeeds_once_it_is_up() {
    let port = common::free_port();
    let own = OwnCluster::prepare(port).await;
    let first = own.cluster.start().await.expect("start");
    let db = TestDb::on(&first);
    first.stop().await.expect("stop");

    let dir = tempfile::tempdir().expect("dir");
    let server = TestServer::start(&config(db.connection.clone(), dir.path())).await;
    let (code, body) = server.setup().await;
    assert_eq!(code, 503, "{body}");
    assert!(!dir.path().join("db.selection.json").exists());
    assert_eq!(server.get("/api/db/status").await.1["initialized"], false);

    let running = own.cluster.start().await.expect("restart");
    let (code, body) = server.setup().await;
    assert_eq!(code, 200, "{body}");
    assert!(dir.path().join("db.selection.json").exists());
    assert_eq!(server.get("/api/health/ready").await.0, 200);
    server.stop().await;
    drop(db);
    running.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_setup_calls_initialize_once() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("dir");
    let init = counting(false);
    let server = TestServer::start_with(
        &config(db.connection.clone(), dir.path()),
        vec![init.clone() as Arc<dyn Initializer>],
    )
    .await;
    let calls = (0..16).map(|_| server.setup());
    let results = futures_util::future::join_all(calls).await;
    let ok = results.iter().filter(|(code, _)| *code == 200).count();
    let conflicts = results.iter().filter(|(code, _)| *code == 409).count();
    assert_eq!((ok, conflicts), (1, 15), "{results:?}");
    assert_eq!(init.runs.load(Ordering::SeqCst), 1);
    let rows = db.query("SELECT count(*) FROM deploystack_setup").await;
    assert_eq!(rows[0].get::<_, i64>(0), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_initializer_gives_restart_required_and_runs_again_at_start() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("dir");
    let cfg = config(db.connection.clone(), dir.path());
    let init = counting(true);
    let server = TestServer::start_with(&cfg, vec![init.clone() as Arc<dyn Initializer>]).await;
    let (code, body) = server.setup().await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["restart_required"], true);
    assert_eq!(
        body["message"],
        "Database setup successful, but some services may require a server restart to function properly."
    );
    assert_eq!(server.get("/api/db/status").await.1["initialized"], true);
    assert!(dir.path().join("db.selection.json").exists());
    server.stop().await;

    // Initializers run at every start once set up.
    let init = counting(false);
    let server = TestServer::start_with(&cfg, vec![init.clone() as Arc<dyn Initializer>]).await;
    server.wait_initialized().await;
    assert_eq!(init.runs.load(Ordering::SeqCst), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_with_selection_file_applies_pending_migrations() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("dir");
    let cfg = config(db.connection.clone(), dir.path());
    let server = TestServer::start(&cfg).await;
    assert_eq!(server.setup().await.0, 200);
    server.stop().await;

    // Roll the newest migration back with its down.sql, as if this binary shipped a new one.
    let newest = revert_newest_migration(&db).await;
    let rows = db
        .query(&format!(
            "SELECT count(*) FROM __diesel_schema_migrations WHERE version = '{newest}'"
        ))
        .await;
    assert_eq!(rows[0].get::<_, i64>(0), 0);

    let server = TestServer::start(&cfg).await;
    server.wait_initialized().await;
    let rows = db
        .query(&format!(
            "SELECT count(*) FROM __diesel_schema_migrations WHERE version = '{newest}'"
        ))
        .await;
    assert_eq!(
        rows[0].get::<_, i64>(0),
        1,
        "the migration was applied again"
    );
    // Setup stays done.
    let rows = db.query("SELECT count(*) FROM deploystack_setup").await;
    assert_eq!(rows[0].get::<_, i64>(0), 1);
    assert_eq!(server.setup().await.0, 409);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_without_selection_file_touches_no_database() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("dir");
    let server = TestServer::start(&config(db.connection.clone(), dir.path())).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!db.exists().await);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_set_up_by_another_installation_is_409_and_served() {
    let db = TestDb::new().await;
    let first_dir = tempfile::tempdir().expect("dir");
    let first = TestServer::start(&config(db.connection.clone(), first_dir.path())).await;
    assert_eq!(first.setup().await.0, 200);

    // A replica with its own folder: no selection file, but the database says it is set up.
    let second_dir = tempfile::tempdir().expect("dir");
    let second = TestServer::start(&config(db.connection.clone(), second_dir.path())).await;
    let (code, body) = second.setup().await;
    assert_eq!(code, 409, "{body}");
    assert_eq!(
        body["message"],
        "Database setup has already been performed."
    );
    assert!(second_dir.path().join("db.selection.json").exists());
    assert_eq!(second.get("/api/health/ready").await.0, 200);
    first.stop().await;
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unwritable_selection_file_leaves_the_database_unmarked() {
    let db = TestDb::new().await;
    let blocker = tempfile::NamedTempFile::new().expect("file");
    // A data folder inside a regular file can never be created.
    let server =
        TestServer::start(&config(db.connection.clone(), &blocker.path().join("data"))).await;
    let (code, body) = server.setup().await;
    assert_eq!(code, 500, "{body}");
    assert_eq!(
        body["error"],
        "Database initialization failed. Check server logs and configuration."
    );
    // The path and the OS error are in the log, not in the public answer.
    let blocker_path = blocker.path().display().to_string();
    assert!(!body.to_string().contains(&blocker_path), "{body}");
    let rows = db.query("SELECT count(*) FROM deploystack_setup").await;
    assert_eq!(rows[0].get::<_, i64>(0), 0, "no completion recorded");
    assert_eq!(server.get("/api/db/status").await.1["initialized"], false);
    server.stop().await;

    // A retry with a usable folder completes.
    let dir = tempfile::tempdir().expect("dir");
    let server = TestServer::start(&config(db.connection.clone(), dir.path())).await;
    assert_eq!(server.setup().await.0, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_selection_file_is_replaced_by_setup() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("db.selection.json"), "{\"type\": \"postg").expect("write");
    let server = TestServer::start(&config(db.connection.clone(), dir.path())).await;
    assert_eq!(server.get("/api/db/status").await.1["initialized"], false);
    assert_eq!(server.setup().await.0, 200);
    let text = std::fs::read_to_string(dir.path().join("db.selection.json")).expect("read");
    assert!(text.contains("\"postgresql\""));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_database_gives_503_and_the_pool_recovers() {
    let port = common::free_port();
    let own = OwnCluster::prepare(port).await;
    let running = own.cluster.start().await.expect("start");
    let db = TestDb::on(&running);
    let dir = tempfile::tempdir().expect("dir");
    let server = TestServer::start(&config(db.connection.clone(), dir.path())).await;
    assert_eq!(server.setup().await.0, 200);
    assert_eq!(server.get("/api/health/ready").await.0, 200);

    running.kill().await;
    for _ in 0..5 {
        let (code, body) = server.get("/api/health/ready").await;
        assert_eq!(code, 503, "{body}");
        assert_eq!(body["error"], "Database unavailable");
    }
    assert_eq!(server.get("/api/db/status").await.1["initialized"], true);

    let running = own.cluster.start().await.expect("restart");
    let (code, body) = server.get("/api/health/ready").await;
    assert_eq!(
        code, 200,
        "the first request after PostgreSQL returns succeeds: {body}"
    );

    // A restart nobody noticed: the idle pooled connections are dead, yet no request fails.
    let mut open = Vec::new();
    for _ in 0..4 {
        open.push(server.get("/api/health/ready"));
    }
    for (code, _) in futures_util::future::join_all(open).await {
        assert_eq!(code, 200);
    }
    running.kill().await;
    let running = own.cluster.start().await.expect("restart");
    for _ in 0..6 {
        let (code, body) = server.get("/api/health/ready").await;
        assert_eq!(code, 200, "{body}");
    }
    server.stop().await;
    drop(db);
    running.stop().await.expect("stop");
}

async fn setup_over(tls: TlsMode) -> (u16, serde_json::Value, TestDb) {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("dir");
    let server = TestServer::start(&config(db.with_tls(tls), dir.path())).await;
    let (code, body) = server.setup().await;
    if code == 200 {
        // Every pooled connection is encrypted.
        let rows = db
            .query(
                "SELECT bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
                 WHERE a.application_name = 'deploystack-backend' AND a.datname = current_database()",
            )
            .await;
        assert_eq!(rows[0].get::<_, Option<bool>>(0), Some(true));
        assert_eq!(server.get("/api/health/ready").await.0, 200);
    }
    server.stop().await;
    (code, body, db)
}

fn roots(path: &std::path::Path) -> Arc<Vec<CertificateDer<'static>>> {
    Arc::new(
        CertificateDer::pem_file_iter(path)
            .expect("CA file")
            .collect::<Result<Vec<_>, _>>()
            .expect("PEM"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_without_verification_like_upstream() {
    let (code, body, _db) = setup_over(TlsMode::AcceptAnyCertificate).await;
    assert_eq!(code, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_verified_against_the_ca() {
    let ca = roots(&shared().await.ca_file);
    let (code, body, _db) = setup_over(TlsMode::VerifyWithRoots(ca)).await;
    assert_eq!(code, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_the_wrong_ca_is_refused_with_a_clear_error() {
    let ca = roots(&shared().await.other_ca_file);
    let (code, body, db) = setup_over(TlsMode::VerifyWithRoots(ca)).await;
    assert_eq!(code, 503, "{body}");
    assert_eq!(body["error"], "Database unavailable", "{body}");
    assert!(!db.exists().await);
}

/// Reverts the newest applied migration; returns its version.
async fn revert_newest_migration(db: &TestDb) -> String {
    use deploystack_backend::config::PoolSettings;
    use deploystack_backend::db::{migrations::MIGRATIONS, PgConnector};
    use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
    use diesel_async::AsyncPgConnection;
    use diesel_migrations::MigrationHarness;

    let connector = PgConnector::new(&db.connection, &PoolSettings::default()).expect("connector");
    let conn = connector.connect().await.expect("connect");
    tokio::task::spawn_blocking(move || {
        let mut conn: AsyncConnectionWrapper<AsyncPgConnection> = conn.into();
        conn.revert_last_migration(MIGRATIONS)
            .expect("revert")
            .to_string()
    })
    .await
    .expect("task")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_setup_that_is_not_serving_is_finished_by_the_next_call() {
    use deploystack_backend::config::PoolSettings;
    use deploystack_backend::db::{Database, PgConnector};
    use deploystack_backend::setup::{SetupError, SetupService};

    // As if a process wrote the selection file and stopped before its commit: the file is
    // there, the database is not set up, nothing serves it.
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("db.selection.json");
    std::fs::write(
        &file,
        r#"{"type":"postgresql","selectedAt":"2026-01-01T00:00:00.000Z","version":"1.0"}"#,
    )
    .expect("file");
    let connector = PgConnector::new(&db.connection, &PoolSettings::default()).expect("connector");
    let database = Database::new();
    let setup = std::sync::Arc::new(SetupService::new(
        file,
        Ok(connector),
        PoolSettings::default(),
        database.clone(),
        Vec::new(),
    ));
    let err = setup.setup().await.expect_err("already performed");
    assert!(
        matches!(err, SetupError::AlreadyPerformed { .. }),
        "{err:?}"
    );
    assert!(database.is_ready(), "the call finished the recorded setup");
    let rows = db.query("SELECT count(*) FROM deploystack_setup").await;
    assert_eq!(rows[0].get::<_, i64>(0), 1);
}
