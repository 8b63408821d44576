//! What starts once the database is served, and stops with the lifecycle: the settings
//! change listener, the read replicas' checks, the job workers and scheduler.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::task::JoinHandle;
use tracing::info;

use crate::auth::Accounts;
use crate::config::{Config, ConnectionTarget, PostgresSource};
use crate::db::replicas::ReplicaSet;
use crate::db::Database;
use crate::jobs::JobService;
use crate::lifecycle::Phase;
use crate::settings::GlobalSettings;
use crate::setup::SetupService;

/// Starts what needs a served database (the settings change listener, the job workers and
/// scheduler) once, when it is: nothing connects to PostgreSQL before setup.
pub(super) async fn start_when_served(
    setup: Arc<SetupService>,
    settings: GlobalSettings,
    jobs: JobService,
    database: Database,
    replicas: Option<ReplicaPlan>,
    first_admin: (Arc<Accounts>, PathBuf),
) {
    let mut phase = setup.watch_phase();
    if phase.wait_for(|p| *p == Phase::Ready).await.is_err() {
        return;
    }
    let Some(connector) = setup.connector().cloned() else {
        return;
    };
    let listener = settings.listen(connector.clone());
    // Ends with the lifecycle; aborting this task drops the guards, which stop the tasks.
    let _stop_listener = AbortOnDrop(listener);
    let _stop_replica_checks = replicas
        .and_then(|plan| plan.start(&database))
        .map(AbortOnDrop);
    jobs.start(Some(connector)).await;
    super::setup_token::announce(&first_admin.0, &first_admin.1).await;
    let _ = phase.wait_for(|p| *p == Phase::Stopped).await;
}

/// The read replicas to open once the primary is served.
pub(super) struct ReplicaPlan {
    primary: ConnectionTarget,
    pool: crate::config::PoolSettings,
    settings: crate::config::ReplicaSettings,
}

impl ReplicaPlan {
    pub(super) fn from_config(config: &Config) -> Option<Self> {
        let PostgresSource::External(primary) = &config.postgres else {
            return None;
        };
        (!config.replicas.hosts.is_empty()).then(|| Self {
            primary: primary.clone(),
            pool: config.pool.clone(),
            settings: config.replicas.clone(),
        })
    }

    /// Opens the replicas' pools, serves reads from them and starts their checks.
    fn start(self, database: &Database) -> Option<JoinHandle<()>> {
        match ReplicaSet::new(&self.primary, &self.pool, &self.settings) {
            Ok(set) => {
                let set = Arc::new(set);
                database.install_replicas(set.clone());
                info!(
                    replicas = self.settings.hosts.len(),
                    "read replicas configured"
                );
                Some(tokio::spawn(crate::db::replicas::watch(set)))
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot configure TLS for the read replicas; reads stay on the primary");
                None
            }
        }
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
