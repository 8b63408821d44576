//! Typed reads, validated and encrypted writes, decryption failures.

use deploystack_backend::settings::crypto::CryptoError;
use deploystack_backend::settings::{groups, GlobalSettings, SettingsError};
use secrecy::ExposeSecret;

use crate::common::pg::TestDb;
use crate::{cipher, initialized, total_settings};

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
    assert!(raw[0].get::<_, bool>(1) && crate::decrypts(stored) && !stored.contains("s3cr3t"));
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
