//! `deploystack-backend database-url`: the `DATABASE_URL` the diesel CLI needs, for the
//! embedded cluster (owner role, stored port) or the external server (`POSTGRES_*`).

use secrecy::ExposeSecret;

use crate::config::{Config, ConnectionTarget, EnvSource, PostgresSource, TlsMode};

/// The URL for the configured database. Embedded mode reads the files the cluster's first
/// start wrote, so the server need not run; the URL stays valid across restarts.
pub fn for_config(config: &Config) -> anyhow::Result<String> {
    let connection = match &config.postgres {
        PostgresSource::Embedded => crate::embedded_pg::stored_connection(
            &config.persistent_data_dir.join("postgres"),
            crate::config::DEFAULT_DATABASE,
        )?,
        PostgresSource::External(external) => {
            let missing = external.missing_variables();
            anyhow::ensure!(
                missing.is_empty(),
                "missing environment variables: {}",
                missing.join(", ")
            );
            external.clone()
        }
    };
    // The CA file's path is not kept in `Config` (only the certificates it holds).
    let root_cert = EnvSource::process().string("POSTGRES_SSL_ROOT_CERT");
    Ok(url(&connection, root_cert.as_deref()))
}

/// `postgres://user:password@host:port/database?sslmode=…`, every part percent-encoded, as
/// libpq (which the diesel CLI uses) reads it.
pub fn url(c: &ConnectionTarget, root_cert: Option<&str>) -> String {
    let password = c
        .password
        .as_ref()
        .map(|p| format!(":{}", encode(p.expose_secret())))
        .unwrap_or_default();
    let host = if c.host.starts_with('/') {
        encode(&c.host)
    } else if c.host.contains(':') {
        format!("[{}]", c.host)
    } else {
        c.host.clone()
    };
    let tls = match (&c.tls, root_cert) {
        (TlsMode::Disabled, _) => "sslmode=disable".to_owned(),
        (TlsMode::VerifyWithRoots(_), Some(path)) => {
            format!("sslmode=verify-full&sslrootcert={}", encode(path))
        }
        _ => "sslmode=require".to_owned(),
    };
    format!(
        "postgres://{}{password}@{host}:{}/{}?{tls}",
        encode(&c.user),
        c.port,
        encode(&c.database)
    )
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    #[test]
    fn every_part_is_encoded() {
        let c = ConnectionTarget {
            host: "::1".into(),
            port: 5433,
            database: "my db".into(),
            user: "a@b".into(),
            password: Some(SecretString::from("p:w/@%?#é".to_owned())),
            tls: TlsMode::AcceptAnyCertificate,
        };
        assert_eq!(
            url(&c, None),
            "postgres://a%40b:p%3Aw%2F%40%25%3F%23%C3%A9@[::1]:5433/my%20db?sslmode=require"
        );
    }
}
