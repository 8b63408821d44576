//! The client-side answer deadline against a real PostgreSQL behind a relay that can go
//! silent: a request whose server stops answering (before or in the middle of its answer)
//! fails instead of hanging, and a healthy connection (slow statements, long idle periods,
//! pipelined queries) never trips it.

mod common;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use deploystack_backend::config::PoolSettings;
use deploystack_backend::db::{LivePool, PgConnector};
use diesel::sql_types::BigInt;
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;

use common::pg::TestDb;
use common::server::{config, TestServer};

/// Unlimited: the relay passes everything.
const OPEN: i64 = i64::MAX;

/// A TCP relay to PostgreSQL that keeps every connection open but can stop passing bytes
/// from the server, at once or after a budget of bytes, as a server that vanished behind a
/// middlebox (or froze) looks to a client.
struct SilentRelay {
    port: u16,
    /// Bytes from the server still passed on; at zero the relay is silent.
    budget: Arc<AtomicI64>,
    /// Bytes from the server passed on so far (or being passed on), over all connections.
    passed: Arc<AtomicI64>,
}

impl SilentRelay {
    async fn start(upstream: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind relay");
        let port = listener.local_addr().expect("addr").port();
        let budget = Arc::new(AtomicI64::new(OPEN));
        let passed = Arc::new(AtomicI64::new(0));
        let shared = budget.clone();
        let counted = passed.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                else {
                    continue;
                };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::spawn(pump(client_read, server_write, None));
                tokio::spawn(pump(
                    server_read,
                    client_write,
                    Some((shared.clone(), counted.clone())),
                ));
            }
        });
        Self {
            port,
            budget,
            passed,
        }
    }

    fn silence_after(&self, bytes: i64) {
        self.budget.store(bytes, Ordering::SeqCst);
    }
}

