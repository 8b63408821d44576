//! Global settings against a real PostgreSQL: initialization, typed access, encryption
//! compatible with upstream (checked with Node's crypto), the cache across processes and the
//! operator CLI.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::pg::{ready_database, TestDb};
use common::process::command;
use deploystack_backend::db::Database;
use deploystack_backend::settings::crypto::{looks_encrypted, CryptoError};
use deploystack_backend::settings::init::initialize;
use deploystack_backend::settings::{groups, GlobalSettings, SettingsCipher, SettingsError};
use secrecy::{ExposeSecret, SecretString};

const SECRET: &str = "test-encryption-secret";

fn cipher(secret: &str) -> Arc<SettingsCipher> {
    Arc::new(SettingsCipher::derive(&SecretString::from(secret.to_owned())).expect("derive"))
}

async fn initialized(db: &TestDb) -> (Database, GlobalSettings) {
    let database = ready_database(db).await;
    let settings = GlobalSettings::new(database.clone(), cipher(SECRET));
    let mut conn = database.conn().await.expect("conn");
    initialize(&mut conn, settings.cipher())
        .await
        .expect("init");
    (database, settings)
}

fn total_settings() -> i64 {
    groups::all_settings().count() as i64
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    db.query(sql).await[0].get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_fills_an_empty_database_then_changes_nothing() {
    let db = TestDb::new().await;
    let database = ready_database(&db).await;
    let c = cipher(SECRET);
    let mut conn = database.conn().await.expect("conn");
    let first = initialize(&mut conn, &c).await.expect("init");
    assert_eq!(first.groups_inserted, groups::ALL.len() as i64);
    assert_eq!(first.settings_inserted, total_settings());
    assert_eq!((first.groups_updated, first.settings_updated), (0, 0));
    assert_eq!(
        first.empty_required,
        ["smtp.host", "smtp.username", "smtp.password"]
    );
    assert!(first.unknown_keys.is_empty());
    assert_eq!(
        count(&db, "SELECT count(*) FROM global_settings").await,
        total_settings()
    );

    // Defaults and flags as declared; secrets encrypted even when empty.
    let rows = db
        .query("SELECT value, is_encrypted, type, group_id, sort_order FROM global_settings WHERE key IN ('smtp.port', 'smtp.password') ORDER BY key")
        .await;
    assert!(looks_encrypted(rows[0].get::<_, &str>(0)) && rows[0].get::<_, bool>(1));
    assert_eq!(rows[1].get::<_, &str>(0), "587");
    assert_eq!(rows[1].get::<_, &str>(2), "number");
    assert_eq!(rows[1].get::<_, &str>(3), "smtp");
    assert_eq!(rows[1].get::<_, i32>(4), 2);

    let second = initialize(&mut conn, &c).await.expect("init again");
    assert_eq!(
        (
            second.groups_inserted,
            second.groups_updated,
            second.settings_inserted,
            second.settings_updated
        ),
        (0, 0, 0, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_never_overwrites_values_and_refreshes_code_owned_metadata() {
    let db = TestDb::new().await;
    let (database, settings) = initialized(&db).await;
    settings
        .set("smtp.host", "mail.example.com")
        .await
        .expect("set");
    settings.set("smtp.password", "hunter2").await.expect("set");
    db.execute(
        "UPDATE global_settings SET name = 'old', description = 'old', sort_order = 99, type = 'string' WHERE key = 'smtp.port'; \
         UPDATE global_setting_groups SET name = 'Old name', sort_order = 42 WHERE id = 'smtp'; \
         INSERT INTO global_settings (key, value, type) VALUES ('legacy.flag', 'x', 'string'); \
         UPDATE global_settings SET value = 'plain-key', is_encrypted = false WHERE key = 'github.oauth.client_secret'",
    )
    .await;
    let mut conn = database.conn().await.expect("conn");
    let report = initialize(&mut conn, settings.cipher())
        .await
        .expect("init");
    assert_eq!((report.groups_updated, report.settings_updated), (1, 1));
    assert_eq!(report.unknown_keys, ["legacy.flag"]);
    assert_eq!(report.encrypted_now, ["github.oauth.client_secret"]);
    assert_eq!(report.empty_required, ["smtp.username"]);

    let row = &db
        .query("SELECT name, type, sort_order FROM global_settings WHERE key = 'smtp.port'")
        .await[0];
    assert_eq!(
        (
            row.get::<_, &str>(0),
            row.get::<_, &str>(1),
            row.get::<_, i32>(2)
        ),
        ("SMTP port", "number", 2)
    );
    assert_eq!(
        count(
            &db,
            "SELECT sort_order::bigint FROM global_setting_groups WHERE id = 'smtp'"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM global_settings WHERE key = 'legacy.flag'"
        )
        .await,
        1
    );
    assert_eq!(
        settings
            .get_string("smtp.host")
            .await
            .expect("get")
            .as_deref(),
        Some("mail.example.com")
    );
    assert_eq!(
        settings
            .get_string("smtp.password")
            .await
            .expect("get")
            .as_deref(),
        Some("hunter2")
    );
    assert_eq!(
        settings
            .get_string("github.oauth.client_secret")
            .await
            .expect("get")
            .as_deref(),
        Some("plain-key")
    );
    let raw = &db
        .query("SELECT value FROM global_settings WHERE key = 'github.oauth.client_secret'")
        .await[0];
    assert!(looks_encrypted(raw.get::<_, &str>(0)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_initializations_agree() {
    let db = TestDb::new().await;
    let database = ready_database(&db).await;
    let c = cipher(SECRET);
    let runs = (0..4).map(|_| {
        let database = database.clone();
        let c = c.clone();
        async move {
            let mut conn = database.conn().await.expect("conn");
            initialize(&mut conn, &c).await.expect("init")
        }
    });
    let reports = futures_util::future::join_all(runs).await;
    assert_eq!(
        reports.iter().map(|r| r.settings_inserted).sum::<i64>(),
        total_settings()
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM global_settings").await,
        total_settings()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_getters_and_validated_writes() {
    let db = TestDb::new().await;
    let (_database, settings) = initialized(&db).await;
    assert_eq!(
        settings
            .get_bool("global.enable_login")
            .await
            .expect("bool"),
        Some(true)
    );
    assert_eq!(
        settings.get_number("smtp.port").await.expect("number"),
        Some(587.0)
    );
    assert_eq!(
        settings
            .get_string("smtp.from_name")
            .await
            .expect("string")
            .as_deref(),
        Some("DeployStack")
    );
    assert_eq!(
        settings.get_string("no.such.key").await.expect("missing"),
        None
    );

    for (spelling, expected) in [
        ("yes", true),
        ("off", false),
        ("Enabled", true),
        ("0", false),
        ("ON", true),
    ] {
        settings
            .set("global.enable_login", spelling)
            .await
            .expect("set bool");
        assert_eq!(
            settings
                .get_bool("global.enable_login")
                .await
                .expect("bool"),
            Some(expected),
            "{spelling}"
        );
    }
    // Stored values written by upstream with other spellings are read too.
    db.execute("UPDATE global_settings SET value = 'disabled' WHERE key = 'global.show_version'")
        .await;
    assert_eq!(
        settings
            .get_bool("global.show_version")
            .await
            .expect("bool"),
        Some(false)
    );

    let err = settings
        .set("smtp.port", "five")
        .await
        .expect_err("not a number");
    assert!(
        matches!(&err, SettingsError::InvalidValue { key, .. } if key == "smtp.port"),
        "{err:?}"
    );
    assert_eq!(
        settings.get_number("smtp.port").await.expect("unchanged"),
        Some(587.0)
    );
    assert!(matches!(
        settings.set("global.enable_login", "perhaps").await,
        Err(SettingsError::InvalidValue { .. })
    ));
    assert!(matches!(
        settings.set("unknown.key", "x").await,
        Err(SettingsError::NotFound(_))
    ));
    assert!(matches!(
        settings.set("bad key", "x").await,
        Err(SettingsError::InvalidKey(_))
    ));
    db.execute("UPDATE global_settings SET value = 'abc' WHERE key = 'smtp.port'")
        .await;
    assert!(matches!(
        settings.get_number("smtp.port").await,
        Err(SettingsError::WrongType { .. })
    ));

    // A secret is encrypted although the caller passed no flag.
    settings
        .set("smtp.password", "s3cr3t-value")
        .await
        .expect("set secret");
    let raw = db
        .query("SELECT value, is_encrypted FROM global_settings WHERE key = 'smtp.password'")
        .await;
    let stored: &str = raw[0].get(0);
    assert!(raw[0].get::<_, bool>(1) && looks_encrypted(stored) && !stored.contains("s3cr3t"));
    assert_eq!(
        settings
            .get_secret("smtp.password")
            .await
            .expect("secret")
            .map(|s| s.expose_secret().to_owned()),
        Some("s3cr3t-value".to_owned())
    );

    // Deleting reports whether a row went; a declared setting can be set again.
    assert!(settings.delete("smtp.from_email").await.expect("delete"));
    assert!(!settings
        .delete("smtp.from_email")
        .await
        .expect("delete again"));
    settings
        .set("smtp.from_email", "ops@example.com")
        .await
        .expect("recreate");
    assert_eq!(
        settings
            .get_string("smtp.from_email")
            .await
            .expect("get")
            .as_deref(),
        Some("ops@example.com")
    );

    // Listing: groups in order, settings by sort order within each.
    let smtp: Vec<_> = settings
        .list(Some("smtp"))
        .await
        .expect("list")
        .into_iter()
        .map(|s| s.key)
        .collect();
    let declared: Vec<_> = groups::find("smtp.host")
        .expect("group")
        .0
        .settings
        .iter()
        .map(|s| s.key.to_owned())
        .collect();
    assert_eq!(smtp, declared);
    let all = settings.list(None).await.expect("list all");
    assert_eq!(all.first().map(|s| s.key.as_str()), Some("global.page_url"));
    assert_eq!(all.len() as i64, total_settings());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_secret_or_tampering_is_an_error_naming_the_key() {
    let db = TestDb::new().await;
    let (database, settings) = initialized(&db).await;
    settings.set("smtp.password", "hunter2").await.expect("set");
    let other = GlobalSettings::new(database, cipher("another-secret"));
    let err = other
        .get_secret("smtp.password")
        .await
        .expect_err("wrong secret");
    assert!(
        matches!(&err, SettingsError::Decrypt { key, source: CryptoError::Authentication } if key == "smtp.password"),
        "{err:?}"
    );
    assert!(!err.to_string().contains("hunter2"));

    // Flip one hex digit of the ciphertext.
    db.execute(
        "UPDATE global_settings SET value = overlay(value placing (CASE WHEN substr(value, 70, 1) = '0' THEN '1' ELSE '0' END) from 70 for 1) WHERE key = 'smtp.password'",
    )
    .await;
    assert!(matches!(
        settings.get_secret("smtp.password").await,
        Err(SettingsError::Decrypt { .. })
    ));
    db.execute("UPDATE global_settings SET value = 'garbage' WHERE key = 'smtp.password'")
        .await;
    assert!(matches!(
        settings.get_secret("smtp.password").await,
        Err(SettingsError::Decrypt {
            source: CryptoError::Format,
            ..
        })
    ));
}

fn node(args: &[&str]) -> String {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/upstream_crypto.js"
    );
    let out = std::process::Command::new("node")
        .arg(script)
        .args(args)
        .output()
        .expect("Node.js is needed for the upstream compatibility test (apt-get install nodejs)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim_end_matches('\n')
        .to_owned()
}

#[test]
fn encryption_matches_upstream_both_ways() {
    let secret = "upstream-secret-for-tests";
    let c = cipher(secret);
    // A vector produced by Node's crypto with upstream's parameters.
    let vector = "d50a21d2a461f5f72d9b08d635e7718a:c95f192f92d21aa34ab7a9a60b9571c1:e2549567439ae0e296cb06e8b7763d8bc70cdbb2034c8a57c11d";
    assert_eq!(
        c.decrypt(vector).expect("decrypt").expose_secret(),
        "p@ssw0rd – ünïcode ✓"
    );
    let empty = "812ad88f721652c2f0c837d49b559eb6:6bcfd3a87feeb1d424d186f204ad0b8e:";
    assert_eq!(c.decrypt(empty).expect("decrypt").expose_secret(), "");

    // Live, both directions.
    for text in ["hunter2", "", "multi\nline ✓"] {
        let from_node = node(&["encrypt", secret, text]);
        assert_eq!(
            c.decrypt(&from_node).expect("decrypt node").expose_secret(),
            text
        );
        let ours = c.encrypt(text);
        assert!(ours
            .chars()
            .all(|ch| ch == ':' || ch.is_ascii_hexdigit() && !ch.is_ascii_uppercase()));
        assert_eq!(node(&["decrypt", secret, &ours]), text);
    }
    // Fresh IV each time.
    assert_ne!(c.encrypt("same"), c.encrypt("same"));
    assert!(matches!(
        cipher("other").decrypt(vector),
        Err(CryptoError::Authentication)
    ));
    assert!(format!("{c:?}").len() < 20, "Debug shows no key material");
}

/// Environment for the binary against `db` with setup already performed in `dir`.
fn cli_env(db: &TestDb, dir: &std::path::Path) -> Vec<(&'static str, String)> {
    let c = &db.connection;
    std::fs::write(
        dir.join("db.selection.json"),
        r#"{"type":"postgresql","selectedAt":"2026-01-01T00:00:00.000Z","version":"1.0"}"#,
    )
    .expect("selection file");
    vec![
        ("POSTGRES_HOST", c.host.clone()),
        ("POSTGRES_PORT", c.port.to_string()),
        ("POSTGRES_DATABASE", c.database.clone()),
        ("POSTGRES_USER", c.user.clone()),
        (
            "POSTGRES_PASSWORD",
            c.password
                .as_ref()
                .map(|p| p.expose_secret().to_owned())
                .unwrap_or_default(),
        ),
        ("PERSISTENT_DATA_DIR", dir.display().to_string()),
        ("DEPLOYSTACK_ENCRYPTION_SECRET", SECRET.to_owned()),
    ]
}

async fn cli(
    env: &[(&str, String)],
    dir: &std::path::Path,
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_is_invalidated_by_writes_of_another_process() {
    let db = TestDb::new().await;
    let (_database, settings) = initialized(&db).await;
    let _listener = settings.listen(
        deploystack_backend::db::PgConnector::new(&db.connection, &Default::default())
            .expect("connector"),
    );
    common::wait_until("the cache to listen", Duration::from_secs(10), || async {
        settings.cache_enabled()
    })
    .await;
    assert_eq!(
        settings
            .get_string("smtp.host")
            .await
            .expect("get")
            .as_deref(),
        Some("")
    );
    // A change behind the cache's back (no NOTIFY) is not seen: the read is served from memory.
    db.execute("UPDATE global_settings SET value = 'sneaky' WHERE key = 'smtp.host'")
        .await;
    assert_eq!(
        settings
            .get_string("smtp.host")
            .await
            .expect("get")
            .as_deref(),
        Some("")
    );

    // The operator CLI, another process, notifies: the cached value is dropped.
    let dir = tempfile::tempdir().expect("dir");
    let env = cli_env(&db, dir.path());
    let (ok, _, log) = cli(&env, dir.path(), &["set", "smtp.host", "smtp.example.org"]).await;
    assert!(ok, "{log}");
    common::wait_until(
        "the other process's write",
        Duration::from_secs(10),
        || async {
            settings
                .get_string("smtp.host")
                .await
                .expect("get")
                .as_deref()
                == Some("smtp.example.org")
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_cli_lists_gets_and_sets_with_validation() {
    let db = TestDb::new().await;
    let (_database, settings) = initialized(&db).await;
    let dir = tempfile::tempdir().expect("dir");
    let env = cli_env(&db, dir.path());

    let (ok, out, log) = cli(&env, dir.path(), &["set", "smtp.password", "from-cli"]).await;
    assert!(ok, "{log}");
    assert!(out.contains("smtp.password updated"));
    assert!(!log.contains("from-cli"));
    let (ok, out, _) = cli(&env, dir.path(), &["get", "smtp.password"]).await;
    assert!(ok);
    assert_eq!(out.trim_end(), "from-cli");
    assert_eq!(
        settings
            .get_string("smtp.password")
            .await
            .expect("get")
            .as_deref(),
        Some("from-cli")
    );

    let (ok, out, _) = cli(&env, dir.path(), &["list", "--group", "smtp"]).await;
    assert!(ok);
    assert!(
        out.lines().count() == 8 && out.contains("smtp.port") && out.contains("<encrypted>"),
        "{out}"
    );
    assert!(!out.contains("from-cli"));

    let (ok, _, log) = cli(&env, dir.path(), &["set", "smtp.port", "lots"]).await;
    assert!(!ok, "a bad value must fail");
    assert!(log.contains("smtp.port"), "log: {log:?}");
    assert_eq!(
        settings.get_number("smtp.port").await.expect("unchanged"),
        Some(587.0)
    );
    let (ok, _, log) = cli(&env, dir.path(), &["get", "nope"]).await;
    assert!(!ok && log.contains("nope"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_secret_is_private_and_reused() {
    let dir = tempfile::tempdir().expect("dir");
    let first = deploystack_backend::settings::secret::resolve(None, dir.path()).expect("generate");
    let path = dir.path().join("encryption.secret");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).expect("file").permissions().mode() & 0o777,
        0o600
    );
    let second = deploystack_backend::settings::secret::resolve(None, dir.path()).expect("reuse");
    assert_eq!(first.expose_secret(), second.expose_secret());
    assert!(first.expose_secret().len() >= 32);
    let configured = SecretString::from("from-env".to_owned());
    let chosen =
        deploystack_backend::settings::secret::resolve(Some(&configured), dir.path()).expect("env");
    assert_eq!(chosen.expose_secret(), "from-env");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_initialize_one_database_at_once() {
    let db = TestDb::new().await;
    let dir_a = tempfile::tempdir().expect("dir");
    let dir_b = tempfile::tempdir().expect("dir");
    let (env_a, env_b) = (cli_env(&db, dir_a.path()), cli_env(&db, dir_b.path()));
    // Both find a selection file and bootstrap the same empty database concurrently.
    let (log_a, log_b) = (dir_a.path().join("a.log"), dir_b.path().join("b.log"));
    let (a, b) = tokio::join!(
        common::process::BackendProcess::start(&env_a, &log_a),
        common::process::BackendProcess::start(&env_b, &log_b),
    );
    for process in [&a, &b] {
        let url = format!("{}/api/health/ready", process.url);
        common::wait_until("ready", Duration::from_secs(30), || async {
            reqwest::get(&url)
                .await
                .map(|r| r.status().as_u16() == 200)
                .unwrap_or(false)
        })
        .await;
    }
    assert_eq!(
        count(&db, "SELECT count(*) FROM global_settings").await,
        total_settings()
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM global_setting_groups").await,
        groups::ALL.len() as i64
    );
    let (log_a, log_b) = (a.log_text(), b.log_text());
    assert!(a.terminate().await.success() && b.terminate().await.success());
    for log in [log_a, log_b] {
        assert!(
            !log.contains("initializer failed") && !log.contains("ERROR"),
            "{log}"
        );
        assert!(log.contains("global settings initialized"), "{log}");
    }
}
