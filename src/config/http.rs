//! How the HTTP server meets its clients: which peers are proxies to believe, which browser
//! origins may call it, and how long and how many connections it keeps.
//!
//! - `TRUSTED_PROXIES`: addresses or CIDR ranges, separated by commas (default none: the
//!   client is the TCP peer). Only from these is `X-Forwarded-For`/`Forwarded` believed.
//! - `DEPLOYSTACK_FRONTEND_URL`: origins of the web frontend, separated by commas (upstream's
//!   variable); with upstream's local development origins, what CORS and the cross-site check
//!   allow.
//! - `HTTP_HEADER_TIMEOUT_MS` (10000): a request's head must arrive in full this long after
//!   its first byte.
//! - `HTTP_KEEPALIVE_TIMEOUT_MS` (75000): a kept-alive connection that starts no new request
//!   for this long is closed (above the 60 s idle timeout of common load balancers).
//! - `HTTP_MAX_CONNECTIONS` (the descriptor limit less 1024): open connections in total; past
//!   it, new ones wait in the kernel's queue.
//! - `HTTP_MAX_CONNECTIONS_PER_ADDRESS` (256): open connections of one client address (an
//!   IPv6 /64), trusted proxies excepted; past it, new ones are closed at once.

use std::time::Duration;

use super::{ConfigError, EnvSource};
use crate::net::{AllowedOrigins, TrustedProxies};

/// Default `HTTP_HEADER_TIMEOUT_MS`.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Default `HTTP_KEEPALIVE_TIMEOUT_MS`.
pub const DEFAULT_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(75);
/// Default `HTTP_MAX_CONNECTIONS_PER_ADDRESS`.
pub const DEFAULT_MAX_PER_ADDRESS: usize = 256;
/// Descriptors kept for everything but client connections (database, files, the listener).
pub const RESERVED_DESCRIPTORS: usize = 1024;

/// HTTP settings.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Peers whose forwarding headers are believed.
    pub trusted_proxies: TrustedProxies,
    /// Browser origins allowed to call with credentials.
    pub origins: AllowedOrigins,
    /// Longest time from a request's first byte to its last header.
    pub header_timeout: Duration,
    /// Longest wait for the next request on a kept-alive connection.
    pub keepalive_timeout: Duration,
    /// Open connections at most.
    pub max_connections: usize,
    /// Open connections of one client address at most.
    pub max_per_address: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            trusted_proxies: TrustedProxies::default(),
            origins: AllowedOrigins::default(),
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            keepalive_timeout: DEFAULT_KEEPALIVE_TIMEOUT,
            max_connections: default_max_connections(),
            max_per_address: DEFAULT_MAX_PER_ADDRESS,
        }
    }
}

/// The process's descriptor limit less [`RESERVED_DESCRIPTORS`] (at least 64).
fn default_max_connections() -> usize {
    let limit = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(4096, |(soft, _)| soft);
    usize::try_from(limit)
        .unwrap_or(usize::MAX)
        .saturating_sub(RESERVED_DESCRIPTORS)
        .max(64)
}

impl HttpSettings {
    pub(super) fn from_env(env: &EnvSource) -> Result<Self, ConfigError> {
        let invalid = |name: &'static str, reason: String| ConfigError::Invalid { name, reason };
        let trusted_proxies = match env.string("TRUSTED_PROXIES") {
            Some(text) => {
                TrustedProxies::parse(&text).map_err(|e| invalid("TRUSTED_PROXIES", e))?
            }
            None => TrustedProxies::default(),
        };
        let origins = match env.string("DEPLOYSTACK_FRONTEND_URL") {
            Some(text) => {
                AllowedOrigins::parse(&text).map_err(|e| invalid("DEPLOYSTACK_FRONTEND_URL", e))?
            }
            None => AllowedOrigins::default(),
        };
        let millis = |name: &'static str, default: Duration| -> Result<Duration, ConfigError> {
            match env.parsed::<u64>(name)? {
                None => Ok(default),
                Some(ms) if (100..=3_600_000).contains(&ms) => Ok(Duration::from_millis(ms)),
                Some(ms) => Err(invalid(name, format!("must be 100 to 3600000, got {ms}"))),
            }
        };
        let count = |name: &'static str, default: usize| -> Result<usize, ConfigError> {
            match env.parsed::<usize>(name)? {
                None => Ok(default),
                Some(0) => Err(invalid(name, "must be at least 1".into())),
                Some(n) => Ok(n),
            }
        };
        Ok(Self {
            trusted_proxies,
            origins,
            header_timeout: millis("HTTP_HEADER_TIMEOUT_MS", DEFAULT_HEADER_TIMEOUT)?,
            keepalive_timeout: millis("HTTP_KEEPALIVE_TIMEOUT_MS", DEFAULT_KEEPALIVE_TIMEOUT)?,
            max_connections: count("HTTP_MAX_CONNECTIONS", default_max_connections())?,
            max_per_address: count("HTTP_MAX_CONNECTIONS_PER_ADDRESS", DEFAULT_MAX_PER_ADDRESS)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &str)]) -> Result<HttpSettings, ConfigError> {
        HttpSettings::from_env(&EnvSource::from_pairs(pairs.iter().copied()))
    }

    #[test]
    fn defaults_and_bad_values_name_their_variable() {
        let d = read(&[]).expect("defaults");
        assert!(d.trusted_proxies.is_empty());
        assert_eq!(d.header_timeout, DEFAULT_HEADER_TIMEOUT);
        assert_eq!(d.max_per_address, DEFAULT_MAX_PER_ADDRESS);
        assert!(d.max_connections >= 64);
        let set = read(&[
            ("TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1"),
            ("HTTP_HEADER_TIMEOUT_MS", "2000"),
        ])
        .expect("valid");
        assert!(set
            .trusted_proxies
            .contains("10.1.2.3".parse().expect("ip")));
        assert_eq!(set.header_timeout, Duration::from_secs(2));
        for (name, value) in [
            ("TRUSTED_PROXIES", "10.0.0.0/33"),
            ("TRUSTED_PROXIES", "proxy.example.com"),
            ("DEPLOYSTACK_FRONTEND_URL", "app.example.com"),
            ("HTTP_HEADER_TIMEOUT_MS", "5"),
            ("HTTP_KEEPALIVE_TIMEOUT_MS", "x"),
            ("HTTP_MAX_CONNECTIONS", "0"),
            ("HTTP_MAX_CONNECTIONS_PER_ADDRESS", "-1"),
        ] {
            let err = read(&[(name, value)]).expect_err(name).to_string();
            assert!(err.contains(name), "{err}");
        }
    }
}
