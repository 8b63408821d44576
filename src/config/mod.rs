//! Process configuration, read once from the environment (and `.env` in development).
//!
//! | variable | default |
//! |---|---|
//! | `HOST` / `PORT` | `127.0.0.1` / `3000` |
//! | `PERSISTENT_DATA_DIR` | `./persistent_data` |
//! | `POSTGRES_HOST` `POSTGRES_PORT` `POSTGRES_DATABASE` `POSTGRES_USER` `POSTGRES_PASSWORD` | `localhost` `5432` `deploystack` `postgres` (none) |
//! | `POSTGRES_SSL`, `POSTGRES_SSL_ROOT_CERT` | `false`, unset |
//! | `POSTGRES_POOL_*`, `POSTGRES_*_TIMEOUT_MS`, `POSTGRES_MAX_LIFETIME_MS` | see [`PoolSettings`] |
//! | `POSTGRES_BIN_DIR` | found on the machine (embedded mode only) |
//! | `DEPLOYSTACK_ENCRYPTION_SECRET` | generated into `PERSISTENT_DATA_DIR/encryption.secret` |
//! | `JOB_*` | see [`JobSettings`] |
//! | `PLUGINS_PATH`, `PLUGIN_ALLOW_CONVENTION_ISOLATION` | unset, `false`; see [`PluginSettings`] |
//! | `SESSION_COOKIE_SAMESITE`, `SESSION_COOKIE_SECURE`, `AUTH_HASH_CONCURRENCY` | `lax`, when over TLS, the cores; see [`AccountSettings`] |
//! | `METRICS_ADDR`, `METRICS_TOKEN` | unset (no `/metrics`); see [`MetricsSettings`] |
//! | `TRUSTED_PROXIES`, `DEPLOYSTACK_FRONTEND_URL`, `HTTP_*` | none, upstream's development origins; see [`HttpSettings`] |
//! | `POSTGRES_READ_HOSTS`, `POSTGRES_READ_MAX_LAG_MS`, `POSTGRES_READ_CHECK_INTERVAL_MS` | none, `5000`, `1000`; see [`ReplicaSettings`] |
//!
//! When none of the connection variables is set the server runs its own embedded PostgreSQL.

mod accounts;
mod env;
mod http;
mod jobs;
mod metrics;
mod plugins;
mod pool;
mod postgres;
mod replicas;

pub use accounts::{AccountSettings, SameSite};
pub use env::{ConfigError, EnvSource};
pub use http::HttpSettings;
pub use jobs::JobSettings;
pub use metrics::MetricsSettings;
pub use plugins::PluginSettings;
pub use pool::PoolSettings;
pub use postgres::{
    ConnectionTarget, PostgresSource, TlsMode, CONNECTION_VARIABLES, DEFAULT_DATABASE,
};
pub use replicas::{ReplicaHost, ReplicaSettings};

use std::net::IpAddr;
use std::path::PathBuf;

/// Listen address used when `HOST` is unset: loopback, so a dev server is never exposed by accident.
pub const DEFAULT_HOST: &str = "127.0.0.1";
/// Listen port used when `PORT` is unset (the upstream default).
pub const DEFAULT_PORT: u16 = 3000;
/// Where `db.selection.json` and the embedded cluster live when `PERSISTENT_DATA_DIR` is unset.
pub const DEFAULT_PERSISTENT_DATA_DIR: &str = "./persistent_data";

