//! Global settings: definitions in code (one file per group under `groups/`), their
//! initialization in the database, upstream-compatible encryption of secrets, and typed
//! access with a cache kept coherent across processes by LISTEN/NOTIFY, and the rotation of
//! the encryption secret.

pub mod admin;
pub mod cache;
pub mod crypto;
pub mod definition;
pub mod error;
pub mod groups;
pub mod init;
pub mod key_check;
pub mod notify;
pub mod rotation;
pub mod secret;
mod service;

pub use admin::{GroupRow, NewSetting, RowFilter, SettingChange, SettingRow};
pub use crypto::SettingsCipher;
pub use definition::{parse_bool, SettingDefinition, SettingType, SettingsGroup};
pub use error::{SettingsError, SettingsResult};
pub use init::{InitReport, SettingsInitializer};
pub use key_check::KeyCheckInitializer;
pub use service::{GlobalSettings, SettingInfo};
