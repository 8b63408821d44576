//! Signals to the real binary: SIGTERM while it starts stops the embedded cluster cleanly
//! (no crash recovery at the next start), and a second signal exits at once.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::pg::TestDb;
use common::process::{command, external_env};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// A folder the `postgres` user can traverse (tempdir() creates mode 0700).
fn shared_tempdir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("deploystack-signals-")
        .tempdir()
        .expect("dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).expect("chmod");
    dir
}

fn pg_controldata() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL binaries")
        .flatten()
        .map(|e| e.path().join("bin/pg_controldata"))
        .filter(|p| p.is_file())
        .collect();
    found.sort();
    found.pop().expect("pg_controldata")
}

/// `Database cluster state` from the cluster's control file.
fn cluster_state(data: &Path) -> String {
    let out = std::process::Command::new(pg_controldata())
        .arg("-D")
        .arg(data)
        .output()
        .expect("run pg_controldata");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("Database cluster state:"))
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

fn signal(child: &tokio::process::Child, sig: Signal) {
    let pid = child.id().expect("running") as i32;
    kill(Pid::from_raw(pid), sig).expect("signal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_start_up_stops_the_embedded_cluster_cleanly() {
    let dir = shared_tempdir();
    let data = dir.path().join("persistent_data");
    let cluster = data.join("postgres/data");
    let port = common::free_port();
    let env = vec![
        ("PERSISTENT_DATA_DIR", data.display().to_string()),
        ("PORT", port.to_string()),
    ];
    // Twice: the first start also runs initdb, the second starts an existing cluster.
    for round in 0..2 {
        let log = dir.path().join(format!("start-{round}.log"));
        let mut child = command(&env, &log).spawn().expect("spawn");
        // As soon as PostgreSQL is starting, before the backend serves.
        common::wait_until("postgres to start", Duration::from_secs(60), || async {
            cluster.join("postmaster.pid").exists()
        })
        .await;
        signal(&child, Signal::SIGTERM);
        let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
            .await
            .expect("exits after SIGTERM")
            .expect("wait");
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(status.success(), "round {round}: {status}\n{text}");
        assert!(!cluster.join("postmaster.pid").exists(), "{text}");
        assert_eq!(
            cluster_state(&cluster),
            "shut down",
            "round {round}\n{text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_exits_at_once() {
    // A setup call stuck behind a setup lock held elsewhere keeps the graceful shutdown
    // waiting; the second signal must not wait for it.
    let db = TestDb::new().await;
    db.create_empty().await;
    let _holder = db
        .hold_advisory_lock(deploystack_backend::setup::SETUP_LOCK_KEY)
        .await;

    let dir = shared_tempdir();
    let port = common::free_port();
    let mut env = external_env(&db, dir.path());
    env.push(("PORT", port.to_string()));
    env.push(("POSTGRES_SETUP_LOCK_TIMEOUT_MS", "120000".into()));
    let log = dir.path().join("backend.log");
    let mut child = command(&env, &log).spawn().expect("spawn");
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    common::wait_until("the backend to listen", Duration::from_secs(60), || async {
        http.get(format!("{url}/api/health")).send().await.is_ok()
    })
    .await;
    let pending = tokio::spawn({
        let http = http.clone();
        async move {
            http.post(format!("{url}/api/db/setup"))
                .json(&serde_json::json!({"type": "postgresql"}))
                .send()
                .await
        }
    });
    // Give the call time to reach the lock wait (it cannot finish while the lock is held).
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!pending.is_finished());
    signal(&child, Signal::SIGTERM);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "the first signal waits for the request in flight"
    );
    signal(&child, Signal::SIGTERM);
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("exits after the second signal")
        .expect("wait");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(status.code(), Some(130), "forced exit: {status}\n{text}");
    assert!(text.contains("second signal"), "{text}");
    pending.abort();
}
