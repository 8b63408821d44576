//! The worker runtime of one process: claimers that take due jobs in batches (woken by
//! notifications, polling as a fallback), one task per running job, a flusher that writes
//! outcomes many at a time, and a lease keeper that renews this worker's leases and takes
//! back those of dead workers.
//!
//! Renewals and outcomes go through connections reserved for the queue (see
//! [`Shared::upkeep_conn`]), never the request pool: HTTP load or slow handlers holding every
//! pooled connection cannot make a lease expire under a live run. A run stays listed (and
//! its lease renewed) until its outcome is written. A run whose lease was taken back anyway
//! (the process stalled past it) is cancelled through its [`JobContext::cancel`] token and
//! dropped after a third of the lease; a run past its timeout is cancelled and fails.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::FutureExt;
use rand::Rng;
use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::{AbortHandle, JoinHandle};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::config::{JobSettings, PoolSettings};
use crate::db::pool::{DbConn, LivePool};
use crate::db::{Database, DbError, PgConnector};
use crate::jobs::claim::{claim, position_after, ClaimedJob};
use crate::jobs::job::{JobContext, Registry, RunFailure};
use crate::jobs::lease;
use crate::jobs::settle::{End, Outcome};
use crate::lifecycle::Backoff;

/// Upstream's error for a job whose type has no handler, kept word for word.
pub fn no_worker_message(job_type: &str) -> String {
    format!("No worker registered for job type: {job_type}")
}

/// Most jobs the claimers of one runtime ask for at once (one claim takes at most 1,000):
/// PostgreSQL's cost per job falls with the claim's size, so short jobs drain fast.
const MAX_CLAIM: u32 = 2000;
/// How long shutdown waits for aborted handlers to end.
const ABORT_WAIT: Duration = Duration::from_secs(5);
/// Longest wait for free slots before a claim while jobs are flowing.
const GATHER_WAIT: Duration = Duration::from_millis(1);
/// Longest retry delay.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(86_400);

/// What this process's workers did since they started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerCounters {
    /// Jobs claimed.
    pub claimed: u64,
    /// Runs written as completed.
    pub completed: u64,
    /// Runs written as to be retried.
    pub retried: u64,
    /// Runs written as failed.
    pub failed: u64,
    /// Outcomes dropped because the lease had been taken over.
    pub superseded: u64,
    /// Claims made after a notification.
    pub woken: u64,
    /// Runs cancelled because their lease had been taken back while they ran.
    pub lost: u64,
    /// Runs stopped for running past their timeout.
    pub timed_out: u64,
}

#[derive(Default)]
pub(super) struct Counters {
    claimed: AtomicU64,
    pub(super) completed: AtomicU64,
    pub(super) retried: AtomicU64,
    pub(super) failed: AtomicU64,
    pub(super) superseded: AtomicU64,
    woken: AtomicU64,
    lost: AtomicU64,
    timed_out: AtomicU64,
}

pub(super) struct Running {
    /// The run this entry is for: a job whose lease expired while it ran here may be
    /// claimed again (a later attempt) before the first run ends.
    attempt: i32,
    abort: Option<AbortHandle>,
    /// The run's [`JobContext::cancel`]: cancelled by the lease keeper when its lease was
    /// taken back, or by the run itself past its timeout (it then ends at once, with an
    /// outcome to write). One token for both: a run's own cancellation costs one token.
    cancel: CancellationToken,
    /// The handler ended and its outcome waits to be written: the lease is renewed until
    /// it is, so the job cannot be taken back and run again meanwhile.
    finished: bool,
}

pub(super) struct Shared {
    pub(super) db: Database,
    /// Connections for renewals, outcomes and hand-backs only (none without a connector).
    reserved: Option<LivePool>,
    registry: Registry,
    pub(super) settings: JobSettings,
    pub(super) worker: String,
    pub(super) wake: Arc<Notify>,
    permits: Arc<Semaphore>,
    pub(super) running: Mutex<HashMap<String, Running>>,
    outcomes: mpsc::UnboundedSender<Outcome>,
    /// The earliest retry this worker scheduled, so it claims it on time without polling.
    pub(super) next_due: Mutex<Option<Instant>>,
    /// Given to handlers as [`JobContext::shutdown`].
    handler_stop: CancellationToken,
    pub(super) counters: Counters,
}

