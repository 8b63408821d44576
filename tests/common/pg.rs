//! PostgreSQL for tests: one shared cluster per test binary (TLS enabled, with a CA file to
//! verify it), dedicated clusters for tests that stop or kill the server, and one fresh
//! database name per test, dropped when the test ends.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use deploystack_backend::config::{ConnectionTarget, TlsMode};
use deploystack_backend::embedded_pg::{Cluster, ClusterOptions, RunningPostgres};
use secrecy::ExposeSecret;
use tokio::sync::OnceCell;

use super::certs;

/// Parent of every test cluster. The shared cluster's folder is removed by a watcher process
/// once its test process exited (statics are never dropped); folders of test processes that
/// are gone are swept as well, should a watcher have been killed.
pub const TEST_ROOT: &str = "/tmp/deploystack-tests";

/// The cluster shared by the tests of one binary.
pub struct SharedCluster {
    /// The running server.
    pub running: RunningPostgres,
    /// CA that signed the server certificate.
    pub ca_file: PathBuf,
    /// A CA that did not sign it.
    pub other_ca_file: PathBuf,
}

static SHARED: OnceCell<SharedCluster> = OnceCell::const_new();
static NEXT: AtomicU32 = AtomicU32::new(0);

/// The shared cluster, started on first use.
pub async fn shared() -> &'static SharedCluster {
    SHARED
        .get_or_init(|| async {
            sweep_stale();
            let root = unique_dir("shared");
            let cluster = prepare(&root, None, true, &[]).await;
            let pki = certs::generate();
            cluster
                .install_file("server.crt", pki.server_cert_pem.as_bytes(), 0o600)
                .expect("install certificate");
            cluster
                .install_file("server.key", pki.server_key_pem.as_bytes(), 0o600)
                .expect("install key");
            let ca_file = root.join("ca.pem");
            std::fs::write(&ca_file, &pki.ca_pem).expect("write CA");
            let other_ca_file = root.join("other-ca.pem");
            std::fs::write(&other_ca_file, certs::generate().ca_pem).expect("write CA");
            let running = cluster
                .start()
                .await
                .expect("start the shared test cluster");
            remove_after_exit(&root, &cluster.data_dir());
            SharedCluster {
                running,
                ca_file,
                other_ca_file,
            }
        })
        .await
}

/// A cluster of the test's own, for tests that stop or kill the server. `port` fixes the
/// port so the test can point the backend at it before it runs.
pub struct OwnCluster {
    /// The prepared cluster (start it again after a stop).
    pub cluster: Cluster,
    /// Keeps the folder until the test ends.
    pub dir: tempfile::TempDir,
}

impl OwnCluster {
    /// Prepares (initdb) a cluster that will listen on `port`.
    pub async fn prepare(port: u16) -> Self {
        Self::prepare_with(port, &[]).await
    }

    /// [`OwnCluster::prepare`] with server `settings` replacing the test defaults (such as
    /// `max_connections`).
    pub async fn prepare_with(port: u16, settings: &[(&str, &str)]) -> Self {
        std::fs::create_dir_all(TEST_ROOT).expect("test root");
        let dir = tempfile::Builder::new()
            .prefix(&format!("{}-own-", std::process::id()))
            .tempdir_in(TEST_ROOT)
            .expect("temp dir");
        open_for_cluster_user(dir.path());
        let cluster = prepare(dir.path(), Some(port), false, settings).await;
        Self { cluster, dir }
    }
}

async fn prepare(root: &Path, port: Option<u16>, ssl: bool, overrides: &[(&str, &str)]) -> Cluster {
    let mut options = ClusterOptions::new(root.join("pg"));
    options.port = port;
    options.durable = false;
    options.settings = vec![
        ("max_connections".into(), "300".into()),
        // A test's runtime is frozen while its database is dropped (`TestDb::drop` blocks
        // it); a pooled connection still logging in then would hold the drop until the
        // login times out (60 s by default).
        ("authentication_timeout".into(), "2s".into()),
    ];
    if ssl {
        options.settings.push(("ssl".into(), "on".into()));
    }
    for (name, value) in overrides {
        options.settings.retain(|(n, _)| n != name);
        options.settings.push(((*name).into(), (*value).into()));
    }
    tokio::task::spawn_blocking(move || Cluster::prepare(options))
        .await
        .expect("prepare task")
        .expect("initdb")
}

