//! A hot standby of a test or benchmark cluster: `pg_basebackup -R` from it, then a second
//! server on loopback streaming from it. Self-contained, so the benchmarks include it too.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use deploystack_backend::config::{ConnectionTarget, TlsMode};
use deploystack_backend::embedded_pg::find_bin_dir;
use secrecy::ExposeSecret;

/// A streaming replica; killed (and its folder removed) when dropped.
pub struct StreamingReplica {
    /// Its port on 127.0.0.1.
    pub port: u16,
    server: tokio::process::Child,
    bin: PathBuf,
    data: PathBuf,
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

fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl StreamingReplica {
    /// A replica of the cluster that `superuser` (the primary's superuser) reaches, in a new
    /// folder under `parent`; returns once it answers as a standby.
    pub async fn start(superuser: &ConnectionTarget, parent: &Path) -> Self {
        use std::os::unix::fs::PermissionsExt;

        let bin = find_bin_dir(None).expect("PostgreSQL binaries");
        std::fs::create_dir_all(parent).expect("parent folder");
        let dir = tempfile::Builder::new()
            .prefix(&format!("{}-replica-", std::process::id()))
            .tempdir_in(parent)
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
        let port = free_port();
        let server = spawn_server(&bin, &data, port);
        let replica = Self {
            port,
            server,
            bin,
            data,
            _dir: dir,
        };
        let target = replica.superuser(superuser);
        let started = Instant::now();
        while standby(&target).await != Some(true) {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the replica did not accept connections within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        replica
    }

    /// `superuser` on this replica.
    pub fn superuser(&self, superuser: &ConnectionTarget) -> ConnectionTarget {
        let mut target = superuser.clone();
        target.port = self.port;
        target.tls = TlsMode::Disabled;
        target
    }

    /// Stops it at once, as a crash would.
    pub async fn kill(&mut self) {
        let _ = self.server.kill().await;
    }

    /// Starts it again after [`StreamingReplica::kill`], on the same folder and port: it
    /// recovers from the crash and streams again. Returns once it answers as a standby.
    pub async fn restart(&mut self, superuser: &ConnectionTarget) {
        let target = self.superuser(superuser);
        let started = Instant::now();
        loop {
            // The killed server's backends end on their own; until they have, a new server
            // refuses the folder and exits.
            self.server = spawn_server(&self.bin, &self.data, self.port);
            while standby(&target).await != Some(true) {
                if self.server.try_wait().ok().flatten().is_some() {
                    break;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(60),
                    "the replica did not answer as a standby within 60 s"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            if standby(&target).await == Some(true) {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the replica did not come back within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// The replica's server on `data`, listening on `port` of 127.0.0.1.
fn spawn_server(bin: &Path, data: &Path, port: u16) -> tokio::process::Child {
    let mut server = tokio::process::Command::new(bin.join("postgres"));
    server
        .arg("-D")
        .arg(data)
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
    server.spawn().expect("start the replica")
}

/// `pg_is_in_recovery()` of the server at `target`, if it answers.
pub async fn standby(target: &ConnectionTarget) -> Option<bool> {
    let client = connect(target).await?;
    let row = client
        .query_one("SELECT pg_is_in_recovery()", &[])
        .await
        .ok()?;
    row.try_get(0).ok()
}

/// A plain session on `target`.
pub async fn connect(target: &ConnectionTarget) -> Option<tokio_postgres::Client> {
    let mut config = tokio_postgres::Config::new();
    config
        .host(&target.host)
        .port(target.port)
        .dbname(&target.database)
        .user(&target.user);
    if let Some(password) = &target.password {
        config.password(password.expose_secret());
    }
    let (client, conn) = config.connect(tokio_postgres::NoTls).await.ok()?;
    tokio::spawn(conn);
    Some(client)
}