pub(super) fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Running workers; stop them with [`Workers::shutdown`].
pub struct Workers {
    shared: Arc<Shared>,
    /// Stops claiming (and the listener).
    stop_claiming: CancellationToken,
    /// Stops the flusher, after the handlers.
    stop_flush: CancellationToken,
    /// Stops the lease keeper, after the flusher wrote the last outcomes.
    stop_keeper: CancellationToken,
    handlers: TaskTracker,
    claimers: Vec<JoinHandle<()>>,
    flusher: JoinHandle<()>,
    keeper: JoinHandle<()>,
    listener: Option<JoinHandle<()>>,
}

impl Workers {
    /// Starts workers running `registry`'s handlers on `db`. With a `connector` they wake on
    /// notifications (a dedicated LISTEN connection); without, they poll.
    pub fn start(
        db: Database,
        connector: Option<PgConnector>,
        registry: Registry,
        settings: JobSettings,
    ) -> Self {
        let concurrency = settings.concurrency.max(1) as usize;
        let (tx, rx) = mpsc::unbounded_channel();
        let reserved = connector
            .as_ref()
            .map(|connector| LivePool::new(connector, &reserved_settings()));
        let shared = Arc::new(Shared {
            db,
            reserved,
            registry,
            worker: worker_name(),
            wake: Arc::new(Notify::new()),
            permits: Arc::new(Semaphore::new(concurrency)),
            running: Mutex::new(HashMap::new()),
            outcomes: tx,
            next_due: Mutex::new(None),
            handler_stop: CancellationToken::new(),
            counters: Counters::default(),
            settings,
        });
        let stop_claiming = CancellationToken::new();
        let stop_flush = CancellationToken::new();
        let stop_keeper = CancellationToken::new();
        let handlers = TaskTracker::new();
        let listener = connector.map(|connector| {
            tokio::spawn(super::wakeup::listen(
                connector,
                shared.wake.clone(),
                stop_claiming.clone(),
            ))
        });
        info!(
            worker = %shared.worker,
            concurrency,
            types = ?shared.registry.types(),
            "job workers started"
        );
        Self {
            claimers: (0..claimers(concurrency))
                .map(|_| {
                    tokio::spawn(claim_loop(
                        shared.clone(),
                        stop_claiming.clone(),
                        handlers.clone(),
                    ))
                })
                .collect(),
            flusher: tokio::spawn(super::outcomes::flush_loop(
                shared.clone(),
                rx,
                stop_flush.clone(),
            )),
            keeper: tokio::spawn(super::lease_keeper::run(
                shared.clone(),
                stop_keeper.clone(),
            )),
            shared,
            stop_claiming,
            stop_flush,
            stop_keeper,
            handlers,
            listener,
        }
    }

    /// What wakes the claimer (for [`crate::jobs::JobQueue::attach`]).
    pub(crate) fn wake(&self) -> &Arc<Notify> {
        &self.shared.wake
    }

    /// This worker's name, as stored in `locked_by`.
    pub fn name(&self) -> &str {
        &self.shared.worker
    }

    /// Counts since start.
    pub fn counters(&self) -> WorkerCounters {
        let c = &self.shared.counters;
        WorkerCounters {
            claimed: c.claimed.load(Ordering::Relaxed),
            completed: c.completed.load(Ordering::Relaxed),
            retried: c.retried.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            superseded: c.superseded.load(Ordering::Relaxed),
            woken: c.woken.load(Ordering::Relaxed),
            lost: c.lost.load(Ordering::Relaxed),
            timed_out: c.timed_out.load(Ordering::Relaxed),
        }
    }

    /// Jobs running now (not those that ended and wait for their outcome to be written).
    pub fn running(&self) -> usize {
        locked(&self.shared.running)
            .values()
            .filter(|r| !r.finished)
            .count()
    }

