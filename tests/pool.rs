//! The pool against a real PostgreSQL: connections are recycled once they reach their
//! lifetime, each at its own time, without failing a request, and kept for good without one.
//! Its shared connections carry concurrent statements together, each caller keeping its own
//! answer, and are replaced when they end or age, or fail at once when none can be opened.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
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

fn shared_open(pool: &LivePool) -> u32 {
    pool.figures().shared
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_statements_share_connections_and_keep_their_own_answers() {
    let db = TestDb::new().await;
    db.create_empty().await;
    let pool = pool_on(&db, None);
    // Spawned, so the callers run on the runtime's two worker threads.
    let calls: Vec<_> = (0..300)
        .map(|n| {
            let pool = pool.clone();
            tokio::spawn(async move { shared_answer(&pool, n).await })
        })
        .collect();
    let mut pids = BTreeSet::new();
    for (n, call) in (0..).zip(calls) {
        let answer = call.await.expect("task");
        if n % 7 == 0 {
            let e = answer.err().unwrap_or_default();
            assert!(e.contains("division by zero"), "{n}: {e}");
        } else {
            let answer = answer.unwrap_or_else(|e| panic!("{n}: {e}"));
            assert_eq!(answer.n, n, "each caller gets its own answer");
            pids.insert(answer.pid);
        }
    }
    // 300 concurrent statements on at most one connection per worker thread.
    assert!(!pids.is_empty() && pids.len() <= 2, "{pids:?}");
    assert!(shared_open(&pool) <= 2);
}

/// With an answer deadline (TCP, the default) and without one (tokio-postgres' own socket).
#[tokio::test(flavor = "current_thread")]
async fn a_shared_connection_that_ended_is_replaced_before_the_next_statement() {
    let db = TestDb::new().await;
    db.create_empty().await;
    for query_timeout in [None, Some(Duration::ZERO)] {
        let mut settings = PoolSettings {
            max_size: 1,
            ..PoolSettings::default()
        };
        if let Some(t) = query_timeout {
            settings.query_timeout = t;
        }
        let pool = LivePool::new(
            &PgConnector::new(&db.connection, &settings).expect("connector"),
            &settings,
        );
        let first = shared_answer(&pool, 1).await.expect("first").pid;
        assert_eq!(shared_answer(&pool, 2).await.expect("again").pid, first);

        db.query(&format!("SELECT pg_terminate_backend({first})"))
            .await;
        // The connection's task sees the server close it; until then a statement could still
        // be sent on it and fail, as a pooled connection's would.
        let deadline = Instant::now() + Duration::from_secs(10);
        while shared_open(&pool) > 0 {
            assert!(Instant::now() < deadline, "the end was never noticed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let second = shared_answer(&pool, 3)
            .await
            .expect("a new connection answers");
        assert_ne!(second.pid, first);
        assert_eq!(shared_open(&pool), 1);
    }
}

#[tokio::test(flavor = "current_thread")]
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

#[tokio::test(flavor = "current_thread")]
async fn an_old_shared_connection_serves_until_its_replacement_opens() {
    let db = TestDb::new().await;
    db.create_empty().await;
    let pool = pool_on(&db, Some(Duration::from_millis(200)));
    let first = shared_answer(&pool, 1).await.expect("first").pid;
    // No new connection to this database from now on (the shared one is the only one).
    let name = &db.connection.database;
    db.execute_as_superuser(&format!("ALTER DATABASE \"{name}\" CONNECTION LIMIT 1"))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for n in 0..20 {
        let answer = shared_answer(&pool, 1).await.unwrap_or_else(|e| {
            panic!("statement {n} failed while its replacement could not open: {e}")
        });
        assert_eq!(answer.pid, first, "the old connection keeps serving");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    db.execute_as_superuser(&format!("ALTER DATABASE \"{name}\" CONNECTION LIMIT -1"))
        .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = shared_answer(&pool, 1).await.expect("answers");
        if answer.pid != first {
            break;
        }
        assert!(Instant::now() < deadline, "never replaced");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_share_one_attempt_and_its_failure() {
    // A server that accepts connections and never answers: each attempt waits for the
    // connect timeout.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = silent.local_addr().expect("addr").port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            held.push(socket);
        }
    });
    let db = TestDb::new().await;
    let mut nowhere = db.connection.clone();
    nowhere.port = port;
    let settings = PoolSettings {
        connect_timeout: Duration::from_millis(700),
        // No pooled connection is opened: every accept is a shared connection's attempt.
        min_idle: 0,
        ..PoolSettings::default()
    };
    let pool = LivePool::new(
        &PgConnector::new(&nowhere, &settings).expect("connector"),
        &settings,
    );
    let calls = (0..20).map(|_| pool.shared());
    for result in futures_util::future::join_all(calls).await {
        match result {
            Err(DbError::Unavailable(reason)) => {
                assert!(reason.contains("no answer within 700 ms"), "{reason}")
            }
            Err(e) => panic!("unexpected error: {e}"),
            Ok(_) => panic!("nothing answers there"),
        }
    }
    assert_eq!(
        AtomicUsize::load(&accepted, Ordering::SeqCst),
        1,
        "twenty callers of one thread, one connection attempt"
    );
    assert_eq!(shared_open(&pool), 0);
}
