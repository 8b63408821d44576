//! Read replicas against a real streaming replica that the test builds (`pg_basebackup -R`
//! from the test cluster, a second server on loopback): reads go to the replica, writes and
//! the reads after them within a unit of work to the primary; a lagging or stopped replica
//! is skipped, and reads fall back to the primary; readiness reports each replica.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use deploystack_backend::config::{ConnectionTarget, ReplicaHost, ReplicaSettings, TlsMode};
use deploystack_backend::db::{routing, Database};
use deploystack_backend::embedded_pg::find_bin_dir;
use diesel::sql_types::Bool;
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use secrecy::ExposeSecret;
use serde_json::Value;

use common::pg::{shared, TestDb, TEST_ROOT};
use common::server::{config, TestServer};

/// A hot standby of the shared test cluster, streaming from it.
struct StreamingReplica {
    port: u16,
    server: tokio::process::Child,
    _dir: tempfile::TempDir,
}

/// The `postgres` system user's ids when we are root (PostgreSQL refuses to run as root).
fn cluster_user() -> Option<(u32, u32)> {
    if !nix::unistd::Uid::effective().is_root() {
        return None;
    }
    let user = nix::unistd::User::from_name("postgres")
        .ok()
        .flatten()
        .expect("the postgres system user");
    Some((user.uid.as_raw(), user.gid.as_raw()))
}

fn as_cluster_user(cmd: &mut tokio::process::Command) {
    if let Some((uid, gid)) = cluster_user() {
        cmd.uid(uid).gid(gid);
    }
}

