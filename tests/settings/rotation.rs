//! Rotation of the encryption secret in-process: every value moves to the new key with the
//! key check, checked with Node's crypto too; a failure at the last moment or a rotation
//! already running changes nothing; running servers learn of it.

use std::time::Duration;

use deploystack_backend::db::Database;
use deploystack_backend::settings::crypto::CryptoError;
use deploystack_backend::settings::init::{initialize, INIT_LOCK_KEY};
use deploystack_backend::settings::key_check::{self, is_check_of};
use deploystack_backend::settings::rotation::{rotate, RotationError, RotationReport};
use deploystack_backend::settings::{GlobalSettings, SettingsCipher, SettingsError};
use secrecy::ExposeSecret;
use tokio::time::Instant;

use crate::common::pg::TestDb;
use crate::locks::session;
use crate::{cipher, initialized, SECRET};

/// The secret rotations move to.
pub(crate) const NEW_SECRET: &str = "the-new-encryption-secret-0123";

/// Encrypted settings and their plaintexts (an empty one and a non-ASCII one included).
pub(crate) const VALUES: [(&str, &str); 5] = [
    ("smtp.password", "smtp pässword ✓"),
    ("github.oauth.client_secret", "oauth-client-secret"),
    (
        "github.app.private_key_base64",
        "LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0t",
    ),
    ("deployment.github_app.webhook_secret", "webhook-secret"),
    ("deployment.github_app.private_key_base64", ""),
];

/// Custom encrypted settings added beside the declared ones.
const CUSTOM: usize = 20;

/// A database as a server leaves it: settings initialized, encrypted values set with
/// [`SECRET`], and its key check recorded.
pub(crate) async fn prepared(db: &TestDb) -> (Database, GlobalSettings) {
    let (database, settings) = initialized(db).await;
    for (key, value) in VALUES {
        settings.set(key, value).await.expect("set");
    }
    let custom: Vec<String> = (0..CUSTOM)
        .map(|i| format!("('custom.secret.{i}', '', true)"))
        .collect();
    db.execute(&format!(
        "INSERT INTO global_settings (key, value, is_encrypted) VALUES {}",
        custom.join(", ")
    ))
    .await;
    for i in 0..CUSTOM {
        let key = format!("custom.secret.{i}");
        settings
            .set(&key, &format!("custom-{i}"))
            .await
            .expect("set");
    }
    let mut conn = database.conn().await.expect("conn");
    key_check::record(&mut conn, settings.cipher())
        .await
        .expect("record the key check");
    (database, settings)
}

/// Every encrypted `(key, stored value)`, by key.
pub(crate) async fn encrypted_rows(db: &TestDb) -> Vec<(String, String)> {
    db.query("SELECT key, value FROM global_settings WHERE is_encrypted ORDER BY key")
        .await
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

/// The recorded key check.
pub(crate) async fn check_value(db: &TestDb) -> String {
    db.query("SELECT check_value FROM encryption_key_check")
        .await[0]
        .get(0)
}

/// The plaintext `key` should have.
fn plaintext(key: &str) -> String {
    VALUES
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| (*v).to_owned())
        .or_else(|| {
            key.strip_prefix("custom.secret.")
                .map(|i| format!("custom-{i}"))
        })
        .expect("a known key")
}

/// The database as [`prepared`] left it: every value and the check belong to [`SECRET`].
pub(crate) async fn assert_old_state(db: &TestDb, rows: &[(String, String)], check: &str) {
    assert_eq!(encrypted_rows(db).await, rows, "values are byte-identical");
    assert_eq!(check_value(db).await, check);
    let old = cipher(SECRET);
    assert!(is_check_of(&old, check));
    for (key, value) in rows {
        let text = old.decrypt(value).expect("the old key decrypts");
        assert_eq!(text.expose_secret(), plaintext(key));
    }
}

fn deadline(after: Duration) -> Instant {
    Instant::now() + after
}

