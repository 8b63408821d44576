//! Pool sizing and session timeouts for the bb8 pool of diesel-async connections.

use std::time::Duration;

use super::{ConfigError, EnvSource};

/// Pool size when `POSTGRES_POOL_MAX` is unset: enough to keep two cores busy without
/// making PostgreSQL's backends compete for them.
pub const DEFAULT_POOL_MAX: u32 = 16;
/// Idle connections kept open when `POSTGRES_POOL_MIN_IDLE` is unset.
pub const DEFAULT_POOL_MIN_IDLE: u32 = 1;
/// Time allowed to open a connection (and to wait for a free one) by default.
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 5_000;
/// Connections are recycled after about this long by default (30 minutes).
pub const DEFAULT_MAX_LIFETIME_MS: u64 = 1_800_000;
/// Idle connections are closed after this long by default.
pub const DEFAULT_IDLE_TIMEOUT_MS: u64 = 600_000;
/// Longest a single statement may run by default; 0 disables the limit.
pub const DEFAULT_STATEMENT_TIMEOUT_MS: u64 = 30_000;
/// Margin of the default client-side query deadline over the statement timeout, so
/// PostgreSQL reports a slow statement itself and only a silent server trips the deadline.
pub const QUERY_TIMEOUT_MARGIN_MS: u64 = 5_000;
/// Client-side deadline for an answer to a query by default (statement timeout + margin).
pub const DEFAULT_QUERY_TIMEOUT_MS: u64 = DEFAULT_STATEMENT_TIMEOUT_MS + QUERY_TIMEOUT_MARGIN_MS;
/// Unacknowledged data makes the kernel drop the connection after this long by default.
pub const DEFAULT_TCP_USER_TIMEOUT_MS: u64 = 30_000;
/// Statements slower than this are logged by default (`POSTGRES_SLOW_QUERY_MS`).
pub const DEFAULT_SLOW_QUERY_MS: u64 = 500;
/// How long setup waits for a setup or migration running elsewhere by default.
pub const DEFAULT_SETUP_LOCK_TIMEOUT_MS: u64 = 15_000;
/// PostgreSQL's own upper bound for time settings such as `statement_timeout` (INT_MAX ms).
pub const POSTGRES_MAX_MS: u64 = i32::MAX as u64;

/// How the pool behaves; the same in embedded and external mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSettings {
    /// Largest number of open connections.
    pub max_size: u32,
    /// Connections kept open while idle.
    pub min_idle: u32,
    /// Bound on opening a connection and on waiting for a pooled one.
    pub connect_timeout: Duration,
    /// Idle connections above `min_idle` are closed after this; `None` (0) keeps them.
    pub idle_timeout: Option<Duration>,
    /// Connections are closed and replaced once they are this old (each retired a random
    /// 0–15 % earlier); `None` (0) keeps them for good.
    pub max_lifetime: Option<Duration>,
    /// PostgreSQL `statement_timeout` for pooled sessions; zero means none.
    pub statement_timeout: Duration,
    /// Statements slower than this are logged (text without parameters, duration, request
    /// id); zero: none are.
    pub slow_query: Duration,
    /// Client-side deadline for the server's answer to a query sent on a pooled connection:
    /// past it the connection is closed and the query fails, even if the server vanished
    /// without a word (half-open TCP). Zero means none.
    pub query_timeout: Duration,
    /// `TCP_USER_TIMEOUT` of every connection; zero keeps the kernel's default.
    pub tcp_user_timeout: Duration,
    /// Longest wait for the setup and migration locks held by another setup.
    pub setup_lock_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_size: DEFAULT_POOL_MAX,
            min_idle: DEFAULT_POOL_MIN_IDLE,
            connect_timeout: Duration::from_millis(DEFAULT_CONNECT_TIMEOUT_MS),
            idle_timeout: Some(Duration::from_millis(DEFAULT_IDLE_TIMEOUT_MS)),
            max_lifetime: Some(Duration::from_millis(DEFAULT_MAX_LIFETIME_MS)),
            statement_timeout: Duration::from_millis(DEFAULT_STATEMENT_TIMEOUT_MS),
            slow_query: Duration::from_millis(DEFAULT_SLOW_QUERY_MS),
            query_timeout: Duration::from_millis(DEFAULT_QUERY_TIMEOUT_MS),
            tcp_user_timeout: Duration::from_millis(DEFAULT_TCP_USER_TIMEOUT_MS),
            setup_lock_timeout: Duration::from_millis(DEFAULT_SETUP_LOCK_TIMEOUT_MS),
        }
    }
}

