//! Where folder plugins are found, which isolation the operator accepts for plugins, and the
//! limits a plugin's own session runs under.
//!
//! - `PLUGINS_PATH`: folder whose subfolders are folder plugins.
//! - `PLUGIN_ALLOW_CONVENTION_ISOLATION`: load plugins without roles (core's rights).
//! - `PLUGIN_STATEMENT_TIMEOUT_MS` (default 60000): longest statement of a plugin migration.
//! - `PLUGIN_LOCK_TIMEOUT_MS` (default 5000): longest wait of a plugin statement for a lock.

use std::path::PathBuf;
use std::time::Duration;

use super::pool::{Millis, POSTGRES_MAX_MS};
use super::{ConfigError, ConnectionTarget, EnvSource};

/// Longest statement of a plugin migration by default: a table rewrite may take a while, a
/// hostile statement must not hold its locks for long.
pub const DEFAULT_PLUGIN_STATEMENT_TIMEOUT_MS: u64 = 60_000;
/// Longest lock wait of a plugin statement by default: a plugin must not queue behind (and
/// in front of) the core's own work on a table for long.
pub const DEFAULT_PLUGIN_LOCK_TIMEOUT_MS: u64 = 5_000;

/// Plugin settings (`PLUGINS_PATH`, `PLUGIN_ALLOW_CONVENTION_ISOLATION`, the limits).
#[derive(Debug, Clone)]
pub struct PluginSettings {
    /// Folder whose subfolders are folder plugins; none when unset.
    pub path: Option<PathBuf>,
    /// Load plugins isolated by naming only when the database role may not create roles
    /// (some managed services); off by default, so plugins are refused there instead.
    pub allow_convention: bool,
    /// Credentials that may create the plugins' roles when the application's may not. Not
    /// read from the environment: the app sets the embedded cluster's superuser here.
    pub role_admin: Option<ConnectionTarget>,
    /// `statement_timeout` of a plugin's own session (also its role's default); the session
    /// is ended from outside when a statement outlives it by a grace period, since a plugin's
    /// SQL can lift or catch the timeout.
    pub statement_timeout: Duration,
    /// `lock_timeout` of a plugin's own session (also its role's default).
    pub lock_timeout: Duration,
}

impl Default for PluginSettings {
    fn default() -> Self {
        Self {
            path: None,
            allow_convention: false,
            role_admin: None,
            statement_timeout: Duration::from_millis(DEFAULT_PLUGIN_STATEMENT_TIMEOUT_MS),
            lock_timeout: Duration::from_millis(DEFAULT_PLUGIN_LOCK_TIMEOUT_MS),
        }
    }
}

impl PluginSettings {
    pub(super) fn from_env(env: &EnvSource) -> Result<Self, ConfigError> {
        let ms = |name, default| {
            Millis {
                name,
                min: 1,
                max: POSTGRES_MAX_MS,
            }
            .read(env, default)
            .map(Duration::from_millis)
        };
        Ok(Self {
            path: env.string("PLUGINS_PATH").map(PathBuf::from),
            allow_convention: env
                .flag("PLUGIN_ALLOW_CONVENTION_ISOLATION")?
                .unwrap_or(false),
            role_admin: None,
            statement_timeout: ms(
                "PLUGIN_STATEMENT_TIMEOUT_MS",
                DEFAULT_PLUGIN_STATEMENT_TIMEOUT_MS,
            )?,
            lock_timeout: ms("PLUGIN_LOCK_TIMEOUT_MS", DEFAULT_PLUGIN_LOCK_TIMEOUT_MS)?,
        })
    }
}
