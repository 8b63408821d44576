//! The database handle a compiled plugin gets instead of the core pool: every query runs in a
//! transaction that first becomes the plugin's role (`set_config('role', …, true)`, the
//! function form of `SET LOCAL ROLE`) with the plugin's schema as the only search path, so
//! PostgreSQL itself refuses the plugin anything outside its schema. Both settings are
//! transaction-local, and the handle resets them (and drops temporary tables, which could
//! shadow core tables) after the transaction as well, so a connection goes back to the pool
//! as the core's, whatever the plugin did to its session.
//!
//! This keeps honest plugin code, and mistakes in it, inside its boundary. It is no sandbox
//! for hostile code: the session's login is the core's, so SQL that runs `RESET ROLE` gets the
//! core's rights back. Compiled plugins are Rust code in the server's process and are trusted
//! as such; folder plugins carry no code, and their SQL (migrations) runs on a session logged
//! in as the plugin's own role ([`super::login`]).

use std::sync::Arc;

use diesel::result::Error as DieselError;
use diesel::sql_types::Text;
use diesel_async::{
    AnsiTransactionManager, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection,
    TransactionManager,
};
use futures_util::future::BoxFuture;

use super::id::PluginId;
use super::mode::{IsolationMode, ModeCell};
use crate::db::{Database, DbError};

/// Why a plugin's database work failed.
#[derive(Debug, thiserror::Error)]
pub enum PluginDbError {
    /// The database is not served yet (before setup), or is unavailable.
    #[error(transparent)]
    Unavailable(#[from] DbError),
    /// A statement failed (PostgreSQL's message; a permission error when the plugin reached
    /// outside its schema).
    #[error(transparent)]
    Query(#[from] DieselError),
}

impl PluginDbError {
    /// Whether PostgreSQL refused the plugin's role access to an object (SQLSTATE 42501,
    /// `insufficient_privilege`, whatever the server's language).
    pub fn is_permission_denied(&self) -> bool {
        matches!(self, Self::Query(DieselError::DatabaseError(_, info))
            if info.sqlstate().is_some_and(|code| code.as_str() == INSUFFICIENT_PRIVILEGE))
    }
}

/// SQLSTATE of `permission denied` errors.
const INSUFFICIENT_PRIVILEGE: &str = "42501";

/// A plugin's access to the database. Cheap to clone.
#[derive(Clone)]
pub struct PluginDb {
    db: Database,
    schema: Arc<str>,
    mode: Arc<ModeCell>,
    user_id: Option<Arc<str>>,
}

impl PluginDb {
    pub(crate) fn new(db: Database, id: &PluginId, mode: Arc<ModeCell>) -> Self {
        Self {
            db,
            schema: id.schema().into(),
            mode,
            user_id: None,
        }
    }

    /// The same handle over another database handle (the pool being brought up, before
    /// it is served).
    pub(crate) fn on(&self, db: Database) -> Self {
        Self { db, ..self.clone() }
    }

    /// The schema holding the plugin's tables (`plugin_<id>`).
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The same handle acting for `user_id`: `plugin_api.current_user_id()` and the
    /// `plugin_api.current_user_*` views answer for that user inside its transactions.
    pub fn acting_for(&self, user_id: &str) -> Self {
        Self {
            user_id: Some(user_id.into()),
            ..self.clone()
        }
    }

    /// Runs `work` in a transaction as the plugin (committed when it returns `Ok`).
    pub async fn transaction<R, F>(&self, work: F) -> Result<R, PluginDbError>
    where
        R: Send,
        F: for<'r> FnOnce(&'r mut AsyncPgConnection) -> BoxFuture<'r, diesel::QueryResult<R>>
            + Send,
    {
        let mode = self.mode.get().ok_or(DbError::NotInitialized)?;
        let mut pooled = self.db.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        AnsiTransactionManager::begin_transaction(&mut *conn).await?;
        // Becoming the plugin is a statement of its own inside the transaction: when it fails
        // (the role was dropped), the transaction is rolled back like any failed work, so the
        // connection never goes back to the pool inside an aborted transaction.
        let worked = match enter(conn, mode, &self.schema).await {
            Ok(()) => match self.user_id.as_deref() {
                Some(user) => match act_for(conn, user).await {
                    Ok(()) => work(conn).await,
                    Err(e) => Err(e),
                },
                None => work(conn).await,
            },
            Err(e) => Err(e),
        };
        let outcome = match worked {
            Ok(value) => AnsiTransactionManager::commit_transaction(&mut *conn)
                .await
                .map(|()| value),
            Err(e) => match AnsiTransactionManager::rollback_transaction(&mut *conn).await {
                // The original error says more than a rollback on a broken connection.
                Ok(()) | Err(DieselError::BrokenTransactionManager) => Err(e),
                Err(rollback) => Err(rollback),
            },
        };
        // Transaction-local settings are gone already; this also undoes a plain `SET ROLE`
        // the plugin may have committed, before the connection serves anyone else.
        let reset = conn.batch_execute(RESET).await;
        let value = outcome?;
        reset?;
        Ok(value)
    }
}

/// Undoes what [`enter`] and a plugin could have left on the session: the role, the search
/// path, and temporary tables (searched before every schema, they could shadow core tables).
pub(crate) const RESET: &str = "RESET ROLE; RESET search_path; DISCARD TEMP";

/// The statement that makes the current transaction act as the plugin owning `schema`.
/// Schema and role names are `plugin_[a-z0-9_]+` (see [`PluginId`]), so they are safe inside
/// literals; the acting user, which is not, is bound by [`act_for`].
fn enter_sql(mode: IsolationMode, schema: &str) -> String {
    debug_assert!(schema
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
    // Qualified: a plugin's own session may have put its schema before `pg_catalog`.
    let rest = format!(
        "pg_catalog.set_config('search_path', '\"{schema}\"', true), \
         pg_catalog.set_config('deploystack.user_id', '', true)"
    );
    match mode {
        IsolationMode::Roles => {
            format!("SELECT pg_catalog.set_config('role', '{schema}', true), {rest}")
        }
        IsolationMode::Convention => format!("SELECT {rest}"),
    }
}

/// Makes the current transaction act as the plugin owning `schema`.
pub(crate) async fn enter(
    conn: &mut AsyncPgConnection,
    mode: IsolationMode,
    schema: &str,
) -> diesel::QueryResult<()> {
    conn.batch_execute(&enter_sql(mode, schema)).await
}

/// Makes `plugin_api.current_user_id()` answer `user_id` for the rest of the transaction.
async fn act_for(conn: &mut AsyncPgConnection, user_id: &str) -> diesel::QueryResult<()> {
    diesel::sql_query("SELECT set_config('deploystack.user_id', $1, true)")
        .bind::<Text, _>(user_id)
        .execute(conn)
        .await
        .map(|_| ())
}
