//! The one lifecycle state machine against a real PostgreSQL: a restarted or replicated
//! backend tells the truth from its first answer, lock waits are bounded, shutdown waits
//! for a setup in progress and installs nothing after it, and nothing touches the database
//! before setup.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use deploystack_backend::db::migrations::MIGRATION_LOCK_KEY;
use deploystack_backend::db::LivePool;
use deploystack_backend::lifecycle::Initializer;
use deploystack_backend::setup::SETUP_LOCK_KEY;
use futures_util::future::BoxFuture;
use tokio::sync::Notify;

use common::pg::{OwnCluster, TestDb};
use common::server::{config, TestServer};

/// Connections the backend holds on `db` right now.
async fn backend_sessions(db: &TestDb) -> i64 {
    let mut admin = db.connection.clone();
    admin.database = "postgres".into();
    let (client, conn) =
        tokio_postgres::connect(&common::pg::url_of(&admin), tokio_postgres::NoTls)
            .await
            .expect("connect");
    tokio::spawn(conn);
    client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = $1 AND application_name = 'deploystack-backend'",
            &[&db.connection.database],
        )
        .await
        .expect("pg_stat_activity")
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_backend_reports_initialized_from_its_first_answer() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("dir");
    let cfg = config(db.connection.clone(), dir.path());
    let server = TestServer::start(&cfg).await;
    assert_eq!(server.setup().await.0, 200);
    server.stop().await;

    let server = TestServer::start(&cfg).await;
    let (code, body) = server.get("/api/db/status").await;
    assert_eq!(code, 200);
    assert_eq!(body["initialized"], true, "{body}");
    assert_eq!(server.admin_status().await["state"], "ready");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_down_at_restart_is_set_up_but_unavailable_then_recovers() {
    let port = common::free_port();
    let own = OwnCluster::prepare(port).await;
    let running = own.cluster.start().await.expect("start");
    let db = TestDb::on(&running);
    let dir = tempfile::tempdir().expect("dir");
    let cfg = config(db.connection.clone(), dir.path());
    let server = TestServer::start(&cfg).await;
    assert_eq!(server.setup().await.0, 200);
    server.stop().await;
    running.stop().await.expect("stop");

    let server = TestServer::start(&cfg).await;
    let status = server.get("/api/db/status").await.1;
    assert_eq!(status["initialized"], false, "{status}");
    assert_eq!(status["state"], "database_unavailable", "{status}");
    // Readiness says why, and does not send the operator to the setup wizard.
    let (code, body) = server.get("/api/health/ready").await;
    assert_eq!(code, 503);
    assert_eq!(body["error"], "Database unavailable", "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Setup is complete")),
        "{body}"
    );
    // Setup is not offered again: the recorded setup is finished once PostgreSQL is back.
    let running = own.cluster.start().await.expect("restart");
    server.wait_initialized().await;
    assert_eq!(server.get("/api/db/status").await.1["initialized"], true);
    assert_eq!(server.get("/api/health/ready").await.0, 200);
    server.stop().await;
    drop(db);
    running.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_with_its_own_folder_serves_a_set_up_database_without_a_setup_call() {
    let db = TestDb::new().await;
    let first_dir = tempfile::tempdir().expect("dir");
    let first = TestServer::start(&config(db.connection.clone(), first_dir.path())).await;
    assert_eq!(first.setup().await.0, 200);

    let second_dir = tempfile::tempdir().expect("dir");
    let second = TestServer::start(&config(db.connection.clone(), second_dir.path())).await;
    let status = second.get("/api/db/status").await.1;
    assert_eq!(status["initialized"], true, "{status}");
    assert_eq!(second.get("/api/health/ready").await.0, 200);
    assert!(second_dir.path().join("db.selection.json").exists());
    let rows = db.query("SELECT count(*) FROM deploystack_setup").await;
    assert_eq!(rows[0].get::<_, i64>(0), 1, "one setup record");
    first.stop().await;
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_started_before_setup_serve_once_a_peer_is_set_up() {
    // Behind a load balancer: both start before setup, the setup call reaches one of them.
    let db = TestDb::new().await;
    let first_dir = tempfile::tempdir().expect("dir");
    let second_dir = tempfile::tempdir().expect("dir");
    let first = TestServer::start(&config(db.connection.clone(), first_dir.path())).await;
    let second = TestServer::start(&config(db.connection.clone(), second_dir.path())).await;
    assert_eq!(
        second.get("/api/db/status").await.1["state"],
        "setup_required"
    );
    assert_eq!(first.setup().await.0, 200);
    second.wait_initialized().await;
    assert_eq!(second.get("/api/health/ready").await.0, 200);
    assert!(second_dir.path().join("db.selection.json").exists());
    first.stop().await;
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_facing_a_database_without_a_record_changes_nothing() {
    let db = TestDb::new().await;
    // The database exists (created by someone else) but was never set up.
    db.create_empty().await;

    let dir = tempfile::tempdir().expect("dir");
    let server = TestServer::start(&config(db.connection.clone(), dir.path())).await;
    let status = server.get("/api/db/status").await.1;
    assert_eq!(status["state"], "setup_required", "{status}");
    let tables = db
        .query("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        .await;
    assert_eq!(tables[0].get::<_, i64>(0), 0, "nothing created");
    assert!(!dir.path().join("db.selection.json").exists());
    // Nothing keeps a connection to it either (no change listener before setup; the
    // read-only looks for a peer's setup come and go).
    let mut samples = Vec::new();
    for _ in 0..10 {
        samples.push(backend_sessions(&db).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(samples.contains(&0), "a connection stays open: {samples:?}");
    assert!(!server.state.settings.cache_enabled());

    // Once set up, the change listener runs.
    assert_eq!(server.setup().await.0, 200);
    common::wait_until("the settings listener", Duration::from_secs(10), || async {
        server.state.settings.cache_enabled()
    })
    .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_setup_lock_held_elsewhere_gets_a_clear_answer_not_a_hang() {
    // The setup lock, then the migration lock (held by a `migrate` run elsewhere).
    for key in [SETUP_LOCK_KEY, MIGRATION_LOCK_KEY] {
        lock_held_elsewhere_is_a_clear_answer(key).await;
    }
}

async fn lock_held_elsewhere_is_a_clear_answer(key: i64) {
    let db = TestDb::new().await;
    db.create_empty().await;
    // A stuck process elsewhere: it holds the lock and never lets go.
    let holder = db.hold_advisory_lock(key).await;

    let dir = tempfile::tempdir().expect("dir");
    let mut cfg = config(db.connection.clone(), dir.path());
    cfg.pool.setup_lock_timeout = Duration::from_millis(300);
    let server = TestServer::start(&cfg).await;
    let (code, body) = tokio::time::timeout(Duration::from_secs(30), server.setup())
        .await
        .expect("the setup call answers instead of waiting for the lock");
    assert_eq!(code, 503, "lock {key:x}: {body}");
    assert_eq!(body["error"], "Setup in progress", "{body}");
    assert!(!dir.path().join("db.selection.json").exists());

    holder
        .batch_execute(&format!("SELECT pg_advisory_unlock({key})"))
        .await
        .expect("unlock");
    let (code, body) = server.setup().await;
    assert_eq!(code, 200, "{body}");
    server.stop().await;
}

/// An initializer that stops until released, to catch a setup in the middle.
struct Gate {
    entered: Notify,
    release: Notify,
    done: AtomicBool,
}

impl Initializer for Gate {
    fn name(&self) -> &'static str {
        "gate"
    }

    fn run<'a>(&'a self, _pool: &'a LivePool) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            self.entered.notify_one();
            self.release.notified().await;
            self.done.store(true, Ordering::SeqCst);
            Ok(())
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_a_setup_in_progress_finish_and_serves_nothing_after() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("dir");
    let gate = Arc::new(Gate {
        entered: Notify::new(),
        release: Notify::new(),
        done: AtomicBool::new(false),
    });
    let server = TestServer::start_with(
        &config(db.connection.clone(), dir.path()),
        vec![gate.clone() as Arc<dyn Initializer>],
    )
    .await;
    let state = server.state.clone();
    let http = server.http.clone();
    let url = format!("{}/api/db/setup", server.url);
    let call = tokio::spawn(async move {
        http.post(url)
            .json(&serde_json::json!({"type": "postgresql"}))
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    gate.entered.notified().await;
    // The client gives up: nothing holds the HTTP server open, only the setup task remains.
    call.abort();
    let stopping = tokio::spawn(server.stop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!stopping.is_finished(), "shutdown waits for the setup");
    gate.release.notify_one();
    stopping.await.expect("stop");
    assert!(gate.done.load(Ordering::SeqCst));
    // The setup completed and was recorded (no half-done state) ...
    assert!(dir.path().join("db.selection.json").exists());
    let rows = db.query("SELECT count(*) FROM deploystack_setup").await;
    assert_eq!(rows[0].get::<_, i64>(0), 1);
    // ... but the stopped process serves no pool.
    assert!(!state.database.is_ready());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_timeout_zero_means_never_not_a_panic() {
    // POSTGRES_IDLE_TIMEOUT_MS=0 used to reach bb8 as a zero duration, which panics when
    // the pool is built: a 500 at setup, a silent 503 forever at start.
    let env = deploystack_backend::config::EnvSource::from_pairs([
        ("POSTGRES_IDLE_TIMEOUT_MS", "0"),
        ("POSTGRES_PASSWORD", "unused"),
    ]);
    let parsed = deploystack_backend::config::Config::from_source(&env).expect("valid");
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("dir");
    let mut cfg = config(db.connection.clone(), dir.path());
    cfg.pool.idle_timeout = parsed.pool.idle_timeout;
    assert_eq!(cfg.pool.idle_timeout, None);
    let server = TestServer::start(&cfg).await;
    assert_eq!(server.setup().await.0, 200);
    assert_eq!(server.get("/api/health/ready").await.0, 200);
    server.stop().await;

    let server = TestServer::start(&cfg).await;
    assert_eq!(server.get("/api/db/status").await.1["initialized"], true);
    server.stop().await;
}