async fn rotated(
    database: &Database,
    old: &SettingsCipher,
    new: &SettingsCipher,
) -> RotationReport {
    let mut conn = database.conn().await.expect("conn");
    rotate(
        &mut conn,
        old,
        new,
        deadline(Duration::from_secs(10)),
        || Ok(()),
    )
    .await
    .expect("rotate")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_reencrypts_every_value_and_moves_the_key_check() {
    let db = TestDb::new().await;
    let (database, old_settings) = prepared(&db).await;
    let before = encrypted_rows(&db).await;
    assert_eq!(before.len(), VALUES.len() + CUSTOM);
    let (old, new) = (cipher(SECRET), cipher(NEW_SECRET));

    let report = rotated(&database, &old, &new).await;
    assert_eq!(report.values, before.len());

    let after = encrypted_rows(&db).await;
    assert_eq!(after.len(), before.len());
    for ((key, was), (same_key, now)) in before.iter().zip(&after) {
        assert_eq!(key, same_key);
        assert_ne!(was, now, "{key} is re-encrypted");
        assert!(matches!(old.decrypt(now), Err(CryptoError::Authentication)));
        assert_eq!(
            new.decrypt(now).expect("new key").expose_secret(),
            plaintext(key)
        );
    }
    let check = check_value(&db).await;
    assert!(is_check_of(&new, &check) && !is_check_of(&old, &check));

    // A service over the new key reads the same plaintexts.
    let new_settings = GlobalSettings::new(database.clone(), new.clone());
    for (key, _) in &after {
        assert_eq!(
            new_settings.get_string(key).await.expect("read").as_deref(),
            Some(plaintext(key).as_str())
        );
    }
    // A process still on the old key says it must be restarted, and writes no secret.
    let err = old_settings
        .get_secret("smtp.password")
        .await
        .expect_err("old key");
    assert!(
        matches!(&err, SettingsError::SecretRotated { key } if key == "smtp.password"),
        "{err:?}"
    );
    assert!(err.to_string().contains("restart"), "{err}");
    let err = old_settings
        .set("smtp.password", "written-with-the-old-key")
        .await;
    assert!(
        matches!(err, Err(SettingsError::SecretRotated { .. })),
        "{err:?}"
    );
    assert_eq!(
        new_settings
            .get_string("smtp.password")
            .await
            .expect("read")
            .as_deref(),
        Some(plaintext("smtp.password").as_str())
    );
    old_settings
        .set("smtp.host", "mail.example.org")
        .await
        .expect("plain values still");
    let mut conn = database.conn().await.expect("conn");
    assert!(
        initialize(&mut conn, &old).await.is_err(),
        "no defaults with the old key"
    );
    initialize(&mut conn, &new)
        .await
        .expect("init with the new key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_values_decrypt_with_upstreams_algorithm() {
    let db = TestDb::new().await;
    let (database, _) = prepared(&db).await;
    rotated(&database, &cipher(SECRET), &cipher(NEW_SECRET)).await;
    for (key, value) in encrypted_rows(&db).await {
        assert_eq!(
            crate::crypto::node(&["decrypt", NEW_SECRET, &value]),
            plaintext(&key),
            "{key}"
        );
    }
    assert_eq!(
        crate::crypto::node(&["decrypt", NEW_SECRET, &check_value(&db).await]),
        key_check::KEY_CHECK_TEXT
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_at_the_last_moment_or_a_bad_value_changes_nothing() {
    let db = TestDb::new().await;
    let (database, _) = prepared(&db).await;
    let (rows, check) = (encrypted_rows(&db).await, check_value(&db).await);
    let (old, new) = (cipher(SECRET), cipher(NEW_SECRET));
    let mut conn = database.conn().await.expect("conn");

    // Everything is written when `before_commit` fails (an interruption just before COMMIT).
    let result = rotate(
        &mut conn,
        &old,
        &new,
        deadline(Duration::from_secs(10)),
        || Err(std::io::Error::other("disk full")),
    )
    .await;
    assert!(
        matches!(result, Err(RotationError::BeforeCommit(_))),
        "{result:?}"
    );
    assert_old_state(&db, &rows, &check).await;

    // The wrong current secret: refused by the key check, the variable named.
    let wrong = cipher("not-the-current-secret");
    let err = rotate(
        &mut conn,
        &wrong,
        &new,
        deadline(Duration::from_secs(10)),
        || Ok(()),
    )
    .await
    .expect_err("wrong current secret");
    assert!(matches!(err, RotationError::WrongCurrentSecret), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("DEPLOYSTACK_ENCRYPTION_SECRET"),
        "{message}"
    );
    assert!(!message.contains("not-the-current-secret") && !message.contains(SECRET));

    // A value the current key cannot read stops the rotation, naming the key.
    db.execute("UPDATE global_settings SET value = 'garbage' WHERE key = 'custom.secret.7'")
        .await;
    let rows = encrypted_rows(&db).await;
    let err = rotate(
        &mut conn,
        &old,
        &new,
        deadline(Duration::from_secs(10)),
        || Ok(()),
    )
    .await
    .expect_err("undecryptable value");
    assert!(
        matches!(&err, RotationError::Decrypt { key, .. } if key == "custom.secret.7"),
        "{err:?}"
    );
    assert_eq!(encrypted_rows(&db).await, rows);
    assert_eq!(check_value(&db).await, check);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_rotation_waits_then_fails_clearly() {
    let db = TestDb::new().await;
    let (database, _) = prepared(&db).await;
    let (rows, check) = (encrypted_rows(&db).await, check_value(&db).await);
    let (old, new) = (cipher(SECRET), cipher(NEW_SECRET));

    // The settings lock is held (a rotation or an initialization in progress): busy.
    let holder = session(&db).await;
    holder
        .batch_execute(&format!(
            "BEGIN; SELECT pg_advisory_xact_lock({INIT_LOCK_KEY})"
        ))
        .await
        .expect("hold the settings lock");
    let mut conn = database.conn().await.expect("conn");
    let started = std::time::Instant::now();
    let err = rotate(
        &mut conn,
        &old,
        &new,
        deadline(Duration::from_millis(300)),
        || Ok(()),
    )
    .await
    .expect_err("busy");
    assert!(matches!(err, RotationError::Busy), "{err:?}");
    assert!(err.to_string().contains("retry"));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "bounded by the deadline"
    );
    assert_old_state(&db, &rows, &check).await;
    holder.batch_execute("COMMIT").await.expect("release");

    // Two at once from the same state: one wins, the other waits for it and is then refused
    // (its "current" secret is no longer the database's), never a mix of keys.
    let other = cipher("another-new-secret-4567");
    let (a, b) = {
        let (d1, d2) = (database.clone(), database.clone());
        let (o1, o2, n1, n2) = (old.clone(), old.clone(), new.clone(), other.clone());
        tokio::join!(
            tokio::spawn(async move {
                let mut conn = d1.conn().await.expect("conn");
                rotate(
                    &mut conn,
                    &o1,
                    &n1,
                    deadline(Duration::from_secs(10)),
                    || Ok(()),
                )
                .await
            }),
            tokio::spawn(async move {
                let mut conn = d2.conn().await.expect("conn");
                rotate(
                    &mut conn,
                    &o2,
                    &n2,
                    deadline(Duration::from_secs(10)),
                    || Ok(()),
                )
                .await
            }),
        )
    };
    let (a, b) = (a.expect("task"), b.expect("task"));
    let winner = match (&a, &b) {
        (Ok(_), Err(RotationError::WrongCurrentSecret)) => new,
        (Err(RotationError::WrongCurrentSecret), Ok(_)) => other,
        _ => panic!("one rotation must win: {a:?} / {b:?}"),
    };
    assert!(is_check_of(&winner, &check_value(&db).await));
    for (key, value) in encrypted_rows(&db).await {
        assert_eq!(
            winner.decrypt(&value).expect("one key").expose_secret(),
            plaintext(&key)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listening_server_learns_of_the_rotation() {
    let db = TestDb::new().await;
    let (database, settings) = prepared(&db).await;
    let _listener = settings.listen(
        deploystack_backend::db::PgConnector::new(&db.connection, &Default::default())
            .expect("connector"),
    );
    crate::common::wait_until("the cache to listen", Duration::from_secs(10), || async {
        settings.cache_enabled()
    })
    .await;
    // Cached now: without the notification the old ciphertext would keep being served.
    settings.get_secret("smtp.password").await.expect("read");
    rotated(&database, &cipher(SECRET), &cipher(NEW_SECRET)).await;
    crate::common::wait_until(
        "the rotation to be noticed",
        Duration::from_secs(10),
        || async {
            matches!(
                settings.get_secret("smtp.password").await,
                Err(SettingsError::SecretRotated { .. })
            )
        },
    )
    .await;
}
