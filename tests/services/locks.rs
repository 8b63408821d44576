//! Deterministic races: a second session holds a row lock while a service call runs, and
//! the test lets go only once the call either finished or waits for that lock. No sleeps
//! decide the outcome; the poll interval only paces the checks. Also used by the settings
//! tests (`#[path]`), so it depends on nothing but the test database.

use std::future::Future;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::common::pg::TestDb;

/// How long a call may neither finish nor wait for a lock before the test gives up: only a
/// guard against hanging forever on a broken setup, never part of what is checked.
const HANG_GUARD: Duration = Duration::from_secs(120);

/// A session of its own on the test database, to hold locks in an open transaction.
pub(crate) async fn session(db: &TestDb) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(&db.url(), tokio_postgres::NoTls)
        .await
        .expect("connect a second session");
    tokio::spawn(conn);
    client
}

/// Runs `call` while `holder` keeps the transaction it has open, and commits that
/// transaction as soon as `call` finished or waits for one of its locks; returns what
/// `call` returned. A call that does not take the lock runs to its end before the commit.
pub(crate) async fn run_while_held<T, F>(db: &TestDb, holder: &tokio_postgres::Client, call: F) -> T
where
    T: Send + 'static,
    F: Future<Output = T> + Send + 'static,
{
    let task = tokio::spawn(call);
    until_done_or_blocked(db, &task).await;
    holder.batch_execute("COMMIT").await.expect("commit");
    task.await.expect("the call panicked")
}

async fn until_done_or_blocked<T>(db: &TestDb, task: &JoinHandle<T>) {
    let observer = session(db).await;
    let started = std::time::Instant::now();
    loop {
        if task.is_finished() {
            return;
        }
        let waiting: i64 = observer
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
                &[],
            )
            .await
            .expect("pg_stat_activity")
            .get(0);
        if waiting > 0 {
            return;
        }
        assert!(
            started.elapsed() < HANG_GUARD,
            "the call neither finished nor waited for a lock"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
