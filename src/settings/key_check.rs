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
    // The first check is only ever inserted, never replaced: a concurrent first check (a
    // settings command) or a rotation that got there first wins, and this key must match it.
    let inserted = diesel::insert_into(encryption_key_check::table)
        .values((
            encryption_key_check::id.eq(1i16),
            encryption_key_check::check_value.eq(cipher.encrypt(KEY_CHECK_TEXT)),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    if inserted == 1 {
        return Ok(Ok(KeyCheckOutcome::Recorded));
    }
    Ok(match recorded_check(conn).await? {
        Some(check) if is_check_of(cipher, &check) => Ok(KeyCheckOutcome::Matches),
        _ => Err(KeyMismatch {
            detail: String::new(),
        }),
    })
}

/// Replaces the key check with `cipher`'s: a rotation's, which holds the settings lock and
/// has checked the old key. A first check is inserted by [`verify_or_record`] instead.
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

/// The key check as the first initializer: it must pass before settings are initialized
/// (which encrypts defaults) or served. A generated secret is written to its file only in the
/// transaction that records it as a new database's check, just before the commit (a failed
/// commit leaves a file whose secret the next start records, as nothing used another).
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

/// What the initializer concluded, inside its transaction.
enum Verdict {
    /// Serve with this process's key (possibly adopted from a sibling).
    Pass(KeyCheckOutcome),
    /// Refuse the start with this message.
    Refuse(String),
}

impl KeyCheckInitializer {
    /// The whole decision, in the transaction that holds the key check row (`FOR UPDATE`):
    /// a rotation takes the same row before it writes `encryption.secret.next` and keeps it
    /// until its commit, so the files are judged against a database no rotation is changing.
    async fn decide(&self, conn: &mut AsyncPgConnection) -> anyhow::Result<Verdict> {
        let outcome = verify_or_record(conn, &self.cipher).await?;
        match (&outcome, &self.secret.source) {
            (Ok(KeyCheckOutcome::Recorded), SecretSource::Generated(_)) => {
                // Written before the commit: if the commit fails, the next start finds the
                // file, no check, and records it then.
                let secret = self.secret.clone();
                tokio::task::spawn_blocking(move || secret.persist()).await??;
            }
            (Err(_), SecretSource::Generated(file)) => {
                // A sibling sharing this folder generated its own secret and recorded it
                // first: its file is what every later start reads, so use it.
                if let Some(cipher) = self.matching_file_key(conn, file).await? {
                    self.cipher.adopt(&cipher);
                    tracing::info!(file = %file.display(), "using the encryption secret another process sharing this folder generated");
                    return Ok(Verdict::Pass(KeyCheckOutcome::Matches));
                }
            }
            (Ok(_), SecretSource::File(file)) if secret::next_path(file).exists() => {
                // A rotation interrupted before its commit: the database kept this key.
                let next = secret::next_path(file);
                tracing::warn!(file = %next.display(), "removing the new secret of a rotation that did not commit");
                tokio::task::spawn_blocking(move || secret::remove_synced(&next)).await??;
            }
            (Err(_), SecretSource::File(file)) => {
                // A rotation interrupted after its commit: finish moving its file into place.
                let next = secret::next_path(file);
                if self.matching_file_key(conn, &next).await?.is_some() {
                    let (file, old) = (file.clone(), self.secret.secret.clone());
                    tokio::task::spawn_blocking(move || secret::promote_next(&file, &old))
                        .await??;
                    return Ok(Verdict::Refuse(
                        "An interrupted rotation of the encryption secret had committed: its new \
                         secret is now in encryption.secret (the previous one in \
                         encryption.secret.bak). Restart the server to use it."
                            .into(),
                    ));
                }
            }
            _ => {}
        }
        Ok(match outcome {
            Ok(done) => Verdict::Pass(done),
            Err(mismatch) => Verdict::Refuse(mismatch.to_string()),
        })
    }

    /// The key of the secret in `file`, when the file exists and that key is the recorded one.
    async fn matching_file_key(
        &self,
        conn: &mut AsyncPgConnection,
        file: &std::path::Path,
    ) -> anyhow::Result<Option<SettingsCipher>> {
        let Some(candidate) = secret::read_secret_file(file)? else {
            return Ok(None);
        };
        let Some(check) = recorded_check(conn).await? else {
            return Ok(None);
        };
        let cipher = SettingsCipher::derive_off_thread(candidate).await?;
        Ok(is_check_of(&cipher, &check).then_some(cipher))
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
            let verdict = conn
                .transaction::<_, anyhow::Error, _>(async |conn| self.decide(conn).await)
                .await?;
            match verdict {
                Verdict::Pass(KeyCheckOutcome::Matches) => Ok(()),
                Verdict::Pass(KeyCheckOutcome::Recorded) => {
                    tracing::info!("recorded the encryption key check");
                    Ok(())
                }
                Verdict::Refuse(reason) => Err(Refusal(reason).into()),
            }
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