/// A millisecond knob's valid range, checked at start so a bad value names its variable
/// instead of panicking in a library or being retried forever.
pub(super) struct Millis {
    pub(super) name: &'static str,
    pub(super) min: u64,
    pub(super) max: u64,
}

impl Millis {
    pub(super) fn read(&self, env: &EnvSource, default: u64) -> Result<u64, ConfigError> {
        let value = env.parsed::<u64>(self.name)?.unwrap_or(default);
        if value < self.min || value > self.max {
            return Err(ConfigError::Invalid {
                name: self.name,
                reason: format!(
                    "must be between {} and {} (milliseconds), got {value}",
                    self.min, self.max
                ),
            });
        }
        Ok(value)
    }
}

impl PoolSettings {
    pub(super) fn from_env(env: &EnvSource) -> Result<Self, ConfigError> {
        let d = Self::default();
        let ms = |name, min, default| {
            Millis {
                name,
                min,
                max: POSTGRES_MAX_MS,
            }
            .read(env, default)
            .map(Duration::from_millis)
        };
        let idle = ms("POSTGRES_IDLE_TIMEOUT_MS", 0, DEFAULT_IDLE_TIMEOUT_MS)?;
        let lifetime = ms("POSTGRES_MAX_LIFETIME_MS", 0, DEFAULT_MAX_LIFETIME_MS)?;
        let settings = Self {
            max_size: env.parsed("POSTGRES_POOL_MAX")?.unwrap_or(d.max_size),
            min_idle: env.parsed("POSTGRES_POOL_MIN_IDLE")?.unwrap_or(d.min_idle),
            connect_timeout: ms("POSTGRES_CONNECT_TIMEOUT_MS", 1, DEFAULT_CONNECT_TIMEOUT_MS)?,
            idle_timeout: (!idle.is_zero()).then_some(idle),
            max_lifetime: (!lifetime.is_zero()).then_some(lifetime),
            statement_timeout: ms(
                "POSTGRES_STATEMENT_TIMEOUT_MS",
                0,
                DEFAULT_STATEMENT_TIMEOUT_MS,
            )?,
            query_timeout: Duration::ZERO,
            slow_query: ms("POSTGRES_SLOW_QUERY_MS", 0, DEFAULT_SLOW_QUERY_MS)?,
            tcp_user_timeout: Millis {
                name: "POSTGRES_TCP_USER_TIMEOUT_MS",
                min: 0,
                max: u64::from(u32::MAX),
            }
            .read(env, DEFAULT_TCP_USER_TIMEOUT_MS)
            .map(Duration::from_millis)?,
            setup_lock_timeout: ms(
                "POSTGRES_SETUP_LOCK_TIMEOUT_MS",
                1,
                DEFAULT_SETUP_LOCK_TIMEOUT_MS,
            )?,
        };
        let mut settings = settings;
        // Unset: the statement timeout plus a margin, or none when statements may run forever.
        let statement_ms = settings.statement_timeout.as_millis() as u64;
        let default_query = if statement_ms == 0 {
            0
        } else {
            statement_ms.saturating_add(QUERY_TIMEOUT_MARGIN_MS)
        };
        // A client-side value: never sent to PostgreSQL, so not bound by its limit.
        settings.query_timeout = Millis {
            name: "POSTGRES_QUERY_TIMEOUT_MS",
            min: 0,
            max: u64::MAX / 2,
        }
        .read(env, default_query)
        .map(Duration::from_millis)?;
        let query_ms = settings.query_timeout.as_millis() as u64;
        if query_ms != 0 && statement_ms != 0 && query_ms <= statement_ms {
            return Err(ConfigError::Invalid {
                name: "POSTGRES_QUERY_TIMEOUT_MS",
                reason: format!(
                    "must exceed POSTGRES_STATEMENT_TIMEOUT_MS ({statement_ms}) so that a slow statement is reported by PostgreSQL, not cut by the client; 0 disables it"
                ),
            });
        }
        if settings.max_size == 0 {
            return Err(ConfigError::Invalid {
                name: "POSTGRES_POOL_MAX",
                reason: "must be at least 1".into(),
            });
        }
        if settings.min_idle > settings.max_size {
            return Err(ConfigError::Invalid {
                name: "POSTGRES_POOL_MIN_IDLE",
                reason: "must not exceed POSTGRES_POOL_MAX".into(),
            });
        }
        Ok(settings)
    }
}
