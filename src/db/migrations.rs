//! Embedded schema migrations, applied under a session advisory lock so replicas that start
//! together migrate once. The files are compiled into the binary, so a deployment cannot
//! miss them (upstream issue #546).

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::AsyncPgConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

/// Every migration under `migrations/`, in version order.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Advisory lock key held while migrating ("dsmigrat" in ASCII).
pub const MIGRATION_LOCK_KEY: i64 = 0x6473_6d69_6772_6174;

/// How long [`run_pending`] waits for another process's migration run by default.
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(60);
/// How often a busy migration lock is asked for again.
const LOCK_POLL: Duration = Duration::from_millis(100);

/// A migration run that did not complete; the failing migration was rolled back.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    /// Another process held the migration lock for longer than the wait allowed.
    #[error("another process is migrating this database; retry later")]
    LockBusy,
    /// A migration (or the connection) failed.
    #[error("migration failed: {0}")]
    Failed(String),
}

/// Applies pending migrations on `conn` (each in its own transaction) and hands the
/// connection back with the versions it applied; waits [`DEFAULT_LOCK_WAIT`] at most for a
/// concurrent migration run.
pub async fn run_pending(
    conn: AsyncPgConnection,
) -> Result<(AsyncPgConnection, Vec<String>), MigrationError> {
    run_pending_within(conn, DEFAULT_LOCK_WAIT).await
}

/// [`run_pending`], giving up with [`MigrationError::LockBusy`] when the migration lock is
/// not granted within `lock_wait` (a stuck holder elsewhere must not hang us forever).
pub async fn run_pending_within(
    conn: AsyncPgConnection,
    lock_wait: Duration,
) -> Result<(AsyncPgConnection, Vec<String>), MigrationError> {
    tokio::task::spawn_blocking(move || {
        let mut conn: AsyncConnectionWrapper<AsyncPgConnection> = conn.into();
        lock_within(&mut conn, lock_wait)?;
        let result = conn
            .run_pending_migrations(MIGRATIONS)
            .map(|done| done.iter().map(ToString::to_string).collect::<Vec<_>>())
            .map_err(|e| MigrationError::Failed(e.to_string()));
        let unlocked =
            conn.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"));
        let applied = result?;
        unlocked.map_err(|e| {
            MigrationError::Failed(format!("cannot release the migration lock: {e}"))
        })?;
        Ok((conn.into_inner(), applied))
    })
    .await
    .map_err(|e| MigrationError::Failed(format!("migration task failed: {e}")))?
}

/// Polls `pg_try_advisory_lock` (on a blocking thread: the harness is synchronous).
fn lock_within(
    conn: &mut AsyncConnectionWrapper<AsyncPgConnection>,
    limit: Duration,
) -> Result<(), MigrationError> {
    use diesel::prelude::*;

    let started = Instant::now();
    loop {
        let granted: bool = diesel::select(pg_try_advisory_lock(MIGRATION_LOCK_KEY))
            .get_result(conn)
            .map_err(|e| MigrationError::Failed(format!("cannot take the migration lock: {e}")))?;
        if granted {
            return Ok(());
        }
        if started.elapsed() >= limit {
            return Err(MigrationError::LockBusy);
        }
        std::thread::sleep(LOCK_POLL);
    }
}

diesel::define_sql_function! {
    /// PostgreSQL's non-blocking advisory lock.
    fn pg_try_advisory_lock(key: diesel::sql_types::BigInt) -> diesel::sql_types::Bool;
}

/// Versions of the embedded migrations not yet applied to the database behind `conn`.
pub async fn pending(
    conn: AsyncPgConnection,
) -> Result<(AsyncPgConnection, Vec<String>), MigrationError> {
    tokio::task::spawn_blocking(move || {
        let mut conn: AsyncConnectionWrapper<AsyncPgConnection> = conn.into();
        let pending = conn
            .pending_migrations(MIGRATIONS)
            .map_err(|e| MigrationError::Failed(e.to_string()))?
            .iter()
            .map(|m| m.name().to_string())
            .collect();
        Ok((conn.into_inner(), pending))
    })
    .await
    .map_err(|e| MigrationError::Failed(format!("migration task failed: {e}")))?
}
