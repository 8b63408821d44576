//! What a plugin's code is handed: its database handle and read access to its own settings,
//! never the core pool or the core's settings.

use secrecy::SecretString;

use super::handle::PluginDb;
use crate::db::{Database, DbError};
use crate::settings::{GlobalSettings, SettingsError, SettingsResult};

/// A plugin's view of the backend. Cheap to clone.
#[derive(Clone)]
pub struct PluginContext {
    /// The database, as the plugin's role.
    pub db: PluginDb,
    /// The plugin's settings (keys `<id>.*`).
    pub settings: PluginSettingsReader,
}

impl PluginContext {
    /// The same context over `db`: `on_database_init` runs on the pool being brought up,
    /// before it is served to everyone else.
    pub(crate) fn on(&self, db: Database) -> Self {
        Self {
            db: self.db.on(db.clone()),
            settings: PluginSettingsReader {
                settings: self
                    .settings
                    .settings
                    .as_ref()
                    .map(|s| GlobalSettings::new(db, s.cipher().clone())),
                namespace: self.settings.namespace.clone(),
            },
        }
    }
}

/// Reads the settings of one plugin; any other key is "not found" to it.
#[derive(Clone)]
pub struct PluginSettingsReader {
    settings: Option<GlobalSettings>,
    namespace: String,
}

impl PluginSettingsReader {
    pub(crate) fn new(settings: Option<GlobalSettings>, id: &str) -> Self {
        Self {
            settings,
            namespace: format!("{id}."),
        }
    }

    fn reader(&self, key: &str) -> SettingsResult<&GlobalSettings> {
        if !key.starts_with(&self.namespace) {
            return Err(SettingsError::NotFound(key.to_owned()));
        }
        // Command-line tools load plugins without the settings service; only servers run
        // plugin code.
        self.settings
            .as_ref()
            .ok_or(SettingsError::Db(DbError::NotInitialized))
    }

    /// The value of `key`, as text (decrypted when the setting is encrypted).
    pub async fn get_string(&self, key: &str) -> SettingsResult<Option<String>> {
        self.reader(key)?.get_string(key).await
    }

    /// A secret setting's value, kept out of logs and `Debug` output.
    pub async fn get_secret(&self, key: &str) -> SettingsResult<Option<SecretString>> {
        self.reader(key)?.get_secret(key).await
    }

    /// A number setting's value.
    pub async fn get_number(&self, key: &str) -> SettingsResult<Option<f64>> {
        self.reader(key)?.get_number(key).await
    }

    /// A boolean setting's value.
    pub async fn get_bool(&self, key: &str) -> SettingsResult<Option<bool>> {
        self.reader(key)?.get_bool(key).await
    }
}
