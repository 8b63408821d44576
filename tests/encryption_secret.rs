//! The encryption key check against a real PostgreSQL: a wrong secret stops the start with a
//! clear message, a database from before the check gains it, a replica without a secret is
//! refused and keeps no generated file, an interrupted rotation is finished or undone, and a
//! running server learns of a rotation.

mod common;

use std::path::Path;
use std::time::Duration;

use deploystack_backend::app::App;
use deploystack_backend::config::Config;
use secrecy::SecretString;

use common::pg::TestDb;
use common::server::{config, TestServer};

const SECRET_A: &str = "first-secret-aaaaaaaaaaaaaaaa";
const SECRET_B: &str = "second-secret-bbbbbbbbbbbbbbb";

fn with_secret(db: &TestDb, dir: &Path, secret: Option<&str>) -> Config {
    let mut cfg = config(db.connection.clone(), dir);
    cfg.encryption_secret = secret.map(|s| SecretString::from(s.to_owned()));
    cfg
}

/// A set-up database whose settings were encrypted with `secret`.
async fn set_up_with(db: &TestDb, secret: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("dir");
    let server = TestServer::start(&with_secret(db, dir.path(), secret)).await;
    let (code, body) = server.setup().await;
    assert_eq!(code, 200, "{body}");
    server.stop().await;
    dir
}

/// The error of a start that must be refused.
async fn refused_start(cfg: &Config) -> String {
    match App::start_with(cfg, Vec::new(), &Default::default()).await {
        Ok(app) => {
            app.shutdown().await;
            panic!("the start was not refused")
        }
        Err(e) => format!("{e:#}"),
    }
}

