//! Where the encryption secret comes from: `DEPLOYSTACK_ENCRYPTION_SECRET`, or else a random
//! secret kept in `PERSISTENT_DATA_DIR/encryption.secret` (mode 0600). Unlike upstream there
//! is no hard-coded fallback secret.
//!
//! A new secret is only generated in memory at first: it is written to the file when this
//! process records it as a new database's key check, just before that transaction commits.
//! A replica that starts with
//! a fresh folder and no configured secret therefore never leaves a file with a secret that
//! decrypts nothing: the key check refuses it first.

use std::fs;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use rand::distr::{Alphanumeric, SampleString};
use secrecy::{ExposeSecret, SecretString};
use tracing::warn;

/// File name of the generated secret.
pub const SECRET_FILE: &str = "encryption.secret";
/// Length of a generated secret.
const GENERATED_LENGTH: usize = 64;

/// The secret could not be read or stored.
#[derive(Debug, thiserror::Error)]
#[error("encryption secret file {path}: {source}")]
pub struct SecretError {
    /// The file.
    pub path: PathBuf,
    /// The OS error.
    pub source: std::io::Error,
}

/// Where the secret in use came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// `DEPLOYSTACK_ENCRYPTION_SECRET`.
    Configured,
    /// The generated file, which exists.
    File(PathBuf),
    /// Generated just now and not written yet: [`ResolvedSecret::persist`] writes it.
    Generated(PathBuf),
}

/// The secret to use and where it came from.
pub struct ResolvedSecret {
    /// The secret.
    pub secret: SecretString,
    /// Its origin.
    pub source: SecretSource,
}

impl ResolvedSecret {
    /// Writes a generated secret to its file (no-op for the others). Linked into place
    /// without replacing: when another process wrote the file first, that is an error, as
    /// this process's secret would then differ from the file's.
    pub fn persist(&self) -> Result<(), SecretError> {
        let SecretSource::Generated(path) = &self.source else {
            return Ok(());
        };
        let error = |source| SecretError {
            path: path.clone(),
            source,
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(error)?;
        let tmp = private_temp_file(dir, ".encryption.secret.", self.secret.expose_secret())
            .map_err(error)?;
        match tmp.persist_noclobber(path) {
            Ok(_) => {}
            // Written already by this process (an attempt whose commit then failed).
            Err(e)
                if e.error.kind() == ErrorKind::AlreadyExists
                    && read_secret_file(path)?
                        .is_some_and(|s| s.expose_secret() == self.secret.expose_secret()) =>
            {
                return Ok(());
            }
            Err(e) => return Err(error(e.error)),
        }
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(error)?;
        warn!(
            file = %path.display(),
            "DEPLOYSTACK_ENCRYPTION_SECRET is not set: generated a new encryption secret. \
             Back this file up: encrypted settings cannot be read without it."
        );
        Ok(())
    }
}

/// The configured secret, else the stored one, else a new one generated in memory.
pub fn resolve(
    configured: Option<&SecretString>,
    data_dir: &Path,
) -> Result<ResolvedSecret, SecretError> {
    if let Some(found) = resolve_existing(configured, data_dir)? {
        return Ok(found);
    }
    Ok(ResolvedSecret {
        secret: SecretString::from(Alphanumeric.sample_string(&mut rand::rng(), GENERATED_LENGTH)),
        source: SecretSource::Generated(data_dir.join(SECRET_FILE)),
    })
}

/// The configured secret, else the stored one; `None` when there is neither (command-line
/// tools never generate one).
pub fn resolve_existing(
    configured: Option<&SecretString>,
    data_dir: &Path,
) -> Result<Option<ResolvedSecret>, SecretError> {
    if let Some(secret) = configured {
        return Ok(Some(ResolvedSecret {
            secret: secret.clone(),
            source: SecretSource::Configured,
        }));
    }
    let path = data_dir.join(SECRET_FILE);
    match read_secret_file(&path)? {
        Some(secret) => Ok(Some(ResolvedSecret {
            secret,
            source: SecretSource::File(path),
        })),
        None => Ok(None),
    }
}

/// Reads a secret file; `None` when it does not exist, an error when it is empty.
pub fn read_secret_file(path: &Path) -> Result<Option<SecretString>, SecretError> {
    let error = |source| SecretError {
        path: path.to_path_buf(),
        source,
    };
    match fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => Ok(Some(SecretString::from(text.trim().to_owned()))),
        Ok(_) => Err(error(std::io::Error::new(
            ErrorKind::InvalidData,
            "the file is empty",
        ))),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(error(e)),
    }
}

