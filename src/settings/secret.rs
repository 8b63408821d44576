//! Where the encryption secret comes from: `DEPLOYSTACK_ENCRYPTION_SECRET`, or else a random
//! secret generated once and kept in `PERSISTENT_DATA_DIR/encryption.secret` (mode 0600).
//! Unlike upstream there is no hard-coded fallback secret.

use std::fs;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use rand::distr::{Alphanumeric, SampleString};
use secrecy::SecretString;
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

/// The secret to use: the configured one, the stored one, or a new stored one.
pub fn resolve(
    configured: Option<&SecretString>,
    data_dir: &Path,
) -> Result<SecretString, SecretError> {
    if let Some(secret) = configured {
        return Ok(secret.clone());
    }
    let path = data_dir.join(SECRET_FILE);
    let error = |source| SecretError {
        path: path.clone(),
        source,
    };
    match fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => {
            return Ok(SecretString::from(text.trim().to_owned()))
        }
        Ok(_) => {
            return Err(error(std::io::Error::new(
                ErrorKind::InvalidData,
                "the file is empty",
            )))
        }
        Err(e) if e.kind() != ErrorKind::NotFound => return Err(error(e)),
        Err(_) => {}
    }
    fs::create_dir_all(data_dir).map_err(error)?;
    let secret = Alphanumeric.sample_string(&mut rand::rng(), GENERATED_LENGTH);
    // Written to a temporary file and linked into place, so a concurrent reader sees no
    // file or the whole secret, never an empty one.
    let created = tempfile::Builder::new()
        .prefix(".encryption.secret.")
        .tempfile_in(data_dir)
        .and_then(|mut tmp| {
            tmp.write_all(secret.as_bytes())?;
            tmp.as_file().sync_all()?;
            Ok(tmp)
        })
        .map_err(error)?
        .persist_noclobber(&path);
    match created {
        Ok(_) => {
            warn!(
                file = %path.display(),
                "DEPLOYSTACK_ENCRYPTION_SECRET is not set: generated a new encryption secret. \
                 Back this file up: encrypted settings cannot be read without it."
            );
            Ok(SecretString::from(secret))
        }
        // Another process created it first: use theirs.
        Err(e) if e.error.kind() == ErrorKind::AlreadyExists => resolve(None, data_dir),
        Err(e) => Err(error(e.error)),
    }
}
