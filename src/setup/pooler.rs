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

use super::error::SetupError;
use crate::db::PgConnector;

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

async fn backend_pid(conn: &mut AsyncPgConnection) -> Result<Seen, SetupError> {
    match diesel::sql_query("SELECT pg_backend_pid() AS pid")
        .get_result::<Backend>(conn)
        .await
    {
        Ok(row) => Ok(Seen::Pid(row.pid)),
        Err(diesel::result::Error::DatabaseError(_, info))
            if info.message().contains("prepared statement") =>
        {
            Ok(Seen::StatementMixUp)
        }
        Err(e) => Err(SetupError::Initialization(format!(
            "cannot check the connection pooler: {e}"
        ))),
    }
}

/// [`SetupError::Refused`] when `first` (open) and a second connection from `connector`
/// are served by a transaction pooler.
pub(crate) async fn refuse_transaction_pooling(
    connector: &PgConnector,
    first: &mut AsyncPgConnection,
) -> Result<(), SetupError> {
    let mut second = connector
        .without_statement_timeout()
        .connect_plain()
        .await
        .map_err(|e| SetupError::Unreachable(e.to_string()))?;
    for _ in 0..ROUNDS {
        let a = backend_pid(first).await?;
        let b = backend_pid(&mut second).await?;
        let shared = match (a, b) {
            (Seen::Pid(a), Seen::Pid(b)) => a == b,
            _ => true,
        };
        if shared {
            return Err(SetupError::Refused(
                "The database connection goes through a pooler in transaction mode (such as \
                 PgBouncer with pool_mode = transaction): two connections of this server were \
                 served by the same PostgreSQL session. The backend needs its own sessions \
                 (prepared statements, advisory locks, LISTEN): point POSTGRES_HOST/PORT at \
                 PostgreSQL itself or at a pool in session mode (pool_mode = session)."
                    .into(),
            ));
        }
    }
    Ok(())
}
