//! What a plugin declares: the [`Plugin`] trait that compiled plugins implement and folder
//! plugins are read into, with its migrations, settings and routes.

use std::borrow::Cow;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use poem::endpoint::BoxEndpoint;
use poem::http::Method;
use poem::EndpointExt;
use poem_openapi::{OpenApi, OpenApiService};
use sha2::{Digest, Sha256};

use super::context::PluginContext;
use crate::jobs::Registry;
use crate::settings::definition::SettingType;

/// How a plugin came to be loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginKind {
    /// Rust code registered in the binary.
    Compiled,
    /// A folder under `PLUGINS_PATH` (manifest and SQL migrations, no code).
    Folder,
}

impl PluginKind {
    /// `compiled` or `folder`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Compiled => "compiled",
            Self::Folder => "folder",
        }
    }
}

/// A plugin. Everything it touches in the database goes through the
/// [`PluginDb`](super::PluginDb) of its context, which acts as the plugin's own PostgreSQL role: the core pool is never handed out.
pub trait Plugin: Send + Sync + 'static {
    /// Id, `^[a-z][a-z0-9-]{1,40}$`: names its schema, role, settings and routes.
    fn id(&self) -> &str;
    /// Human-readable name.
    fn name(&self) -> &str;
    /// The plugin's own version (informational).
    fn version(&self) -> &str;
    /// Compiled into the binary or read from a folder.
    fn kind(&self) -> PluginKind {
        PluginKind::Compiled
    }
    /// Schema changes, applied in version order, each once, after the core migrations.
    fn migrations(&self) -> Vec<PluginMigration> {
        Vec::new()
    }
    /// Settings, joined to the global settings in a group named after the plugin id; every
    /// key starts with `<id>.`.
    fn settings(&self) -> Vec<PluginSetting> {
        Vec::new()
    }
    /// Runs after the plugin's migrations at setup and at every start; a failure is logged
    /// and makes the setup answer `restart_required`.
    fn on_database_init<'a>(
        &'a self,
        _ctx: &'a PluginContext,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async { Ok(()) })
    }
    /// Job handlers; their types start with `<id>.`.
    fn register_jobs(&self, _ctx: &PluginContext, _jobs: &mut Registry) {}
    /// HTTP operations, all under `/api/plugin/<id>/`; they join the OpenAPI document.
    fn routes(&self, _ctx: &PluginContext) -> Option<PluginRoutes> {
        None
    }
}

/// One versioned schema change of a plugin.
#[derive(Debug, Clone)]
pub struct PluginMigration {
    /// Order of application; unique within the plugin, above 0.
    pub version: i64,
    /// Short name (`create_notes`).
    pub name: String,
    /// The SQL, one or more statements separated by `;`.
    pub sql: Cow<'static, str>,
}

impl PluginMigration {
    /// A migration shipped in the binary (`include_str!`).
    pub fn new(version: i64, name: &str, sql: &'static str) -> Self {
        Self {
            version,
            name: name.to_owned(),
            sql: Cow::Borrowed(sql),
        }
    }

    /// `<version>_<name>`, as errors and the CLI name it.
    pub fn label(&self) -> String {
        format!("{:04}_{}", self.version, self.name)
    }

    /// SHA-256 of the SQL text, hex: an applied migration must keep it.
    pub fn checksum(&self) -> String {
        hex::encode(Sha256::digest(self.sql.as_bytes()))
    }
}

/// One setting a plugin declares (see [`crate::settings::definition::SettingDefinition`]).
#[derive(Debug, Clone)]
pub struct PluginSetting {
    /// Full key, starting with `<plugin id>.`.
    pub key: String,
    /// Human-readable name.
    pub name: String,
    /// Value type.
    pub kind: SettingType,
    /// Default value, as text of `kind`.
    pub default: String,
    /// What it controls.
    pub description: String,
    /// Stored encrypted.
    pub encrypted: bool,
    /// Must be filled in for the plugin to work.
    pub required: bool,
}

/// A plugin's HTTP operations: the endpoint and its share of the OpenAPI document.
pub struct PluginRoutes {
    pub(crate) endpoint: Arc<BoxEndpoint<'static>>,
    /// `(path, method)` of every operation.
    pub(crate) operations: Vec<(String, Method)>,
    pub(crate) spec: String,
}

impl PluginRoutes {
    /// The operations of a poem-openapi API; its paths must start with `/api/plugin/<id>/`
    /// (checked when the plugin is loaded).
    pub fn new<T: OpenApi + 'static>(api: T) -> Self {
        let operations = T::meta()
            .into_iter()
            .flat_map(|api| api.paths)
            .flat_map(|path| {
                let template = path.path;
                path.operations
                    .into_iter()
                    .map(move |op| (template.clone(), op.method))
            })
            .collect();
        let service = OpenApiService::new(api, "plugin", "0");
        let spec = service.spec();
        Self {
            endpoint: Arc::new(service.boxed()),
            operations,
            spec,
        }
    }

    /// Every path the operations serve.
    pub(crate) fn paths(&self) -> impl Iterator<Item = &str> {
        self.operations.iter().map(|(path, _)| path.as_str())
    }
}
