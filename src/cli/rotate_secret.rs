//! `deploystack-backend settings rotate-secret`: moves every encrypted setting to a new
//! encryption secret, read from standard input (never from argv, which `ps` shows), in one
//! transaction ([`crate::settings::rotation`]).
//!
//! When the current secret is the generated file, the new one is written next to it
//! (`encryption.secret.next`) just before the commit, and moved into place right after it,
//! the old one kept as `encryption.secret.bak`. A failed rotation removes the `.next` file;
//! when the outcome of the commit is unknown (a lost connection), the database is asked which
//! key it holds before anything is removed, so the only copy of the new secret is never lost.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use secrecy::{ExposeSecret, SecretString};

use crate::app;
use crate::config::Config;
use crate::db::schema::encryption_key_check;
use crate::db::PgConnector;
use crate::settings::rotation::{self, RotationError, RotationReport};
use crate::settings::secret::{self, private_temp_file, SecretSource};
use crate::settings::{key_check, SettingsCipher};

/// Shortest new secret accepted (upstream asks for at least 16 characters too).
const MIN_LENGTH: usize = 16;
/// How long the rotation waits for another rotation or initialization to finish.
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// Rotates the secret; any failure leaves the database and the files as they were.
pub async fn run(config: &Config) -> anyhow::Result<()> {
    // Asked for before anything starts, so the prompt is not mixed with log lines.
    let new_secret = read_new_secret()?;
    let current = app::tool_secret(config)?;
    check_new_secret(&new_secret, &current.secret)?;
    let files = match &current.source {
        SecretSource::File(path) => Some(SecretFiles::of(path)),
        _ => None,
    };
    // One rotation per folder at a time: its `.next` file is only ever touched by its owner.
    let _folder_lock = files.as_ref().map(SecretFiles::lock).transpose()?;
    let (old, new) = (derive(&current.secret).await?, derive(&new_secret).await?);
    let (connection, embedded) = app::connection_for_tool(config).await?;
    let outcome = async {
        let connector = PgConnector::new(&connection, &config.pool)?;
        if let Some(files) = &files {
            files.reconcile(&connector, &old).await?;
        }
        rotate(
            &connector,
            files.as_ref(),
            &current.secret,
            &new_secret,
            &old,
            &new,
        )
        .await
    }
    .await;
    if let Some(cluster) = embedded {
        cluster.stop().await?;
    }
    let report = outcome?;
    println!("re-encrypted {} encrypted values", report.values);
    match &files {
        Some(files) => println!(
            "{} now holds the new secret; the previous one is kept in {}",
            files.current.display(),
            files.backup.display()
        ),
        None => println!(
            "set DEPLOYSTACK_ENCRYPTION_SECRET to the new secret on every server and replica"
        ),
    }
    println!("restart every running server with the new secret");
    Ok(())
}

/// The new secret: asked twice without echo on a terminal, else one line of standard input.
fn read_new_secret() -> anyhow::Result<SecretString> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Ok(SecretString::from(super::settings::read_line(
            stdin.lock(),
        )?));
    }
    let prompt = |text: &str| -> anyhow::Result<SecretString> {
        rpassword::prompt_password(text)
            .map(SecretString::from)
            .context("cannot read the new secret")
    };
    let first = prompt("New encryption secret: ")?;
    let again = prompt("Repeat the new encryption secret: ")?;
    anyhow::ensure!(
        first.expose_secret() == again.expose_secret(),
        "the two entries differ; nothing was changed"
    );
    Ok(first)
}

/// Refuses a new secret that is weak, that a file would not keep as given, or the same.
fn check_new_secret(new: &SecretString, current: &SecretString) -> anyhow::Result<()> {
    let text = new.expose_secret();
    anyhow::ensure!(!text.is_empty(), "the new secret is empty");
    anyhow::ensure!(
        text.chars().count() >= MIN_LENGTH,
        "the new secret is shorter than {MIN_LENGTH} characters"
    );
    anyhow::ensure!(
        text.trim() == text,
        "the new secret starts or ends with white space, which encryption.secret would not keep"
    );
    anyhow::ensure!(
        text != current.expose_secret(),
        "the new secret is the current one"
    );
    Ok(())
}

/// The key of `secret`, off the async threads (scrypt is slow by design).
async fn derive(secret: &SecretString) -> anyhow::Result<Arc<SettingsCipher>> {
    Ok(Arc::new(
        SettingsCipher::derive_off_thread(secret.clone()).await?,
    ))
}

