//! Read replicas against a real streaming replica that the test builds (`pg_basebackup -R`
//! from the test cluster, a second server on loopback): reads go to the replica, writes and
//! the reads after them within a unit of work to the primary; a lagging or stopped replica
//! is skipped, and reads fall back to the primary; readiness reports each replica.

mod common;

use std::path::Path;
use std::time::Duration;

use deploystack_backend::config::{ConnectionTarget, ReplicaHost, ReplicaSettings};
use deploystack_backend::db::{routing, Database};
use diesel::sql_types::Bool;
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use serde_json::Value;

use common::pg::{shared, TestDb, TEST_ROOT};
use common::replica::{self, StreamingReplica};
use common::server::{config, TestServer};

async fn superuser_execute(target: &ConnectionTarget, sql: &str) {
    let client = replica::connect(target).await.expect("connect");
    client.batch_execute(sql).await.expect(sql);
}

#[derive(QueryableByName)]
struct Recovery {
    #[diesel(sql_type = Bool)]
    standby: bool,
}

/// Whether a read through `db` landed on the replica.
async fn read_on_replica(db: &Database) -> bool {
    let mut conn = db.read().await.expect("a connection for reading");
    diesel::sql_query("SELECT pg_is_in_recovery() AS standby")
        .get_result::<Recovery>(&mut conn)
        .await
        .expect("query")
        .standby
}

/// A read, the write `sql` on the primary, a read: whether each read ran on the replica.
async fn read_write_read(db: &Database, sql: &str) -> (bool, bool) {
    let before = read_on_replica(db).await;
    let mut conn = db.write().await.expect("primary");
    diesel::sql_query(sql)
        .execute(&mut conn)
        .await
        .expect("write on the primary");
    drop(conn);
    (before, read_on_replica(db).await)
}

/// Serves, behind the API's middleware, `GET /probe`: a read, a write, a read; answers
/// where each read ran. Returns its URL.
async fn serve_probe(database: Database) -> String {
    use poem::web::Json;
    use poem::{get, handler, EndpointExt, Route, Server};

    #[handler]
    async fn probe(db: poem::web::Data<&Database>) -> Json<Value> {
        let place = |on_replica: bool| if on_replica { "replica" } else { "primary" };
        let (before, after) = read_write_read(&db, "INSERT INTO replica_probe VALUES (-1)").await;
        Json(serde_json::json!({"before_write": place(before), "after_write": place(after)}))
    }

    let app =
        deploystack_backend::api::harden(Route::new().at("/probe", get(probe)).data(database));
    let (acceptor, port) = common::server::loopback_acceptor().await;
    tokio::spawn(Server::new_with_acceptor(acceptor).run(app));
    format!("http://127.0.0.1:{port}/probe")
}

