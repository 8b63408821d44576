//! Faults while the queue and the API work, each with an exact expected outcome: worker
//! processes killed with SIGKILL and PostgreSQL crashing (immediate stop) in the middle of a
//! drain; slow requests holding every pooled connection while long jobs run; PostgreSQL out
//! of connection slots. (Replicas killed, restarted and paused: `tests/replicas.rs`.)

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deploystack_backend::db::PgConnector;
use deploystack_backend::jobs::{
    EnqueueOptions, Job, JobContext, JobError, JobQueue, NewJob, Registry, Workers,
};
use serde_json::json;
use tokio::process::Child;

use common::pg::{ready_database, url_of, OwnCluster, TestDb};
use common::server::{config, TestServer};
use common::workers::{fast, spawn_worker, terminate, RUNS_TABLES};

const JOBS: i64 = 5_000;

/// `sql`'s single count, or `None` while PostgreSQL is away.
async fn try_count(db: &TestDb, sql: &str) -> Option<i64> {
    let (client, conn) = tokio_postgres::connect(&db.url(), tokio_postgres::NoTls)
        .await
        .ok()?;
    tokio::spawn(conn);
    client.query_one(sql, &[]).await.ok().map(|row| row.get(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_survives_killed_workers_and_a_postgresql_crash() {
    let port = common::free_port();
    let own = OwnCluster::prepare(port).await;
    let mut running = own.cluster.start().await.expect("start");
    let db = TestDb::on(&running);
    let database = ready_database(&db).await;
    db.execute(RUNS_TABLES).await;
    let dir = tempfile::tempdir().expect("dir");
    let log = |name: &str| dir.path().join(format!("{name}.log"));

    // Every run holds its job's advisory lock while it sleeps 20 ms: a second run of the same
    // job at the same time would find it held and say so in job_overlaps.
    let jobs = (0..JOBS)
        .map(|_| NewJob {
            job_type: "test_exclusive".into(),
            payload: json!({"sleepMs": 20}),
        })
        .collect();
    let queue = JobQueue::new(database.clone());
    let batch_id = queue
        .enqueue_batch(
            "faults",
            None,
            jobs,
            EnqueueOptions {
                // Each kill or crash costs the runs it interrupts an attempt.
                max_attempts: 25,
                ..EnqueueOptions::default()
            },
        )
        .await
        .expect("batch");
    database.close();

    let mut workers: Vec<Child> = Vec::new();
    for i in 0..3 {
        workers.push(spawn_worker(&db, &format!("w{i}"), &log(&format!("w{i}"))).await);
    }
    let started = Instant::now();
    let (mut kills, mut crashed) = (0, false);
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let completed = try_count(
            &db,
            "SELECT count(*) FROM queue_jobs WHERE status = 'completed'",
        )
        .await;
        if completed == Some(JOBS) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "{completed:?} of {JOBS} jobs completed after 4 minutes"
        );
        // A worker dies (SIGKILL) every two seconds; another takes its place.
        let slot = kills % workers.len();
        workers[slot].start_kill().expect("SIGKILL");
        let _ = workers[slot].wait().await;
        kills += 1;
        workers[slot] =
            spawn_worker(&db, &format!("w{slot}-{kills}"), &log(&format!("k{kills}"))).await;
        // Once, with a third done: PostgreSQL stops at once (no checkpoint, open transactions
        // lost) and comes back two seconds later.
        if !crashed && completed.is_some_and(|n| n >= JOBS / 3) {
            running.kill().await;
            tokio::time::sleep(Duration::from_secs(2)).await;
            running = own.cluster.start().await.expect("restart");
            crashed = true;
        }
    }
    assert!(
        crashed,
        "the drain ended before PostgreSQL could be crashed"
    );
    assert!(kills >= 3, "only {kills} workers were killed");

    let count = |sql: &'static str| {
        let db = &db;
        async move { try_count(db, sql).await.expect(sql) }
    };
    assert_eq!(
        count("SELECT count(*) FROM queue_jobs WHERE status = 'failed'").await,
        0
    );
    assert_eq!(count("SELECT count(*) FROM queue_jobs").await, JOBS);
    assert_eq!(
        count("SELECT count(*) FROM job_overlaps").await,
        0,
        "a job ran twice at the same time"
    );
    assert_eq!(
        count("SELECT count(DISTINCT job_id) FROM job_runs").await,
        JOBS
    );
    let batch = db
        .query(&format!(
            "SELECT completed_jobs, failed_jobs, total_jobs, status FROM queue_job_batches \
             WHERE id = '{batch_id}'"
        ))
        .await;
    assert_eq!(
        (
            batch[0].get::<_, i32>(0),
            batch[0].get::<_, i32>(1),
            batch[0].get::<_, i32>(2),
            batch[0].get::<_, String>(3)
        ),
        (JOBS as i32, 0, JOBS as i32, "completed".to_owned())
    );
    let reruns = count("SELECT count(*) FROM job_runs").await - JOBS;
    eprintln!(
        "drained {JOBS} jobs in {:.1} s with {kills} workers killed and one crash of PostgreSQL; \
         {reruns} runs repeated",
        started.elapsed().as_secs_f64()
    );
    for worker in workers {
        assert!(terminate(worker).await.success());
    }
    drop(db);
    running.stop().await.expect("stop");
}

