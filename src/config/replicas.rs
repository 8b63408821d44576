//! Read replicas: which servers may answer reads that tolerate lag, and how much lag.

use std::time::Duration;

use super::pool::Millis;
use super::{ConfigError, EnvSource};

/// Largest replica lag tolerated by default before reads go elsewhere.
pub const DEFAULT_READ_MAX_LAG_MS: u64 = 5_000;
/// How often each replica's health and lag are checked by default.
pub const DEFAULT_READ_CHECK_INTERVAL_MS: u64 = 1_000;

/// One replica's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaHost {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl std::fmt::Display for ReplicaHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// `POSTGRES_READ_HOSTS`, `POSTGRES_READ_MAX_LAG_MS`, `POSTGRES_READ_CHECK_INTERVAL_MS`.
///
/// Replicas serve the same database with the same credentials and TLS as the primary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaSettings {
    /// The replicas, in the order given; empty without `POSTGRES_READ_HOSTS`.
    pub hosts: Vec<ReplicaHost>,
    /// A replica further behind than this is skipped.
    pub max_lag: Duration,
    /// How often each replica is checked.
    pub check_interval: Duration,
}

impl Default for ReplicaSettings {
    fn default() -> Self {
        Self {
            hosts: Vec::new(),
            max_lag: Duration::from_millis(DEFAULT_READ_MAX_LAG_MS),
            check_interval: Duration::from_millis(DEFAULT_READ_CHECK_INTERVAL_MS),
        }
    }
}

impl ReplicaSettings {
    /// Reads the variables; `default_port` is the primary's.
    pub(super) fn from_env(
        env: &EnvSource,
        default_port: u16,
        external: bool,
    ) -> Result<Self, ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid {
            name: "POSTGRES_READ_HOSTS",
            reason,
        };
        let hosts = match env.string("POSTGRES_READ_HOSTS") {
            None => Vec::new(),
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .map(|h| parse_host(h, default_port).map_err(&invalid))
                .collect::<Result<Vec<_>, _>>()?,
        };
        if !hosts.is_empty() && !external {
            return Err(invalid(
                "replicas need an external primary: set POSTGRES_HOST and the other POSTGRES_* variables too".into(),
            ));
        }
        let max_lag = Millis {
            name: "POSTGRES_READ_MAX_LAG_MS",
            min: 0,
            max: super::pool::POSTGRES_MAX_MS,
        }
        .read(env, DEFAULT_READ_MAX_LAG_MS)?;
        let check_interval = Millis {
            name: "POSTGRES_READ_CHECK_INTERVAL_MS",
            min: 50,
            max: 3_600_000,
        }
        .read(env, DEFAULT_READ_CHECK_INTERVAL_MS)?;
        Ok(Self {
            hosts,
            max_lag: Duration::from_millis(max_lag),
            check_interval: Duration::from_millis(check_interval),
        })
    }
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`.
fn parse_host(text: &str, default_port: u16) -> Result<ReplicaHost, String> {
    let bad = || format!("`{text}` is not host[:port] (IPv6 as [address]:port)");
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':').ok_or_else(bad)?)),
        }
    } else {
        match text.split_once(':') {
            Some((host, port)) if !port.contains(':') => (host, Some(port)),
            Some(_) => return Err(bad()),
            None => (text, None),
        }
    };
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(bad());
    }
    let port = match port {
        None => default_port,
        Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(bad)?,
    };
    Ok(ReplicaHost {
        host: host.to_owned(),
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_take_the_primary_port_unless_they_name_one() {
        let parsed: Vec<String> = [
            "db-r1",
            "db-r2:6543",
            "10.0.0.7:5433",
            "[::1]:5434",
            "[fd00::2]",
        ]
        .iter()
        .map(|h| parse_host(h, 5432).expect(h).to_string())
        .collect();
        assert_eq!(
            parsed,
            [
                "db-r1:5432",
                "db-r2:6543",
                "10.0.0.7:5433",
                "[::1]:5434",
                "[fd00::2]:5432"
            ]
        );
        for bad in [
            "db:",
            "db:0",
            "db:99999",
            "::1",
            "[::1",
            "[::1]5434",
            ":5432",
            "a b",
        ] {
            assert!(parse_host(bad, 5432).is_err(), "{bad}");
        }
    }
}
