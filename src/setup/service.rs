//! The one state machine of this process's database: `POST /api/db/setup` and the start-up
//! bring-up are transitions of it, taken under one lock, with the background work tracked so
//! shutdown can end it in order.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Mutex, MutexGuard};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use super::bootstrap::{self, bootstrap, InitializerPolicy};
use super::error::SetupError;
use super::selection_file::{self, DatabaseSelection, SelectionState, POSTGRESQL};
use crate::config::PoolSettings;
use crate::db::{Database, PgConnector};
use crate::lifecycle::{Backoff, Initializer, Phase};

/// First and longest delay between two start-up attempts while PostgreSQL is unavailable.
const RETRY_FIRST: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(30);
/// First delay between two read-only looks for a setup performed by a peer replica.
const WATCH_FIRST: Duration = Duration::from_secs(1);
/// How long shutdown waits for a transition in progress (a setup call) to finish.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(30);

/// A completed setup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupCompleted {
    /// An initializer failed: the database is usable but some service may need a restart.
    pub restart_required: bool,
}

/// Owns the database lifecycle of the process; one per process, shared by handlers.
pub struct SetupService {
    selection_path: PathBuf,
    connector: Result<PgConnector, Vec<&'static str>>,
    pool_settings: PoolSettings,
    database: Database,
    initializers: Vec<Arc<dyn Initializer>>,
    /// Every transition (setup call, start-up attempt, shutdown) holds it: one at a time in
    /// this process; the advisory lock does the same across processes.
    transition: Mutex<()>,
    phase: watch::Sender<Phase>,
    /// Background work (the start-up retries, setup calls whose client left): awaited at
    /// shutdown so nothing installs a pool after the database was closed.
    tasks: TaskTracker,
    cancel: CancellationToken,
    /// Why the start was refused, when [`Phase::Refused`].
    refusal: std::sync::Mutex<Option<String>>,
    /// Why the last attempt left the database [`Phase::Unavailable`].
    unavailable_reason: std::sync::Mutex<Unavailability>,
}

/// What a caller may learn about why the database is not served (see
/// [`SetupService::unavailable_message`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unavailability {
    /// PostgreSQL answered without a free connection slot.
    NoSlots,
    /// A setup is recorded, but PostgreSQL could not be used.
    NotServed,
    /// PostgreSQL could not be asked whether a setup is recorded.
    Unknown,
}

/// What one start-up attempt ended with.
enum Attempt {
    /// Nothing more to do (serving, shutting down, or a misconfiguration only a restart fixes).
    Settled,
    /// Setup has not been performed: look again later, for a replica whose peer gets the
    /// setup call (read-only looks, so nothing is touched before setup).
    Watch,
    /// Try again after a delay.
    Retry(SetupError),
}

