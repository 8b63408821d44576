//! Where folder plugins are found and which isolation the operator accepts for plugins.

use std::path::PathBuf;

use super::{ConfigError, ConnectionTarget, EnvSource};

/// Plugin settings (`PLUGINS_PATH`, `PLUGIN_ALLOW_CONVENTION_ISOLATION`).
#[derive(Debug, Clone, Default)]
pub struct PluginSettings {
    /// Folder whose subfolders are folder plugins; none when unset.
    pub path: Option<PathBuf>,
    /// Load plugins isolated by naming only when the database role may not create roles
    /// (some managed services); off by default, so plugins are refused there instead.
    pub allow_convention: bool,
    /// Credentials that may create the plugins' roles when the application's may not. Not
    /// read from the environment: the app sets the embedded cluster's superuser here.
    pub role_admin: Option<ConnectionTarget>,
}

impl PluginSettings {
    pub(super) fn from_env(env: &EnvSource) -> Result<Self, ConfigError> {
        Ok(Self {
            path: env.string("PLUGINS_PATH").map(PathBuf::from),
            allow_convention: env
                .flag("PLUGIN_ALLOW_CONVENTION_ISOLATION")?
                .unwrap_or(false),
            role_admin: None,
        })
    }
}