/// A database name for one test on `running`; the database itself is created by the code
/// under test (setup creates it) and dropped when this value is dropped.
pub struct TestDb {
    /// Connection details, password included, for the backend under test (the cluster's
    /// owner role, not a superuser, as the backend runs).
    pub connection: ConnectionTarget,
    /// The same database as the cluster's superuser, for set-up only a superuser may do.
    pub superuser: ConnectionTarget,
}

impl TestDb {
    /// A new, not yet existing database on the shared cluster.
    pub async fn new() -> Self {
        Self::on(&shared().await.running)
    }

    /// A new database name on `running`.
    pub fn on(running: &RunningPostgres) -> Self {
        let name = format!(
            "t_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        Self {
            connection: running.connection(&name),
            superuser: running.superuser_connection(&name),
        }
    }

    /// The same database reached with TLS mode `tls`.
    pub fn with_tls(&self, tls: TlsMode) -> ConnectionTarget {
        let mut connection = self.connection.clone();
        connection.tls = tls;
        connection
    }

    /// A `postgres://` URL (the test password is alphanumeric, so no escaping is needed).
    pub fn url(&self) -> String {
        url_of(&self.connection)
    }

    /// Runs a query on the test database and returns the rows.
    pub async fn query(&self, sql: &str) -> Vec<tokio_postgres::Row> {
        let (client, conn) = tokio_postgres::connect(&self.url(), tokio_postgres::NoTls)
            .await
            .expect("connect to the test database");
        tokio::spawn(conn);
        client.query(sql, &[]).await.expect("query")
    }

    /// Runs statements (several allowed) on the test database.
    pub async fn execute(&self, sql: &str) {
        let (client, conn) = tokio_postgres::connect(&self.url(), tokio_postgres::NoTls)
            .await
            .expect("connect to the test database");
        tokio::spawn(conn);
        client.batch_execute(sql).await.expect("execute");
    }

    /// Runs statements on the test database and returns PostgreSQL's verdict.
    pub async fn try_execute(&self, sql: &str) -> Result<(), tokio_postgres::Error> {
        let (client, conn) = tokio_postgres::connect(&self.url(), tokio_postgres::NoTls)
            .await
            .expect("connect to the test database");
        tokio::spawn(conn);
        client.batch_execute(sql).await
    }

    /// Creates the (empty, never set up) database, as an operator or another tool would.
    pub async fn create_empty(&self) {
        let mut admin = self.connection.clone();
        admin.database = "postgres".into();
        let (client, conn) = tokio_postgres::connect(&url_of(&admin), tokio_postgres::NoTls)
            .await
            .expect("connect to postgres");
        tokio::spawn(conn);
        client
            .batch_execute(&format!("CREATE DATABASE \"{}\"", self.connection.database))
            .await
            .expect("create database");
    }

    /// A session on the test database holding the advisory lock `key` until it is dropped
    /// (or unlocked): a process stuck elsewhere.
    pub async fn hold_advisory_lock(&self, key: i64) -> tokio_postgres::Client {
        let (holder, conn) = tokio_postgres::connect(&self.url(), tokio_postgres::NoTls)
            .await
            .expect("connect to the test database");
        tokio::spawn(conn);
        holder
            .batch_execute(&format!("SELECT pg_advisory_lock({key})"))
            .await
            .expect("lock");
        holder
    }

    /// Runs statements on the test database as the cluster's superuser.
    pub async fn execute_as_superuser(&self, sql: &str) {
        let (client, conn) =
            tokio_postgres::connect(&url_of(&self.superuser), tokio_postgres::NoTls)
                .await
                .expect("connect to the test database as superuser");
        tokio::spawn(conn);
        client
            .batch_execute(sql)
            .await
            .expect("execute as superuser");
    }