/// The runs of `test_long`, over every runtime of this test process.
struct LongRuns {
    /// (runtime, job id, attempt) of every run started.
    started: Mutex<Vec<(&'static str, String, i32)>>,
    /// Job ids running right now.
    live: Mutex<HashSet<String>>,
    /// Runs that started while another run of the same job was live.
    overlaps: Mutex<u32>,
    /// Runs end once this is true.
    release: tokio::sync::watch::Sender<bool>,
}

impl Default for LongRuns {
    fn default() -> Self {
        Self {
            started: Mutex::default(),
            live: Mutex::default(),
            overlaps: Mutex::default(),
            release: tokio::sync::watch::Sender::new(false),
        }
    }
}

/// Lists a run in [`LongRuns::live`] for as long as it lives, its future dropped or not.
struct Live<'a>(&'a LongRuns, String);

impl Drop for Live<'_> {
    fn drop(&mut self) {
        self.0.live.lock().expect("live").remove(&self.1);
    }
}

/// Runs until released (a minute at most), recording its run in [`LongRuns`].
struct Long {
    runtime: &'static str,
    runs: Arc<LongRuns>,
}

impl Job for Long {
    const TYPE: &'static str = "test_long";
    type Payload = serde_json::Value;
    type Output = ();

    async fn run(&self, _: serde_json::Value, ctx: JobContext) -> Result<(), JobError> {
        let runs = &*self.runs;
        runs.started
            .lock()
            .expect("runs")
            .push((self.runtime, ctx.id.clone(), ctx.attempt));
        if !runs.live.lock().expect("live").insert(ctx.id.clone()) {
            *runs.overlaps.lock().expect("overlaps") += 1;
        }
        let _live = Live(runs, ctx.id.clone());
        let mut release = runs.release.subscribe();
        let _ = tokio::time::timeout(Duration::from_secs(60), release.wait_for(|r| *r)).await;
        Ok(())
    }
}

fn long_workers(
    database: deploystack_backend::db::Database,
    connector: &PgConnector,
    runtime: &'static str,
    runs: &Arc<LongRuns>,
) -> Workers {
    let mut registry = Registry::new();
    registry.register(Long {
        runtime,
        runs: runs.clone(),
    });
    Workers::start(database, Some(connector.clone()), registry, fast(2))
}

/// Registrations of the sign-up form wait for this advisory lock; a session holding it makes
/// them slow requests.
const REGISTRATION_LOCK: i64 = deploystack_backend::services::users::FIRST_USER_LOCK;

fn registration(n: usize) -> serde_json::Value {
    json!({"username": format!("user_{n}"), "email": format!("user{n}@example.com"),
           "password": "correct horse battery"})
}