async fn checks(db: &TestDb) -> i64 {
    db.query("SELECT count(*) FROM encryption_key_check").await[0].get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_stops_the_start_with_a_clear_message() {
    let db = TestDb::new().await;
    let dir = set_up_with(&db, Some(SECRET_A)).await;
    assert_eq!(checks(&db).await, 1, "setup records the key check");

    let message = refused_start(&with_secret(&db, dir.path(), Some(SECRET_B))).await;
    assert!(
        message.contains("DEPLOYSTACK_ENCRYPTION_SECRET"),
        "{message}"
    );
    assert!(message.contains("rotate-secret"), "{message}");
    assert!(!message.contains(SECRET_A) && !message.contains(SECRET_B));

    // The right secret still starts.
    let server = TestServer::start(&with_secret(&db, dir.path(), Some(SECRET_A))).await;
    assert_eq!(server.get("/api/db/status").await.1["initialized"], true);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_from_before_the_key_check_gains_it_from_the_secret_that_decrypts_it() {
    let db = TestDb::new().await;
    let dir = set_up_with(&db, Some(SECRET_A)).await;
    db.execute("DELETE FROM encryption_key_check").await;

    // Without a check, the stored values decide: another secret cannot decrypt them.
    let message = refused_start(&with_secret(&db, dir.path(), Some(SECRET_B))).await;
    assert!(message.contains("does not decrypt"), "{message}");
    assert_eq!(checks(&db).await, 0, "nothing recorded for a wrong secret");

    let server = TestServer::start(&with_secret(&db, dir.path(), Some(SECRET_A))).await;
    assert_eq!(server.get("/api/db/status").await.1["initialized"], true);
    server.stop().await;
    assert_eq!(checks(&db).await, 1, "the right secret records the check");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_without_a_secret_is_refused_and_keeps_no_generated_file() {
    let db = TestDb::new().await;
    let _first = set_up_with(&db, Some(SECRET_A)).await;

    let fresh = tempfile::tempdir().expect("dir");
    let message = refused_start(&with_secret(&db, fresh.path(), None)).await;
    assert!(
        message.contains("Every replica must use the same secret"),
        "{message}"
    );
    assert!(!fresh.path().join("encryption.secret").exists());
    assert!(!fresh.path().join("db.selection.json").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_setup_without_a_secret_keeps_the_generated_one() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("dir");
    let cfg = with_secret(&db, dir.path(), None);
    let server = TestServer::start(&cfg).await;
    assert!(
        !dir.path().join("encryption.secret").exists(),
        "nothing is written before setup"
    );
    assert_eq!(server.setup().await.0, 200);
    server.stop().await;
    assert!(dir.path().join("encryption.secret").exists());
    assert_eq!(checks(&db).await, 1);
    let server = TestServer::start(&cfg).await;
    assert_eq!(server.get("/api/db/status").await.1["initialized"], true);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_rotation_is_undone_or_finished_at_the_next_start() {
    let db = TestDb::new().await;
    let dir = set_up_with(&db, None).await;
    let file = dir.path().join("encryption.secret");
    let next = dir.path().join("encryption.secret.next");
    let old = std::fs::read_to_string(&file).expect("secret");
    let cfg = with_secret(&db, dir.path(), None);

    // Interrupted before its commit: the database still has the old key.
    std::fs::write(&next, SECRET_B).expect("next");
    let server = TestServer::start(&cfg).await;
    assert_eq!(server.get("/api/db/status").await.1["initialized"], true);
    server.stop().await;
    assert!(!next.exists(), "the uncommitted new secret is dropped");
    assert_eq!(std::fs::read_to_string(&file).expect("secret"), old);

    // Interrupted after its commit: the database has the new key, the file the old one.
    let cipher = deploystack_backend::settings::SettingsCipher::derive(&SecretString::from(
        SECRET_B.to_owned(),
    ))
    .expect("cipher");
    let check = cipher.encrypt(deploystack_backend::settings::key_check::KEY_CHECK_TEXT);
    db.execute(&format!(
        "UPDATE encryption_key_check SET check_value = '{check}'"
    ))
    .await;
    std::fs::write(&next, SECRET_B).expect("next");
    let message = refused_start(&cfg).await;
    assert!(message.contains("Restart the server"), "{message}");
    assert_eq!(std::fs::read_to_string(&file).expect("secret"), SECRET_B);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("encryption.secret.bak")).expect("backup"),
        old
    );
    assert!(!next.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_server_learns_of_a_rotation_and_stops_serving_encrypted_values() {
    let db = TestDb::new().await;
    let dir = set_up_with(&db, Some(SECRET_A)).await;
    let server = TestServer::start(&with_secret(&db, dir.path(), Some(SECRET_A))).await;
    common::wait_until("the settings listener", Duration::from_secs(10), || async {
        server.state.settings.cache_enabled()
    })
    .await;
    assert!(server
        .state
        .settings
        .get_secret("smtp.password")
        .await
        .is_ok());
    // Cached now: only the listener's invalidation can make it change.
    assert_eq!(
        server
            .state
            .settings
            .get_number("smtp.port")
            .await
            .ok()
            .flatten(),
        Some(587.0)
    );
    // A notice alone (anyone connected may send one, a plugin's SQL included) changes nothing:
    // the database does not confirm it. Notices are handled in order, so once the next one
    // (a changed setting) is seen, the forged one was judged.
    db.execute(&format!(
        "SELECT pg_notify('{channel}', '{rotated}'); \
         UPDATE global_settings SET value = '2525' WHERE key = 'smtp.port'; \
         SELECT pg_notify('{channel}', 'smtp.port')",
        channel = deploystack_backend::settings::notify::CHANNEL,
        rotated = deploystack_backend::settings::notify::KEY_ROTATED
    ))
    .await;
    common::wait_until("the later notice", Duration::from_secs(10), || async {
        server
            .state
            .settings
            .get_number("smtp.port")
            .await
            .ok()
            .flatten()
            == Some(2525.0)
    })
    .await;
    assert!(
        !server.state.settings.key_rotated(),
        "a forged notice was believed"
    );
    // (as a rotation leaves it: the key check belongs to another secret, and the notice)
    db.execute(&format!(
        "UPDATE encryption_key_check SET check_value = 'another secret'; SELECT pg_notify('{}', '{}')",
        deploystack_backend::settings::notify::CHANNEL,
        deploystack_backend::settings::notify::KEY_ROTATED
    ))
    .await;
    common::wait_until("the rotation notice", Duration::from_secs(10), || async {
        server.state.settings.key_rotated()
    })
    .await;
    let err = server
        .state
        .settings
        .get_secret("smtp.password")
        .await
        .expect_err("the old key is not used any more");
    assert!(err.to_string().contains("restart"), "{err}");
    let status = server.admin_status().await;
    assert!(
        status["reason"]
            .as_str()
            .is_some_and(|r| r.contains("rotated")),
        "{status}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_settings_command_refuses_a_wrong_secret_too() {
    use common::process::{command, external_env};

    let db = TestDb::new().await;
    let dir = set_up_with(&db, Some(SECRET_A)).await;
    let run = |secret: &'static str, log: &str| {
        let mut env = external_env(&db, dir.path());
        env.push(("DEPLOYSTACK_ENCRYPTION_SECRET", secret.to_owned()));
        let log = dir.path().join(log);
        let mut cmd = command(&env, &log);
        cmd.args(["settings", "get", "smtp.password"]);
        async move {
            let status = cmd.status().await.expect("run");
            (
                status.success(),
                std::fs::read_to_string(&log).unwrap_or_default(),
            )
        }
    };
    let (ok, log) = run(SECRET_B, "wrong.log").await;
    assert!(!ok, "a wrong secret must not read settings");
    assert!(log.contains("DEPLOYSTACK_ENCRYPTION_SECRET"), "{log}");
    assert!(!log.contains(SECRET_A) && !log.contains(SECRET_B), "{log}");
    let (ok, log) = run(SECRET_A, "right.log").await;
    assert!(ok, "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_with_another_secret_joining_through_a_setup_call_is_refused() {
    let db = TestDb::new().await;
    // Started before the database is set up: it waits for setup.
    let second_dir = tempfile::tempdir().expect("dir");
    let second = TestServer::start(&with_secret(&db, second_dir.path(), Some(SECRET_B))).await;
    let _first = set_up_with(&db, Some(SECRET_A)).await;
    // Its setup call finds the database set up by a peer: the key check still runs.
    let (code, body) = second.setup().await;
    assert_ne!(code, 200, "{body}");
    let status = second.get("/api/db/status").await.1;
    assert_eq!(status["initialized"], false, "{status}");
    assert_eq!(status["state"], "refused", "{status}");
    assert!(
        status["reason"]
            .as_str()
            .is_some_and(|r| r.contains("DEPLOYSTACK_ENCRYPTION_SECRET")),
        "{status}"
    );
    assert!(!second_dir.path().join("db.selection.json").exists());
    second.stop().await;
}
