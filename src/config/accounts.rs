//! How the session cookie is sent and how many password hashes run at once.
//!
//! - `SESSION_COOKIE_SAMESITE` (`lax`, `strict` or `none`; default `lax`): `none` lets a
//!   frontend on another site send the cookie (upstream's production setting) and always
//!   comes with `Secure`.
//! - `SESSION_COOKIE_SECURE` (`true`, `false`; default: set when the request arrived over
//!   TLS, directly or as a proxy's `X-Forwarded-Proto: https` says).
//! - `AUTH_HASH_CONCURRENCY` (default: the number of cores less one, at least one): password
//!   hashes at once; each takes 19 MiB and tens of milliseconds of a core. One core stays for
//!   the async workers, so a flood of sign-ups never takes every core.
//! - `AUTH_HASH_QUEUE_WAIT_MS` (10000): the longest wait for a turn to hash; a request that
//!   would wait longer is answered 503 at once.

use super::{ConfigError, EnvSource};

/// The cookie's `SameSite` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    /// Sent on top-level navigations from other sites, never on their form posts or fetches.
    Lax,
    /// Never sent from other sites.
    Strict,
    /// Sent from every site (a frontend on another site); requires `Secure`.
    None,
}

impl SameSite {
    /// As the cookie attribute spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lax => "Lax",
            Self::Strict => "Strict",
            Self::None => "None",
        }
    }
}

/// Account and session settings.
#[derive(Debug, Clone)]
pub struct AccountSettings {
    /// `SameSite` of the session cookie.
    pub same_site: SameSite,
    /// `Secure` on the session cookie: always, never, or `None` for "when over TLS".
    pub secure: Option<bool>,
    /// Password hashes computed at once; more wait their turn.
    pub hash_concurrency: usize,
    /// Longest wait for a turn to hash.
    pub hash_queue_wait: std::time::Duration,
}

/// Default `AUTH_HASH_QUEUE_WAIT_MS`.
pub const DEFAULT_HASH_QUEUE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

impl Default for AccountSettings {
    fn default() -> Self {
        Self {
            same_site: SameSite::Lax,
            secure: None,
            hash_concurrency: default_concurrency(),
            hash_queue_wait: DEFAULT_HASH_QUEUE_WAIT,
        }
    }
}

fn default_concurrency() -> usize {
    std::thread::available_parallelism()
        .map_or(1, usize::from)
        .saturating_sub(1)
        .max(1)
}

impl AccountSettings {
    pub(super) fn from_env(env: &EnvSource) -> Result<Self, ConfigError> {
        let same_site = match env
            .string("SESSION_COOKIE_SAMESITE")
            .map(|v| v.to_ascii_lowercase())
            .as_deref()
        {
            None | Some("lax") => SameSite::Lax,
            Some("strict") => SameSite::Strict,
            Some("none") => SameSite::None,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "SESSION_COOKIE_SAMESITE",
                    reason: format!("must be lax, strict or none, got {other:?}"),
                })
            }
        };
        let secure = env.flag("SESSION_COOKIE_SECURE")?;
        if same_site == SameSite::None && secure == Some(false) {
            return Err(ConfigError::Invalid {
                name: "SESSION_COOKIE_SAMESITE",
                reason: "none requires a Secure cookie: browsers drop SameSite=None cookies without it; unset SESSION_COOKIE_SECURE or set it to true".into(),
            });
        }
        let hash_concurrency: usize = env
            .parsed("AUTH_HASH_CONCURRENCY")?
            .unwrap_or_else(default_concurrency);
        if !(1..=64).contains(&hash_concurrency) {
            return Err(ConfigError::Invalid {
                name: "AUTH_HASH_CONCURRENCY",
                reason: format!("must be between 1 and 64, got {hash_concurrency}"),
            });
        }
        let hash_queue_wait = match env.parsed::<u64>("AUTH_HASH_QUEUE_WAIT_MS")? {
            None => DEFAULT_HASH_QUEUE_WAIT,
            Some(ms) if (10..=600_000).contains(&ms) => std::time::Duration::from_millis(ms),
            Some(ms) => {
                return Err(ConfigError::Invalid {
                    name: "AUTH_HASH_QUEUE_WAIT_MS",
                    reason: format!("must be 10 to 600000, got {ms}"),
                })
            }
        };
        Ok(Self {
            same_site,
            secure,
            hash_concurrency,
            hash_queue_wait,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &str)]) -> Result<AccountSettings, ConfigError> {
        AccountSettings::from_env(&EnvSource::from_pairs(pairs.iter().copied()))
    }

    #[test]
    fn same_site_none_is_refused_without_secure() {
        let d = read(&[]).expect("defaults");
        assert_eq!((d.same_site, d.secure), (SameSite::Lax, None));
        let none = read(&[("SESSION_COOKIE_SAMESITE", "None")]).expect("none");
        assert_eq!(none.same_site, SameSite::None);
        let err = read(&[
            ("SESSION_COOKIE_SAMESITE", "none"),
            ("SESSION_COOKIE_SECURE", "false"),
        ])
        .expect_err("none without secure")
        .to_string();
        assert!(err.contains("SESSION_COOKIE_SAMESITE"), "{err}");
        for (name, value) in [
            ("SESSION_COOKIE_SAMESITE", "sometimes"),
            ("SESSION_COOKIE_SECURE", "maybe"),
            ("AUTH_HASH_CONCURRENCY", "0"),
            ("AUTH_HASH_QUEUE_WAIT_MS", "5"),
        ] {
            let err = read(&[(name, value)]).expect_err(name).to_string();
            assert!(err.contains(name), "{err}");
        }
    }
}
