//! Session advisory locks taken with a deadline: `pg_advisory_lock` waits forever behind a
//! holder that is stuck elsewhere, so every lock the backend takes is polled with
//! `pg_try_advisory_lock` until granted or the deadline passes, and the caller answers
//! "busy, retry" instead of hanging. The transaction-level variant serves work that must
//! hold the lock exactly as long as its transaction (the secret rotation).

use std::time::Duration;

use diesel::QueryableByName;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use tokio::time::Instant;

/// How often a busy lock is asked for again.
const POLL: Duration = Duration::from_millis(100);

/// Takes the session advisory lock `key` on `conn`, polling until `deadline`. `Ok(false)`:
/// someone else still held it at the deadline.
pub async fn lock_until(
    conn: &mut AsyncPgConnection,
    key: i64,
    deadline: Instant,
) -> diesel::QueryResult<bool> {
    poll(conn, "pg_try_advisory_lock", key, deadline).await
}

/// Takes the transaction advisory lock `key` on `conn`, polling until `deadline`; it is
/// released by the commit or rollback of the transaction `conn` is in. `Ok(false)`: someone
/// else still held it at the deadline.
pub async fn xact_lock_until(
    conn: &mut AsyncPgConnection,
    key: i64,
    deadline: Instant,
) -> diesel::QueryResult<bool> {
    poll(conn, "pg_try_advisory_xact_lock", key, deadline).await
}

/// Calls the `try` lock function until it grants the lock or `deadline` passes.
async fn poll(
    conn: &mut AsyncPgConnection,
    function: &str,
    key: i64,
    deadline: Instant,
) -> diesel::QueryResult<bool> {
    #[derive(QueryableByName)]
    struct Granted {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        granted: bool,
    }
    loop {
        let row: Granted = diesel::sql_query(format!("SELECT {function}({key}) AS granted"))
            .get_result(&mut *conn)
            .await?;
        if row.granted {
            return Ok(true);
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(POLL.min(deadline - now)).await;
    }
}

/// Releases the session advisory lock `key` taken with [`lock_until`].
pub async fn unlock(conn: &mut AsyncPgConnection, key: i64) -> diesel::QueryResult<()> {
    diesel::sql_query(format!("SELECT pg_advisory_unlock({key})"))
        .execute(conn)
        .await
        .map(|_| ())
}
