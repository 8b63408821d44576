//! Refuses a connection pooler in transaction (or statement) mode, such as PgBouncer with
//! `pool_mode = transaction`: the backend keeps session state that such a pooler hands to
//! other clients between transactions (diesel-async's named prepared statements, the setup
//! and migration advisory locks, LISTEN). Session pooling and direct connections work.
//!
//! The probe: two connections of this process that are both open can never be served by the
//! same PostgreSQL backend in session mode. A transaction pooler reuses the backend one of
//! them just released (PgBouncer hands out the most recently released one first), or loses a
//! prepared statement on the way; either gives it away. A busy pooler may hide itself from
//! the probe, never the other way round: a direct connection is never refused.

use diesel::sql_types::Integer;
use diesel::QueryableByName;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::error::DbError;
use super::PgConnector;

/// What to tell an operator whose connection goes through a transaction pooler.
pub const TRANSACTION_POOLER: &str = "The database connection goes through a pooler in \
     transaction mode (such as PgBouncer with pool_mode = transaction): two connections of \
     this server were served by the same PostgreSQL session. The backend needs its own \
     sessions (prepared statements, advisory locks, LISTEN): point POSTGRES_HOST/PORT at \
     PostgreSQL itself or at a pool in session mode (pool_mode = session).";

/// Rounds of the probe.
const ROUNDS: usize = 3;

#[derive(QueryableByName)]
struct Backend {
    #[diesel(sql_type = Integer)]
    pid: i32,
}

/// What the probe saw.
enum Seen {
    Pid(i32),
    /// The server lost or duplicated a prepared statement of this connection.
    StatementMixUp,
}

/// SQLSTATEs of a prepared statement a transaction pooler lost (26000,
/// `invalid_sql_statement_name`) or handed to another client (42P05,
/// `duplicate_prepared_statement`).
const STATEMENT_MIX_UP: [&str; 2] = ["26000", "42P05"];

async fn backend_pid(conn: &mut AsyncPgConnection) -> Result<Seen, DbError> {
    match diesel::sql_query("SELECT pg_backend_pid() AS pid")
        .get_result::<Backend>(conn)
        .await
    {
        Ok(row) => Ok(Seen::Pid(row.pid)),
        Err(diesel::result::Error::DatabaseError(_, info))
            if info
                .sqlstate()
                .is_some_and(|code| STATEMENT_MIX_UP.contains(&code.as_str())) =>
        {
            Ok(Seen::StatementMixUp)
        }
        Err(e) => Err(DbError::Query(e)),
    }
}

/// Whether `first` (open) and a second connection from `connector` are served by a
/// transaction pooler. A connection is a property of the server it reaches: setup refuses
/// such a primary, the replica checks such a replica.
pub async fn behind_transaction_pooler(
    connector: &PgConnector,
    first: &mut AsyncPgConnection,
) -> Result<bool, DbError> {
    let mut second = connector
        .without_statement_timeout()
        .connect_plain()
        .await
        .map_err(|e| DbError::Unavailable(e.to_string()))?;
    for _ in 0..ROUNDS {
        let a = backend_pid(first).await?;
        let b = backend_pid(&mut second).await?;
        let shared = match (a, b) {
            (Seen::Pid(a), Seen::Pid(b)) => a == b,
            _ => true,
        };
        if shared {
            return Ok(true);
        }
    }
    Ok(false)
}