/// Runs the rotation, storing the new secret before the commit when it lives in a file, and
/// moving it into place after.
async fn rotate(
    connector: &PgConnector,
    files: Option<&SecretFiles>,
    old_secret: &SecretString,
    new_secret: &SecretString,
    old: &SettingsCipher,
    new: &SettingsCipher,
) -> anyhow::Result<RotationReport> {
    let mut conn = connector.connect().await?;
    let deadline = tokio::time::Instant::now() + LOCK_WAIT;
    let staged = files.cloned().map(|files| (files, new_secret.clone()));
    // Whether this run wrote `.next` (only then may a failure remove it).
    let wrote_next = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let wrote = wrote_next.clone();
    let before_commit = move || match staged {
        Some((files, secret)) => {
            files.write_next(&secret)?;
            wrote.store(true, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        }
        None => Ok(()),
    };
    let outcome = rotation::rotate(&mut conn, old, new, deadline, before_commit).await;
    let files_written = files.filter(|_| {
        std::sync::atomic::AtomicBool::load(&wrote_next, std::sync::atomic::Ordering::SeqCst)
    });
    drop(conn);
    let report = match outcome {
        Ok(report) => report,
        // A database error may be a commit whose answer was lost: ask before discarding.
        Err(error @ RotationError::Db(_)) => match database_key(connector).await {
            Ok(key) if key.check.as_deref().is_some_and(|c| key_check::is_check_of(new, c)) => {
                RotationReport {
                    values: key.encrypted,
                }
            }
            Ok(_) => return Err(discarded(files_written, error)),
            Err(_) => anyhow::bail!(
                "{error}; whether the rotation committed is unknown{}",
                files.map_or(String::new(), |f| format!(
                    ": {} holds the new secret and {} the current one; run `settings rotate-secret` again (it settles which one the database uses) before restarting a server",
                    f.next.display(),
                    f.current.display()
                ))
            ),
        },
        Err(error) => return Err(discarded(files_written, error)),
    };
    if let Some(files) = files {
        files.install(old_secret, new_secret).with_context(|| {
            format!(
                "the database now uses the new secret, but it could not be moved into place: move {} to {}",
                files.next.display(),
                files.current.display()
            )
        })?;
    }
    Ok(report)
}

/// `error`, after removing the new secret's file of a rotation that did not commit.
fn discarded(files: Option<&SecretFiles>, error: RotationError) -> anyhow::Error {
    match files.map(SecretFiles::discard_next) {
        Some(Err(e)) => anyhow::Error::new(error).context(format!(
            "the rotation did not commit, and removing {} failed ({e}): delete it",
            files.map_or(String::new(), |f| f.next.display().to_string())
        )),
        _ => error.into(),
    }
}

/// The database's key check and how many values are encrypted, read on a connection of its
/// own (the rotation's may be the one that failed).
struct DatabaseKey {
    check: Option<String>,
    encrypted: usize,
}

async fn database_key(connector: &PgConnector) -> anyhow::Result<DatabaseKey> {
    use crate::db::schema::global_settings;

    use diesel_async::AsyncConnection;

    let mut conn = connector.connect().await?;
    // FOR SHARE waits for a transaction still holding the row (a commit whose answer was
    // lost is not visible before it ends), bounded by the statement timeout.
    let check: Option<String> = conn
        .transaction::<_, diesel::result::Error, _>(async |conn| {
            encryption_key_check::table
                .select(encryption_key_check::check_value)
                .for_share()
                .first(conn)
                .await
                .optional()
        })
        .await?;
    let encrypted: i64 = global_settings::table
        .filter(global_settings::is_encrypted)
        .count()
        .get_result(&mut conn)
        .await?;
    Ok(DatabaseKey {
        check,
        encrypted: usize::try_from(encrypted).unwrap_or_default(),
    })
}

/// The generated secret's file and its companions, all in one folder.
#[derive(Clone)]
struct SecretFiles {
    dir: PathBuf,
    current: PathBuf,
    next: PathBuf,
    backup: PathBuf,
}

impl SecretFiles {
    fn of(current: &Path) -> Self {
        Self {
            dir: current.parent().unwrap_or(Path::new(".")).to_path_buf(),
            current: current.to_path_buf(),
            next: secret::next_path(current),
            backup: secret::backup_path(current),
        }
    }

    /// Writes `secret` to `.next` (mode 0600, fsynced, replacing a stale one).
    fn write_next(&self, secret: &SecretString) -> std::io::Result<()> {
        self.write(&self.next, secret)
    }

    /// After the commit: the old secret to `.bak`, then `.next` over the current file in one
    /// rename, so a server starting meanwhile always finds a secret file.
    /// A server starting meanwhile may have moved `.next` into place first: that is done.
    fn install(&self, old: &SecretString, new: &SecretString) -> std::io::Result<()> {
        match secret::promote_next(&self.current, old) {
            Ok(()) => Ok(()),
            Err(_)
                if secret::read_secret_file(&self.current)
                    .ok()
                    .flatten()
                    .is_some_and(|s| s.expose_secret() == new.expose_secret()) =>
            {
                Ok(())
            }
            Err(e) => Err(std::io::Error::other(e.to_string())),
        }
    }

    /// An exclusive lock on `encryption.secret.lock` in the folder, held for the whole run.
    fn lock(&self) -> anyhow::Result<nix::fcntl::Flock<std::fs::File>> {
        let path = self.dir.join(format!("{}.lock", secret::SECRET_FILE));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock).map_err(|_| {
            anyhow::anyhow!(
                "another rotation of the encryption secret is running on {}; nothing was changed",
                self.dir.display()
            )
        })
    }

    /// Removes `.next` after a rotation that did not commit.
    fn discard_next(&self) -> std::io::Result<()> {
        match std::fs::remove_file(&self.next) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => self.sync_dir(),
        }
    }

    /// A `.next` left by an interrupted run: removed when the database does not use it (a
    /// rotation always records its key check, so no check means no rotation committed);
    /// when it does, the operator is told to move it into place first.
    async fn reconcile(
        &self,
        connector: &PgConnector,
        current: &SettingsCipher,
    ) -> anyhow::Result<()> {
        let Some(next) = secret::read_secret_file(&self.next)? else {
            return Ok(());
        };
        let Some(check) = database_key(connector).await?.check else {
            return Ok(self.discard_next()?);
        };
        if key_check::is_check_of(current, &check) {
            tracing::info!(file = %self.next.display(), "removing the new secret of an earlier rotation that did not commit");
            return Ok(self.discard_next()?);
        }
        if key_check::is_check_of(&*derive(&next).await?, &check) {
            anyhow::bail!(
                "an earlier rotation committed but did not replace {current}: the database uses the secret in {next}. Move {next} to {current} and restart the servers, then rotate again if needed",
                current = self.current.display(),
                next = self.next.display()
            );
        }
        anyhow::bail!(
            "the database uses neither {} nor {}; nothing was changed",
            self.current.display(),
            self.next.display()
        )
    }

    fn write(&self, path: &Path, secret: &SecretString) -> std::io::Result<()> {
        private_temp_file(&self.dir, ".encryption.secret.", secret.expose_secret())?
            .persist(path)
            .map_err(|e| e.error)?;
        self.sync_dir()
    }

    fn sync_dir(&self) -> std::io::Result<()> {
        std::fs::File::open(&self.dir).and_then(|d| d.sync_all())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(text: &str) -> SecretString {
        SecretString::from(text.to_owned())
    }

    #[test]
    fn weak_padded_or_unchanged_secrets_are_refused() {
        let current = secret("the-current-secret-1234");
        for (new, why) in [
            ("", "empty"),
            ("short-secret", "shorter than 16"),
            (" padded-new-secret-1234", "white space"),
            ("the-current-secret-1234", "current one"),
        ] {
            let err = check_new_secret(&secret(new), &current).expect_err(new);
            assert!(err.to_string().contains(why), "{err}");
            assert!(new.is_empty() || !err.to_string().contains(new.trim()));
        }
        check_new_secret(&secret("a-brand-new-secret-5678"), &current).expect("accepted");
    }

    #[test]
    fn companion_files_sit_next_to_the_secret() {
        let files = SecretFiles::of(Path::new("/data/encryption.secret"));
        assert_eq!(files.next, Path::new("/data/encryption.secret.next"));
        assert_eq!(files.backup, Path::new("/data/encryption.secret.bak"));
        assert_eq!(files.dir, Path::new("/data"));
    }
}
