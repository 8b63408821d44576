//! Behind a real PgBouncer (Debian's package) in front of the test cluster: in session mode
//! the backend sets up, serves and runs jobs as it does directly; in transaction mode it
//! refuses, at setup and at start, with a message that says what to change.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use deploystack_backend::app::App;
use deploystack_backend::config::ConnectionTarget;
use deploystack_backend::jobs::EnqueueOptions;
use secrecy::ExposeSecret;
use serde_json::json;

use common::pg::{TestDb, TEST_ROOT};
use common::server::{config, TestServer};

/// A PgBouncer process in `mode` in front of the server of `target`.
struct PgBouncer {
    port: u16,
    _process: tokio::process::Child,
    _dir: tempfile::TempDir,
}

fn pgbouncer_binary() -> PathBuf {
    ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("pgbouncer (Debian package `pgbouncer`; ./scripts/test.sh installs it)")
}

impl PgBouncer {
    async fn start(target: &ConnectionTarget, mode: &str) -> Self {
        use std::os::unix::fs::PermissionsExt;

        std::fs::create_dir_all(TEST_ROOT).expect("test root");
        let dir = tempfile::Builder::new()
            .prefix(&format!("{}-pgbouncer-", std::process::id()))
            .tempdir_in(TEST_ROOT)
            .expect("dir");
        // PgBouncer refuses to run as root: as root it runs as `postgres`, which must read
        // its files and write its log.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
            .expect("chmod");
        let port = common::free_port();
        let password = target
            .password
            .as_ref()
            .expect("password")
            .expose_secret()
            .to_owned();
        let path = |name: &str| dir.path().join(name);
        write(
            &path("userlist.txt"),
            &format!("\"{}\" \"{password}\"\n", target.user),
        );
        write(
            &path("pgbouncer.ini"),
            &format!(
                "[databases]\n\
                 * = host=127.0.0.1 port={upstream}\n\
                 [pgbouncer]\n\
                 listen_addr = 127.0.0.1\n\
                 listen_port = {port}\n\
                 unix_socket_dir =\n\
                 auth_type = scram-sha-256\n\
                 auth_file = {users}\n\
                 pool_mode = {mode}\n\
                 max_client_conn = 200\n\
                 default_pool_size = 40\n\
                 ignore_startup_parameters = extra_float_digits\n\
                 logfile = {log}\n\
                 pidfile = {pid}\n",
                upstream = target.port,
                users = path("userlist.txt").display(),
                log = path("pgbouncer.log").display(),
                pid = path("pgbouncer.pid").display(),
            ),
        );
        let mut cmd = tokio::process::Command::new(pgbouncer_binary());
        if nix::unistd::Uid::effective().is_root() {
            cmd.args(["-u", "postgres"]);
        }
        let process = cmd
            .arg(path("pgbouncer.ini"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start pgbouncer");
        common::wait_until(
            "pgbouncer to listen",
            Duration::from_secs(20),
            || async move {
                tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .is_ok()
            },
        )
        .await;
        Self {
            port,
            _process: process,
            _dir: dir,
        }
    }

    /// What PgBouncer logged, for failure messages.
    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("pgbouncer.log")).unwrap_or_default()
    }

    /// `target` reached through this PgBouncer.
    fn in_front_of(&self, target: &ConnectionTarget) -> ConnectionTarget {
        let mut through = target.clone();
        through.port = self.port;
        through.tls = deploystack_backend::config::TlsMode::Disabled;
        through
    }
}

fn write(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).expect("write");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_mode_serves_as_a_direct_connection_does() {
    let db = TestDb::new().await;
    // Behind a pooler the database exists beforehand (the pooler's configuration names it).
    db.create_empty().await;
    let bouncer = PgBouncer::start(&db.connection, "session").await;
    let dir = tempfile::tempdir().expect("dir");
    let cfg = config(bouncer.in_front_of(&db.connection), dir.path());
    let server = TestServer::start(&cfg).await;
    let (code, body) = server.setup().await;
    assert_eq!(code, 200, "{body}\n{}", bouncer.log());
    for _ in 0..5 {
        assert_eq!(server.get("/api/health/ready").await.0, 200);
    }
    // The workers claim through PgBouncer too (LISTEN, SKIP LOCKED): an unknown type fails
    // at once with upstream's message.
    let queue = server.state.jobs.queue().clone();
    let id = queue
        .enqueue("through_pgbouncer", json!({}), EnqueueOptions::default())
        .await
        .expect("enqueue");
    common::wait_until("the job to be handled", Duration::from_secs(30), || {
        let queue = queue.clone();
        let id = id.clone();
        async move { queue.job(&id).await.is_ok_and(|j| j.status == "failed") }
    })
    .await;
    // The statement timeout still applies to pooled sessions.
    let mut conn = server.state.database.conn().await.expect("conn");
    let timeout = diesel_async::RunQueryDsl::get_result::<Setting>(
        diesel::sql_query("SELECT current_setting('statement_timeout') AS value"),
        &mut conn,
    )
    .await
    .expect("show");
    assert_eq!(timeout.value, "30s");
    drop(conn);
    server.stop().await;

    // A restart through PgBouncer serves the recorded setup.
    let server = TestServer::start(&cfg).await;
    assert_eq!(server.get("/api/db/status").await.1["initialized"], true);
    server.stop().await;
}

#[derive(diesel::QueryableByName)]
struct Setting {
    #[diesel(sql_type = diesel::sql_types::Text)]
    value: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_mode_is_refused_with_what_to_change() {
    let db = TestDb::new().await;
    db.create_empty().await;
    let bouncer = PgBouncer::start(&db.connection, "transaction").await;
    let dir = tempfile::tempdir().expect("dir");
    let through = config(bouncer.in_front_of(&db.connection), dir.path());
    let server = TestServer::start(&through).await;
    let (code, body) = server.setup().await;
    assert_eq!(body["error"], "Setup refused", "{code} {body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains("pool_mode = session"), "{message}");
    assert_eq!(server.get("/api/health/ready").await.0, 503);
    server.stop().await;

    // Set up directly, then started through the transaction pooler: the start is refused.
    let direct = config(db.connection.clone(), dir.path());
    let server = TestServer::start(&direct).await;
    assert_eq!(server.setup().await.0, 200);
    server.stop().await;
    let refused = App::start(&through)
        .await
        .err()
        .expect("the start is refused");
    let reason = format!("{refused:#}");
    assert!(reason.contains("transaction mode"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_behind_a_transaction_pooler_is_never_read_from() {
    let db = TestDb::new().await;
    db.create_empty().await;
    let bouncer = PgBouncer::start(&db.connection, "transaction").await;
    let dir = tempfile::tempdir().expect("dir");
    let mut cfg = config(db.connection.clone(), dir.path());
    cfg.replicas = deploystack_backend::config::ReplicaSettings {
        hosts: vec![deploystack_backend::config::ReplicaHost {
            host: "127.0.0.1".into(),
            port: bouncer.port,
        }],
        max_lag: Duration::from_secs(5),
        check_interval: Duration::from_millis(100),
    };
    let server = TestServer::start(&cfg).await;
    assert_eq!(server.setup().await.0, 200);
    common::wait_until("the replica check", Duration::from_secs(30), || async {
        server.get("/api/health/ready").await.1["replicas"][0]["state"] == "transaction_pooler"
    })
    .await;
    let (code, _) = server.get("/api/health/ready").await;
    assert_eq!(code, 200, "the primary still serves");
    server.stop().await;
}
