//! Rotation of the encryption secret: every encrypted setting is decrypted with the current
//! key and re-encrypted with the new one in ONE transaction, and the key check moves to the
//! new key in that same transaction. A rotation interrupted at any point (an error, a lost
//! connection, a killed process) therefore leaves the old state or the new one, never a mix.
//!
//! Concurrency: the settings advisory lock ([`INIT_LOCK_KEY`]) keeps a second rotation and
//! the settings initialization out, and an `EXCLUSIVE` lock on `global_settings` keeps every
//! writer out until the commit (plain reads go on), so no value written with the old key
//! can slip in beside the re-encrypted ones. Writers that still hold the old key afterwards
//! are refused by the key check (see `GlobalSettings::set`).

use diesel::prelude::*;
use diesel::sql_types::{Array, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use secrecy::ExposeSecret;
use tokio::time::Instant;

use super::crypto::{CryptoError, SettingsCipher};
use super::init::INIT_LOCK_KEY;
use super::{key_check, notify};
use crate::db::advisory;
use crate::db::schema::global_settings;

/// All new values in one statement (one round trip whatever the number of values).
const WRITE_STATEMENT: &str = "UPDATE global_settings g SET value = u.value \
     FROM unnest($1::text[], $2::text[]) AS u(key, value) WHERE g.key = u.key";

/// What a rotation did, for the operator's report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationReport {
    /// Encrypted values re-encrypted with the new key.
    pub values: usize,
}

/// Why a rotation did not happen. Messages name settings and variables, never a secret or
/// a value.
#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    /// The settings lock stayed taken until the deadline.
    #[error("another rotation or settings initialization is running; retry")]
    Busy,
    /// The key check belongs to another secret than the one given as current.
    #[error(
        "the current encryption secret is not the one this database's encrypted settings were \
         written with: configure that secret as DEPLOYSTACK_ENCRYPTION_SECRET (or in \
         PERSISTENT_DATA_DIR/encryption.secret) and rotate again; nothing was changed"
    )]
    WrongCurrentSecret,
    /// A stored value does not decrypt with the current key.
    #[error(
        "setting {key} cannot be decrypted with the current secret ({source}); nothing was changed"
    )]
    Decrypt {
        /// The setting.
        key: String,
        /// Why.
        source: CryptoError,
    },
    /// A re-encrypted value did not decrypt back to the same text with the new key.
    #[error("setting {key} did not decrypt to its value with the new secret; nothing was changed")]
    Verify {
        /// The setting.
        key: String,
    },
    /// The caller's last step before the commit (storing the new secret) failed.
    #[error("cannot store the new secret before the commit ({0}); nothing was changed")]
    BeforeCommit(std::io::Error),
    /// The database failed (a failed commit included).
    #[error("database error during the rotation: {0}")]
    Db(#[from] diesel::result::Error),
}

/// Re-encrypts every encrypted setting from `old` to `new` and records `new`'s key check, in
/// one transaction. `lock_deadline` bounds the wait for the settings lock (then
/// [`RotationError::Busy`]); `before_commit` runs last, off the async threads, once all the
/// database work is done (the CLI stores the new secret there), and its failure rolls back.
pub async fn rotate(
    conn: &mut AsyncPgConnection,
    old: &SettingsCipher,
    new: &SettingsCipher,
    lock_deadline: Instant,
    before_commit: impl FnOnce() -> std::io::Result<()> + Send + 'static,
) -> Result<RotationReport, RotationError> {
    conn.transaction::<_, RotationError, _>(async move |conn| {
        if !advisory::xact_lock_until(conn, INIT_LOCK_KEY, lock_deadline).await? {
            return Err(RotationError::Busy);
        }
        if let Some(check) = key_check::recorded_check(conn).await? {
            if !key_check::is_check_of(old, &check) {
                return Err(RotationError::WrongCurrentSecret);
            }
        }
        // Stronger than locking the rows: no writer can add a value with the old key either.
        diesel::sql_query("LOCK TABLE global_settings IN EXCLUSIVE MODE")
            .execute(conn)
            .await?;
        let stored: Vec<(String, String)> = global_settings::table
            .filter(global_settings::is_encrypted)
            .select((global_settings::key, global_settings::value))
            .order(global_settings::key)
            .load(conn)
            .await?;
        let (keys, values) = reencrypt(stored, old, new)?;
        diesel::sql_query(WRITE_STATEMENT)
            .bind::<Array<Text>, _>(&keys)
            .bind::<Array<Text>, _>(&values)
            .execute(conn)
            .await?;
        key_check::record(conn, new).await?;
        // Older listeners only know "everything changed"; newer ones also learn why.
        notify::changed(conn, notify::KEY_ROTATED).await?;
        notify::all_changed(conn).await?;
        tokio::task::spawn_blocking(before_commit)
            .await
            .map_err(|e| RotationError::BeforeCommit(std::io::Error::other(e.to_string())))?
            .map_err(RotationError::BeforeCommit)?;
        Ok(RotationReport { values: keys.len() })
    })
    .await
}

/// The keys and their values encrypted with `new`, each checked to decrypt with `new` to
/// the text `old` decrypted, so a faulty key can never replace a value it cannot read back.
fn reencrypt(
    stored: Vec<(String, String)>,
    old: &SettingsCipher,
    new: &SettingsCipher,
) -> Result<(Vec<String>, Vec<String>), RotationError> {
    let mut keys = Vec::with_capacity(stored.len());
    let mut values = Vec::with_capacity(stored.len());
    for (key, value) in stored {
        let plain = match old.decrypt(&value) {
            Ok(plain) => plain,
            Err(source) => return Err(RotationError::Decrypt { key, source }),
        };
        let fresh = new.encrypt(plain.expose_secret());
        let verified = new
            .decrypt(&fresh)
            .is_ok_and(|again| again.expose_secret() == plain.expose_secret());
        if !verified {
            return Err(RotationError::Verify { key });
        }
        keys.push(key);
        values.push(fresh);
    }
    Ok((keys, values))
}