    /// Stops claiming, gives running handlers the shutdown timeout to finish, hands the jobs
    /// of those that did not back (they run again elsewhere, the attempt not counted), and
    /// writes every outcome before returning.
    pub async fn shutdown(self) {
        self.stop_claiming.cancel();
        for claimer in self.claimers {
            let _ = claimer.await;
        }
        if let Some(listener) = self.listener {
            let _ = listener.await;
        }
        self.shared.handler_stop.cancel();
        self.handlers.close();
        let timeout = self.shared.settings.shutdown_timeout;
        if tokio::time::timeout(timeout, self.handlers.wait())
            .await
            .is_err()
        {
            // Runs that ended keep their entry: their outcome is on its way to the flusher.
            let unfinished: Vec<(String, Option<AbortHandle>)> = {
                let mut running = locked(&self.shared.running);
                let ids: Vec<String> = running
                    .iter()
                    .filter(|(_, r)| !r.finished)
                    .map(|(id, _)| id.clone())
                    .collect();
                ids.into_iter()
                    .filter_map(|id| running.remove(&id).map(|r| (id, r.abort)))
                    .collect()
            };
            for (_, abort) in &unfinished {
                if let Some(abort) = abort {
                    abort.abort();
                }
            }
            // Aborted tasks end at their next await; code that never yields cannot be
            // stopped, and must not hold the shutdown.
            if tokio::time::timeout(ABORT_WAIT, self.handlers.wait())
                .await
                .is_err()
            {
                warn!("job handlers ignore the abort (blocking code?); not waiting for them");
            }
            let ids: Vec<String> = unfinished.into_iter().map(|(id, _)| id).collect();
            warn!(
                jobs = ids.len(),
                timeout_ms = timeout.as_millis() as u64,
                "job handlers did not finish in time; handing their jobs back"
            );
            match self.shared.upkeep_conn().await {
                Ok(mut conn) => {
                    if let Err(e) = lease::release(&mut conn, &self.shared.worker, &ids).await {
                        warn!(error = %e, "cannot hand jobs back; they run again when their lease expires");
                    }
                }
                Err(e) => {
                    warn!(error = %e, "cannot hand jobs back; they run again when their lease expires")
                }
            }
        }
        // The keeper renews the leases of written-out runs until the flusher is done.
        self.stop_flush.cancel();
        let _ = self.flusher.await;
        self.stop_keeper.cancel();
        let _ = self.keeper.await;
        info!(worker = %self.shared.worker, "job workers stopped");
    }
}

/// `host:pid:random`, unique per start, readable in `locked_by`.
fn worker_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into());
    let tag: u32 = rand::rng().random();
    format!("{host}:{}:{tag:08x}", std::process::id())
}

/// Claimers of a runtime running `concurrency` jobs at once. Two keep two claims in flight
/// once the jobs are many and short (PostgreSQL works on one while the other travels);
/// a single one suffices for a few jobs at a time.
fn claimers(concurrency: usize) -> usize {
    if concurrency >= 32 {
        2
    } else {
        1
    }
}

async fn claim_loop(shared: Arc<Shared>, stop: CancellationToken, handlers: TaskTracker) {
    let concurrency = shared.settings.concurrency.max(1) as usize;
    let claim_max = concurrency.min(MAX_CLAIM as usize) / claimers(concurrency);
    let lease_ms = shared.settings.lease.as_secs_f64() * 1000.0;
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    let mut failing = false;
    let mut woken = false;
    let mut last_full = false;
    loop {
        let first = tokio::select! {
            p = shared.permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
            () = stop.cancelled() => return,
        };
        let mut slots: Vec<OwnedSemaphorePermit> = vec![first];
        while slots.len() < claim_max {
            match shared.permits.clone().try_acquire_owned() {
                Ok(p) => slots.push(p),
                Err(_) => break,
            }
        }
        if last_full && slots.len() < claim_max / 2 {
            // Jobs are flowing and slots come back one by one: a moment's wait gathers
            // enough for a claim worth its round trip, instead of claiming one job at a time.
            let until = Instant::now() + GATHER_WAIT;
            while slots.len() < claim_max / 2 {
                match tokio::time::timeout_at(until, shared.permits.clone().acquire_owned()).await {
                    Ok(Ok(p)) => slots.push(p),
                    _ => break,
                }
            }
        }
        let wanted = slots.len();
        let claimed = match shared.db.conn().await {
            Ok(mut conn) => match claim(&mut conn, &shared.worker, wanted as i32, lease_ms).await {
                // With replicas, the runs read nothing older than their enqueue.
                Ok(jobs) if !jobs.is_empty() && shared.db.has_replicas() => {
                    let after = position_after(&mut conn).await;
                    Ok((jobs, after))
                }
                Ok(jobs) => Ok((jobs, 0)),
                Err(e) => Err(e.to_string()),
            },
            Err(e) => Err(e.to_string()),
        };
        let (jobs, after_lsn) = match claimed {
            Ok(claimed) => claimed,
            Err(e) => {
                drop(slots);
                if !failing {
                    warn!(error = %e, "cannot claim jobs; retrying");
                    failing = true;
                } else {
                    debug!(error = %e, "cannot claim jobs");
                }
                tokio::select! {
                    () = tokio::time::sleep(backoff.next_delay()) => {}
                    () = stop.cancelled() => return,
                }
                continue;
            }
        };
        if failing {
            info!("claiming jobs again");
            failing = false;
        }
        backoff.reset();
        let full = jobs.len() == wanted;
        last_full = full;
        shared
            .counters
            .claimed
            .fetch_add(jobs.len() as u64, Ordering::Relaxed);
        if woken && !jobs.is_empty() {
            shared.counters.woken.fetch_add(1, Ordering::Relaxed);
        }
        woken = false;
        for (job, permit) in jobs.into_iter().zip(slots.drain(..)) {
            spawn_job(&shared, &handlers, job, permit, after_lsn);
        }
        drop(slots);
        if full {
            // More may be due: recruit a waiting claimer, if any.
            shared.wake.notify_one();
            continue;
        }
        // Nothing more is due: wait for a notification, a retry coming due, or the poll.
        let now = Instant::now();
        let mut deadline = now + shared.settings.poll_interval;
        {
            let mut next_due = locked(&shared.next_due);
            match *next_due {
                Some(due) if due <= now => {
                    *next_due = None;
                    continue;
                }
                Some(due) => deadline = deadline.min(due),
                None => {}
            }
        }
        tokio::select! {
            () = shared.wake.notified() => woken = true,
            () = tokio::time::sleep_until(deadline) => {}
            () = stop.cancelled() => return,
        }
    }
}

