//! `settings rotate-secret`, the real binary: the generated secret's file replaced with a
//! backup kept, the configured secret's case, refused inputs, and a rotation killed with
//! SIGKILL inside its transaction leaving the old state and files.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use deploystack_backend::settings::key_check::is_check_of;
use tokio::io::AsyncWriteExt;

use crate::common;
use crate::common::pg::TestDb;
use crate::locks::session;
use crate::rotation::{
    assert_old_state, check_value, encrypted_rows, prepared, NEW_SECRET, VALUES,
};
use crate::{cipher, cli, cli_env, SECRET};

/// Environment with setup performed in `dir` and the secret in `dir/encryption.secret`
/// (mode 0600, as a server generates it) rather than in the environment.
fn file_env(db: &TestDb, dir: &Path) -> Vec<(&'static str, String)> {
    let path = dir.join("encryption.secret");
    std::fs::write(&path, SECRET).expect("secret file");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("mode");
    cli_env(db, dir)
        .into_iter()
        .filter(|(name, _)| *name != "DEPLOYSTACK_ENCRYPTION_SECRET")
        .collect()
}

/// `settings rotate-secret` started with `input` on standard input.
fn start(env: &[(&str, String)], log: &Path, input: &str) -> tokio::process::Child {
    let mut child = common::process::command(env, log)
        .args(["settings", "rotate-secret"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn rotate-secret");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_owned();
    tokio::spawn(async move {
        let _ = stdin.write_all(input.as_bytes()).await;
    });
    child
}

/// Runs `settings rotate-secret` with `input`: success, stdout, log and stderr.
async fn rotate_cli(env: &[(&str, String)], dir: &Path, input: &str) -> (bool, String, String) {
    let log = dir.join("rotate.log");
    let out = start(env, &log, input)
        .wait_with_output()
        .await
        .expect("wait");
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        format!("{log}{}", String::from_utf8_lossy(&out.stderr)),
    )
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("file").permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_rotation_replaces_the_secret_file_and_keeps_a_backup() {
    let db = TestDb::new().await;
    let (_database, _) = prepared(&db).await;
    let dir = tempfile::tempdir().expect("dir");
    let env = file_env(&db, dir.path());
    let (rows, check) = (encrypted_rows(&db).await, check_value(&db).await);
    let (secret_file, backup, next) = (
        dir.path().join("encryption.secret"),
        dir.path().join("encryption.secret.bak"),
        dir.path().join("encryption.secret.next"),
    );

    for (input, why) in [
        ("short-secret\n", "shorter than 16"),
        (&format!("{SECRET}\n")[..], "the current one"),
        ("", "no value on standard input"),
    ] {
        let (ok, _, log) = rotate_cli(&env, dir.path(), input).await;
        assert!(!ok && log.contains(why), "{why}: {log}");
    }
    assert_old_state(&db, &rows, &check).await;
    assert!(!backup.exists() && !next.exists());
    // Left by a run that did not commit: not the database's secret, so it is replaced.
    std::fs::write(&next, "stale-secret-of-a-failed-run").expect("stale file");

    let (ok, out, log) = rotate_cli(&env, dir.path(), &format!("{NEW_SECRET}\n")).await;
    assert!(ok, "{log}");
    assert!(
        out.contains(&format!("re-encrypted {} encrypted values", rows.len())),
        "{out}"
    );
    assert!(out.contains("restart"), "{out}");
    for text in [&out, &log] {
        assert!(
            !text.contains(NEW_SECRET) && !text.contains(SECRET),
            "no secret shown: {text}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(&secret_file).expect("secret"),
        NEW_SECRET
    );
    assert_eq!(std::fs::read_to_string(&backup).expect("backup"), SECRET);
    assert_eq!((mode(&secret_file), mode(&backup)), (0o600, 0o600));
    assert!(!next.exists());
    assert!(is_check_of(&cipher(NEW_SECRET), &check_value(&db).await));

    // The other settings commands read the new file.
    let (key, value) = VALUES[0];
    let (ok, out, log) = cli(&env, dir.path(), &["get", key]).await;
    assert!(ok, "{log}");
    assert_eq!(out.trim_end(), value);

    // A run killed between the commit and the rename: the next run names the file to move
    // rather than rotating from a secret the database no longer uses.
    std::fs::copy(&backup, &secret_file).expect("old secret back");
    std::fs::write(&next, NEW_SECRET).expect("new secret in .next");
    let (ok, _, log) = rotate_cli(&env, dir.path(), "yet-another-new-secret-89\n").await;
    assert!(
        !ok && log.contains("encryption.secret.next") && log.contains("Move"),
        "{log}"
    );
    assert!(!log.contains(NEW_SECRET), "{log}");
    assert_eq!(std::fs::read_to_string(&next).expect("kept"), NEW_SECRET);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_rotation_with_the_configured_secret_names_the_variable() {
    let db = TestDb::new().await;
    let (_database, _) = prepared(&db).await;
    let dir = tempfile::tempdir().expect("dir");
    let env = cli_env(&db, dir.path());
    let (ok, out, log) = rotate_cli(&env, dir.path(), &format!("{NEW_SECRET}\n")).await;
    assert!(ok, "{log}");
    assert!(out.contains("DEPLOYSTACK_ENCRYPTION_SECRET"), "{out}");
    assert!(!out.contains(NEW_SECRET) && !log.contains(NEW_SECRET));
    assert!(
        !dir.path().join("encryption.secret").exists(),
        "no file is written"
    );
    assert!(is_check_of(&cipher(NEW_SECRET), &check_value(&db).await));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_rotation_killed_inside_its_transaction_leaves_the_old_state() {
    let db = TestDb::new().await;
    let (_database, _) = prepared(&db).await;
    let dir = tempfile::tempdir().expect("dir");
    let env = file_env(&db, dir.path());
    let (rows, check) = (encrypted_rows(&db).await, check_value(&db).await);

    // The key check is locked: the rotation blocks inside its transaction, lock taken.
    let holder = session(&db).await;
    holder
        .batch_execute("BEGIN; SELECT check_value FROM encryption_key_check FOR UPDATE")
        .await
        .expect("lock the key check");
    let observer = session(&db).await;
    let mut child = start(
        &env,
        &dir.path().join("killed.log"),
        &format!("{NEW_SECRET}\n"),
    );
    common::wait_until(
        "the rotation to wait for the key check",
        Duration::from_secs(60),
        || async {
            let waiting: i64 = observer
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
                    &[],
                )
                .await
                .expect("pg_stat_activity")
                .get(0);
            waiting > 0
        },
    )
    .await;
    child.start_kill().expect("SIGKILL");
    let status = child.wait().await.expect("wait");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    holder.batch_execute("COMMIT").await.expect("release");

    // Its server session ends once it finds the client gone; nothing of it was committed.
    common::wait_until(
        "the killed session to end",
        Duration::from_secs(30),
        || async {
            let others: i64 = observer
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND xact_start IS NOT NULL AND pid <> pg_backend_pid()",
                    &[],
                )
                .await
                .expect("pg_stat_activity")
                .get(0);
            others == 0
        },
    )
    .await;
    assert_old_state(&db, &rows, &check).await;
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        // The empty lock file of the folder stays; it holds no secret.
        .filter(|name| name.contains("secret") && !name.ends_with(".lock"))
        .collect();
    assert_eq!(
        files,
        ["encryption.secret"],
        "no new, backup or temporary secret file"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("encryption.secret")).expect("secret"),
        SECRET
    );

    // Nothing is left locked: the next rotation goes through.
    let (ok, _, log) = rotate_cli(&env, dir.path(), &format!("{NEW_SECRET}\n")).await;
    assert!(ok, "{log}");
    assert!(is_check_of(&cipher(NEW_SECRET), &check_value(&db).await));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_rotation_on_the_same_folder_is_refused_and_touches_no_file() {
    let db = TestDb::new().await;
    let (_database, _) = prepared(&db).await;
    let dir = tempfile::tempdir().expect("dir");
    let env = file_env(&db, dir.path());
    let (rows, check) = (encrypted_rows(&db).await, check_value(&db).await);
    // Another rotation holds the folder (its lock), with its `.next` in flight.
    let lock = std::fs::File::create(dir.path().join("encryption.secret.lock")).expect("lock file");
    let held = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusiveNonblock)
        .map_err(|(_, e)| e)
        .expect("flock");
    let next = dir.path().join("encryption.secret.next");
    std::fs::write(&next, "the-other-rotations-new-secret").expect("next");

    let (ok, _, log) = rotate_cli(&env, dir.path(), &format!("{NEW_SECRET}\n")).await;
    assert!(!ok, "{log}");
    assert!(log.contains("another rotation"), "{log}");
    assert!(next.exists(), "the other rotation's file is left alone");
    assert_eq!(encrypted_rows(&db).await, rows);
    assert_eq!(check_value(&db).await, check);
    drop(held);
}