/// Everything the process needs to know, validated at start so a typo fails fast and loudly.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address the HTTP server binds.
    pub host: IpAddr,
    /// Port the HTTP server binds (0 picks a free one).
    pub port: u16,
    /// Folder for the selection file, the encryption secret and the embedded cluster.
    pub persistent_data_dir: PathBuf,
    /// External server credentials, or the embedded default.
    pub postgres: PostgresSource,
    /// Pool sizing and timeouts, shared by both modes.
    pub pool: PoolSettings,
    /// Explicit location of `initdb`/`postgres` for embedded mode.
    pub postgres_bin_dir: Option<PathBuf>,
    /// Secret the settings encryption key is derived from; generated and stored when unset.
    pub encryption_secret: Option<secrecy::SecretString>,
    /// The background job workers of this process.
    pub jobs: JobSettings,
    /// Folder plugins and plugin isolation.
    pub plugins: PluginSettings,
    /// Where Prometheus scrapes `/metrics`.
    pub metrics: MetricsSettings,
    /// Read replicas.
    pub replicas: ReplicaSettings,
    /// The session cookie and password hashing.
    pub accounts: AccountSettings,
    /// Trusted proxies, allowed origins, connection timeouts and caps.
    pub http: HttpSettings,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&EnvSource::process())
    }

    /// Reads any source of variables; tests pass a map instead of mutating the process environment.
    pub fn from_source(env: &EnvSource) -> Result<Self, ConfigError> {
        let postgres = PostgresSource::from_env(env)?;
        let replicas = match &postgres {
            PostgresSource::External(primary) => {
                ReplicaSettings::from_env(env, primary.port, true)?
            }
            PostgresSource::Embedded => ReplicaSettings::from_env(env, 5432, false)?,
        };
        Ok(Self {
            host: env.parsed("HOST")?.unwrap_or(IpAddr::from([127, 0, 0, 1])),
            port: env.parsed("PORT")?.unwrap_or(DEFAULT_PORT),
            persistent_data_dir: env
                .string("PERSISTENT_DATA_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_PERSISTENT_DATA_DIR)),
            postgres,
            pool: PoolSettings::from_env(env)?,
            postgres_bin_dir: env.string("POSTGRES_BIN_DIR").map(PathBuf::from),
            encryption_secret: env
                .string("DEPLOYSTACK_ENCRYPTION_SECRET")
                .map(secrecy::SecretString::from),
            jobs: JobSettings::from_env(env)?,
            plugins: PluginSettings::from_env(env)?,
            metrics: MetricsSettings::from_env(env)?,
            replicas,
            accounts: AccountSettings::from_env(env)?,
            http: HttpSettings::from_env(env)?,
        })
    }

    /// Path of the file that records the choice made at setup.
    pub fn selection_file(&self) -> PathBuf {
        self.persistent_data_dir.join("db.selection.json")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_source(&EnvSource::from_pairs(pairs.iter().copied()))
    }

    fn external(pairs: &[(&str, &str)]) -> ConnectionTarget {
        match config(pairs).expect("valid").postgres {
            PostgresSource::External(e) => e,
            PostgresSource::Embedded => panic!("expected external"),
        }
    }

    #[test]
    fn no_connection_variable_means_embedded() {
        let c = config(&[("POSTGRES_POOL_MAX", "4"), ("POSTGRES_BIN_DIR", "/x")]).expect("valid");
        assert!(matches!(c.postgres, PostgresSource::Embedded));
        assert_eq!(c.pool.max_size, 4);
        assert_eq!((c.host.to_string(), c.port), ("127.0.0.1".into(), 3000));
    }

    #[test]
    fn external_uses_upstream_defaults_and_requires_a_password() {
        let e = external(&[("POSTGRES_PASSWORD", "")]);
        assert_eq!(
            (
                e.host.as_str(),
                e.port,
                e.database.as_str(),
                e.user.as_str()
            ),
            ("localhost", 5432, "deploystack", "postgres")
        );
        assert_eq!(e.missing_variables(), vec!["POSTGRES_PASSWORD"]);
        assert!(matches!(e.tls, TlsMode::Disabled));
        let e = external(&[("POSTGRES_PASSWORD", "p"), ("POSTGRES_SSL", "true")]);
        assert!(e.missing_variables().is_empty());
        assert!(matches!(e.tls, TlsMode::AcceptAnyCertificate));
    }

    #[test]
    fn debug_output_never_shows_the_password() {
        let c = config(&[("POSTGRES_PASSWORD", "hunter2-secret")]).expect("valid");
        assert!(!format!("{c:?}").contains("hunter2-secret"));
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (name, value) in [
            ("POSTGRES_PORT", "x"),
            ("PORT", "70000"),
            ("POSTGRES_SSL", "perhaps"),
            ("POSTGRES_POOL_MIN_IDLE", "99"),
            ("POSTGRES_CONNECT_TIMEOUT_MS", "0"),
            // Above PostgreSQL's INT_MAX milliseconds: would be retried forever as "unreachable".
            ("POSTGRES_STATEMENT_TIMEOUT_MS", "2147483648"),
            ("POSTGRES_QUERY_TIMEOUT_MS", "-1"),
            ("POSTGRES_QUERY_TIMEOUT_MS", "1000"),
            ("POSTGRES_TCP_USER_TIMEOUT_MS", "4294967296"),
            ("POSTGRES_SETUP_LOCK_TIMEOUT_MS", "0"),
        ] {
            let err = config(&[(name, value)]).expect_err(name).to_string();
            assert!(err.contains(name), "{err}");
        }
    }

    #[test]
    fn read_replicas_need_an_external_primary_and_take_its_port() {
        let c = config(&[
            ("POSTGRES_PASSWORD", "x"),
            ("POSTGRES_PORT", "6000"),
            ("POSTGRES_READ_HOSTS", "r1, r2:7000"),
            ("POSTGRES_READ_MAX_LAG_MS", "250"),
        ])
        .expect("valid");
        let hosts: Vec<String> = c.replicas.hosts.iter().map(|h| h.to_string()).collect();
        assert_eq!(hosts, ["r1:6000", "r2:7000"]);
        assert_eq!(c.replicas.max_lag, std::time::Duration::from_millis(250));
        let err = config(&[("POSTGRES_READ_HOSTS", "r1")])
            .expect_err("embedded mode has no replicas")
            .to_string();
        assert!(err.contains("POSTGRES_READ_HOSTS"), "{err}");
        let err = config(&[
            ("POSTGRES_PASSWORD", "x"),
            ("POSTGRES_READ_CHECK_INTERVAL_MS", "0"),
        ])
        .expect_err("too often")
        .to_string();
        assert!(err.contains("POSTGRES_READ_CHECK_INTERVAL_MS"), "{err}");
    }

    #[test]
    fn metrics_never_leave_the_machine_without_a_token() {
        let off = config(&[]).expect("valid").metrics;
        assert!(!off.enabled());
        let local = config(&[("METRICS_ADDR", "127.0.0.1:9464")]).expect("valid");
        assert_eq!(
            local.metrics.addr,
            Some("127.0.0.1:9464".parse().expect("addr"))
        );
        for pairs in [
            vec![("METRICS_ADDR", "0.0.0.0:9464")],
            vec![("METRICS_ADDR", "9464")],
        ] {
            let err = config(&pairs).expect_err("refused").to_string();
            assert!(err.contains("METRICS_ADDR"), "{err}");
        }
        for token in ["short", "has a space in the middle"] {
            let err = config(&[("METRICS_TOKEN", token)])
                .expect_err("weak token")
                .to_string();
            assert!(
                err.contains("METRICS_TOKEN") && !err.contains(token),
                "{err}"
            );
        }
        let token = "0123456789abcdef0123";
        let open = config(&[("METRICS_ADDR", "0.0.0.0:9464"), ("METRICS_TOKEN", token)])
            .expect("valid with a token");
        assert!(open.metrics.enabled());
        assert!(!format!("{open:?}").contains(token));
    }

    #[test]
    fn idle_timeout_zero_means_never_and_does_not_panic_the_pool() {
        let c = config(&[("POSTGRES_IDLE_TIMEOUT_MS", "0")]).expect("valid");
        assert_eq!(c.pool.idle_timeout, None);
        let c = config(&[("POSTGRES_IDLE_TIMEOUT_MS", "1500")]).expect("valid");
        assert_eq!(
            c.pool.idle_timeout,
            Some(std::time::Duration::from_millis(1500))
        );
    }

    #[test]
    fn query_deadline_follows_the_statement_timeout() {
        let ms = std::time::Duration::from_millis;
        let c = config(&[]).expect("valid");
        assert_eq!(c.pool.query_timeout, ms(35_000));
        let c = config(&[("POSTGRES_STATEMENT_TIMEOUT_MS", "0")]).expect("valid");
        assert_eq!(
            c.pool.query_timeout,
            ms(0),
            "no statement limit, no client deadline"
        );
        let c = config(&[
            ("POSTGRES_STATEMENT_TIMEOUT_MS", "500"),
            ("POSTGRES_QUERY_TIMEOUT_MS", "800"),
        ])
        .expect("valid");
        assert_eq!(c.pool.query_timeout, ms(800));
        // The largest statement timeout PostgreSQL takes still starts.
        let c = config(&[("POSTGRES_STATEMENT_TIMEOUT_MS", "2147483647")]).expect("valid");
        assert_eq!(c.pool.query_timeout, ms(2_147_483_647 + 5_000));
        // No statement limit, yet a client deadline the operator asked for.
        let c = config(&[
            ("POSTGRES_STATEMENT_TIMEOUT_MS", "0"),
            ("POSTGRES_QUERY_TIMEOUT_MS", "60000"),
        ])
        .expect("valid");
        assert_eq!(c.pool.query_timeout, ms(60_000));
    }

    #[test]
    fn ca_file_must_hold_a_certificate() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate").expect("write");
        let err = config(&[("POSTGRES_SSL_ROOT_CERT", path.to_str().expect("utf-8"))])
            .expect_err("invalid CA")
            .to_string();
        assert!(err.contains("POSTGRES_SSL_ROOT_CERT"), "{err}");
    }
}
