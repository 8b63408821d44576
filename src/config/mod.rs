//! Process configuration, read once from the environment (and `.env` in development).
//!
//! | variable | default |
//! |---|---|
//! | `HOST` / `PORT` | `127.0.0.1` / `3000` |
//! | `PERSISTENT_DATA_DIR` | `./persistent_data` |
//! | `POSTGRES_HOST` `POSTGRES_PORT` `POSTGRES_DATABASE` `POSTGRES_USER` `POSTGRES_PASSWORD` | `localhost` `5432` `deploystack` `postgres` (none) |
//! | `POSTGRES_SSL`, `POSTGRES_SSL_ROOT_CERT` | `false`, unset |
//! | `POSTGRES_POOL_*`, `POSTGRES_*_TIMEOUT_MS` | see [`PoolSettings`] |
//! | `POSTGRES_BIN_DIR` | found on the machine (embedded mode only) |
//!
//! When none of the connection variables is set the server runs its own embedded PostgreSQL.

mod env;
mod pool;
mod postgres;

pub use env::{ConfigError, EnvSource};
pub use pool::PoolSettings;
pub use postgres::{
    ExternalPostgres, PostgresSource, TlsMode, CONNECTION_VARIABLES, DEFAULT_DATABASE,
};

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
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&EnvSource::process())
    }

    /// Reads any source of variables; tests pass a map instead of mutating the process environment.
    pub fn from_source(env: &EnvSource) -> Result<Self, ConfigError> {
        Ok(Self {
            host: env.parsed("HOST")?.unwrap_or(IpAddr::from([127, 0, 0, 1])),
            port: env.parsed("PORT")?.unwrap_or(DEFAULT_PORT),
            persistent_data_dir: env
                .string("PERSISTENT_DATA_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_PERSISTENT_DATA_DIR)),
            postgres: PostgresSource::from_env(env)?,
            pool: PoolSettings::from_env(env)?,
            postgres_bin_dir: env.string("POSTGRES_BIN_DIR").map(PathBuf::from),
        })
    }

    /// Path of the file that records the choice made at setup.
    pub fn selection_file(&self) -> PathBuf {
        self.persistent_data_dir.join("db.selection.json")
    }
}
