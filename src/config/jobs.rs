//! The background job workers: how many jobs run at once, how long a claim holds a job, how
//! often the queue is polled when no notification arrives.

use std::time::Duration;

use super::pool::Millis;
use super::{ConfigError, EnvSource};

/// Jobs run at once per process when `JOB_CONCURRENCY` is unset. The built-in jobs wait on
/// PostgreSQL, not on the CPU, so a few more than the cores keep both busy.
pub const DEFAULT_CONCURRENCY: u32 = 8;
/// Fallback poll when no notification arrives (a dropped listener, a job coming due).
pub const DEFAULT_POLL_INTERVAL_MS: u64 = 1_000;
/// A claimed job is held this long without news from its worker; the worker extends it
/// every third of it while the handler runs.
pub const DEFAULT_LEASE_MS: u64 = 30_000;
/// Time running handlers get at shutdown before their jobs are handed back (upstream: 30 s).
pub const DEFAULT_SHUTDOWN_TIMEOUT_MS: u64 = 30_000;
/// First retry delay; each further attempt doubles it (upstream: 2 s, then 4 s).
pub const DEFAULT_RETRY_BASE_MS: u64 = 1_000;
/// A run longer than this fails (and is retried while attempts remain) unless its type sets
/// its own [`crate::jobs::Job::TIMEOUT`]: a handler that hangs must not hold its slot for
/// good. 30 minutes; `JOB_TIMEOUT_MS=0` lets runs take as long as they like.
pub const DEFAULT_JOB_TIMEOUT_MS: u64 = 1_800_000;
/// Queue figures are logged this often.
pub const DEFAULT_STATS_INTERVAL_MS: u64 = 300_000;

/// Worker settings of one process (`JOB_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSettings {
    /// Jobs this process runs at once; 0 runs no worker (the process still enqueues).
    pub concurrency: u32,
    /// Longest wait between two looks at the queue when no notification arrives.
    pub poll_interval: Duration,
    /// How long a claim holds a job before another worker may take it over.
    pub lease: Duration,
    /// Time given to running handlers at shutdown.
    pub shutdown_timeout: Duration,
    /// Delay before the first retry; doubled at each further attempt, with jitter.
    pub retry_base: Duration,
    /// Longest run of a job whose type sets no [`crate::jobs::Job::TIMEOUT`]; `None` (0):
    /// no limit.
    pub timeout: Option<Duration>,
    /// How often the queue's figures are logged; `None` (0) never.
    pub stats_interval: Option<Duration>,
    /// Whether this process enqueues the periodic jobs (every replica may: a slot is
    /// enqueued once whichever does it first).
    pub schedules: bool,
}

impl Default for JobSettings {
    fn default() -> Self {
        Self {
            concurrency: DEFAULT_CONCURRENCY,
            poll_interval: Duration::from_millis(DEFAULT_POLL_INTERVAL_MS),
            lease: Duration::from_millis(DEFAULT_LEASE_MS),
            shutdown_timeout: Duration::from_millis(DEFAULT_SHUTDOWN_TIMEOUT_MS),
            retry_base: Duration::from_millis(DEFAULT_RETRY_BASE_MS),
            timeout: Some(Duration::from_millis(DEFAULT_JOB_TIMEOUT_MS)),
            stats_interval: Some(Duration::from_millis(DEFAULT_STATS_INTERVAL_MS)),
            schedules: true,
        }
    }
}

impl JobSettings {
    pub(super) fn from_env(env: &EnvSource) -> Result<Self, ConfigError> {
        let ms = |name, min, max, default| {
            Millis { name, min, max }
                .read(env, default)
                .map(Duration::from_millis)
        };
        const DAY_MS: u64 = 86_400_000;
        let concurrency: u32 = env
            .parsed("JOB_CONCURRENCY")?
            .unwrap_or(DEFAULT_CONCURRENCY);
        if concurrency > 10_000 {
            return Err(ConfigError::Invalid {
                name: "JOB_CONCURRENCY",
                reason: format!("must be between 0 and 10000, got {concurrency}"),
            });
        }
        let stats = ms(
            "JOB_STATS_INTERVAL_MS",
            0,
            DAY_MS,
            DEFAULT_STATS_INTERVAL_MS,
        )?;
        let timeout = ms("JOB_TIMEOUT_MS", 0, 7 * DAY_MS, DEFAULT_JOB_TIMEOUT_MS)?;
        Ok(Self {
            concurrency,
            poll_interval: ms(
                "JOB_POLL_INTERVAL_MS",
                10,
                3_600_000,
                DEFAULT_POLL_INTERVAL_MS,
            )?,
            // At least 1.5 s: the lease is extended every third of it, and one extension
            // must fit in that time even on a busy server.
            lease: ms("JOB_LEASE_MS", 1_500, DAY_MS, DEFAULT_LEASE_MS)?,
            shutdown_timeout: ms(
                "JOB_SHUTDOWN_TIMEOUT_MS",
                0,
                3_600_000,
                DEFAULT_SHUTDOWN_TIMEOUT_MS,
            )?,
            retry_base: ms("JOB_RETRY_BASE_MS", 1, DAY_MS, DEFAULT_RETRY_BASE_MS)?,
            timeout: (!timeout.is_zero()).then_some(timeout),
            stats_interval: (!stats.is_zero()).then_some(stats),
            schedules: env.flag("JOB_SCHEDULES")?.unwrap_or(true),
        })
    }

    /// Whether this process runs workers at all.
    pub fn runs_workers(&self) -> bool {
        self.concurrency > 0
    }
}
