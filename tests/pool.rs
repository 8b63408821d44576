//! The pool against a real PostgreSQL: connections are recycled once they reach their
//! lifetime, each at its own time, without failing a request, and kept for good without one.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use deploystack_backend::config::PoolSettings;
use deploystack_backend::db::{LivePool, PgConnector};
use diesel::sql_types::Integer;
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;

use common::pg::TestDb;

#[derive(QueryableByName)]
struct Pid {
    #[diesel(sql_type = Integer)]
    pid: i32,
}

/// The backend pids seen by one checkout and query after another for `span`; every
/// checkout and query must succeed.
async fn pids_over(pool: &LivePool, span: Duration) -> BTreeSet<i32> {
    let mut seen = BTreeSet::new();
    let until = Instant::now() + span;
    while Instant::now() < until {
        let mut conn = pool.get().await.expect("a connection, recycling or not");
        let row = diesel::sql_query("SELECT pg_backend_pid() AS pid")
            .get_result::<Pid>(&mut conn)
            .await
            .expect("a query on a checked-out connection never meets a retired one");
        seen.insert(row.pid);
        drop(conn);
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    seen
}

fn pool_on(db: &TestDb, max_lifetime: Option<Duration>) -> LivePool {
    let settings = PoolSettings {
        // One connection: every pid change is a recycling.
        max_size: 1,
        min_idle: 1,
        max_lifetime,
        ..PoolSettings::default()
    };
    LivePool::new(
        &PgConnector::new(&db.connection, &settings).expect("connector"),
        &settings,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_recycled_at_their_lifetime_without_failing_a_request() {
    let db = TestDb::new().await;
    db.create_empty().await;

    let kept = pool_on(&db, None);
    let pids = pids_over(&kept, Duration::from_millis(1500)).await;
    assert_eq!(
        pids.len(),
        1,
        "without a lifetime one connection serves all: {pids:?}"
    );
    assert_eq!(kept.figures().recycled, 0);

    let recycled = pool_on(&db, Some(Duration::from_millis(400)));
    let pids = pids_over(&recycled, Duration::from_millis(2500)).await;
    // About six generations in 2.5 s; at least three whatever the machine's load.
    assert!(pids.len() >= 3, "{pids:?}");
    let figures = recycled.figures();
    assert!(figures.recycled >= 2, "{figures:?}");
    assert_eq!(
        figures.closed_broken, 0,
        "retired connections are not broken ones"
    );
}
