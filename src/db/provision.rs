//! Creates the application database when it does not exist yet, through the `postgres`
//! maintenance database, so setup works against a bare server.

use diesel_async::{AsyncPgConnection, RunQueryDsl};
use tracing::info;

use crate::db::connector::{ConnectError, PgConnector};

/// Maintenance database every PostgreSQL server has.
const MAINTENANCE_DATABASE: &str = "postgres";

/// Connects to the application database, creating it first when it is missing.
/// Safe when several processes do it at once: losing the creation race is not an error.
pub async fn connect_creating_database(
    connector: &PgConnector,
) -> Result<AsyncPgConnection, ProvisionError> {
    match connector.connect().await {
        Ok(conn) => return Ok(conn),
        Err(ConnectError::DatabaseMissing(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let mut admin = connector
        .for_database(MAINTENANCE_DATABASE)
        .connect()
        .await?;
    let statement = format!("CREATE DATABASE {}", quote_identifier(connector.database()));
    match diesel::sql_query(statement).execute(&mut admin).await {
        Ok(_) => {
            info!(database = connector.database(), "created database");
            Ok(connector.connect().await?)
        }
        // Most often another process created it between our connect and our CREATE
        // DATABASE; whatever the server's language, the database is usable if we can connect.
        Err(e) => connector
            .connect()
            .await
            .map_err(|_| ProvisionError::CreateFailed {
                database: connector.database().to_owned(),
                detail: e.to_string(),
            }),
    }
}

/// Whether the application database exists, asked of the maintenance database: connecting
/// to a missing database would make the server log a FATAL line at every look. `None` when
/// the maintenance database refuses us (some managed services): ask by connecting instead.
pub async fn database_exists(connector: &PgConnector) -> Result<Option<bool>, ConnectError> {
    let mut admin = match connector.for_database(MAINTENANCE_DATABASE).connect().await {
        Ok(conn) => conn,
        Err(ConnectError::Rejected { .. } | ConnectError::DatabaseMissing(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    #[derive(diesel::QueryableByName)]
    struct Found {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        found: bool,
    }
    let found: Found =
        diesel::sql_query("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS found")
            .bind::<diesel::sql_types::Text, _>(connector.database())
            .get_result(&mut admin)
            .await
            .map_err(|e| ConnectError::Unreachable {
                target: connector.target(),
                detail: e.to_string(),
            })?;
    Ok(Some(found.found))
}

/// Double-quotes an identifier the way PostgreSQL's `quote_ident` does.
pub fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The database could not be reached or created.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// Connecting failed (server down, login rejected, ...).
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// `CREATE DATABASE` failed for another reason than a concurrent creation.
    #[error("cannot create database \"{database}\": {detail}")]
    CreateFailed {
        /// Name of the database.
        database: String,
        /// PostgreSQL's message (for example a missing CREATEDB privilege).
        detail: String,
    },
}
