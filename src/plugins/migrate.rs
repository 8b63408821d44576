//! Applies plugin migrations after the core's, under the core's migration lock: each pending
//! migration in its own transaction, recorded with its checksum in `__plugin_migrations` in
//! the same transaction. In roles mode they run on a session logged in as the plugin's role
//! ([`super::login`]), which PostgreSQL confines to the plugin's schema whatever the SQL
//! does, and the record is written from that session (row security lets a plugin role add
//! its own plugin's rows only). In convention mode they run on the core's session with the
//! core's rights. A statement that outlives the plugin statement timeout by a grace period
//! has its session ended from outside. An applied migration whose SQL changed, or a new one
//! ordered before an applied one, stops everything before any statement runs. Nothing here
//! ever drops plugin data.

use std::collections::HashMap;
use std::time::Duration;

use diesel::sql_types::{BigInt, Text};
use diesel::QueryableByName;
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use tracing::{debug, info, warn};

use super::catalog::LoadedPlugin;
use super::error::{is_transport_failure, PluginError};
use super::handle::{enter, RESET};
use super::login::Logins;
use super::mode::IsolationMode;

/// Time a statement gets beyond the statement timeout before its session is ended: PostgreSQL
/// reports an ordinary timeout itself, with its own message, well within it.
const GRACE: Duration = Duration::from_secs(2);

/// One migration applied by [`apply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// Plugin id.
    pub plugin: String,
    /// `<version>_<name>`.
    pub migration: String,
}

#[derive(QueryableByName)]
struct Recorded {
    #[diesel(sql_type = BigInt)]
    version: i64,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    checksum: String,
}

/// Versions applied per plugin, as `(version, name, checksum)` in version order.
pub async fn recorded(
    conn: &mut AsyncPgConnection,
    plugin: &str,
) -> Result<Vec<(i64, String, String)>, PluginError> {
    let rows: Vec<Recorded> = diesel::sql_query(
        "SELECT version, name, checksum FROM public.__plugin_migrations \
         WHERE plugin_id = $1 ORDER BY version",
    )
    .bind::<Text, _>(plugin)
    .load(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.version, r.name, r.checksum))
        .collect())
}

/// Checks every plugin's history first, then applies what is pending, plugin by plugin:
/// on `core` in convention mode, on each plugin's own login (opened through `logins`) in
/// roles mode. The caller holds the migration lock on `core`.
pub async fn apply(
    core: &mut AsyncPgConnection,
    plugins: &[LoadedPlugin],
    logins: Option<&mut Logins<'_>>,
) -> Result<Vec<Applied>, PluginError> {
    let mut plans = Vec::new();
    for plugin in plugins {
        let pending = pending(core, plugin).await?;
        if logins.is_none() {
            // No boundary here but this check: what it cannot read is not run.
            refuse_unreadable(plugin, &pending)?;
        }
        plans.push(pending);
    }
    let mut applied = Vec::new();
    let mut logins = logins;
    for (plugin, pending) in plugins.iter().zip(plans) {
        if pending.is_empty() {
            continue;
        }
        match logins.as_deref_mut() {
            Some(logins) => {
                let mut session = logins.open(core, &plugin.id).await?;
                let limit = logins.statement_limit();
                let mut outcome = Ok(());
                for &index in &pending {
                    outcome =
                        run_one(&mut session.conn, plugin, index, Record::Own, Some(limit)).await;
                    if outcome.is_err() {
                        break;
                    }
                    applied.push(done(plugin, index));
                }
                match outcome {
                    Err(e @ PluginError::Overran { .. }) => {
                        logins.terminate(core, session).await;
                        return Err(e);
                    }
                    Err(e) => {
                        let _ = logins.close(core, session).await;
                        return Err(e);
                    }
                    Ok(()) => logins.close(core, session).await?,
                }
            }
            None => {
                for &index in &pending {
                    run_one(core, plugin, index, Record::Core, None).await?;
                    applied.push(done(plugin, index));
                }
            }
        }
    }
    Ok(applied)
}

