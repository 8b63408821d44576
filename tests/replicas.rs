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

/// Serves, behind the API's middleware, `GET /probe`: a read, a write, a read; answers
/// where each read ran. Returns its URL.
async fn serve_probe(database: Database) -> String {
    use poem::web::Json;
    use poem::{get, handler, EndpointExt, Route, Server};

    #[handler]
    async fn probe(db: poem::web::Data<&Database>) -> Json<Value> {
        let place = |on_replica: bool| if on_replica { "replica" } else { "primary" };
        let before = read_on_replica(&db).await;
        let mut conn = db.write().await.expect("primary");
        diesel::sql_query("INSERT INTO replica_probe VALUES (-1)")
            .execute(&mut conn)
            .await
            .expect("write");
        drop(conn);
        let after = read_on_replica(&db).await;
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
    let (before, after) = routing::unit_of_work(async {
        let before = read_on_replica(&database).await;
        let mut conn = database.write().await.expect("primary");
        diesel::sql_query("CREATE TABLE replica_probe (id int)")
            .execute(&mut conn)
            .await
            .expect("write on the primary");
        drop(conn);
        (before, read_on_replica(&database).await)
    })
    .await;
    assert!(
        before,
        "a unit of work reads on the replica until it writes"
    );
    assert!(!after, "after a write, its reads go to the primary");
    // Another unit of work starts on the replica again.
    assert!(routing::unit_of_work(read_on_replica(&database)).await);

    // Through HTTP: every request is a unit of work of its own (the API's middleware).
    let probe = serve_probe(database.clone()).await;
    let http = reqwest::Client::new();
    for _ in 0..2 {
        let body: Value = http
            .get(&probe)
            .send()
            .await
            .expect("probe")
            .json()
            .await
            .expect("JSON");
        assert_eq!(
            body,
            serde_json::json!({"before_write": "replica", "after_write": "primary"}),
            "within a request a read after a write sees the primary; the next request starts over"
        );
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
