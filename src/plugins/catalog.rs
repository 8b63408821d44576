//! The plugins this process loads, checked as a whole before anything touches the database:
//! valid and distinct ids, migrations that pass the static check with distinct versions,
//! settings inside the plugin's namespace that collide with nothing, routes under the
//! plugin's prefix, job types in the plugin's namespace. One error names the plugin and
//! what to change.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use super::context::{PluginContext, PluginSettingsReader};
use super::error::PluginError;
use super::folder;
use super::handle::PluginDb;
use super::id::PluginId;
use super::mode::{IsolationMode, ModeCell};
use super::plugin::{Plugin, PluginMigration, PluginRoutes};
use super::settings_group;
use super::sql_check::{self, Statement};
use crate::db::Database;
use crate::jobs::Registry;
use crate::settings::definition::SettingsGroup;
use crate::settings::GlobalSettings;

/// A migration with its statements, as checked.
#[derive(Debug, Clone)]
pub struct CheckedMigration {
    /// As the plugin declares it.
    pub migration: PluginMigration,
    /// Its statements, in order.
    pub statements: Vec<Statement>,
}

/// One loaded plugin.
pub struct LoadedPlugin {
    /// Its id.
    pub id: PluginId,
    /// The plugin.
    pub plugin: Arc<dyn Plugin>,
    /// Its database handle and settings.
    pub context: PluginContext,
    /// Its migrations in version order.
    pub migrations: Vec<CheckedMigration>,
    pub(crate) routes: Option<PluginRoutes>,
    settings: Option<&'static SettingsGroup>,
}

/// Every loaded plugin, with the isolation mode once it is decided.
pub struct PluginCatalog {
    plugins: Vec<LoadedPlugin>,
    mode: Arc<ModeCell>,
    jobs: Registry,
}

impl PluginCatalog {
    /// No plugin.
    pub fn empty() -> Self {
        Self {
            plugins: Vec::new(),
            mode: Arc::default(),
            jobs: Registry::new(),
        }
    }

    /// Loads `compiled` and the folder plugins under `folder`, each with a handle on `db`
    /// and read access to its settings through `settings` (none in command-line tools).
    pub fn load(
        compiled: Vec<Arc<dyn Plugin>>,
        folder: Option<&Path>,
        db: &Database,
        settings: Option<GlobalSettings>,
    ) -> Result<Self, PluginError> {
        let mut all = compiled;
        if let Some(folder) = folder {
            all.extend(folder::discover(folder)?);
        }
        let mode = Arc::<ModeCell>::default();
        let mut seen = HashSet::new();
        let mut plugins = Vec::new();
        let mut jobs = Registry::new();
        for (index, plugin) in all.into_iter().enumerate() {
            let id = PluginId::parse(plugin.id())?;
            if !seen.insert(id.schema()) {
                return Err(PluginError::DuplicateId(id.to_string()));
            }
            let context = PluginContext {
                db: PluginDb::new(db.clone(), &id, mode.clone()),
                settings: PluginSettingsReader::new(settings.clone(), id.as_str()),
            };
            let migrations = check_migrations(&id, plugin.migrations())?;
            let settings = settings_group::build(&id, plugin.name(), plugin.settings(), index)?;
            let routes = plugin.routes(&context);
            if let Some(routes) = &routes {
                let prefix = id.route_prefix();
                if let Some(path) = routes.paths().find(|p| !p.starts_with(&prefix)) {
                    return Err(registration(
                        &id,
                        format!("the route {path} is outside the plugin's prefix {prefix}"),
                    ));
                }
            }
            let mut own_jobs = Registry::new();
            plugin.register_jobs(&context, &mut own_jobs);
            let namespace = format!("{id}.");
            if let Some(t) = own_jobs.types().iter().find(|t| !t.starts_with(&namespace)) {
                return Err(registration(
                    &id,
                    format!("the job type {t:?} must start with {namespace:?}"),
                ));
            }
            jobs.extend(own_jobs);
            plugins.push(LoadedPlugin {
                id,
                plugin,
                context,
                migrations,
                routes,
                settings,
            });
        }
        Ok(Self {
            plugins,
            mode,
            jobs,
        })
    }

    /// Whether no plugin is loaded.
    pub fn is_empty(&self) -> bool {
        self.plugins.is_empty()
    }

    /// The loaded plugins, in load order (compiled first, then folders by name).
    pub fn plugins(&self) -> &[LoadedPlugin] {
        &self.plugins
    }

    /// The plugins' ids.
    pub fn ids(&self) -> Vec<PluginId> {
        self.plugins.iter().map(|p| p.id.clone()).collect()
    }

    /// The isolation mode in force, once the plugins were provisioned.
    pub fn mode(&self) -> Option<IsolationMode> {
        self.mode.get()
    }

    pub(crate) fn mode_cell(&self) -> &ModeCell {
        &self.mode
    }

    /// The settings groups the plugins declare, to join the global settings.
    pub fn settings_groups(&self) -> Vec<&'static SettingsGroup> {
        self.plugins.iter().filter_map(|p| p.settings).collect()
    }

    /// The plugins' job handlers.
    pub fn jobs(&self) -> &Registry {
        &self.jobs
    }

    /// The plugins' HTTP operations.
    pub fn routes(&self) -> impl Iterator<Item = (&PluginId, &PluginRoutes)> {
        self.plugins
            .iter()
            .filter_map(|p| p.routes.as_ref().map(|r| (&p.id, r)))
    }
}

pub(super) fn registration(id: &PluginId, detail: String) -> PluginError {
    PluginError::Registration {
        plugin: id.to_string(),
        detail,
    }
}

/// Versions above 0 and distinct; every migration passes the static check.
fn check_migrations(
    id: &PluginId,
    mut migrations: Vec<PluginMigration>,
) -> Result<Vec<CheckedMigration>, PluginError> {
    migrations.sort_by_key(|m| m.version);
    let mut checked: Vec<CheckedMigration> = Vec::with_capacity(migrations.len());
    for migration in migrations {
        if migration.version <= 0 {
            return Err(registration(
                id,
                format!("migration {} needs a version above 0", migration.label()),
            ));
        }
        if let Some(previous) = checked
            .last()
            .filter(|c| c.migration.version == migration.version)
        {
            return Err(registration(
                id,
                format!(
                    "migrations {} and {} share a version",
                    previous.migration.label(),
                    migration.label()
                ),
            ));
        }
        let statements =
            sql_check::check(&migration.sql, &id.schema()).map_err(|r| PluginError::Refused {
                plugin: id.to_string(),
                migration: migration.label(),
                statement: r.statement,
                detail: r.detail,
                text: r.text,
            })?;
        checked.push(CheckedMigration {
            migration,
            statements,
        });
    }
    Ok(checked)
}