impl StreamingReplica {
    async fn start(superuser: &ConnectionTarget) -> Self {
        use std::os::unix::fs::PermissionsExt;

        let bin = find_bin_dir(None).expect("PostgreSQL binaries");
        std::fs::create_dir_all(TEST_ROOT).expect("test root");
        let dir = tempfile::Builder::new()
            .prefix(&format!("{}-replica-", std::process::id()))
            .tempdir_in(TEST_ROOT)
            .expect("dir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711))
            .expect("chmod");
        let data: PathBuf = dir.path().join("data");
        std::fs::create_dir(&data).expect("data dir");
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        if let Some((uid, gid)) = cluster_user() {
            nix::unistd::chown(
                &data,
                Some(nix::unistd::Uid::from_raw(uid)),
                Some(nix::unistd::Gid::from_raw(gid)),
            )
            .expect("chown");
        }
        let password = superuser
            .password
            .as_ref()
            .expect("superuser password")
            .expose_secret()
            .to_owned();
        let mut backup = tokio::process::Command::new(bin.join("pg_basebackup"));
        backup
            .args(["-h", "127.0.0.1", "-p", &superuser.port.to_string()])
            .args(["-U", &superuser.user, "-D"])
            .arg(&data)
            .args(["-R", "-X", "stream", "--no-password"])
            .env("PGPASSWORD", &password)
            .env("PGSSLMODE", "disable");
        as_cluster_user(&mut backup);
        let out = backup.output().await.expect("pg_basebackup");
        assert!(
            out.status.success(),
            "pg_basebackup: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = common::free_port();
        let mut server = tokio::process::Command::new(bin.join("postgres"));
        server
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "unix_socket_directories="])
            .args(["-c", "hot_standby=on"])
            // At least the primary's, or recovery refuses to start.
            .args(["-c", "max_connections=300"])
            .args(["-c", "wal_receiver_status_interval=1s"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        as_cluster_user(&mut server);
        let server = server.spawn().expect("start the replica");
        let replica = Self {
            port,
            server,
            _dir: dir,
        };
        let target = replica.superuser(superuser);
        common::wait_until(
            "the replica accepts connections",
            Duration::from_secs(60),
            || {
                let target = target.clone();
                async move { standby(&target).await == Some(true) }
            },
        )
        .await;
        replica
    }

    /// `superuser` on this replica.
    fn superuser(&self, superuser: &ConnectionTarget) -> ConnectionTarget {
        let mut target = superuser.clone();
        target.port = self.port;
        target.tls = TlsMode::Disabled;
        target
    }

    async fn kill(&mut self) {
        let _ = self.server.kill().await;
    }
}

/// `pg_is_in_recovery()` of the server at `target`, if it answers.
async fn standby(target: &ConnectionTarget) -> Option<bool> {
    let (client, conn) =
        tokio_postgres::connect(&common::pg::url_of(target), tokio_postgres::NoTls)
            .await
            .ok()?;
    tokio::spawn(conn);
    let row = client
        .query_one("SELECT pg_is_in_recovery()", &[])
        .await
        .ok()?;
    row.try_get(0).ok()
}

async fn superuser_execute(target: &ConnectionTarget, sql: &str) {
    let (client, conn) =
        tokio_postgres::connect(&common::pg::url_of(target), tokio_postgres::NoTls)
            .await
            .expect("connect");
    tokio::spawn(conn);
    client.batch_execute(sql).await.expect(sql);
}

#[derive(QueryableByName)]
struct Recovery {
    #[diesel(sql_type = Bool)]
    standby: bool,
}

/// Whether a read through `db` landed on the replica.
async fn read_on_replica(db: &Database) -> bool {
    let mut conn = db.read().await.expect("a connection for reading");
    diesel::sql_query("SELECT pg_is_in_recovery() AS standby")
        .get_result::<Recovery>(&mut conn)
        .await
        .expect("query")
        .standby
}

/// The replica's state in the readiness answer.
async fn replica_state(server: &TestServer) -> (u16, Value) {
    let (code, body) = server.get("/api/health/ready").await;
    (code, body["replicas"][0].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_use_a_healthy_replica_and_fall_back_when_it_lags_or_stops() {
    let db = TestDb::new().await;
    let cluster = shared().await;
    let primary_superuser = cluster.running.superuser_connection("postgres");
    let mut replica = StreamingReplica::start(&primary_superuser).await;
    let replica_superuser = replica.superuser(&primary_superuser);

    let dir = tempfile::tempdir().expect("dir");
    let mut cfg = config(db.connection.clone(), dir.path());
    cfg.replicas = ReplicaSettings {
        hosts: vec![ReplicaHost {
            host: "127.0.0.1".into(),
            port: replica.port,
        }],
        max_lag: Duration::from_millis(300),
        check_interval: Duration::from_millis(100),
    };
    let server = TestServer::start(&cfg).await;
    assert_eq!(server.setup().await.0, 200);
    let database = server.state.database.clone();

    // The database created and migrated at setup reaches the replica; then it serves reads.
    common::wait_until(
        "the replica to be usable",
        Duration::from_secs(30),
        || async { replica_state(&server).await.1["state"] == "usable" },
    )
    .await;
    let (code, report) = replica_state(&server).await;
    assert_eq!(code, 200);
    assert_eq!(report["name"], format!("127.0.0.1:{}", replica.port));
    assert!(
        report["lag_ms"].as_u64().is_some_and(|ms| ms <= 300),
        "{report}"
    );
    assert!(
        read_on_replica(&database).await,
        "reads go to the usable replica"
    );

    // Read-your-writes: within a unit of work, reads after a write stay on the primary.
    let (before, after) = routing::unit_of_work(async {
        let before = read_on_replica(&database).await;
        let mut conn = database.write().await.expect("primary");
        diesel::sql_query("CREATE TABLE replica_probe (id int)")
            .execute(&mut conn)
            .await
            .expect("write on the primary");
        drop(conn);
        (before, read_on_replica(&database).await)
    })
    .await;
    assert!(
        before,
        "a unit of work reads on the replica until it writes"
    );
    assert!(!after, "after a write, its reads go to the primary");
    // Another unit of work starts on the replica again.
    assert!(routing::unit_of_work(read_on_replica(&database)).await);

    // Lag: replay paused while the primary keeps writing → skipped, reads on the primary.
    superuser_execute(&replica_superuser, "SELECT pg_wal_replay_pause()").await;
    let mut write = database.write().await.expect("primary");
    for i in 0..20 {
        diesel::sql_query(format!("INSERT INTO replica_probe VALUES ({i})"))
            .execute(&mut write)
            .await
            .expect("insert");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(write);
    common::wait_until(
        "the lagging replica to be skipped",
        Duration::from_secs(30),
        || async { replica_state(&server).await.1["state"] == "lagging" },
    )
    .await;
    assert!(
        !read_on_replica(&database).await,
        "a lagging replica serves no reads"
    );
    superuser_execute(&replica_superuser, "SELECT pg_wal_replay_resume()").await;
    common::wait_until(
        "the replica to catch up",
        Duration::from_secs(30),
        || async { replica_state(&server).await.1["state"] == "usable" },
    )
    .await;
    assert!(read_on_replica(&database).await);

    // Down: the replica stops; reads go to the primary, the backend stays ready.
    replica.kill().await;
    common::wait_until(
        "the stopped replica to be skipped",
        Duration::from_secs(30),
        || async { replica_state(&server).await.1["state"] == "down" },
    )
    .await;
    for _ in 0..3 {
        assert!(
            !read_on_replica(&database).await,
            "reads fall back to the primary"
        );
    }
    let (code, report) = replica_state(&server).await;
    assert_eq!(
        code, 200,
        "a replica never makes the backend unready: {report}"
    );
    server.stop().await;
}
