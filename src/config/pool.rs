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
/// Idle connections are closed after this long by default.
pub const DEFAULT_IDLE_TIMEOUT_MS: u64 = 600_000;
/// Longest a single statement may run by default; 0 disables the limit.
pub const DEFAULT_STATEMENT_TIMEOUT_MS: u64 = 30_000;

/// How the pool behaves; the same in embedded and external mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSettings {
    /// Largest number of open connections.
    pub max_size: u32,
    /// Connections kept open while idle.
    pub min_idle: u32,
    /// Bound on opening a connection and on waiting for a pooled one.
    pub connect_timeout: Duration,
    /// Idle connections above `min_idle` are closed after this.
    pub idle_timeout: Duration,
    /// PostgreSQL `statement_timeout` for pooled sessions; zero means none.
    pub statement_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_size: DEFAULT_POOL_MAX,
            min_idle: DEFAULT_POOL_MIN_IDLE,
            connect_timeout: Duration::from_millis(DEFAULT_CONNECT_TIMEOUT_MS),
            idle_timeout: Duration::from_millis(DEFAULT_IDLE_TIMEOUT_MS),
            statement_timeout: Duration::from_millis(DEFAULT_STATEMENT_TIMEOUT_MS),
        }
    }
}

impl PoolSettings {
    pub(super) fn from_env(env: &EnvSource) -> Result<Self, ConfigError> {
        let d = Self::default();
        let ms = |name: &'static str, default: Duration| -> Result<Duration, ConfigError> {
            Ok(env
                .parsed::<u64>(name)?
                .map(Duration::from_millis)
                .unwrap_or(default))
        };
        let settings = Self {
            max_size: env.parsed("POSTGRES_POOL_MAX")?.unwrap_or(d.max_size),
            min_idle: env.parsed("POSTGRES_POOL_MIN_IDLE")?.unwrap_or(d.min_idle),
            connect_timeout: ms("POSTGRES_CONNECT_TIMEOUT_MS", d.connect_timeout)?,
            idle_timeout: ms("POSTGRES_IDLE_TIMEOUT_MS", d.idle_timeout)?,
            statement_timeout: ms("POSTGRES_STATEMENT_TIMEOUT_MS", d.statement_timeout)?,
        };
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
        if settings.connect_timeout.is_zero() {
            return Err(ConfigError::Invalid {
                name: "POSTGRES_CONNECT_TIMEOUT_MS",
                reason: "must be at least 1".into(),
            });
        }
        Ok(settings)
    }
}
