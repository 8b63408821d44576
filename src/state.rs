//! What request handlers share.

use std::ops::Deref;
use std::sync::Arc;

use crate::auth::Accounts;
use crate::db::Database;
use crate::jobs::JobService;
use crate::metrics::Metrics;
use crate::plugins::PluginCatalog;
use crate::settings::GlobalSettings;
use crate::setup::SetupService;

/// Attached to every request of the core's operations (not to plugin routes, which must not
/// reach the core's pool or services). One `Arc`, so attaching it costs each request a single
/// reference count, whatever the services hold.
#[derive(Clone)]
pub struct AppState(Arc<Services>);

/// The services behind [`AppState`], reached through it by `Deref`.
pub struct Services {
    /// The live pool, once setup is done.
    pub database: Database,
    /// Setup and its state.
    pub setup: Arc<SetupService>,
    /// Global settings.
    pub settings: GlobalSettings,
    /// Accounts and sessions.
    pub accounts: Arc<Accounts>,
    /// The job queue and this process's workers.
    pub jobs: JobService,
    /// The loaded plugins.
    pub plugins: Arc<PluginCatalog>,
    /// Whether the database is the embedded PostgreSQL this process started.
    pub embedded_database: bool,
    /// Prometheus metrics, when something serves them (nothing is recorded otherwise).
    pub metrics: Option<Arc<Metrics>>,
    /// Trusted proxies, allowed origins, connection limits.
    pub http: crate::config::HttpSettings,
}

impl AppState {
    /// Shares `services` with every request.
    pub fn new(services: Services) -> Self {
        Self(Arc::new(services))
    }

    /// What a metrics scrape reads.
    pub fn metric_sources(&self) -> crate::metrics::Sources {
        crate::metrics::Sources {
            phase: self.setup.watch_phase(),
            database: self.database.clone(),
            queue: self.jobs.queue().clone(),
        }
    }
}

impl Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}
