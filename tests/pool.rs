//! The pool against a real PostgreSQL: connections are recycled once they reach their
//! lifetime, each at its own time, without failing a request, and kept for good without one.
//! Its shared connections carry concurrent statements together, each caller keeping its own
//! answer, and are replaced when they end or age, or fail at once when none can be opened.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use deploystack_backend::config::PoolSettings;
use deploystack_backend::db::{DbError, LivePool, PgConnector};
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

#[derive(QueryableByName)]
struct Answer {
    #[diesel(sql_type = Integer)]
    n: i32,
    #[diesel(sql_type = Integer)]
    pid: i32,
}

/// `SELECT n, pid` on a shared connection; `100 / (n % 7)`: every seventh caller divides by
/// zero.
async fn shared_answer(pool: &LivePool, n: i32) -> Result<Answer, String> {
    let conn = pool.shared().await.map_err(|e| e.to_string())?;
    diesel::sql_query("SELECT $1 AS n, pg_backend_pid() AS pid, 100 / ($1 % 7) AS q")
        .bind::<Integer, _>(n)
        .get_result::<Answer>(&mut &*conn)
        .await
        .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_statements_share_connections_and_keep_their_own_answers() {
    let db = TestDb::new().await;
    db.create_empty().await;
    let pool = pool_on(&db, None);
    let calls = (0..300).map(|n| shared_answer(&pool, n));
    let answers = futures_util::future::join_all(calls).await;
    let mut pids = BTreeSet::new();
    for (n, answer) in (0..).zip(answers) {
        if n % 7 == 0 {
            let e = answer.err().unwrap_or_default();
            assert!(e.contains("division by zero"), "{n}: {e}");
        } else {
            let answer = answer.unwrap_or_else(|e| panic!("{n}: {e}"));
            assert_eq!(answer.n, n, "each caller gets its own answer");
            pids.insert(answer.pid);
        }
    }
    // One shared connection per worker thread of this runtime (2), whatever the callers.
    assert!(!pids.is_empty() && pids.len() <= 2, "{pids:?}");
    assert!(pool.shared_open() <= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_shared_connection_that_ended_is_replaced_before_the_next_statement() {
    let db = TestDb::new().await;
    db.create_empty().await;
    let pool = pool_on(&db, None);
    let first = shared_answer(&pool, 1).await.expect("first").pid;
    assert_eq!(shared_answer(&pool, 2).await.expect("again").pid, first);

    db.query(&format!("SELECT pg_terminate_backend({first})"))
        .await;
    // The connection's task sees the server close it; until then a statement could still be
    // sent on it and fail, as a pooled connection's would.
    let deadline = Instant::now() + Duration::from_secs(10);
    while pool.shared_open() > 0 {
        assert!(Instant::now() < deadline, "the end was never noticed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let second = shared_answer(&pool, 3)
        .await
        .expect("a new connection answers");
    assert_ne!(second.pid, first);
    assert_eq!(pool.shared_open(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn shared_connections_are_recycled_at_their_lifetime() {
    let db = TestDb::new().await;
    db.create_empty().await;
    let pool = pool_on(&db, Some(Duration::from_millis(300)));
    let mut pids = BTreeSet::new();
    let until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < until {
        let answer = shared_answer(&pool, 1)
            .await
            .expect("never fails while recycling");
        pids.insert(answer.pid);
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    // About five generations in 1.5 s; at least two whatever the machine's load.
    assert!(pids.len() >= 2, "{pids:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_connections_fail_at_once_when_none_can_be_opened() {
    let db = TestDb::new().await;
    let mut nowhere = db.connection.clone();
    nowhere.port = common::free_port();
    let settings = PoolSettings {
        connect_timeout: Duration::from_secs(30),
        ..PoolSettings::default()
    };
    let pool = LivePool::new(
        &PgConnector::new(&nowhere, &settings).expect("connector"),
        &settings,
    );
    let started = Instant::now();
    let calls = (0..20).map(|_| pool.shared());
    for result in futures_util::future::join_all(calls).await {
        match result {
            Err(DbError::Unavailable(reason)) => {
                assert!(reason.contains("could not connect"), "{reason}")
            }
            Err(e) => panic!("unexpected error: {e}"),
            Ok(_) => panic!("nothing listens there"),
        }
    }
    // Refused at once: nobody waited for the 30 s connect timeout.
    assert!(started.elapsed() < Duration::from_secs(25));
    assert_eq!(pool.shared_open(), 0);
}
