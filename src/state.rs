//! What request handlers share.

use std::sync::Arc;

use crate::db::Database;
use crate::jobs::JobService;
use crate::metrics::Metrics;
use crate::plugins::PluginCatalog;
use crate::settings::GlobalSettings;
use crate::setup::SetupService;

/// Cheap to clone; attached to every request of the core's operations (not to plugin routes,
/// which must not reach the core's pool or services).
#[derive(Clone)]
pub struct AppState {
    /// The live pool, once setup is done.
    pub database: Database,
    /// Setup and its state.
    pub setup: Arc<SetupService>,
    /// Global settings.
    pub settings: GlobalSettings,
    /// The job queue and this process's workers.
    pub jobs: JobService,
    /// The loaded plugins.
    pub plugins: Arc<PluginCatalog>,
    /// Prometheus metrics, when something serves them (nothing is recorded otherwise).
    pub metrics: Option<Arc<Metrics>>,
}
