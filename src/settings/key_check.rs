//! Proof of which encryption secret a database's encrypted values belong to.
//!
//! Upstream's known risk: a server started with another `DEPLOYSTACK_ENCRYPTION_SECRET`
//! serves silently and fails only when it reads an encrypted setting. Here the database holds
//! a fixed text encrypted with the key (`encryption_key_check`, upstream's format: AES-GCM
//! authenticates, so only the same key decrypts it, and a known plaintext under a random IV
//! reveals nothing about the key). Every start compares before anything is encrypted or
//! decrypted, and a wrong secret stops the start with [`KeyMismatch`]'s message.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::crypto::SettingsCipher;
use super::secret::{self, SecretSource};
use crate::db::schema::{encryption_key_check, global_settings};
use crate::lifecycle::Refusal;

/// The text whose encryption is the key check.
pub const KEY_CHECK_TEXT: &str = "deploystack-encryption-key-check-v1";

/// What the comparison found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyCheckOutcome {
    /// The recorded check decrypts with this key.
    Matches,
    /// There was no check yet (a new database, or one set up before checks existed whose
    /// values all decrypt with this key): it is recorded now.
    Recorded,
}

/// The configured secret is not the one this database's values were encrypted with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "The encryption secret differs from the one this database's encrypted settings were written with{detail}. \
     Encrypted settings are not served with the wrong key. Either set DEPLOYSTACK_ENCRYPTION_SECRET \
     (or PERSISTENT_DATA_DIR/encryption.secret) back to the previous secret, or, if the values \
     must move to a new secret, run `deploystack-backend settings rotate-secret` with the previous \
     secret configured. Every replica must use the same secret."
)]
pub struct KeyMismatch {
    /// What was compared (never a secret), for the message.
    pub detail: String,
}

/// Whether `cipher` decrypts the recorded key check.
pub fn is_check_of(cipher: &SettingsCipher, check_value: &str) -> bool {
    use secrecy::ExposeSecret;
    cipher
        .decrypt(check_value)
        .is_ok_and(|text| text.expose_secret() == KEY_CHECK_TEXT)
}

/// The recorded check, if any, locked until the end of the caller's transaction.
pub async fn recorded_check(conn: &mut AsyncPgConnection) -> QueryResult<Option<String>> {
    encryption_key_check::table
        .select(encryption_key_check::check_value)
        .for_update()
        .first(conn)
        .await
        .optional()
}

/// Compares `cipher` with the database's key check, recording one when there is none and
/// every stored encrypted value decrypts with `cipher`. Must run in a transaction.
pub async fn verify_or_record(
    conn: &mut AsyncPgConnection,
    cipher: &SettingsCipher,
) -> anyhow::Result<Result<KeyCheckOutcome, KeyMismatch>> {
    if let Some(check) = recorded_check(conn).await? {
        return Ok(if is_check_of(cipher, &check) {
            Ok(KeyCheckOutcome::Matches)
        } else {
            Err(KeyMismatch {
                detail: String::new(),
            })
        });
    }
    // No check yet: the values decide (a database set up before checks existed).
    let encrypted: Vec<(String, String)> = global_settings::table
        .filter(global_settings::is_encrypted)
        .select((global_settings::key, global_settings::value))
        .for_update()
        .load(conn)
        .await?;
    if let Some((key, _)) = encrypted
        .iter()
        .find(|(_, value)| cipher.decrypt(value).is_err())
    {
        return Ok(Err(KeyMismatch {
            detail: format!(" (the stored value of {key} does not decrypt)"),
        }));
    }
    record(conn, cipher).await?;
    Ok(Ok(KeyCheckOutcome::Recorded))
}

/// Writes (or replaces) the key check for `cipher`.
pub async fn record(conn: &mut AsyncPgConnection, cipher: &SettingsCipher) -> QueryResult<()> {
    let check = cipher.encrypt(KEY_CHECK_TEXT);
    diesel::insert_into(encryption_key_check::table)
        .values((
            encryption_key_check::id.eq(1i16),
            encryption_key_check::check_value.eq(&check),
        ))
        .on_conflict(encryption_key_check::id)
        .do_update()
        .set(encryption_key_check::check_value.eq(&check))
        .execute(conn)
        .await
        .map(|_| ())
}

/// The initializer's verdict on a comparison.
fn settle(outcome: Result<KeyCheckOutcome, KeyMismatch>) -> anyhow::Result<()> {
    match outcome {
        Ok(KeyCheckOutcome::Matches) => Ok(()),
        Ok(KeyCheckOutcome::Recorded) => {
            tracing::info!("recorded the encryption key check");
            Ok(())
        }
        Err(mismatch) => Err(Refusal(mismatch.to_string()).into()),
    }
}