fn done(plugin: &LoadedPlugin, index: usize) -> Applied {
    let label = plugin.migrations[index].migration.label();
    info!(plugin = %plugin.id, migration = %label, "applied plugin migration");
    Applied {
        plugin: plugin.id.to_string(),
        migration: label,
    }
}

/// Convention mode runs only statements the courtesy check could read and accept.
fn refuse_unreadable(plugin: &LoadedPlugin, pending: &[usize]) -> Result<(), PluginError> {
    for &index in pending {
        let checked = &plugin.migrations[index];
        if let Some(statement) = checked.statements.iter().find(|s| s.unreadable.is_some()) {
            return Err(PluginError::Refused {
                plugin: plugin.id.to_string(),
                migration: checked.migration.label(),
                statement: statement.position,
                detail: format!(
                    "the check cannot read this statement ({}), and without plugin roles nothing else would judge it",
                    statement.unreadable.as_deref().unwrap_or_default()
                ),
                text: statement.text.chars().take(120).collect(),
            });
        }
    }
    Ok(())
}

/// Indexes (into `plugin.migrations`) of the migrations still to apply, after checking the
/// applied ones against the code.
async fn pending(
    conn: &mut AsyncPgConnection,
    plugin: &LoadedPlugin,
) -> Result<Vec<usize>, PluginError> {
    let applied = recorded(conn, plugin.id.as_str()).await?;
    let by_version: HashMap<i64, usize> = plugin
        .migrations
        .iter()
        .enumerate()
        .map(|(i, m)| (m.migration.version, i))
        .collect();
    for (version, name, checksum) in &applied {
        match by_version.get(version) {
            Some(&i) => {
                let current = plugin.migrations[i].migration.checksum();
                if &current != checksum {
                    return Err(PluginError::ChecksumChanged {
                        plugin: plugin.id.to_string(),
                        migration: plugin.migrations[i].migration.label(),
                        applied: checksum.clone(),
                        current,
                    });
                }
            }
            None => warn!(
                plugin = %plugin.id,
                migration = %format!("{version:04}_{name}"),
                "an applied plugin migration is no longer shipped; its objects are kept"
            ),
        }
    }
    let latest = applied.last();
    let mut pending: Vec<usize> = plugin
        .migrations
        .iter()
        .enumerate()
        .filter(|(_, m)| !applied.iter().any(|(v, _, _)| *v == m.migration.version))
        .map(|(i, _)| i)
        .collect();
    pending.sort_by_key(|&i| plugin.migrations[i].migration.version);
    if let (Some(&first), Some((version, name, _))) = (<[usize]>::first(&pending), latest) {
        if plugin.migrations[first].migration.version < *version {
            return Err(PluginError::OutOfOrder {
                plugin: plugin.id.to_string(),
                migration: plugin.migrations[first].migration.label(),
                latest: format!("{version:04}_{name}"),
            });
        }
    }
    Ok(pending)
}

/// Who writes a migration's record.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Record {
    /// The plugin's own session (roles mode).
    Own,
    /// The core's session (convention mode), after resetting what the plugin set.
    Core,
}

#[derive(QueryableByName)]
struct Xact {
    #[diesel(sql_type = Text)]
    id: String,
}