/// A transition in progress: the in-process lock, and the deadline that bounds every lock
/// wait of this transition (in-process and advisory), so the whole wait is
/// `POSTGRES_SETUP_LOCK_TIMEOUT_MS` at most.
struct Transition<'a> {
    _guard: MutexGuard<'a, ()>,
    lock_deadline: Instant,
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
            transition: Mutex::new(()),
            phase: watch::Sender::new(Phase::Checking),
            tasks: TaskTracker::new(),
            cancel: CancellationToken::new(),
            refusal: std::sync::Mutex::new(None),
            unavailable_reason: std::sync::Mutex::new(Unavailability::Unknown),
        }
    }

    /// Whether credentials are complete (`configured` in the status answer).
    pub fn is_configured(&self) -> bool {
        self.connector.is_ok()
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        *self.phase.borrow()
    }

    /// A receiver of phase changes (to start services once the database is served).
    pub fn watch_phase(&self) -> watch::Receiver<Phase> {
        self.phase.subscribe()
    }

    /// Why this process refuses to serve the database, when it does ([`Phase::Refused`]):
    /// an operator-facing message naming what to change.
    pub fn refusal(&self) -> Option<String> {
        self.refusal.lock().ok().and_then(|r| r.clone())
    }

    /// Why a database whose setup is recorded is not served yet ([`Phase::Unavailable`]), in
    /// words fit for an unauthenticated caller (no address, no PostgreSQL message), so a
    /// readiness probe does not send an operator to a setup wizard that has nothing to do.
    pub fn unavailable_message(&self) -> Option<String> {
        use super::error::{NOT_SERVED_MESSAGE, NO_SLOTS_MESSAGE, RETRIES, UNKNOWN_MESSAGE};
        if self.phase() != Phase::Unavailable {
            return None;
        }
        let reason = self
            .unavailable_reason
            .lock()
            .map(|r| *r)
            .unwrap_or(Unavailability::Unknown);
        Some(match reason {
            Unavailability::NoSlots => format!("{NO_SLOTS_MESSAGE} {RETRIES}"),
            Unavailability::NotServed => NOT_SERVED_MESSAGE.to_owned(),
            Unavailability::Unknown => UNKNOWN_MESSAGE.to_owned(),
        })
    }

    /// Enters [`Phase::Unavailable`] because of `e`; `recorded` says whether a setup is known
    /// to be recorded.
    fn unavailable(&self, e: &SetupError, recorded: bool) {
        let reason = match e {
            SetupError::NoSlots(_) => Unavailability::NoSlots,
            _ if recorded => Unavailability::NotServed,
            _ => Unavailability::Unknown,
        };
        if let Ok(mut slot) = self.unavailable_reason.lock() {
            *slot = reason;
        }
        self.phase.send_replace(Phase::Unavailable);
    }

    fn refuse(&self, reason: String) {
        error!("{reason}");
        if let Ok(mut slot) = self.refusal.lock() {
            *slot = Some(reason);
        }
        self.phase.send_replace(Phase::Refused);
    }

    /// The connector, once credentials are complete.
    pub fn connector(&self) -> Option<&PgConnector> {
        self.connector.as_ref().ok()
    }

    /// Starts the bring-up in the background: serve a database whose setup is recorded (in
    /// the selection file, or, for a replica with a folder of its own, in the database),
    /// retrying while PostgreSQL is unavailable. Returns once the outcome is known or
    /// `wait` elapsed, so the first HTTP answers after a restart already tell the truth.
    pub async fn start(self: &Arc<Self>, wait: Duration) {
        let this = self.clone();
        self.tasks
            .spawn(async move { this.bring_up_until_settled().await });
        let mut phase = self.watch_phase();
        let settled = phase.wait_for(|p| !p.is_settling());
        if tokio::time::timeout(wait, settled).await.is_err() {
            info!(
                waited_ms = wait.as_millis() as u64,
                "the database is still starting; serving HTTP meanwhile"
            );
        }
    }

    /// Performs setup: creates and migrates the database, runs the initializers, writes the
    /// selection file last, then serves the new pool. Any failure leaves no file behind. The
    /// work runs as a tracked task, so a client that disconnects cannot cancel it halfway.
    pub async fn setup(self: &Arc<Self>) -> Result<SetupCompleted, SetupError> {
        let this = self.clone();
        let task = self.tasks.spawn(async move {
            let outcome = this.setup_now().await;
            if let Err(SetupError::Refused(reason)) = &outcome {
                this.refuse(reason.clone());
            }
            outcome
        });
        task.await.map_err(|e| {
            error!(error = %e, "the setup task ended unexpectedly");
            SetupError::Initialization("the setup task ended unexpectedly".into())
        })?
    }

    /// Stops the lifecycle in order: no new transition starts, the start-up retries end, a
    /// setup call in progress finishes (bounded), then the pool is closed.
    pub async fn shutdown(&self) {
        self.cancel.cancel();
        self.tasks.close();
        let waited = tokio::time::timeout(SHUTDOWN_WAIT, async {
            self.tasks.wait().await;
            let _guard = self.transition.lock().await;
            self.phase.send_replace(Phase::Stopped);
        })
        .await;
        if waited.is_err() {
            warn!("a database transition did not finish in time; closing anyway");
            self.phase.send_replace(Phase::Stopped);
        }
        self.database.close();
    }

    async fn setup_now(&self) -> Result<SetupCompleted, SetupError> {
        let transition = self.lock().await?;
        match selection_file::read(&self.selection_path) {
            SelectionState::Present(selection) => {
                if selection.database_type == POSTGRESQL && !self.database.is_ready() {
                    // Recorded here but not serving (the process stopped between writing the
                    // file and committing, or PostgreSQL was down at start): finish the
                    // start-up's job, initializers included, rather than answer 409 while
                    // every handler answers 503.
                    let connector = self.credentials()?;
                    self.serve_recorded(connector, &transition).await?;
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
        let connector = self.credentials()?;
        let ready = bootstrap(
            connector,
            &self.pool_settings,
            &self.initializers,
            InitializerPolicy::UnlessSetUp,
            transition.lock_deadline,
        )
        .await?;
        let ready = ready.commit(self.selection_writer()).await?;
        let already_set_up = ready.already_set_up;
        let restart_required = !ready.failed_initializers.is_empty();
        self.serve(ready.pool);
        if already_set_up {
            info!("the database was already set up by another process; this one now serves it");
            return Err(SetupError::AlreadyPerformed {
                database_type: POSTGRESQL.into(),
            });
        }
        info!(restart_required, "database setup completed");
        Ok(SetupCompleted { restart_required })
    }

    /// Start-up attempts until the database is served, or a misconfiguration needs a
    /// restart. An attempt in progress is never cancelled (its blocking work could outlive
    /// it); shutdown cancels the waits between attempts.
    async fn bring_up_until_settled(&self) {
        let mut retry = Backoff::new(RETRY_FIRST, RETRY_MAX);
        let mut watch = Backoff::new(WATCH_FIRST, RETRY_MAX);
        loop {
            let attempt = match self.lock().await {
                Ok(transition) => self.bring_up_once(&transition).await,
                Err(SetupError::ShuttingDown) => return,
                Err(busy) => Attempt::Retry(busy),
            };
            let delay = match attempt {
                Attempt::Settled => return,
                Attempt::Watch => watch.next_delay(),
                Attempt::Retry(e) => {
                    let delay = retry.next_delay();
                    let retry_in_ms = delay.as_millis() as u64;
                    match &e {
                        SetupError::Unreachable(_) | SetupError::NoSlots(_) | SetupError::Busy => {
                            warn!(error = %e, retry_in_ms, "database not available yet");
                        }
                        _ => error!(error = %e, retry_in_ms, "database initialization failed"),
                    }
                    delay
                }
            };
            tokio::select! {
                () = self.cancel.cancelled() => return,
                () = tokio::time::sleep(delay) => {}
            }
        }
    }

    /// One start-up attempt, under the transition lock.
    async fn bring_up_once(&self, transition: &Transition<'_>) -> Attempt {
        if matches!(self.phase(), Phase::Ready | Phase::Stopped | Phase::Refused) {
            return Attempt::Settled;
        }
        let recorded_here = match selection_file::read(&self.selection_path) {
            SelectionState::Present(selection) if selection.database_type == POSTGRESQL => true,
            SelectionState::Present(selection) => {
                error!(
                    "Database type '{}' is no longer supported. DeployStack now requires PostgreSQL. Please reconfigure your database.",
                    selection.database_type
                );
                self.phase.send_replace(Phase::SetupRequired);
                return Attempt::Settled;
            }
            SelectionState::Unreadable(reason) => {
                warn!(file = %self.selection_path.display(), %reason, "unreadable selection file; waiting for setup");
                self.phase.send_replace(Phase::SetupRequired);
                return Attempt::Settled;
            }
            SelectionState::Absent => false,
        };
        let connector = match &self.connector {
            Ok(connector) => connector,
            Err(missing) => {
                if recorded_here {
                    error!(
                        ?missing,
                        "setup was performed but the credentials are incomplete"
                    );
                } else {
                    info!(?missing, "database credentials are incomplete");
                }
                self.phase.send_replace(Phase::SetupRequired);
                return Attempt::Settled;
            }
        };
        if !recorded_here {
            // A replica with a folder of its own: the database may record a setup that
            // another instance performed. Only a read-only look: nothing is created.
            match bootstrap::setup_recorded(connector).await {
                Ok(false) => {
                    if self.phase() != Phase::SetupRequired {
                        info!(
                            "database setup has not been performed; waiting for POST /api/db/setup"
                        );
                        self.phase.send_replace(Phase::SetupRequired);
                    }
                    return Attempt::Watch;
                }
                Ok(true) => {
                    info!("the database records a completed setup; serving it");
                }
                Err(e) => {
                    self.unavailable(&e, false);
                    return Attempt::Retry(e);
                }
            }
        }
        // A retry stays unavailable (with its reason) until it succeeds.
        if self.phase() != Phase::Unavailable {
            self.phase.send_replace(Phase::Starting);
        }
        match self.serve_recorded(connector, transition).await {
            Ok(()) => {
                info!("database ready");
                Attempt::Settled
            }
            Err(SetupError::Refused(reason)) => {
                self.refuse(reason);
                Attempt::Settled
            }
            Err(e) => {
                self.unavailable(&e, true);
                Attempt::Retry(e)
            }
        }
    }

    /// Migrates, initializes and serves a database whose setup is recorded (the initializers
    /// always run: they prepare this process too), writing this folder's selection file when
    /// it has none (a replica's first start).
    async fn serve_recorded(
        &self,
        connector: &PgConnector,
        transition: &Transition<'_>,
    ) -> Result<(), SetupError> {
        let ready = bootstrap(
            connector,
            &self.pool_settings,
            &self.initializers,
            InitializerPolicy::Always,
            transition.lock_deadline,
        )
        .await?;
        let ready = ready.commit(self.selection_writer()).await?;
        self.serve(ready.pool);
        Ok(())
    }

    /// Writes the selection file unless one is there already; runs inside the transaction
    /// that records the setup, off the async threads (it fsyncs).
    fn selection_writer(&self) -> impl FnOnce() -> std::io::Result<()> + Send + 'static {
        let path = self.selection_path.clone();
        move || match selection_file::read(&path) {
            SelectionState::Present(_) => Ok(()),
            _ => selection_file::write_atomic(&path, &DatabaseSelection::postgresql_now()),
        }
    }

    /// Publishes the pool, unless the process is shutting down (the shutdown wait may have
    /// run out while this transition finished): then the pool is dropped.
    fn serve(&self, pool: crate::db::LivePool) {
        if self.phase() == Phase::Stopped {
            return;
        }
        self.database.install(pool);
        if let Ok(mut refusal) = self.refusal.lock() {
            *refusal = None;
        }
        self.phase.send_replace(Phase::Ready);
    }

    fn credentials(&self) -> Result<&PgConnector, SetupError> {
        self.connector
            .as_ref()
            .map_err(|missing| SetupError::Incomplete {
                missing: missing.clone(),
            })
    }

    /// The transition lock, waited for at most the setup lock timeout; refused once the
    /// process is shutting down.
    async fn lock(&self) -> Result<Transition<'_>, SetupError> {
        let lock_deadline = Instant::now() + self.pool_settings.setup_lock_timeout;
        let guard = tokio::time::timeout_at(lock_deadline, self.transition.lock())
            .await
            .map_err(|_| SetupError::Busy)?;
        if self.phase() == Phase::Stopped || self.cancel.is_cancelled() {
            return Err(SetupError::ShuttingDown);
        }
        Ok(Transition {
            _guard: guard,
            lock_deadline,
        })
    }
}
