//! The queue as the app runs it: the producer side is usable whenever the database is
//! served; workers, the scheduler and the stats log start once it is served (at setup or
//! at start) and stop, in order, before the pool closes.

use std::sync::Arc;

use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::JobSettings;
use crate::db::{Database, PgConnector};
use crate::jobs::handlers;
use crate::jobs::job::Registry;
use crate::jobs::queue::JobQueue;
use crate::jobs::runtime::Workers;
use crate::jobs::schedule::{self, ParsedSchedule, Schedule};

/// Shared by the app (cheap to clone).
#[derive(Clone)]
pub struct JobService {
    queue: JobQueue,
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    settings: JobSettings,
    registry: Registry,
    schedules: Vec<Schedule>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    stopped: bool,
    workers: Option<Workers>,
    background: Option<(CancellationToken, Vec<JoinHandle<()>>)>,
}

impl JobService {
    /// The built-in handlers and schedules on `db`.
    pub fn new(db: Database, settings: JobSettings) -> Self {
        let registry = handlers::registry(&db);
        Self::with(db, settings, registry, handlers::schedules())
    }

    /// Custom handlers and schedules (tests, extensions).
    pub fn with(
        db: Database,
        settings: JobSettings,
        registry: Registry,
        schedules: Vec<Schedule>,
    ) -> Self {
        Self {
            queue: JobQueue::new(db.clone()),
            inner: Arc::new(Inner {
                db,
                settings,
                registry,
                schedules,
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// The producer and admin side.
    pub fn queue(&self) -> &JobQueue {
        &self.queue
    }

    /// Starts workers (unless `JOB_CONCURRENCY=0`), the scheduler (unless
    /// `JOB_SCHEDULES=false`) and the stats log; once, and never after [`JobService::stop`].
    pub async fn start(&self, connector: Option<PgConnector>) {
        let mut state = self.inner.state.lock().await;
        if state.stopped || state.workers.is_some() || state.background.is_some() {
            return;
        }
        let settings = &self.inner.settings;
        if settings.runs_workers() {
            let workers = Workers::start(
                self.inner.db.clone(),
                connector,
                self.inner.registry.clone(),
                settings.clone(),
            );
            self.queue.attach(&workers);
            state.workers = Some(workers);
        } else {
            info!("JOB_CONCURRENCY=0: this process runs no job workers");
        }
        let stop = CancellationToken::new();
        let mut tasks = Vec::new();
        if settings.schedules {
            let parsed: Vec<ParsedSchedule> = self
                .inner
                .schedules
                .iter()
                .cloned()
                .filter_map(|s| match ParsedSchedule::new(s) {
                    Ok(p) => Some(p),
                    Err(e) => {
                        warn!(error = %e, "periodic job ignored");
                        None
                    }
                })
                .collect();
            tasks.push(tokio::spawn(schedule::run(
                self.queue.clone(),
                parsed,
                stop.clone(),
            )));
        }
        if let Some(every) = settings.stats_interval {
            tasks.push(tokio::spawn(log_stats(
                self.queue.clone(),
                every,
                stop.clone(),
            )));
        }
        state.background = Some((stop, tasks));
    }

    /// Stops the scheduler and the stats log, then the workers (see [`Workers::shutdown`]);
    /// nothing starts afterwards.
    pub async fn stop(&self) {
        let mut state = self.inner.state.lock().await;
        state.stopped = true;
        if let Some((stop, tasks)) = state.background.take() {
            stop.cancel();
            for task in tasks {
                let _ = task.await;
            }
        }
        if let Some(workers) = state.workers.take() {
            workers.shutdown().await;
        }
    }

    /// Counters of this process's workers, when they run.
    pub async fn worker_counters(&self) -> Option<crate::jobs::runtime::WorkerCounters> {
        self.inner
            .state
            .lock()
            .await
            .workers
            .as_ref()
            .map(Workers::counters)
    }
}

async fn log_stats(queue: JobQueue, every: std::time::Duration, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = stop.cancelled() => return,
        }
        match queue.stats().await {
            Ok(stats) => info!(
                pending = stats.total("pending"),
                processing = stats.total("processing"),
                completed = stats.total("completed"),
                failed = stats.total("failed"),
                oldest_pending_s = stats.oldest_pending_age_s.unwrap_or(0.0),
                by_type = %serde_json::to_string(&stats.counts).unwrap_or_default(),
                durations = %serde_json::to_string(&stats.durations).unwrap_or_default(),
                "job queue"
            ),
            Err(e) => tracing::debug!(error = %e, "cannot read the job queue figures"),
        }
    }
}
