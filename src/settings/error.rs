//! Errors of the settings layer.

use crate::db::DbError;
use crate::settings::crypto::CryptoError;

/// Why a settings operation failed. Messages name keys, never values.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// No such setting (neither in code nor in the database).
    #[error("setting {0:?} not found")]
    NotFound(String),
    /// The key does not match `^[a-zA-Z0-9._-]{1,255}$`.
    #[error("invalid setting key {0:?}: use 1-255 of a-z, A-Z, 0-9, '.', '_' and '-'")]
    InvalidKey(String),
    /// The value does not fit the setting's type.
    #[error("invalid value for {key}: {reason}")]
    InvalidValue {
        /// The setting.
        key: String,
        /// What is wrong (the value itself is not repeated for encrypted settings).
        reason: String,
    },
    /// The stored value cannot be decrypted (the secret changed, or it was altered).
    #[error("setting {key}: {source}")]
    Decrypt {
        /// The setting.
        key: String,
        /// Why.
        source: CryptoError,
    },
    /// The database's encryption secret was rotated after this process derived its key:
    /// reading or writing with the old key would fail or leave an unreadable value.
    #[error(
        "setting {key}: the encryption secret was rotated (settings rotate-secret) after this \
         process started; restart it with the new DEPLOYSTACK_ENCRYPTION_SECRET (or \
         PERSISTENT_DATA_DIR/encryption.secret)"
    )]
    SecretRotated {
        /// The setting.
        key: String,
    },
    /// A stored value does not match its declared type.
    #[error("setting {key} holds a value that is not a {expected}")]
    WrongType {
        /// The setting.
        key: String,
        /// The expected type.
        expected: &'static str,
    },
    /// A setting of this key exists already (creating it again).
    #[error("setting {0:?} exists already")]
    AlreadyExists(String),
    /// The named settings group does not exist.
    #[error("settings group {0:?} not found")]
    GroupNotFound(String),
    /// The change contradicts the code's declaration of the setting (its type, or that it
    /// is encrypted).
    #[error("setting {key}: {reason}")]
    Declared {
        /// The setting.
        key: String,
        /// What the code declares.
        reason: String,
    },
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for SettingsError {
    fn from(e: diesel::result::Error) -> Self {
        SettingsError::Db(DbError::Query(e))
    }
}

/// What a server that learned of a rotation of the encryption secret says until restarted.
pub const ROTATED_NOTICE: &str = "The encryption secret was rotated (settings rotate-secret) after this server started: restart it with the new DEPLOYSTACK_ENCRYPTION_SECRET (or PERSISTENT_DATA_DIR/encryption.secret). Encrypted settings are not served until then.";

/// Result of a settings operation.
pub type SettingsResult<T> = Result<T, SettingsError>;