/// Copies bytes; with a budget, only as many as it allows, holding the rest back, and
/// counting what it passed.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    budget: Option<(Arc<AtomicI64>, Arc<AtomicI64>)>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok(n) = from.read(&mut buf).await else {
            return;
        };
        if n == 0 {
            return;
        }
        let mut pass = n;
        if let Some((budget, _)) = &budget {
            loop {
                let left = AtomicI64::load(budget, Ordering::SeqCst);
                if left > 0 {
                    pass = pass.min(left as usize);
                    budget.fetch_sub(pass as i64, Ordering::SeqCst);
                    break;
                }
                // Silent: hold everything until the test ends.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        // Counted before the client can see them: once a client holds an answer, every
        // byte of it is in `passed`, so a test reading the count right after a login
        // gets the whole login and not a part still being written.
        if let Some((_, passed)) = &budget {
            passed.fetch_add(pass as i64, Ordering::SeqCst);
        }
        if to.write_all(&buf[..pass]).await.is_err() {
            return;
        }
        if pass < n {
            // The rest of this chunk is held for good.
            std::future::pending::<()>().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_server_fails_requests_instead_of_hanging_them() {
    let db = TestDb::new().await;
    let relay = SilentRelay::start(db.connection.port).await;
    let mut through_relay = db.connection.clone();
    through_relay.port = relay.port;
    let dir = tempfile::tempdir().expect("dir");
    let mut cfg = config(through_relay, dir.path());
    cfg.pool.statement_timeout = Duration::from_millis(500);
    cfg.pool.query_timeout = Duration::from_millis(1500);
    cfg.pool.connect_timeout = Duration::from_secs(2);
    let server = TestServer::start(&cfg).await;
    assert_eq!(server.setup().await.0, 200);
    assert_eq!(server.get("/api/health/ready").await.0, 200);

    // Silent at once: whatever was in flight (the job and settings listeners may still be
    // subscribing) never gets its answer.
    relay.silence_after(0);
    for _ in 0..3 {
        let (code, body) =
            tokio::time::timeout(Duration::from_secs(30), server.get("/api/health/ready"))
                .await
                .expect("the request is answered, not left hanging on a silent connection");
        assert_eq!(code, 503, "{body}");
    }
    tokio::time::timeout(Duration::from_secs(60), server.stop())
        .await
        .expect("shutdown ends although the server went silent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_whose_server_goes_silent_after_the_login_gives_up_in_time() {
    let db = TestDb::new().await;
    db.create_empty().await;
    let relay = SilentRelay::start(db.connection.port).await;
    let mut target = db.connection.clone();
    target.port = relay.port;
    let settings = PoolSettings {
        connect_timeout: Duration::from_secs(2),
        ..PoolSettings::default()
    };
    let connector = PgConnector::new(&target, &settings).expect("connector");
    // What a login (with diesel-async's session set-up) sends back; its length does not
    // change from one login to the next.
    let login = connector
        .connect_plain()
        .await
        .expect("login through the relay");
    drop(login);
    let login_bytes = AtomicI64::load(&relay.passed, Ordering::SeqCst);
    assert!(login_bytes > 0);
    // The next login passes, then the answer to LISTEN never comes.
    relay.silence_after(login_bytes);
    let outcome = tokio::time::timeout(
        Duration::from_secs(30),
        connector.connect_listening("deploystack_test_channel"),
    )
    .await
    .expect("the listener gives up within its connect timeout instead of hanging");
    let Err(e) = outcome else {
        panic!("a LISTEN without answer is an error")
    };
    assert!(e.to_string().contains("no answer within"), "{e}");
    // The whole login went through: it was the LISTEN that got no answer.
    assert_eq!(
        AtomicI64::load(&relay.passed, Ordering::SeqCst),
        2 * login_bytes
    );
}

#[derive(QueryableByName)]
struct Total {
    #[diesel(sql_type = BigInt)]
    total: i64,
}

/// A pool on `db` through `port`, with a 1 s answer deadline and a 500 ms statement timeout.
fn pool_through(db: &TestDb, port: u16) -> LivePool {
    let mut target = db.connection.clone();
    target.port = port;
    let settings = PoolSettings {
        statement_timeout: Duration::from_millis(500),
        query_timeout: Duration::from_millis(1000),
        connect_timeout: Duration::from_secs(3),
        ..PoolSettings::default()
    };
    LivePool::new(
        &PgConnector::new(&target, &settings).expect("connector"),
        &settings,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_freezes_in_the_middle_of_an_answer_fails_the_query() {
    let db = TestDb::new().await;
    let _migrated = common::pg::ready_database(&db).await;
    let relay = SilentRelay::start(db.connection.port).await;
    let pool = pool_through(&db, relay.port);
    let mut conn = pool.get().await.expect("connection");
    // The answer starts (a few kB of rows pass), then the server goes silent.
    relay.silence_after(4096);
    let outcome = tokio::time::timeout(
        Duration::from_secs(30),
        diesel::sql_query("SELECT g::bigint AS total FROM generate_series(1, 200000) g")
            .load::<Total>(&mut conn),
    )
    .await
    .expect("the query fails instead of hanging");
    let Err(e) = outcome else {
        panic!("a frozen answer is an error")
    };
    // Our deadline closed the connection (the relay never does).
    assert!(e.to_string().contains("connection closed"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_connection_never_trips_the_deadline() {
    let db = TestDb::new().await;
    let _migrated = common::pg::ready_database(&db).await;
    let relay = SilentRelay::start(db.connection.port).await;
    let pool = pool_through(&db, relay.port);
    let mut conn = pool.get().await.expect("connection");
    // Idle for longer than the deadline: nothing is outstanding, nothing trips.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // A statement that thinks for most of the deadline, then answers.
    diesel::sql_query("SELECT pg_sleep(0.4)")
        .execute(&mut conn)
        .await
        .expect("a slow but alive server is fine");
    // A long answer that keeps streaming (more than the relay's buffer at a time).
    let rows = diesel::sql_query("SELECT g::bigint AS total FROM generate_series(1, 200000) g")
        .load::<Total>(&mut conn)
        .await
        .expect("a long answer is fine");
    assert_eq!(rows.len(), 200_000);
    assert_eq!(rows.last().map(|r| r.total), Some(200_000));
    // New connections pipeline their session set-up (diesel-async sends it at once).
    let mut fresh = Vec::new();
    for _ in 0..3 {
        fresh.push(pool.get().await.expect("another connection"));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    diesel::sql_query("SELECT 1::bigint AS total")
        .load::<Total>(&mut conn)
        .await
        .expect("still usable after another idle period");
}
