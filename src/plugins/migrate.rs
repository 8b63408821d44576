//! Applies plugin migrations after the core's, under the core's migration lock: each pending
//! migration in its own transaction, its statements run as the plugin's role in its schema,
//! recorded with its checksum in `__plugin_migrations` by the core. An applied migration
//! whose SQL changed, or a new one ordered before an applied one, stops everything before
//! any statement runs. Nothing here ever drops plugin data.

use std::collections::HashMap;

use diesel::sql_types::{BigInt, Text};
use diesel::QueryableByName;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use tracing::{info, warn};

use super::catalog::LoadedPlugin;
use super::error::{is_transport_failure, PluginError};
use super::handle::{enter, RESET};
use super::mode::IsolationMode;

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

/// Checks every plugin's history first, then applies what is pending, plugin by plugin.
/// The caller holds the migration lock.
pub async fn apply(
    conn: &mut AsyncPgConnection,
    plugins: &[LoadedPlugin],
    mode: IsolationMode,
) -> Result<Vec<Applied>, PluginError> {
    let mut plans = Vec::new();
    for plugin in plugins {
        plans.push(pending(conn, plugin).await?);
    }
    let mut applied = Vec::new();
    for (plugin, pending) in plugins.iter().zip(plans) {
        for index in pending {
            let migration = &plugin.migrations[index];
            run_one(conn, plugin, index, mode).await?;
            info!(plugin = %plugin.id, migration = %migration.migration.label(), "applied plugin migration");
            applied.push(Applied {
                plugin: plugin.id.to_string(),
                migration: migration.migration.label(),
            });
        }
    }
    Ok(applied)
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

/// One migration in one transaction: as the plugin, then recorded as the core.
async fn run_one(
    conn: &mut AsyncPgConnection,
    plugin: &LoadedPlugin,
    index: usize,
    mode: IsolationMode,
) -> Result<(), PluginError> {
    let checked = &plugin.migrations[index];
    let schema = plugin.id.schema();
    let label = checked.migration.label();
    let outcome = conn
        .transaction::<_, PluginError, _>(async |conn| {
            enter(conn, mode, &schema).await?;
            let expected = session(conn).await?;
            for statement in &checked.statements {
                // The extended protocol runs exactly one command: what the check split is
                // what PostgreSQL runs.
                diesel::sql_query(statement.text.as_str())
                    .execute(conn)
                    .await
                    .map_err(|e| {
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
                // Dynamic SQL the check could not see must not have left the plugin's role.
                if session(conn).await? != expected {
                    return Err(PluginError::Escaped {
                        plugin: plugin.id.to_string(),
                        migration: label.clone(),
                        statement: statement.position,
                    });
                }
            }
            conn.batch_execute(RESET).await?;
            diesel::sql_query(
                "INSERT INTO public.__plugin_migrations (plugin_id, version, name, checksum) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind::<Text, _>(plugin.id.as_str())
            .bind::<BigInt, _>(checked.migration.version)
            .bind::<Text, _>(&checked.migration.name)
            .bind::<Text, _>(checked.migration.checksum())
            .execute(conn)
            .await?;
            Ok(())
        })
        .await;
    // A failed transaction rolled the local settings back; a session-level change made by
    // the migration's own statements is undone as well.
    if outcome.is_err() {
        let _ = conn.batch_execute(RESET).await;
    }
    outcome
}

#[derive(QueryableByName, PartialEq, Eq)]
struct Session {
    #[diesel(sql_type = Text)]
    role: String,
    #[diesel(sql_type = Text)]
    search_path: String,
}

/// The role and search path the migration's statements run with.
async fn session(conn: &mut AsyncPgConnection) -> Result<Session, PluginError> {
    Ok(diesel::sql_query(
        "SELECT current_user::text AS role, current_setting('search_path') AS search_path",
    )
    .get_result(conn)
    .await?)
}