fn spawn_job(
    shared: &Arc<Shared>,
    handlers: &TaskTracker,
    job: ClaimedJob,
    permit: OwnedSemaphorePermit,
    after_lsn: u64,
) {
    let ClaimedJob {
        id,
        job_type,
        payload,
        attempts: attempt,
        max_attempts,
        batch_id,
    } = job;
    let cancel = CancellationToken::new();
    // Listed before the task starts, so a fast job cannot finish (and unlist itself) first.
    let replaced = locked(&shared.running).insert(
        id.clone(),
        Running {
            attempt,
            abort: None,
            cancel: cancel.clone(),
            finished: false,
        },
    );
    // Claimed again here while an earlier run of it still goes on (its lease was taken back
    // before the keeper noticed): that run is cancelled like any run that lost its lease.
    if let Some(earlier) = replaced.filter(|r| !r.finished && !r.cancel.is_cancelled()) {
        earlier.cancel.cancel();
        shared.counters.lost.fetch_add(1, Ordering::Relaxed);
    }
    let ctx = JobContext {
        id: id.clone(),
        attempt,
        max_attempts,
        shutdown: shared.handler_stop.clone(),
        cancel: cancel.clone(),
    };
    let handler = shared.registry.get(&job_type).cloned();
    let timeout = handler
        .as_ref()
        .and_then(|h| h.timeout())
        .or(shared.settings.timeout);
    let task_shared = shared.clone();
    let task_id = id.clone();
    let handle = handlers.spawn(async move {
        let shared = task_shared;
        let end = match handler {
            None => End::Failed(no_worker_message(&job_type)),
            // Each run is a unit of work: after it wrote, its reads see what it wrote, and
            // from the start everything committed before its claim.
            Some(handler) => {
                let run = AssertUnwindSafe(crate::db::routing::unit_of_work_after(
                    after_lsn,
                    handler.run(payload, ctx),
                ))
                .catch_unwind();
                // Cancelled with the timeout passed is a timeout (that branch comes first).
                let abandoned = async {
                    cancel.cancelled().await;
                    tokio::time::sleep(shared.settings.lease / 3).await;
                };
                let ran = tokio::select! {
                    biased;
                    ran = run => ran,
                    () = past(timeout) => {
                        cancel.cancel();
                        shared.counters.timed_out.fetch_add(1, Ordering::Relaxed);
                        let ms = timeout.map_or(0, |t| t.as_millis());
                        warn!(job = %task_id, job_type = %job_type, timeout_ms = ms as u64, "job ran past its timeout; stopped");
                        Ok(Err(RunFailure::Failed(crate::jobs::JobError::retry(format!(
                            "the job ran longer than its timeout ({ms} ms) and was stopped"
                        )))))
                    }
                    () = abandoned => {
                        // Taken back and still running: another worker may run it now. No
                        // outcome: the job is where the reaper left it.
                        shared.unlist(&task_id, attempt);
                        drop(permit);
                        return;
                    }
                };
                match ran {
                    Ok(Ok(result)) => End::Completed(result),
                    Ok(Err(RunFailure::BadPayload(message))) => End::Failed(message),
                    Ok(Err(RunFailure::Failed(e))) => shared.retry_or_fail(
                        e.message().to_owned(),
                        e.is_retryable(),
                        attempt,
                        max_attempts,
                    ),
                    Err(panic) => shared.retry_or_fail(
                        format!("the handler panicked: {}", panic_message(panic.as_ref())),
                        true,
                        attempt,
                        max_attempts,
                    ),
                }
            }
        };
        // Only the run that still holds its entry reports: an entry taken by shutdown means
        // the job is being handed back, one of a later attempt means this run was superseded.
        // The entry stays (finished) until the flusher wrote the outcome: its lease with it.
        let listed = {
            let mut running = locked(&shared.running);
            match running.get_mut(&task_id) {
                Some(entry) if entry.attempt == attempt => {
                    entry.finished = true;
                    true
                }
                _ => false,
            }
        };
        if listed {
            let _ = shared.outcomes.send(Outcome {
                id: task_id,
                attempt,
                batch: batch_id.is_some(),
                end,
            });
        }
        drop(permit);
    });
    if let Some(running) = locked(&shared.running).get_mut(&id) {
        if running.attempt == attempt {
            running.abort = Some(handle.abort_handle());
        }
    }
}

