//! Global settings against a real PostgreSQL: initialization, typed access, encryption
//! compatible with upstream (checked with Node's crypto), the cache across processes, writes
//! racing other sessions, the operator CLI and the rotation of the encryption secret.

#[path = "../common/mod.rs"]
mod common;

mod access;
mod crypto;
mod init;
mod key_check;
#[path = "../services/locks.rs"]
mod locks;
mod processes;
mod races;
mod rotation;
mod rotation_cli;

use std::path::Path;
use std::sync::Arc;

use common::pg::{ready_database, TestDb};
use common::process::command;
use deploystack_backend::db::Database;
use deploystack_backend::settings::init::initialize;
use deploystack_backend::settings::{groups, GlobalSettings, SettingsCipher};
use secrecy::SecretString;

pub(crate) const SECRET: &str = "test-encryption-secret";

/// Whether `stored` is a value encrypted with the tests' secret.
pub(crate) fn decrypts(stored: &str) -> bool {
    cipher(SECRET).decrypt(stored).is_ok()
}

pub(crate) fn cipher(secret: &str) -> Arc<SettingsCipher> {
    Arc::new(SettingsCipher::derive(&SecretString::from(secret.to_owned())).expect("derive"))
}

pub(crate) async fn initialized(db: &TestDb) -> (Database, GlobalSettings) {
    let database = ready_database(db).await;
    let settings = GlobalSettings::new(database.clone(), cipher(SECRET));
    let mut conn = database.conn().await.expect("conn");
    initialize(&mut conn, settings.cipher())
        .await
        .expect("init");
    (database, settings)
}

pub(crate) fn total_settings() -> i64 {
    groups::all_settings().count() as i64
}

pub(crate) async fn count(db: &TestDb, sql: &str) -> i64 {
    db.query(sql).await[0].get(0)
}

/// Environment for the binary against `db` with setup already performed in `dir`.
pub(crate) fn cli_env(db: &TestDb, dir: &Path) -> Vec<(&'static str, String)> {
    std::fs::write(
        dir.join("db.selection.json"),
        r#"{"type":"postgresql","selectedAt":"2026-01-01T00:00:00.000Z","version":"1.0"}"#,
    )
    .expect("selection file");
    let mut env = common::process::external_env(db, dir);
    env.push(("DEPLOYSTACK_ENCRYPTION_SECRET", SECRET.to_owned()));
    env
}

pub(crate) async fn cli(
    env: &[(&str, String)],
    dir: &Path,
    args: &[&str],
) -> (bool, String, String) {
    let log = dir.join("cli.log");
    let out = command(env, &log)
        .arg("settings")
        .args(args)
        .stdout(std::process::Stdio::piped())
        .output()
        .await
        .expect("run settings");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        format!(
            "{}{}",
            std::fs::read_to_string(&log).unwrap_or_default(),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}
