#![allow(dead_code)]
//! What the database benchmarks share: a throwaway embedded cluster (no fsync) with one
//! migrated database, reached as the cluster's superuser.

use std::os::unix::fs::PermissionsExt;

use deploystack_backend::config::PoolSettings;
use deploystack_backend::db::{migrations, provision, PgConnector};
use deploystack_backend::embedded_pg::{Cluster, ClusterOptions, RunningPostgres};
use diesel_async::AsyncPgConnection;

/// Errors of a benchmark's `main`.
pub type BoxError = Box<dyn std::error::Error>;

/// A running cluster and a connection to its migrated `database`; the folder goes with it.
pub struct BenchDatabase {
    /// Stop it at the end (`pg.stop().await`).
    pub pg: RunningPostgres,
    /// A session on the migrated database.
    pub conn: AsyncPgConnection,
    /// Holds the cluster's folder until the benchmark ends.
    pub _dir: tempfile::TempDir,
}

/// Starts a cluster with the extra server `settings` and migrates `database` on it.
pub async fn migrated_database(
    database: &str,
    settings: Vec<(String, String)>,
) -> Result<BenchDatabase, BoxError> {
    migrated_database_on(database, settings, false).await
}

/// [`migrated_database`], with fsync on when `durable`.
pub async fn migrated_database_on(
    database: &str,
    settings: Vec<(String, String)>,
    durable: bool,
) -> Result<BenchDatabase, BoxError> {
    let dir = tempfile::Builder::new()
        .prefix("deploystack-bench-")
        .tempdir()?;
    // The cluster's user (postgres, when we are root) must be able to traverse it.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711))?;
    let mut options = ClusterOptions::new(dir.path().join("pg"));
    options.durable = durable;
    options.settings = settings;
    let pg = Cluster::prepare(options)?.start().await?;
    let connector = PgConnector::new(&pg.superuser_connection(database), &PoolSettings::default())?;
    let conn = provision::connect_creating_database(&connector).await?;
    let (conn, _) = migrations::run_pending(conn).await?;
    Ok(BenchDatabase {
        pg,
        conn,
        _dir: dir,
    })
}