    /// Whether the database exists yet.
    pub async fn exists(&self) -> bool {
        let mut admin = self.connection.clone();
        admin.database = "postgres".into();
        let (client, conn) = tokio_postgres::connect(&url_of(&admin), tokio_postgres::NoTls)
            .await
            .expect("connect to postgres");
        tokio::spawn(conn);
        let row = client
            .query_one(
                "SELECT count(*) FROM pg_database WHERE datname = $1",
                &[&self.connection.database],
            )
            .await
            .expect("query pg_database");
        row.get::<_, i64>(0) == 1
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let mut admin = self.connection.clone();
        let name = std::mem::take(&mut admin.database);
        admin.database = "postgres".into();
        // Drop runs inside the test's runtime, so the cleanup gets a runtime of its own.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok((client, conn)) =
                    tokio_postgres::connect(&url_of(&admin), tokio_postgres::NoTls).await
                {
                    tokio::spawn(conn);
                    let _ = client
                        .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                        .await;
                }
            });
        })
        .join();
    }
}

/// `postgres://user:password@host:port/db?sslmode=disable`.
pub fn url_of(c: &ConnectionTarget) -> String {
    let password = c
        .password
        .as_ref()
        .map(|p| p.expose_secret().to_owned())
        .unwrap_or_default();
    format!(
        "postgres://{}:{}@{}:{}/{}?sslmode=disable",
        c.user, password, c.host, c.port, c.database
    )
}

fn unique_dir(kind: &str) -> PathBuf {
    let dir = Path::new(TEST_ROOT).join(format!("{}-{kind}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("test cluster folder");
    open_for_cluster_user(Path::new(TEST_ROOT));
    open_for_cluster_user(&dir);
    dir
}

/// The cluster's user (postgres, when we are root) must be able to traverse the folder.
fn open_for_cluster_user(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711));
}

/// Starts a watcher that removes `dir` once this process has exited and the cluster in `data`
/// (which the kernel stops when we exit, see `spawn_supervised`) is gone. The watcher waits
/// for the end of a pipe only we hold, so it also cleans up after a killed test binary, and
/// runs in its own process group, so a Ctrl-C of `cargo test` does not stop it.
fn remove_after_exit(dir: &Path, data: &Path) {
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};

    let postmaster = std::fs::read_to_string(data.join("postmaster.pid"))
        .ok()
        .and_then(|text| text.lines().next().map(str::to_owned))
        .unwrap_or_default();
    let script = r#"cat >/dev/null
i=0
while [ -n "$1" ] && kill -0 "$1" 2>/dev/null && [ "$i" -lt 600 ]; do sleep 0.1; i=$((i+1)); done
rm -rf "$2""#;
    let watcher = Command::new("sh")
        .args(["-c", script, "test-cluster-cleanup", postmaster.trim()])
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("start the cleanup watcher");
    // The write end stays open until this process ends; then the watcher reads EOF.
    std::mem::forget(watcher);
}

/// Removes folders left by test processes that no longer run (their clusters died with them).
fn sweep_stale() {
    let Ok(entries) = std::fs::read_dir(TEST_ROOT) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A migrated database behind a ready [`Database`] handle, with the roles synced, for
/// tests that call services directly.
pub async fn ready_database(db: &TestDb) -> deploystack_backend::db::Database {
    use deploystack_backend::config::PoolSettings;
    use deploystack_backend::db::{migrations, provision, Database, LivePool, PgConnector};
    use deploystack_backend::lifecycle::Initializer;

    let settings = PoolSettings::default();
    let connector = PgConnector::new(&db.connection, &settings).expect("connector");
    let conn = provision::connect_creating_database(&connector)
        .await
        .expect("connect");
    migrations::run_pending(conn).await.expect("migrate");
    let pool = LivePool::new(&connector, &settings);
    deploystack_backend::services::RoleSync
        .run(&pool)
        .await
        .expect("role sync");
    let database = Database::new();
    database.install(pool);
    database
}