/// A fsynced temporary file in `dir` holding `contents`, mode 0600 (tempfile's default).
pub fn private_temp_file(
    dir: &Path,
    prefix: &str,
    contents: &str,
) -> std::io::Result<tempfile::NamedTempFile> {
    let mut tmp = tempfile::Builder::new().prefix(prefix).tempfile_in(dir)?;
    tmp.write_all(contents.as_bytes())?;
    tmp.as_file().sync_all()?;
    Ok(tmp)
}

/// Where `settings rotate-secret` puts the new secret before its transaction commits.
pub fn next_path(file: &Path) -> PathBuf {
    file.with_file_name(format!("{SECRET_FILE}.next"))
}

/// Where the previous secret is kept after a rotation.
pub fn backup_path(file: &Path) -> PathBuf {
    file.with_file_name(format!("{SECRET_FILE}.bak"))
}

/// Finishes a rotation whose transaction committed: `old` is kept in the backup file, then
/// the `.next` file replaces the current one in one rename (a server starting meanwhile
/// always finds a secret file), then the folder is synced.
pub fn promote_next(file: &Path, old: &SecretString) -> Result<(), SecretError> {
    let error = |source| SecretError {
        path: file.to_path_buf(),
        source,
    };
    let dir = file.parent().unwrap_or(Path::new("."));
    private_temp_file(dir, ".encryption.secret.", old.expose_secret())
        .and_then(|tmp| tmp.persist(backup_path(file)).map_err(|e| e.error))
        .map_err(error)?;
    fs::rename(next_path(file), file).map_err(error)?;
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(error)
}

/// Removes `path` (a `.next` file of a rotation that did not commit) and syncs its folder.
pub fn remove_synced(path: &Path) -> Result<(), SecretError> {
    let error = |source| SecretError {
        path: path.to_path_buf(),
        source,
    };
    match fs::remove_file(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => return Err(error(e)),
        _ => {}
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generated(dir: &Path) -> ResolvedSecret {
        let resolved = resolve(None, dir).expect("resolve");
        assert_eq!(
            resolved.source,
            SecretSource::Generated(dir.join(SECRET_FILE))
        );
        resolved
    }

    #[test]
    fn a_generated_secret_is_written_once_and_never_replaced() {
        let dir = tempfile::tempdir().expect("dir");
        let mine = generated(dir.path());
        mine.persist().expect("first write");
        // Again by the same process (its commit failed and it tries again): nothing to do.
        mine.persist().expect("the file already holds this secret");
        // Another process's secret, written first: this one's would decrypt nothing.
        let theirs = ResolvedSecret {
            secret: SecretString::from("another secret".to_owned()),
            source: mine.source.clone(),
        };
        let refused = theirs.persist().expect_err("a different secret is refused");
        assert_eq!(refused.source.kind(), ErrorKind::AlreadyExists);
        let stored = read_secret_file(&dir.path().join(SECRET_FILE))
            .expect("read")
            .expect("exists");
        assert_eq!(stored.expose_secret(), mine.secret.expose_secret());
        let found = resolve(None, dir.path()).expect("resolve");
        assert_eq!(
            found.source,
            SecretSource::File(dir.path().join(SECRET_FILE))
        );
    }

    #[test]
    fn an_empty_file_is_an_error_and_a_missing_one_is_none() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join(SECRET_FILE);
        assert!(read_secret_file(&path).expect("missing").is_none());
        read_secret_file(dir.path()).expect_err("a folder is not a missing file");
        fs::write(&path, " \n").expect("write");
        let error = read_secret_file(&path).expect_err("empty");
        assert_eq!(error.source.kind(), ErrorKind::InvalidData);
        fs::write(&path, "  s3cret\n").expect("write");
        let read = read_secret_file(&path).expect("read").expect("exists");
        assert_eq!(read.expose_secret(), "s3cret");
    }

    #[test]
    fn removing_a_next_file_tolerates_only_its_absence() {
        let dir = tempfile::tempdir().expect("dir");
        let next = next_path(&dir.path().join(SECRET_FILE));
        fs::write(&next, "new").expect("write");
        remove_synced(&next).expect("removed");
        assert!(!next.exists());
        remove_synced(&next).expect("already gone");
        fs::create_dir(&next).expect("a folder in its place");
        remove_synced(&next).expect_err("a folder is not removed");
    }
}
