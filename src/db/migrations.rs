//! Embedded schema migrations, applied under a session advisory lock so replicas that start
//! together migrate once. The files are compiled into the binary, so a deployment cannot
//! miss them (upstream issue #546).

use diesel::connection::SimpleConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::AsyncPgConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

/// Every migration under `migrations/`, in version order.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Advisory lock key held while migrating ("dsmigrat" in ASCII).
pub const MIGRATION_LOCK_KEY: i64 = 0x6473_6d69_6772_6174;

/// A migration run that did not complete; the failing migration was rolled back.
#[derive(Debug, thiserror::Error)]
#[error("migration failed: {0}")]
pub struct MigrationError(pub String);

/// Applies pending migrations on `conn` (each in its own transaction) and hands the
/// connection back with the versions it applied.
pub async fn run_pending(
    conn: AsyncPgConnection,
) -> Result<(AsyncPgConnection, Vec<String>), MigrationError> {
    tokio::task::spawn_blocking(move || {
        let mut conn: AsyncConnectionWrapper<AsyncPgConnection> = conn.into();
        conn.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))
            .map_err(|e| MigrationError(format!("cannot take the migration lock: {e}")))?;
        let result = conn
            .run_pending_migrations(MIGRATIONS)
            .map(|done| done.iter().map(ToString::to_string).collect::<Vec<_>>())
            .map_err(|e| MigrationError(e.to_string()));
        let unlocked =
            conn.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"));
        let applied = result?;
        unlocked.map_err(|e| MigrationError(format!("cannot release the migration lock: {e}")))?;
        Ok((conn.into_inner(), applied))
    })
    .await
    .map_err(|e| MigrationError(format!("migration task failed: {e}")))?
}

/// Versions of the embedded migrations not yet applied to the database behind `conn`.
pub async fn pending(
    conn: AsyncPgConnection,
) -> Result<(AsyncPgConnection, Vec<String>), MigrationError> {
    tokio::task::spawn_blocking(move || {
        let mut conn: AsyncConnectionWrapper<AsyncPgConnection> = conn.into();
        let pending = conn
            .pending_migrations(MIGRATIONS)
            .map_err(|e| MigrationError(e.to_string()))?
            .iter()
            .map(|m| m.name().to_string())
            .collect();
        Ok((conn.into_inner(), pending))
    })
    .await
    .map_err(|e| MigrationError(format!("migration task failed: {e}")))?
}
