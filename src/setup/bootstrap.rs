//! Brings a database to the "initialized" state: create it if missing, migrate, run the
//! initializers, and record completion, all under one session advisory lock so that
//! processes sharing the database do it one at a time and exactly once.

use std::sync::Arc;

use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use tracing::{error, info};

use super::error::SetupError;
use crate::config::PoolSettings;
use crate::db::schema::deploystack_setup;
use crate::db::{advisory, migrations, provision, ConnectError, LivePool, PgConnector};
use crate::lifecycle::{Initializer, Refusal};

/// Advisory lock key held for the whole bootstrap ("dssetup!" in ASCII).
pub const SETUP_LOCK_KEY: i64 = 0x6473_7365_7475_7021;

/// A bootstrapped database, not yet published to request handlers.
pub struct Bootstrapped {
    /// Pool over the migrated database.
    pub pool: LivePool,
    /// Names of initializers that failed (logged already).
    pub failed_initializers: Vec<&'static str>,
    /// Whether the database already recorded a completed setup before this run.
    pub already_set_up: bool,
    conn: AsyncPgConnection,
}

impl Bootstrapped {
    /// Records completion in the database and releases the lock. `persist` runs inside the
    /// transaction that inserts the record, so when it fails (the selection file cannot be
    /// written) the database is left unmarked and a retry starts clean.
    pub async fn commit<F>(mut self, persist: F) -> Result<Bootstrapped, SetupError>
    where
        F: FnOnce() -> std::io::Result<()> + Send + 'static,
    {
        let outcome = self
            .conn
            .transaction::<_, SetupError, _>(async |conn| {
                diesel::insert_into(deploystack_setup::table)
                    .values(deploystack_setup::backend_version.eq(env!("CARGO_PKG_VERSION")))
                    .on_conflict_do_nothing()
                    .execute(conn)
                    .await?;
                // The file is fsynced: blocking I/O, done off the async threads but still
                // before the commit, so a failure rolls the record back.
                tokio::task::spawn_blocking(persist)
                    .await
                    .map_err(|e| std::io::Error::other(e.to_string()))??;
                Ok(())
            })
            .await;
        unlock(&mut self.conn).await;
        outcome.map(|()| self)
    }
}

/// When the initializers run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitializerPolicy {
    /// Every time (process start: they prepare this process too).
    Always,
    /// Only if the database was not set up yet (a setup call: another process that already
    /// set the database up ran them, so the database is initialized exactly once).
    UnlessSetUp,
}

/// Runs every step up to, not including, recording completion; the lock stays held until
/// [`Bootstrapped::commit`] or drop. The setup and migration locks are waited for until
/// `lock_deadline` at most ([`SetupError::Busy`] past it).
pub async fn bootstrap(
    connector: &PgConnector,
    pool_settings: &PoolSettings,
    initializers: &[Arc<dyn Initializer>],
    policy: InitializerPolicy,
    lock_deadline: tokio::time::Instant,
) -> Result<Bootstrapped, SetupError> {
    let mut conn =
        provision::connect_creating_database(&connector.without_statement_timeout()).await?;
    // Before any lock: a transaction pooler would lose it between statements.
    match crate::db::pooler::behind_transaction_pooler(connector, &mut conn).await {
        Ok(false) => {}
        Ok(true) => {
            return Err(SetupError::Refused(
                crate::db::pooler::TRANSACTION_POOLER.into(),
            ))
        }
        Err(crate::db::DbError::Query(e)) => {
            return Err(SetupError::Initialization(format!(
                "cannot check the connection pooler: {e}"
            )))
        }
        Err(e) => return Err(SetupError::Unreachable(e.to_string())),
    }
    if !advisory::lock_until(&mut conn, SETUP_LOCK_KEY, lock_deadline)
        .await
        .map_err(init_error)?
    {
        return Err(SetupError::Busy);
    }
    let (mut conn, applied) = migrations::run_pending_until(conn, lock_deadline)
        .await
        .map_err(|e| match e {
            migrations::MigrationError::LockBusy => SetupError::Busy,
            other => SetupError::Initialization(other.to_string()),
        })?;
    if !applied.is_empty() {
        info!(migrations = ?applied, "applied pending migrations");
    }
    let already_set_up = deploystack_setup::table
        .count()
        .get_result::<i64>(&mut conn)
        .await
        .map_err(init_error)?
        > 0;
    let pool = LivePool::new(connector, pool_settings);
    let mut failed_initializers = Vec::new();
    let skip = already_set_up && policy == InitializerPolicy::UnlessSetUp;
    // Gatekeepers (the encryption key check) run whatever the policy: a process that joins a
    // database set up by another must pass them too.
    for initializer in initializers.iter().filter(|i| !skip || i.must_pass()) {
        if let Err(e) = initializer.run(&pool).await {
            if let Some(refusal) = e.downcast_ref::<Refusal>() {
                return Err(SetupError::Refused(refusal.0.clone()));
            }
            error!(initializer = initializer.name(), error = %format!("{e:#}"), "initializer failed");
            if initializer.must_pass() {
                return Err(SetupError::Initialization(format!(
                    "{}: {e:#}",
                    initializer.name()
                )));
            }
            failed_initializers.push(initializer.name());
        }
    }
    Ok(Bootstrapped {
        pool,
        failed_initializers,
        already_set_up,
        conn,
    })
}

/// Whether the database behind `connector` records a completed setup, looking only: a
/// missing database or table means "no", and nothing is created.
pub async fn setup_recorded(connector: &PgConnector) -> Result<bool, SetupError> {
    let unreachable = |e: ConnectError| match e {
        e @ (ConnectError::Unreachable { .. } | ConnectError::NoSlots { .. }) => {
            SetupError::unavailable(e)
        }
        e => SetupError::Initialization(e.to_string()),
    };
    if provision::database_exists(connector)
        .await
        .map_err(unreachable)?
        == Some(false)
    {
        return Ok(false);
    }
    let mut conn = match connector.connect().await {
        Ok(conn) => conn,
        Err(ConnectError::DatabaseMissing(_)) => return Ok(false),
        Err(e @ (ConnectError::Unreachable { .. } | ConnectError::NoSlots { .. })) => {
            return Err(SetupError::unavailable(e))
        }
        Err(e) => return Err(SetupError::Initialization(e.to_string())),
    };
    #[derive(QueryableByName)]
    struct Found {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        found: bool,
    }
    // Two statements: a query naming a missing table fails to parse, whatever guards it.
    let table: Found =
        diesel::sql_query("SELECT to_regclass('public.deploystack_setup') IS NOT NULL AS found")
            .get_result(&mut conn)
            .await
            .map_err(init_error)?;
    if !table.found {
        return Ok(false);
    }
    let row: Found =
        diesel::sql_query("SELECT EXISTS (SELECT 1 FROM public.deploystack_setup) AS found")
            .get_result(&mut conn)
            .await
            .map_err(init_error)?;
    Ok(row.found)
}

async fn unlock(conn: &mut AsyncPgConnection) {
    let _ = advisory::unlock(conn, SETUP_LOCK_KEY).await;
}

fn init_error(e: DieselError) -> SetupError {
    SetupError::Initialization(e.to_string())
}
