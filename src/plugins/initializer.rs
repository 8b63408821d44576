//! The plugins' part of setup and start-up, after the core migrations and settings: roles,
//! schemas and migrations (must pass: a refused or changed migration stops the start), then
//! each plugin's `on_database_init` (a failure only asks for a restart, as upstream).

use std::sync::Arc;

use futures_util::future::BoxFuture;
use tokio::time::Instant;
use tracing::{error, info};

use super::catalog::PluginCatalog;
use super::error::PluginError;
use super::login::Logins;
use super::migrate::{self, Applied};
use super::mode::IsolationMode;
use super::provision::{provision, RoleAuthority, RoleLimits};
use crate::config::PluginSettings;
use crate::db::migrations::{DEFAULT_LOCK_WAIT, MIGRATION_LOCK_KEY};
use crate::db::{advisory, Database, DbError, LivePool, PgConnector};
use crate::lifecycle::{Initializer, Refusal};

/// Provisions and migrates every plugin.
pub struct PluginMigrator {
    catalog: Arc<PluginCatalog>,
    app: PgConnector,
    admin: Option<PgConnector>,
    allow_convention: bool,
    limits: RoleLimits,
}

impl PluginMigrator {
    /// Migrates through a session of `app` (the application's credentials) without
    /// statement timeout, as the core's migrations run: a plugin migration may rewrite a
    /// large table. `admin` may create roles when the application's role may not (the
    /// embedded cluster's superuser). `settings` says whether convention-only isolation is
    /// accepted and the limits of plugins' own sessions.
    pub fn new(
        catalog: Arc<PluginCatalog>,
        app: PgConnector,
        admin: Option<PgConnector>,
        settings: &PluginSettings,
    ) -> Self {
        Self {
            catalog,
            app: app.without_statement_timeout(),
            admin,
            allow_convention: settings.allow_convention,
            limits: RoleLimits {
                statement_timeout: settings.statement_timeout,
                lock_timeout: settings.lock_timeout,
            },
        }
    }

    /// Provisions and migrates on a session of its own; the mode is recorded on success.
    pub async fn run(&self) -> Result<Vec<Applied>, PluginError> {
        let mut conn = self
            .app
            .connect()
            .await
            .map_err(|e| PluginError::Db(DbError::Unavailable(e.to_string())))?;
        self.run_on(&mut conn).await
    }

    /// Provisions and migrates on `conn` under the migration lock, and records the mode on
    /// success.
    async fn run_on(
        &self,
        conn: &mut diesel_async::AsyncPgConnection,
    ) -> Result<Vec<Applied>, PluginError> {
        let deadline = Instant::now() + DEFAULT_LOCK_WAIT;
        if !advisory::lock_until(conn, MIGRATION_LOCK_KEY, deadline).await? {
            return Err(PluginError::Db(DbError::Unavailable(
                "another process is migrating this database; retry later".into(),
            )));
        }
        let outcome = async {
            let authority = RoleAuthority {
                admin: self.admin.as_ref(),
                allow_convention: self.allow_convention,
                limits: self.limits,
            };
            let provisioned = provision(conn, &self.catalog.ids(), &authority).await?;
            let mode = provisioned.mode;
            let mut logins = (mode == IsolationMode::Roles)
                .then(|| Logins::new(provisioned.admin, &self.app, self.limits));
            let applied = migrate::apply(conn, self.catalog.plugins(), logins.as_mut()).await?;
            Ok::<_, PluginError>((mode, applied))
        }
        .await;
        let unlocked = advisory::unlock(conn, MIGRATION_LOCK_KEY).await;
        let (mode, applied) = outcome?;
        unlocked?;
        self.catalog.mode_cell().set(mode);
        info!(
            isolation = mode.as_str(),
            plugins = ?self.catalog.ids().iter().map(ToString::to_string).collect::<Vec<_>>(),
            "plugins ready"
        );
        Ok(applied)
    }
}

impl Initializer for PluginMigrator {
    fn name(&self) -> &'static str {
        "plugin migrations"
    }

    fn run<'a>(&'a self, _pool: &'a LivePool) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            if self.catalog.is_empty() {
                return Ok(());
            }
            match self.run().await {
                Ok(_) => Ok(()),
                Err(e) if e.is_refusal() => Err(Refusal(e.to_string()).into()),
                Err(e) => Err(e.into()),
            }
        })
    }

    fn must_pass(&self) -> bool {
        true
    }
}

/// Runs each plugin's `on_database_init`.
pub struct PluginInitHooks {
    catalog: Arc<PluginCatalog>,
}

impl PluginInitHooks {
    /// Hooks of `catalog`'s plugins.
    pub fn new(catalog: Arc<PluginCatalog>) -> Self {
        Self { catalog }
    }
}

impl Initializer for PluginInitHooks {
    fn name(&self) -> &'static str {
        "plugin initialization"
    }

    fn run<'a>(&'a self, pool: &'a LivePool) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            // The pool is not served yet: the hooks get a handle of their own on it.
            let db = Database::new();
            db.install(pool.clone());
            let mut failed = Vec::new();
            for loaded in self.catalog.plugins() {
                let context = loaded.context.on(db.clone());
                if let Err(e) = loaded.plugin.on_database_init(&context).await {
                    error!(plugin = %loaded.id, error = %format!("{e:#}"), "plugin initialization failed");
                    failed.push(loaded.id.to_string());
                }
            }
            anyhow::ensure!(
                failed.is_empty(),
                "plugin initialization failed: {}",
                failed.join(", ")
            );
            Ok(())
        })
    }
}
