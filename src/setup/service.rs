//! `POST /api/db/setup` and its start-up counterpart, as a service the HTTP layer calls.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tracing::{error, info, warn};

use super::bootstrap::{bootstrap, InitializerPolicy};
use super::error::SetupError;
use super::initializer::Initializer;
use super::selection_file::{self, DatabaseSelection, SelectionState, POSTGRESQL};
use crate::config::PoolSettings;
use crate::db::{Database, PgConnector};

/// A completed setup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupCompleted {
    /// An initializer failed: the database is usable but some service may need a restart.
    pub restart_required: bool,
}

/// Owns the setup state machine; one per process, shared by handlers.
pub struct SetupService {
    selection_path: PathBuf,
    connector: Result<PgConnector, Vec<&'static str>>,
    pool_settings: PoolSettings,
    database: Database,
    initializers: Vec<Arc<dyn Initializer>>,
    /// Serializes setup calls within this process; the advisory lock does it across processes.
    running: Mutex<()>,
}

impl SetupService {
    /// `connector` is `Err(missing variables)` when credentials are incomplete.
    pub fn new(
        selection_path: PathBuf,
        connector: Result<PgConnector, Vec<&'static str>>,
        pool_settings: PoolSettings,
        database: Database,
        initializers: Vec<Arc<dyn Initializer>>,
    ) -> Self {
        Self {
            selection_path,
            connector,
            pool_settings,
            database,
            initializers,
            running: Mutex::new(()),
        }
    }

    /// Whether credentials are complete (`configured` in the status answer).
    pub fn is_configured(&self) -> bool {
        self.connector.is_ok()
    }

    /// Performs setup: creates and migrates the database, runs the initializers, writes the
    /// selection file last, then serves the new pool. Any failure leaves no file behind.
    pub async fn setup(&self) -> Result<SetupCompleted, SetupError> {
        let _one_at_a_time = self.running.lock().await;
        match selection_file::read(&self.selection_path) {
            SelectionState::Present(selection) => {
                if selection.database_type == POSTGRESQL && !self.database.is_ready() {
                    // Recorded here but not serving (the process stopped between writing the
                    // file and committing, or the start-up resume is still retrying): finish
                    // the job rather than answer 409 while every handler answers 503.
                    let connector =
                        self.connector
                            .as_ref()
                            .map_err(|missing| SetupError::Incomplete {
                                missing: missing.clone(),
                            })?;
                    self.serve_existing(connector, InitializerPolicy::UnlessSetUp)
                        .await?;
                }
                return Err(SetupError::AlreadyPerformed {
                    database_type: selection.database_type,
                });
            }
            SelectionState::Unreadable(reason) => warn!(
                file = %self.selection_path.display(), %reason,
                "ignoring an unreadable selection file; setup will replace it"
            ),
            SelectionState::Absent => {}
        }
        let connector = self
            .connector
            .as_ref()
            .map_err(|missing| SetupError::Incomplete {
                missing: missing.clone(),
            })?;
        let ready = bootstrap(
            connector,
            &self.pool_settings,
            &self.initializers,
            InitializerPolicy::UnlessSetUp,
        )
        .await?;
        let path = self.selection_path.clone();
        let ready = ready
            .commit(move || {
                selection_file::write_atomic(&path, &DatabaseSelection::postgresql_now())
            })
            .await?;
        let already_set_up = ready.already_set_up;
        let restart_required = !ready.failed_initializers.is_empty();
        self.database.install(ready.pool);
        if already_set_up {
            info!("the database was already set up by another process; this one now serves it");
            return Err(SetupError::AlreadyPerformed {
                database_type: POSTGRESQL.into(),
            });
        }
        info!(restart_required, "database setup completed");
        Ok(SetupCompleted { restart_required })
    }

    /// Migrates, initializes (per `policy`) and serves a database whose setup is recorded.
    async fn serve_existing(
        &self,
        connector: &PgConnector,
        policy: InitializerPolicy,
    ) -> Result<(), SetupError> {
        let ready = bootstrap(connector, &self.pool_settings, &self.initializers, policy).await?;
        let ready = ready.commit(|| Ok(())).await?;
        self.database.install(ready.pool);
        Ok(())
    }

    /// At start: when the selection file says setup was done, migrate and serve the
    /// database, retrying with backoff while PostgreSQL is unreachable. Does nothing (and
    /// touches no database) when setup has not been performed.
    pub async fn resume(&self) {
        let selection = match selection_file::read(&self.selection_path) {
            SelectionState::Present(selection) => selection,
            SelectionState::Absent => {
                info!("database setup has not been performed; waiting for POST /api/db/setup");
                return;
            }
            SelectionState::Unreadable(reason) => {
                warn!(file = %self.selection_path.display(), %reason, "unreadable selection file; waiting for setup");
                return;
            }
        };
        if selection.database_type != POSTGRESQL {
            error!(
                "Database type '{}' is no longer supported. DeployStack now requires PostgreSQL. Please reconfigure your database.",
                selection.database_type
            );
            return;
        }
        let connector = match &self.connector {
            Ok(connector) => connector,
            Err(missing) => {
                error!(
                    ?missing,
                    "setup was performed but the credentials are incomplete"
                );
                return;
            }
        };
        let mut delay = Duration::from_millis(250);
        loop {
            match self
                .serve_existing(connector, InitializerPolicy::Always)
                .await
            {
                Ok(()) => {
                    info!("database ready");
                    return;
                }
                Err(e @ SetupError::Unreachable(_)) => {
                    warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "database not reachable yet");
                }
                Err(e) => {
                    error!(error = %e, retry_in_ms = delay.as_millis() as u64, "database initialization failed");
                }
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(30));
        }
    }
}