/// Resolves once `limit` has passed; never without one.
async fn past(limit: Option<Duration>) {
    match limit {
        Some(limit) => tokio::time::sleep(limit).await,
        None => std::future::pending().await,
    }
}

/// The reserved connections: one for the lease keeper, one per outcome writer, kept open.
fn reserved_settings() -> PoolSettings {
    let size = 1 + super::outcomes::WRITERS as u32;
    PoolSettings {
        max_size: size,
        min_idle: size,
        idle_timeout: None,
        ..PoolSettings::default()
    }
}

impl Shared {
    /// A connection for the queue's own upkeep (renewals, outcomes, hand-backs): one of the
    /// connections reserved for it, so a request pool held by HTTP load or slow handlers
    /// cannot delay a renewal past the lease; the request pool when none are reserved.
    pub(super) async fn upkeep_conn(&self) -> Result<DbConn, DbError> {
        match &self.reserved {
            Some(pool) => pool.get().await,
            None => self.db.conn().await,
        }
    }

    /// Forgets the run `id` at `attempt` (a later attempt's entry stays).
    pub(super) fn unlist(&self, id: &str, attempt: i32) {
        self.unlist_all([(id, attempt)]);
    }

    /// [`Shared::unlist`] for many runs under one lock: the flusher unlists every run of a
    /// statement, and the claimers and ending runs wait on this lock meanwhile.
    pub(super) fn unlist_all<'a>(&self, runs: impl IntoIterator<Item = (&'a str, i32)>) {
        let mut running = locked(&self.running);
        for (id, attempt) in runs {
            // One lookup in the usual case; a later attempt's entry goes back.
            if let Some(entry) = running.remove(id) {
                if entry.attempt != attempt {
                    running.insert(id.to_owned(), entry);
                }
            }
        }
    }

    /// The runs to renew: every listed one whose lease was not taken back (a finished run's
    /// outcome waits to be written, whether it ended by itself or by its timeout; renewing
    /// a lease that was taken back changes nothing).
    pub(super) fn held(&self) -> (Vec<String>, Vec<i32>) {
        locked(&self.running)
            .iter()
            .filter(|(_, r)| r.finished || !r.cancel.is_cancelled())
            .map(|(id, r)| (id.clone(), r.attempt))
            .unzip()
    }

    /// Cancels the runs of `lost` (ids the renewal at `asked` attempts no longer held) that
    /// are still going; returns how many.
    pub(super) fn cancel_lost(&self, lost: &[String], asked: &HashMap<&str, i32>) -> usize {
        let running = locked(&self.running);
        let mut cancelled = 0;
        for id in lost {
            let Some(entry) = running.get(id) else {
                continue;
            };
            if asked.get(id.as_str()) == Some(&entry.attempt)
                && !entry.finished
                && !entry.cancel.is_cancelled()
            {
                entry.cancel.cancel();
                cancelled += 1;
            }
        }
        drop(running);
        self.counters
            .lost
            .fetch_add(cancelled as u64, Ordering::Relaxed);
        cancelled
    }

    /// Another attempt after `retry_base · 2^attempt` (±20 %), or failed for good.
    fn retry_or_fail(
        &self,
        error: String,
        retryable: bool,
        attempt: i32,
        max_attempts: i32,
    ) -> End {
        if !retryable || attempt >= max_attempts {
            return End::Failed(error);
        }
        let exponent = attempt.clamp(0, 30) as u32;
        let base = self.settings.retry_base.as_secs_f64() * 1000.0;
        let jitter = rand::rng().random_range(0.8..1.2);
        let delay_ms = (base * f64::from(1u32 << exponent) * jitter)
            .min(MAX_RETRY_DELAY.as_secs_f64() * 1000.0);
        End::Retry { error, delay_ms }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".into()
    }
}
