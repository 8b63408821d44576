//! Where `/metrics` is served, if anywhere: never on the public API without a token.

use std::net::SocketAddr;

use secrecy::{ExposeSecret, SecretString};

use super::{ConfigError, EnvSource};

/// Shortest `METRICS_TOKEN` accepted: a guessable token would expose the figures.
pub const MIN_TOKEN_LEN: usize = 16;

/// Metrics settings (`METRICS_ADDR`, `METRICS_TOKEN`).
///
/// - `METRICS_ADDR` set: `/metrics` on its own listener at that address; a non-loopback
///   address requires `METRICS_TOKEN`, so figures never leave the machine unauthenticated.
/// - `METRICS_TOKEN` set: `/metrics` also answers on the API's listener, to
///   `Authorization: Bearer <token>` only.
/// - neither: no `/metrics` at all.
#[derive(Debug, Clone, Default)]
pub struct MetricsSettings {
    /// Address of the dedicated metrics listener.
    pub addr: Option<SocketAddr>,
    /// Bearer token that scrapes must present.
    pub token: Option<SecretString>,
}

impl MetricsSettings {
    /// Whether anything serves `/metrics`.
    pub fn enabled(&self) -> bool {
        self.addr.is_some() || self.token.is_some()
    }

    pub(super) fn from_env(env: &EnvSource) -> Result<Self, ConfigError> {
        let addr: Option<SocketAddr> = env.parsed("METRICS_ADDR")?;
        let token = env.string("METRICS_TOKEN").map(SecretString::from);
        if let Some(token) = &token {
            let t = token.expose_secret();
            if t.len() < MIN_TOKEN_LEN || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(ConfigError::Invalid {
                    name: "METRICS_TOKEN",
                    reason: format!(
                        "must be at least {MIN_TOKEN_LEN} characters without spaces (e.g. `openssl rand -hex 24`)"
                    ),
                });
            }
        }
        if let Some(addr) = addr {
            if !addr.ip().is_loopback() && token.is_none() {
                return Err(ConfigError::Invalid {
                    name: "METRICS_ADDR",
                    reason: format!(
                        "{addr} is reachable from other machines: set METRICS_TOKEN as well, or use a loopback address"
                    ),
                });
            }
        }
        Ok(Self { addr, token })
    }
}