/// One migration in one transaction, recorded in it. With a `limit`, a statement still
/// running past it (plus [`GRACE`]) stops the run with [`PluginError::Overran`] without
/// touching the connection again: the caller ends its session.
async fn run_one(
    conn: &mut AsyncPgConnection,
    plugin: &LoadedPlugin,
    index: usize,
    record: Record,
    limit: Option<Duration>,
) -> Result<(), PluginError> {
    let checked = &plugin.migrations[index];
    let schema = plugin.id.schema();
    let label = checked.migration.label();
    let mode = match record {
        Record::Own => IsolationMode::Roles,
        Record::Core => IsolationMode::Convention,
    };
    // Our own statements on the plugin's session get the same deadline as its statements: a
    // deferred trigger of the plugin's runs inside COMMIT, and the plugin's SQL may have
    // changed the session (its search path, its timeouts).
    let overran = |statement: usize| PluginError::Overran {
        plugin: plugin.id.to_string(),
        migration: label.clone(),
        statement,
        limit_ms: limit.map_or(0, |l| l.as_millis()),
    };
    conn.batch_execute("BEGIN").await?;
    let outcome = async {
        bounded(limit, enter(conn, mode, &schema), || overran(0)).await??;
        let xact = bounded(limit, current_xact(conn), || overran(0)).await??;
        for statement in &checked.statements {
            if let Some(reason) = &statement.unreadable {
                debug!(plugin = %plugin.id, migration = %label, statement = statement.position, reason, "statement left to PostgreSQL");
            }
            // The extended protocol runs exactly one command: what the check split is
            // what PostgreSQL runs.
            let run = diesel::sql_query(statement.text.as_str()).execute(conn);
            let ran = bounded(limit, run, || overran(statement.position)).await?;
            ran.map_err(|e| {
                if is_transport_failure(&e) {
                    PluginError::Query(e)
                } else {
                    PluginError::MigrationFailed {
                        plugin: plugin.id.to_string(),
                        migration: label.clone(),
                        statement: statement.position,
                        detail: e.to_string(),
                    }
                }
            })?;
            // `COMMIT` or `ROLLBACK` inside the migration: the rest would not be atomic.
            let now = bounded(limit, current_xact(conn), || overran(statement.position)).await??;
            if now != xact {
                return Err(PluginError::LeftTransaction {
                    plugin: plugin.id.to_string(),
                    migration: label.clone(),
                    statement: statement.position,
                });
            }
        }
        if record == Record::Core {
            conn.batch_execute(RESET).await?;
        }
        let last = checked.statements.len();
        let insert = diesel::sql_query(
            "INSERT INTO public.__plugin_migrations (plugin_id, version, name, checksum) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind::<Text, _>(plugin.id.as_str())
        .bind::<BigInt, _>(checked.migration.version)
        .bind::<Text, _>(&checked.migration.name)
        .bind::<Text, _>(checked.migration.checksum())
        .execute(conn);
        bounded(limit, insert, || overran(last)).await??;
        bounded(limit, conn.batch_execute("COMMIT"), || overran(last)).await??;
        Ok(())
    }
    .await;
    match outcome {
        // The connection may still be running the statement: only ending it helps.
        Err(e @ PluginError::Overran { .. }) => Err(e),
        Err(e) => {
            // A failed transaction rolls the local settings back; a session-level change
            // made by the migration's own statements is undone as well.
            let _ = conn.batch_execute("ROLLBACK").await;
            if record == Record::Core {
                let _ = conn.batch_execute(RESET).await;
            }
            Err(e)
        }
        Ok(()) => Ok(()),
    }
}

/// The current transaction's id (assigning one): it changes when a statement ends the
/// transaction and starts another. Qualified: the plugin's SQL may have put its own schema
/// before `pg_catalog` on the search path.
async fn current_xact(conn: &mut AsyncPgConnection) -> Result<String, PluginError> {
    let Xact { id } = diesel::sql_query("SELECT pg_catalog.pg_current_xact_id()::text AS id")
        .get_result(conn)
        .await?;
    Ok(id)
}

/// `work`, or `overran()` once it runs past `limit` plus [`GRACE`] (without a limit: as it
/// comes). The connection is not touched again after an overrun: the caller ends it.
async fn bounded<T, E>(
    limit: Option<Duration>,
    work: impl std::future::Future<Output = Result<T, E>>,
    overran: impl FnOnce() -> PluginError,
) -> Result<Result<T, E>, PluginError> {
    match limit {
        Some(limit) => tokio::time::timeout(limit + GRACE, work)
            .await
            .map_err(|_| overran()),
        None => Ok(work.await),
    }
}