/// Registrations waiting for [`REGISTRATION_LOCK`], each holding a pooled connection.
async fn waiting_registrations(db: &TestDb) -> i64 {
    db.query(&format!(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted \
           AND objid = ({REGISTRATION_LOCK} & x'ffffffff'::bigint)::oid \
           AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    ))
    .await[0]
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_requests_holding_every_connection_leave_leases_alone_and_others_get_503_in_time() {
    const POOL: u32 = 4;
    const CHECKOUT: Duration = Duration::from_secs(1);
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("dir");
    let mut cfg = config(db.connection.clone(), dir.path());
    cfg.pool.max_size = POOL;
    cfg.pool.connect_timeout = CHECKOUT;
    cfg.jobs.concurrency = 0;
    let server = TestServer::start(&cfg).await;
    assert_eq!(server.setup().await.0, 200);
    // The first administrator exists: the sign-ups below are ordinary ones.
    assert_eq!(server.register("owner").await.0, 201);
    let database = server.state.database.clone();
    let connector = PgConnector::new(&db.connection, &cfg.pool).expect("connector");

    // Two long jobs run in the server's process (until released)...
    let runs = Arc::new(LongRuns::default());
    let workers = long_workers(database.clone(), &connector, "server", &runs);
    let queue = JobQueue::new(database.clone());
    let mut ids = Vec::new();
    for _ in 0..2 {
        ids.push(
            queue
                .enqueue("test_long", json!({}), EnqueueOptions::default())
                .await
                .expect("enqueue"),
        );
    }
    common::wait_until("both jobs to run", Duration::from_secs(20), || async {
        runs.live.lock().expect("live").len() == 2
    })
    .await;
    // ...and another process, with a pool of its own, would take back any lease that
    // expired, and run the job again.
    let other = long_workers(ready_database(&db).await, &connector, "other", &runs);

    // Slow requests: registrations waiting for a lock another session holds, one per pooled
    // connection.
    let holder = db.hold_advisory_lock(REGISTRATION_LOCK).await;
    let mut slow = Vec::new();
    for n in 0..POOL as usize {
        let http = server.http.clone();
        let url = format!("{}/api/auth/email/register", server.url);
        slow.push(tokio::spawn(async move {
            let resp = http
                .post(url)
                .json(&registration(n))
                .send()
                .await
                .expect("register");
            common::server::json_of(resp).await
        }));
    }
    common::wait_until(
        "every pooled connection to wait in a registration",
        Duration::from_secs(20),
        || async { waiting_registrations(&db).await == i64::from(POOL) },
    )
    .await;

    // Every other request that needs a connection is answered 503 once the checkout
    // timeout passed, while the slow ones still hold the pool.
    for n in 0..3 {
        let sent = Instant::now();
        let (code, body) = tokio::time::timeout(
            Duration::from_secs(15),
            server.post_json("/api/auth/email/register", &registration(100 + n)),
        )
        .await
        .expect("answered while the pool is taken, not after");
        let took = sent.elapsed();
        assert_eq!(code, 503, "{body}");
        assert_eq!(body["error"], "Database unavailable", "{body}");
        assert!(
            took >= CHECKOUT,
            "503 after {took:?}: before the checkout timeout"
        );
        eprintln!(
            "503 after {} ms (checkout timeout {} ms)",
            took.as_millis(),
            CHECKOUT.as_millis()
        );
    }
    assert_eq!(
        waiting_registrations(&db).await,
        i64::from(POOL),
        "the slow requests still hold the pool"
    );
    // Held past three leases (4.5 s) in all.
    tokio::time::sleep(Duration::from_millis(4_500)).await;
    assert_eq!(
        runs.live.lock().expect("live").len(),
        2,
        "the jobs ran all along"
    );
    runs.release.send_replace(true);
    drop(holder);
    // The slow requests go through once the lock is free; the 503s created nothing.
    let mut created = 0;
    for request in slow {
        let (code, body) = request.await.expect("request task");
        assert_eq!(code, 201, "{body}");
        created += 1;
    }
    let users: i64 = db.query("SELECT count(*) FROM users").await[0].get(0);
    assert_eq!(users, created + 1, "the owner and the slow sign-ups");

    for id in &ids {
        common::wait_until("the job to complete", Duration::from_secs(30), || async {
            queue.job(id).await.is_ok_and(|j| j.status == "completed")
        })
        .await;
        assert_eq!(
            queue.job(id).await.expect("job").attempts,
            1,
            "never taken back"
        );
    }
    let started = runs.started.lock().expect("runs").clone();
    assert_eq!(started.len(), 2, "each job ran once: {started:?}");
    assert!(started
        .iter()
        .all(|(runtime, _, attempt)| *runtime == "server" && *attempt == 1));
    assert_eq!(*runs.overlaps.lock().expect("overlaps"), 0);
    assert_eq!(workers.counters().lost, 0, "no lease lost");
    other.shutdown().await;
    workers.shutdown().await;
    server.stop().await;
}

/// Sessions of the database's owner role opened until PostgreSQL refuses one for want of a
/// connection slot (SQLSTATE 53300); the slots are free again once they are dropped.
async fn take_every_slot(db: &TestDb) -> Vec<tokio_postgres::Client> {
    let mut target = db.connection.clone();
    target.database = "postgres".into();
    let mut held = Vec::new();
    let mut refused = 0;
    loop {
        match tokio_postgres::connect(&url_of(&target), tokio_postgres::NoTls).await {
            Ok((client, conn)) => {
                tokio::spawn(conn);
                held.push(client);
            }
            Err(e) => {
                assert_eq!(
                    e.code(),
                    Some(&tokio_postgres::error::SqlState::TOO_MANY_CONNECTIONS),
                    "{e}"
                );
                // Sessions that were ending (a stopped server's) may free slots just after:
                // full means refused twice, a moment apart.
                refused += 1;
                if refused == 2 {
                    return held;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
                continue;
            }
        }
        refused = 0;
        assert!(held.len() < 1_000, "max_connections is not enforced");
    }
}

/// Frees the slots of `held` and waits until PostgreSQL has them back.
async fn free_slots(db: &TestDb, held: Vec<tokio_postgres::Client>) {
    drop(held);
    let mut target = db.connection.clone();
    target.database = "postgres".into();
    common::wait_until(
        "connection slots to be free",
        Duration::from_secs(20),
        || {
            let url = url_of(&target);
            async move {
                tokio_postgres::connect(&url, tokio_postgres::NoTls)
                    .await
                    .is_ok()
            }
        },
    )
    .await;
}

fn is_slot_error(message: &str) -> bool {
    message.contains("no free connection slot")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_connection_slots_setup_start_up_and_the_queue_say_so_and_recover() {
    let port = common::free_port();
    let own = OwnCluster::prepare_with(port, &[("max_connections", "40")]).await;
    let running = own.cluster.start().await.expect("start");
    let db = TestDb::on(&running);
    let dir = tempfile::tempdir().expect("dir");
    let mut cfg = config(db.connection.clone(), dir.path());
    cfg.pool.connect_timeout = Duration::from_secs(2);
    cfg.pool.max_size = 4;
    cfg.pool.min_idle = 1;
    cfg.jobs.concurrency = 0;

    // Setup: refused with the reason, nothing recorded; it goes through once slots are free.
    let server = TestServer::start(&cfg).await;
    let held = take_every_slot(&db).await;
    let (code, body) = server.setup().await;
    assert_eq!(code, 503, "{body}");
    assert!(
        body["message"].as_str().is_some_and(is_slot_error),
        "{body}"
    );
    assert!(
        !cfg.selection_file().exists(),
        "a failed setup records nothing"
    );
    free_slots(&db, held).await;
    let (code, body) = server.setup().await;
    assert_eq!(code, 200, "{body}");
    server.stop().await;

    // Start-up: set up but unavailable, saying why, until slots are free.
    let held = take_every_slot(&db).await;
    let server = TestServer::start(&cfg).await;
    let (code, body) = server.get("/api/health/ready").await;
    assert_eq!(code, 503, "{body}");
    assert_eq!(body["error"], "Database unavailable", "{body}");
    assert!(
        body["message"].as_str().is_some_and(is_slot_error),
        "{body}"
    );
    let status = server.get("/api/db/status").await.1;
    assert_eq!(status["state"], "database_unavailable", "{status}");
    free_slots(&db, held).await;
    server.wait_initialized().await;
    assert_eq!(server.get("/api/health/ready").await.0, 200);

    // The queue: a worker process started without a free slot logs why and claims nothing;
    // once slots are free it drains every job, none failed.
    db.execute(RUNS_TABLES).await;
    let queue = JobQueue::new(server.state.database.clone());
    let jobs = (0..20)
        .map(|_| NewJob {
            job_type: "test_exclusive".into(),
            payload: json!({"sleepMs": 10}),
        })
        .collect();
    queue
        .enqueue_batch("slots", None, jobs, EnqueueOptions::default())
        .await
        .expect("batch");
    let held = take_every_slot(&db).await;
    let log = dir.path().join("worker.log");
    let worker = spawn_worker(&db, "starved", &log).await;
    let started = Instant::now();
    while !std::fs::read_to_string(&log).is_ok_and(|text| is_slot_error(&text)) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the worker did not log its reason: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    free_slots(&db, held).await;
    common::wait_until("the jobs to complete", Duration::from_secs(60), || async {
        try_count(
            &db,
            "SELECT count(*) FROM queue_jobs WHERE status = 'completed'",
        )
        .await
            == Some(20)
    })
    .await;
    assert_eq!(
        try_count(
            &db,
            "SELECT count(*) FROM queue_jobs WHERE status = 'failed'"
        )
        .await,
        Some(0)
    );
    assert!(terminate(worker).await.success());
    server.stop().await;
    drop(db);
    running.stop().await.expect("stop");
}