/// The replica's state in the readiness answer.
async fn replica_state(server: &TestServer) -> (u16, Value) {
    let (code, body) = server.get("/api/health/ready").await;
    (code, body["replicas"][0].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_use_a_healthy_replica_and_fall_back_when_it_lags_or_stops() {
    let db = TestDb::new().await;
    let cluster = shared().await;
    let primary_superuser = cluster.running.superuser_connection("postgres");
    let mut replica = StreamingReplica::start(&primary_superuser, Path::new(TEST_ROOT)).await;
    let replica_superuser = replica.superuser(&primary_superuser);

    let dir = tempfile::tempdir().expect("dir");
    let mut cfg = config(db.connection.clone(), dir.path());
    cfg.replicas = ReplicaSettings {
        hosts: vec![ReplicaHost {
            host: "127.0.0.1".into(),
            port: replica.port,
        }],
        max_lag: Duration::from_millis(300),
        check_interval: Duration::from_millis(100),
    };
    let server = TestServer::start(&cfg).await;
    assert_eq!(server.setup().await.0, 200);
    let database = server.state.database.clone();

    // The database created and migrated at setup reaches the replica; then it serves reads.
    common::wait_until(
        "the replica to be usable",
        Duration::from_secs(30),
        || async { replica_state(&server).await.1["state"] == "usable" },
    )
    .await;
    let (code, report) = replica_state(&server).await;
    assert_eq!(code, 200);
    assert_eq!(report["name"], format!("127.0.0.1:{}", replica.port));
    assert!(
        report["lag_ms"].as_u64().is_some_and(|ms| ms <= 300),
        "{report}"
    );
    assert!(
        read_on_replica(&database).await,
        "reads go to the usable replica"
    );

    // Read-your-writes: within a unit of work, reads after a write stay on the primary.
    // Whether the replica serves the first read depends on its lag at that moment (a loaded
    // machine can put it past the 300 ms limit for a while), so a unit that found it
    // unusable is tried again; the read after the write must be on the primary every time.
    common::wait_until(
        "a unit of work that reads on the replica until it writes",
        Duration::from_secs(30),
        || {
            routing::unit_of_work(async {
                let (before, after) = read_write_read(
                    &database,
                    "CREATE TABLE IF NOT EXISTS replica_probe (id int)",
                )
                .await;
                assert!(!after, "after a write, its reads go to the primary");
                before
            })
        },
    )
    .await;
    // Another unit of work starts on the replica again.
    common::wait_until(
        "the next unit of work to read on the replica",
        Duration::from_secs(30),
        || routing::unit_of_work(read_on_replica(&database)),
    )
    .await;

    // Through HTTP: every request is a unit of work of its own (the API's middleware). Two
    // requests in a row that start on the replica: the second did not inherit the first's
    // write (a request that found the replica lagging is tried again).
    let probe = serve_probe(database.clone()).await;
    let http = reqwest::Client::new();
    for _ in 0..2 {
        common::wait_until(
            "a request that reads on the replica until it writes",
            Duration::from_secs(30),
            || async {
                let body: Value = http
                    .get(&probe)
                    .send()
                    .await
                    .expect("probe")
                    .json()
                    .await
                    .expect("JSON");
                assert_eq!(
                    body["after_write"], "primary",
                    "within a request a read after a write sees the primary"
                );
                body["before_write"] == "replica"
            },
        )
        .await;
    }

    // Lag: replay paused while the primary keeps writing → skipped, reads on the primary.
    superuser_execute(&replica_superuser, "SELECT pg_wal_replay_pause()").await;
    let mut write = database.write().await.expect("primary");
    for i in 0..20 {
        diesel::sql_query(format!("INSERT INTO replica_probe VALUES ({i})"))
            .execute(&mut write)
            .await
            .expect("insert");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(write);
    common::wait_until(
        "the lagging replica to be skipped",
        Duration::from_secs(30),
        || async { replica_state(&server).await.1["state"] == "lagging" },
    )
    .await;
    assert!(
        !read_on_replica(&database).await,
        "a lagging replica serves no reads"
    );
    superuser_execute(&replica_superuser, "SELECT pg_wal_replay_resume()").await;
    common::wait_until(
        "the replica to catch up",
        Duration::from_secs(30),
        || async { replica_state(&server).await.1["state"] == "usable" },
    )
    .await;
    assert!(read_on_replica(&database).await);

    // Down: the replica stops; reads go to the primary, the backend stays ready.
    replica.kill().await;
    common::wait_until(
        "the stopped replica to be skipped",
        Duration::from_secs(30),
        || async { replica_state(&server).await.1["state"] == "down" },
    )
    .await;
    for _ in 0..3 {
        assert!(
            !read_on_replica(&database).await,
            "reads fall back to the primary"
        );
    }
    let (code, report) = replica_state(&server).await;
    assert_eq!(
        code, 200,
        "a replica never makes the backend unready: {report}"
    );
    server.stop().await;
}

/// Serves, like the application (with the WAL position header), `POST /write/:v` (inserts
/// `v` and enqueues a `test_read_back` job for it) and `GET /read/:v` (whether `v` is there,
/// and where the read ran). Returns its base URL.
async fn serve_positions(database: Database) -> String {
    use deploystack_backend::jobs::{EnqueueOptions, JobQueue};
    use poem::web::{Json, Path};
    use poem::{get, handler, post, EndpointExt, Route, Server};

    #[handler]
    async fn write(db: poem::web::Data<&Database>, Path(v): Path<i32>) -> Json<Value> {
        let mut conn = db.write().await.expect("primary");
        diesel::sql_query(format!("INSERT INTO lsn_probe VALUES ({v})"))
            .execute(&mut conn)
            .await
            .expect("write");
        drop(conn);
        let job = JobQueue::new(db.clone())
            .enqueue(
                "test_read_back",
                serde_json::json!({ "v": v }),
                EnqueueOptions::default(),
            )
            .await
            .expect("enqueue");
        Json(serde_json::json!({ "job": job }))
    }

    #[handler]
    async fn read(db: poem::web::Data<&Database>, Path(v): Path<i32>) -> Json<Value> {
        let (found, on_replica) = read_back(&db, v).await;
        Json(serde_json::json!({"found": found, "on_replica": on_replica}))
    }

    let app = deploystack_backend::api::harden_serving(
        Route::new()
            .at("/write/:v", post(write))
            .at("/read/:v", get(read))
            .data(database.clone()),
        database,
    );
    let (acceptor, port) = common::server::loopback_acceptor().await;
    tokio::spawn(Server::new_with_acceptor(acceptor).run(app));
    format!("http://127.0.0.1:{port}")
}

#[derive(QueryableByName)]
struct ReadBack {
    #[diesel(sql_type = Bool)]
    found: bool,
    #[diesel(sql_type = Bool)]
    standby: bool,
}

/// Whether row `v` is visible to a read through `db`, and whether that read ran on the replica.
async fn read_back(db: &Database, v: i32) -> (bool, bool) {
    let mut conn = db.read().await.expect("a connection for reading");
    let row = diesel::sql_query(format!(
        "SELECT EXISTS (SELECT 1 FROM lsn_probe WHERE v = {v}) AS found, \
           pg_is_in_recovery() AS standby"
    ))
    .get_result::<ReadBack>(&mut conn)
    .await
    .expect("query");
    (row.found, row.standby)
}

/// Reads back the row its enqueuer wrote: the job's result says whether it saw it.
struct ReadBackJob(Database);

#[derive(serde::Serialize, serde::Deserialize)]
struct ReadBackPayload {
    v: i32,
}

impl deploystack_backend::jobs::Job for ReadBackJob {
    const TYPE: &'static str = "test_read_back";
    type Payload = ReadBackPayload;
    type Output = Value;

    async fn run(
        &self,
        payload: ReadBackPayload,
        _: deploystack_backend::jobs::JobContext,
    ) -> Result<Value, deploystack_backend::jobs::JobError> {
        let (found, on_replica) = read_back(&self.0, payload.v).await;
        Ok(serde_json::json!({"found": found, "on_replica": on_replica}))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_are_read_back_by_the_next_request_and_its_job_while_replay_is_paused_and_across_a_replica_crash(
) {
    use deploystack_backend::api::LSN_HEADER;
    use deploystack_backend::jobs::{JobQueue, Registry, Workers};

    let db = TestDb::new().await;
    let cluster = shared().await;
    let primary_superuser = cluster.running.superuser_connection("postgres");
    let mut replica = StreamingReplica::start(&primary_superuser, Path::new(TEST_ROOT)).await;
    let replica_superuser = replica.superuser(&primary_superuser);

    let dir = tempfile::tempdir().expect("dir");
    let mut cfg = config(db.connection.clone(), dir.path());
    cfg.replicas = ReplicaSettings {
        hosts: vec![ReplicaHost {
            host: "127.0.0.1".into(),
            port: replica.port,
        }],
        // Far more than this test lasts: the paused replica stays usable, so only the
        // clients' positions keep their reads off it.
        max_lag: Duration::from_secs(600),
        check_interval: Duration::from_millis(100),
    };
    cfg.jobs.concurrency = 0;
    let server = TestServer::start(&cfg).await;
    assert_eq!(server.setup().await.0, 200);
    let database = server.state.database.clone();
    let mut conn = database.write().await.expect("primary");
    diesel::sql_query("CREATE TABLE lsn_probe (v int)")
        .execute(&mut conn)
        .await
        .expect("create");
    drop(conn);
    common::wait_until(
        "the replica to have the table",
        Duration::from_secs(30),
        || async {
            replica_state(&server).await.1["state"] == "usable"
                && replica::connect(&replica_superuser).await.is_some()
                && read_on_replica(&database).await
                && {
                    let mut conn = database.read().await.expect("read");
                    diesel::sql_query("SELECT true AS standby FROM lsn_probe LIMIT 0")
                        .execute(&mut conn)
                        .await
                        .is_ok()
                }
        },
    )
    .await;
    let base = serve_positions(database.clone()).await;
    let mut registry = Registry::new();
    registry.register(ReadBackJob(database.clone()));
    let workers = Workers::start(
        database.clone(),
        Some(
            deploystack_backend::db::PgConnector::new(
                &db.connection,
                &deploystack_backend::config::PoolSettings::default(),
            )
            .expect("connector"),
        ),
        registry,
        deploystack_backend::config::JobSettings {
            concurrency: 2,
            poll_interval: Duration::from_millis(100),
            schedules: false,
            stats_interval: None,
            ..deploystack_backend::config::JobSettings::default()
        },
    );
    let queue = JobQueue::new(database.clone());
    let http = reqwest::Client::new();

    superuser_execute(&replica_superuser, "SELECT pg_wal_replay_pause()").await;
    for v in 0..10 {
        // The next request, presenting the write's position, sees the write.
        let (position, job, read) = write_then_read(&http, &base, v).await;
        assert_eq!(
            read,
            serde_json::json!({"found": true, "on_replica": false}),
            "write {v}, read with {position}"
        );
        // Without it, the replica (replay paused, still usable) answers, and has not seen it:
        // the position is what kept the read above off it.
        let stale: Value = http
            .get(format!("{base}/read/{v}"))
            .send()
            .await
            .expect("read")
            .json()
            .await
            .expect("JSON");
        assert_eq!(
            stale,
            serde_json::json!({"found": false, "on_replica": true})
        );
        // The job enqueued with the write reads it too.
        let id = job["job"].as_str().expect("job id").to_owned();
        common::wait_until("the job to complete", Duration::from_secs(20), || {
            let queue = queue.clone();
            let id = id.clone();
            async move { queue.job(&id).await.is_ok_and(|j| j.status == "completed") }
        })
        .await;
        let result = queue.job(&id).await.expect("job").result;
        assert_eq!(
            result,
            Some(serde_json::json!({"found": true, "on_replica": false}))
        );
    }

    // A position that is not one: a clear JSON error, nothing read.
    let bad = http
        .get(format!("{base}/read/1"))
        .header(LSN_HEADER, "yesterday")
        .send()
        .await
        .expect("read");
    assert_eq!(bad.status(), 400);
    let body: Value = bad.json().await.expect("JSON");
    assert_eq!(body["error"], "Bad Request");
    assert!(body["message"]
        .as_str()
        .is_some_and(|m| m.contains(LSN_HEADER)));

    // Replay resumes: the same position is served by the replica once it caught up.
    let written = http
        .post(format!("{base}/write/100"))
        .send()
        .await
        .expect("write");
    let position = written
        .headers()
        .get(LSN_HEADER)
        .expect("a write's response carries the primary's position")
        .to_str()
        .expect("text")
        .to_owned();
    superuser_execute(&replica_superuser, "SELECT pg_wal_replay_resume()").await;
    common::wait_until(
        "the replica to serve the position",
        Duration::from_secs(30),
        || {
            let http = http.clone();
            let url = format!("{base}/read/100");
            let position = position.clone();
            async move {
                let read: Value = http
                    .get(url)
                    .header(LSN_HEADER, position)
                    .send()
                    .await
                    .expect("read")
                    .json()
                    .await
                    .expect("JSON");
                read == serde_json::json!({"found": true, "on_replica": true})
            }
        },
    )
    .await;

    let before_crash = position.clone();
    // The replica crashes: every read presenting a position goes to the primary and sees
    // its write. It comes back (crash recovery, then streaming again) and serves positions
    // once it replayed them; no read presenting a position ever misses its write.
    replica.kill().await;
    for v in 200..205 {
        let (position, _, read) = write_then_read(&http, &base, v).await;
        assert_eq!(
            read,
            serde_json::json!({"found": true, "on_replica": false}),
            "write {v}, read with {position} while the replica is down"
        );
    }
    replica.restart(&primary_superuser).await;
    // A position it had replayed before the crash: served wherever, never missed.
    let read = read_with(&http, &format!("{base}/read/100"), &before_crash).await;
    assert_eq!(read["found"], true, "{read}");
    let (position, _, _) = write_then_read(&http, &base, 300).await;
    let mut reads = 0;
    common::wait_until(
        "the restarted replica to serve the position",
        Duration::from_secs(60),
        || {
            reads += 1;
            let http = http.clone();
            let url = format!("{base}/read/300");
            let position = position.clone();
            async move {
                let read = read_with(&http, &url, &position).await;
                assert_eq!(
                    read["found"], true,
                    "a read older than its position: {read}"
                );
                read["on_replica"] == true
            }
        },
    )
    .await;
    eprintln!("the restarted replica served position {position} after {reads} reads");
    workers.shutdown().await;
    server.stop().await;
}

/// `POST /write/v`, then `GET /read/v` presenting the write's position: (position, the
/// write's answer, the read's answer).
async fn write_then_read(http: &reqwest::Client, base: &str, v: i32) -> (String, Value, Value) {
    use deploystack_backend::api::LSN_HEADER;

    let written = http
        .post(format!("{base}/write/{v}"))
        .send()
        .await
        .expect("write");
    assert_eq!(written.status(), 200);
    let position = written
        .headers()
        .get(LSN_HEADER)
        .expect("a write's response carries the primary's position")
        .to_str()
        .expect("text")
        .to_owned();
    let written: Value = written.json().await.expect("JSON");
    let read = read_with(http, &format!("{base}/read/{v}"), &position).await;
    (position, written, read)
}

/// `GET url` presenting `position`: the JSON answer.
async fn read_with(http: &reqwest::Client, url: &str, position: &str) -> Value {
    use deploystack_backend::api::LSN_HEADER;

    http.get(url)
        .header(LSN_HEADER, position)
        .send()
        .await
        .expect("read")
        .json()
        .await
        .expect("JSON")
}
