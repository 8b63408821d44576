//! Which PostgreSQL to use: an external server described by `POSTGRES_*`, or the embedded one.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use secrecy::SecretString;

use super::{ConfigError, EnvSource};

/// Any of these set (even empty) means "use an external server"; none set means embedded mode.
pub const CONNECTION_VARIABLES: [&str; 7] = [
    "POSTGRES_HOST",
    "POSTGRES_PORT",
    "POSTGRES_DATABASE",
    "POSTGRES_USER",
    "POSTGRES_PASSWORD",
    "POSTGRES_SSL",
    "POSTGRES_SSL_ROOT_CERT",
];

/// Upstream defaults for the external server.
const DEFAULT_HOST: &str = "localhost";
const DEFAULT_PORT: u16 = 5432;
/// Database name used in both modes when `POSTGRES_DATABASE` is unset.
pub const DEFAULT_DATABASE: &str = "deploystack";
const DEFAULT_USER: &str = "postgres";

/// Where the database lives.
#[derive(Debug, Clone)]
pub enum PostgresSource {
    /// The operator's server.
    External(ConnectionTarget),
    /// A cluster this process starts under `PERSISTENT_DATA_DIR/postgres`.
    Embedded,
}

/// Where to connect and as whom: an external server from `POSTGRES_*`, or the embedded
/// cluster once it runs. The password may be missing for an external server (setup then
/// answers 400).
#[derive(Debug, Clone)]
pub struct ConnectionTarget {
    /// Host name or IP address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Database the application uses (created at setup when missing).
    pub database: String,
    /// Role to log in as.
    pub user: String,
    /// Required before setup can run; kept out of `Debug` output.
    pub password: Option<SecretString>,
    /// Transport security.
    pub tls: TlsMode,
}

/// Transport security for connections to PostgreSQL.
#[derive(Debug, Clone)]
pub enum TlsMode {
    /// Plain TCP.
    Disabled,
    /// TLS without checking the certificate (`POSTGRES_SSL=true`, the upstream behaviour).
    AcceptAnyCertificate,
    /// TLS with the chain checked against these roots and the host name checked against the certificate.
    VerifyWithRoots(Arc<Vec<CertificateDer<'static>>>),
}

impl ConnectionTarget {
    /// Names of the variables that must still be set before setup can connect.
    pub fn missing_variables(&self) -> Vec<&'static str> {
        let mut missing = Vec::new();
        if self.password.is_none() {
            missing.push("POSTGRES_PASSWORD");
        }
        missing
    }
}

impl PostgresSource {
    pub(super) fn from_env(env: &EnvSource) -> Result<Self, ConfigError> {
        if !CONNECTION_VARIABLES.iter().any(|name| env.is_set(name)) {
            return Ok(Self::Embedded);
        }
        let tls = match env.string("POSTGRES_SSL_ROOT_CERT") {
            Some(path) => TlsMode::VerifyWithRoots(Arc::new(load_roots(PathBuf::from(path))?)),
            None if env.flag("POSTGRES_SSL")?.unwrap_or(false) => TlsMode::AcceptAnyCertificate,
            None => TlsMode::Disabled,
        };
        Ok(Self::External(ConnectionTarget {
            host: env
                .string("POSTGRES_HOST")
                .unwrap_or_else(|| DEFAULT_HOST.into()),
            port: env.parsed("POSTGRES_PORT")?.unwrap_or(DEFAULT_PORT),
            database: env
                .string("POSTGRES_DATABASE")
                .unwrap_or_else(|| DEFAULT_DATABASE.into()),
            user: env
                .string("POSTGRES_USER")
                .unwrap_or_else(|| DEFAULT_USER.into()),
            password: env.string("POSTGRES_PASSWORD").map(SecretString::from),
            tls,
        }))
    }
}

/// Reads a PEM bundle of CA certificates; an unreadable or empty file is a start-up error.
fn load_roots(path: PathBuf) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid {
        name: "POSTGRES_SSL_ROOT_CERT",
        reason,
    };
    let iter = CertificateDer::pem_file_iter(&path)
        .map_err(|e| invalid(format!("cannot read {}: {e}", path.display())))?;
    let certs = iter
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("{} is not a PEM file: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(invalid(format!(
            "{} holds no PEM certificate",
            path.display()
        )));
    }
    Ok(certs)
}
