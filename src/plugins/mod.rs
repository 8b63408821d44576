//! Plugin database extensions. A plugin (compiled Rust code or a folder of SQL migrations)
//! gets a schema and a PostgreSQL role of its own: its versioned migrations run as that role
//! after the core's, its settings join the global settings under its id, and at run time it
//! reaches the database only through a [`PluginDb`] that acts as its role, so PostgreSQL
//! itself keeps it out of the core's tables and other plugins'.

pub mod catalog;
pub mod context;
pub mod error;
pub mod folder;
pub mod handle;
pub mod id;
pub mod initializer;
pub mod login;
pub mod migrate;
pub mod mode;
pub mod plugin;
pub mod provision;
pub mod registered;
mod settings_group;
pub mod sql_check;

pub use catalog::{LoadedPlugin, PluginCatalog};
pub use context::{PluginContext, PluginSettingsReader};
pub use error::PluginError;
pub use handle::{PluginDb, PluginDbError};
pub use id::PluginId;
pub use initializer::{PluginInitHooks, PluginMigrator};
pub use mode::IsolationMode;
pub use plugin::{Plugin, PluginKind, PluginMigration, PluginRoutes, PluginSetting};