/// The key check as the first initializer: it must pass before settings are initialized
/// (which encrypts defaults) or served. A generated secret is written to its file in the
/// transaction that records its check, so a rolled-back check leaves no file behind.
pub struct KeyCheckInitializer {
    cipher: std::sync::Arc<SettingsCipher>,
    secret: std::sync::Arc<super::secret::ResolvedSecret>,
}

impl KeyCheckInitializer {
    /// Checks `cipher`, derived from `secret`.
    pub fn new(
        cipher: std::sync::Arc<SettingsCipher>,
        secret: std::sync::Arc<super::secret::ResolvedSecret>,
    ) -> Self {
        Self { cipher, secret }
    }
}

impl KeyCheckInitializer {
    /// This process generated a secret, but a sibling sharing its folder generated one too
    /// and recorded it first (in the file and the database): use that one, as the file is
    /// what every later start reads.
    async fn adopt_sibling_secret(
        &self,
        file: &std::path::Path,
        conn: &mut AsyncPgConnection,
        outcome: Result<KeyCheckOutcome, KeyMismatch>,
    ) -> anyhow::Result<()> {
        let Some(sibling) = secret::read_secret_file(file)? else {
            return settle(outcome);
        };
        let Some(check) = recorded_check(conn).await? else {
            return settle(outcome);
        };
        let cipher =
            tokio::task::spawn_blocking(move || SettingsCipher::derive(&sibling)).await??;
        if !is_check_of(&cipher, &check) {
            return settle(outcome);
        }
        self.cipher.adopt(&cipher);
        tracing::info!(file = %file.display(), "using the encryption secret another process sharing this folder generated");
        Ok(())
    }
}

impl crate::lifecycle::Initializer for KeyCheckInitializer {
    fn name(&self) -> &'static str {
        "encryption key check"
    }

    fn must_pass(&self) -> bool {
        true
    }

    fn run<'a>(
        &'a self,
        pool: &'a crate::db::LivePool,
    ) -> futures_util::future::BoxFuture<'a, anyhow::Result<()>> {
        use diesel_async::AsyncConnection;

        Box::pin(async move {
            let mut conn = pool.get().await?;
            let outcome = conn
                .transaction::<_, anyhow::Error, _>(async |conn| {
                    let outcome = verify_or_record(conn, &self.cipher).await?;
                    if outcome == Ok(KeyCheckOutcome::Recorded) {
                        let secret = self.secret.clone();
                        tokio::task::spawn_blocking(move || secret.persist()).await??;
                    }
                    Ok(outcome)
                })
                .await?;
            if let (Err(_), SecretSource::Generated(file)) = (&outcome, &self.secret.source) {
                return self.adopt_sibling_secret(file, &mut conn, outcome).await;
            }
            let SecretSource::File(file) = &self.secret.source else {
                return settle(outcome);
            };
            let next = secret::next_path(file);
            if !next.exists() {
                return settle(outcome);
            }
            // A rotation was interrupted: before its commit (the database still has this
            // key: drop the new file) or after it (the new file matches: finish the swap).
            if outcome.is_ok() {
                tracing::warn!(file = %next.display(), "removing the new secret of a rotation that did not commit");
                std::fs::remove_file(&next)?;
                return settle(outcome);
            }
            let next_matches = match secret::read_secret_file(&next)? {
                Some(candidate) => {
                    let check = recorded_check(&mut conn).await?;
                    let cipher =
                        tokio::task::spawn_blocking(move || SettingsCipher::derive(&candidate))
                            .await??;
                    check.is_some_and(|c| is_check_of(&cipher, &c))
                }
                None => false,
            };
            if !next_matches {
                return settle(outcome);
            }
            let (file, old) = (file.clone(), self.secret.secret.clone());
            tokio::task::spawn_blocking(move || secret::promote_next(&file, &old)).await??;
            Err(Refusal(
                "An interrupted rotation of the encryption secret had committed: its new secret is \
                 now in encryption.secret (the previous one in encryption.secret.bak). Restart the \
                 server to use it."
                    .into(),
            )
            .into())
        })
    }
}

/// Whether the database's encrypted values still belong to `cipher` (also when no check is
/// recorded yet). The share lock waits for a rotation in progress, so a process that still
/// holds a rotated-away key learns it before it writes a value nobody else can read.
pub async fn belongs_to(
    conn: &mut AsyncPgConnection,
    cipher: &SettingsCipher,
) -> QueryResult<bool> {
    let check: Option<String> = encryption_key_check::table
        .select(encryption_key_check::check_value)
        .for_share()
        .first(conn)
        .await
        .optional()?;
    Ok(check.is_none_or(|check| is_check_of(cipher, &check)))
}
