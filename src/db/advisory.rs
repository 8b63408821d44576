//! Session advisory locks taken with a deadline: `pg_advisory_lock` waits forever behind a
//! holder that is stuck elsewhere, so every lock the backend takes is polled with
//! `pg_try_advisory_lock` until granted or the deadline passes, and the caller answers
//! "busy, retry" instead of hanging.

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
    #[derive(QueryableByName)]
    struct Granted {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        granted: bool,
    }
    loop {
        let row: Granted =
            diesel::sql_query(format!("SELECT pg_try_advisory_lock({key}) AS granted"))
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
