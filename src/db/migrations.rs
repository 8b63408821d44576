//! Embedded schema migrations, applied under a session advisory lock so replicas that start
//! together migrate once. The files are compiled into the binary, so a deployment cannot
//! miss them (upstream issue #546).

use std::time::Duration;

use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::AsyncPgConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use tokio::time::Instant;

use crate::db::advisory;

/// Every migration under `migrations/`, in version order.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Advisory lock key held while migrating ("dsmigrat" in ASCII).
pub const MIGRATION_LOCK_KEY: i64 = 0x6473_6d69_6772_6174;

/// How long [`run_pending`] waits for another process's migration run by default.
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(60);

/// A migration run that did not complete; the failing migration was rolled back.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    /// Another process held the migration lock past the deadline.
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
    run_pending_until(conn, Instant::now() + DEFAULT_LOCK_WAIT).await
}

/// [`run_pending`], giving up with [`MigrationError::LockBusy`] when the migration lock is
/// not granted by `lock_deadline` (a stuck holder elsewhere must not hang us forever).
pub async fn run_pending_until(
    mut conn: AsyncPgConnection,
    lock_deadline: Instant,
) -> Result<(AsyncPgConnection, Vec<String>), MigrationError> {
    let locked = advisory::lock_until(&mut conn, MIGRATION_LOCK_KEY, lock_deadline)
        .await
        .map_err(|e| MigrationError::Failed(format!("cannot take the migration lock: {e}")))?;
    if !locked {
        return Err(MigrationError::LockBusy);
    }
    // The harness is synchronous: it runs on a blocking thread, on the locked session.
    let (mut conn, applied) = tokio::task::spawn_blocking(move || {
        let mut conn: AsyncConnectionWrapper<AsyncPgConnection> = conn.into();
        let applied = conn
            .run_pending_migrations(MIGRATIONS)
            .map(|done| done.iter().map(ToString::to_string).collect::<Vec<_>>())
            .map_err(|e| MigrationError::Failed(e.to_string()));
        (conn.into_inner(), applied)
    })
    .await
    .map_err(|e| MigrationError::Failed(format!("migration task failed: {e}")))?;
    let unlocked = advisory::unlock(&mut conn, MIGRATION_LOCK_KEY).await;
    let applied = applied?;
    unlocked
        .map_err(|e| MigrationError::Failed(format!("cannot release the migration lock: {e}")))?;
    Ok((conn, applied))
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
