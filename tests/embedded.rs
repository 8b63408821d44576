//! The embedded cluster through the real binary: the application is no superuser and the
//! server gets none of our environment, clusters of older builds and of other versions,
//! a second server on the same folder; and the test harness cleaning up after itself.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::pg::url_of;
use common::process::{command, BackendProcess};
use deploystack_backend::config::{ConnectionTarget, PoolSettings, TlsMode};
use deploystack_backend::db::{migrations, provision, PgConnector};
use deploystack_backend::embedded_pg::{find_bin_dir, server_version, Cluster, ClusterOptions};
use secrecy::SecretString;

/// A folder the `postgres` user can traverse (tempdir() creates mode 0700).
fn shared_tempdir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("deploystack-embedded-")
        .tempdir()
        .expect("dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).expect("chmod");
    dir
}

fn env_for(data: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("PERSISTENT_DATA_DIR", data.display().to_string()),
        (
            "DEPLOYSTACK_ENCRYPTION_SECRET",
            "test-encryption-secret".into(),
        ),
    ]
}

async fn post_setup(url: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{url}/api/db/setup"))
        .json(&serde_json::json!({"type": "postgresql"}))
        .send()
        .await
        .expect("POST")
        .status()
        .as_u16()
}

async fn wait_ready(url: &str) {
    let url = format!("{url}/api/health/ready");
    common::wait_until(
        "the database to be ready",
        Duration::from_secs(60),
        || async {
            reqwest::get(&url)
                .await
                .is_ok_and(|r| r.status().as_u16() == 200)
        },
    )
    .await;
}

async fn client(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    client
}

/// The binary run to completion: (success, stdout, log).
async fn run(env: &[(&str, String)], log: &Path, args: &[&str]) -> (bool, String, String) {
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        command(env, log)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .output(),
    )
    .await
    .expect("the command ends")
    .expect("run");
    // tokio's `output()` captures stderr itself (the log file stays empty).
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.success(), stdout, log)
}

fn postmaster_pid(data: &Path) -> i32 {
    let text =
        std::fs::read_to_string(data.join("postgres/data/postmaster.pid")).expect("pid file");
    text.lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .expect("pid")
}

/// Superuser credentials of the embedded cluster under `data`, from its files.
fn superuser(data: &Path, database: &str) -> String {
    let root = data.join("postgres");
    let read = |name: &str| std::fs::read_to_string(root.join(name)).expect(name);
    url_of(&ConnectionTarget {
        host: "127.0.0.1".into(),
        port: read("port").trim().parse().expect("port"),
        database: database.into(),
        user: "postgres".into(),
        password: Some(SecretString::from(
            read("superuser.password").trim().to_owned(),
        )),
        tls: TlsMode::Disabled,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_is_no_superuser_and_postgres_gets_none_of_our_environment() {
    let dir = shared_tempdir();
    let data = dir.path().join("persistent_data");
    let marker = "Marker-4d1f-unlikely-value";
    let mut env = env_for(&data);
    env.push(("DEPLOYSTACK_TEST_MARKER", marker.into()));
    let server = BackendProcess::start(&env, &dir.path().join("server.log")).await;
    assert_eq!(post_setup(&server.url).await, 200);
    // A pooled connection stays open after the readiness probe.
    wait_ready(&server.url).await;

    let environ = std::fs::read(format!("/proc/{}/environ", postmaster_pid(&data)))
        .expect("the server's environment (readable by root and by its own user)");
    let environ = String::from_utf8_lossy(&environ);
    assert!(
        !environ.contains(marker) && !environ.contains("test-encryption-secret"),
        "our environment leaked into postgres: {environ}"
    );

    let (ok, url, log) = run(&env, &dir.path().join("url.log"), &["database-url"]).await;
    assert!(ok, "{log}");
    let owner = client(url.trim()).await;
    let row = owner
        .query_one(
            "SELECT current_user::text, rolsuper, rolcreaterole,
                    (SELECT pg_get_userbyid(datdba)::text FROM pg_database
                      WHERE datname = current_database())
               FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await
        .expect("query");
    let (user, superuser, createrole, db_owner): (String, bool, bool, String) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    assert_eq!(
        (user.as_str(), db_owner.as_str()),
        ("deploystack", "deploystack")
    );
    assert!(!superuser && !createrole);
    // The server's own pooled and LISTEN sessions log in as that role too.
    let users: Vec<String> = owner
        .query(
            "SELECT DISTINCT usename::text FROM pg_stat_activity
              WHERE application_name = 'deploystack-backend' AND pid <> pg_backend_pid()",
            &[],
        )
        .await
        .expect("sessions")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(users, ["deploystack"]);
    let foreign: i64 = owner
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner <> current_user",
            &[],
        )
        .await
        .expect("owners")
        .get(0);
    assert_eq!(foreign, 0);
    let mode = std::fs::metadata(data.join("postgres/owner.password"))
        .expect("owner password file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "the owner's password file is private");
    assert!(server.terminate().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_the_same_data_folder_is_refused_clearly() {
    let dir = shared_tempdir();
    let data = dir.path().join("persistent_data");
    let env = env_for(&data);
    let first = BackendProcess::start(&env, &dir.path().join("first.log")).await;
    let postmaster = postmaster_pid(&data);
    let stat = std::fs::read_to_string(format!("/proc/{postmaster}/stat")).expect("stat");
    let backend = stat[stat.rfind(')').expect("comm") + 1..]
        .split_whitespace()
        .nth(1)
        .expect("ppid")
        .to_owned();

    let mut second_env = env.clone();
    second_env.push(("PORT", common::free_port().to_string()));
    let (ok, _, log) = run(&second_env, &dir.path().join("second.log"), &["serve"]).await;
    assert!(!ok, "the second server must stop");
    assert!(
        log.contains("another backend is already running on this data folder")
            && log.contains(&format!("pid {backend}")),
        "{log}"
    );
    assert!(!log.contains("FATAL"), "no raw PostgreSQL log: {log}");
    let health = reqwest::get(format!("{}/api/health", first.url))
        .await
        .expect("the first server still answers");
    assert_eq!(health.status().as_u16(), 200);
    assert!(first.terminate().await.success());
}

/// What older builds left behind: the superuser owns the application database and all of its
/// objects, and there is neither an owner role nor a port file.
async fn old_layout(data: &Path) {
    let root = data.join("postgres");
    let cluster = tokio::task::spawn_blocking(move || Cluster::prepare(ClusterOptions::new(root)))
        .await
        .expect("prepare task")
        .expect("initdb");
    let running = cluster.start().await.expect("start");
    let connector = PgConnector::new(
        &running.superuser_connection("deploystack"),
        &PoolSettings::default(),
    )
    .expect("connector");
    let conn = provision::connect_creating_database(&connector)
        .await
        .expect("create as superuser");
    migrations::run_pending(conn).await.expect("migrate");
    let app_db = client(&url_of(&running.superuser_connection("deploystack"))).await;
    app_db
        .batch_execute(
            "CREATE TABLE legacy_marker (note text); INSERT INTO legacy_marker VALUES ('kept');
             CREATE TYPE legacy_mood AS ENUM ('ok')",
        )
        .await
        .expect("legacy objects");
    drop(app_db);
    let admin = client(&url_of(&running.superuser_connection("postgres"))).await;
    admin
        .batch_execute(
            "GRANT CONNECT ON DATABASE postgres, template1 TO PUBLIC; \
             REVOKE ALL ON DATABASE postgres, template1 FROM deploystack; \
             DROP ROLE deploystack",
        )
        .await
        .expect("drop role");
    drop(admin);
    running.stop().await.expect("stop");
    for file in ["owner.password", "port"] {
        std::fs::remove_file(data.join("postgres").join(file)).expect(file);
    }
    std::fs::write(
        data.join("db.selection.json"),
        r#"{"type":"postgresql","selectedAt":"2026-01-01T00:00:00.000Z","version":"1.0"}"#,
    )
    .expect("selection file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_of_an_older_build_is_handed_to_the_owner_role_at_start() {
    let dir = shared_tempdir();
    let data = dir.path().join("persistent_data");
    std::fs::create_dir_all(&data).expect("data dir");
    old_layout(&data).await;
    let env = env_for(&data);

    let server = BackendProcess::start(&env, &dir.path().join("first.log")).await;
    wait_ready(&server.url).await;
    let db = client(&superuser(&data, "deploystack")).await;
    let row = db
        .query_one(
            "SELECT
               (SELECT pg_get_userbyid(datdba)::text FROM pg_database WHERE datname = 'deploystack'),
               (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname = 'public' AND c.relowner <> 'deploystack'::regrole),
               (SELECT count(*) FROM pg_proc WHERE pronamespace = 'public'::regnamespace
                 AND proowner <> 'deploystack'::regrole),
               (SELECT pg_get_userbyid(typowner)::text FROM pg_type WHERE typname = 'legacy_mood'),
               (SELECT rolsuper FROM pg_roles WHERE rolname = 'deploystack'),
               (SELECT note FROM legacy_marker),
               (SELECT count(*) FROM global_settings)",
            &[],
        )
        .await
        .expect("query");
    assert_eq!(row.get::<_, String>(0), "deploystack", "database owner");
    assert_eq!(row.get::<_, i64>(1), 0, "relations left to the superuser");
    assert_eq!(row.get::<_, i64>(2), 0, "routines left to the superuser");
    assert_eq!(row.get::<_, String>(3), "deploystack", "type owner");
    assert!(!row.get::<_, bool>(4), "the owner is no superuser");
    assert_eq!(row.get::<_, String>(5), "kept", "existing data is kept");
    assert!(
        row.get::<_, i64>(6) > 0,
        "the initializers ran as the owner"
    );
    drop(db);
    let log = server.log_text();
    assert!(
        log.contains("handed the database to the owner role"),
        "{log}"
    );
    assert!(server.terminate().await.success());

    // Idempotent: the next start finds nothing left to do.
    let server = BackendProcess::start(&env, &dir.path().join("second.log")).await;
    wait_ready(&server.url).await;
    let log = server.log_text();
    assert!(!log.contains("handed the database"), "{log}");
    assert!(server.terminate().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_folders_of_another_version_or_unknown_content_are_kept() {
    let dir = shared_tempdir();
    let data = dir.path().join("persistent_data");
    let cluster = data.join("postgres/data");
    std::fs::create_dir_all(cluster.join("base")).expect("folders");
    std::fs::write(cluster.join("PG_VERSION"), "99\n").expect("version");
    std::fs::write(cluster.join("base/precious"), "data").expect("file");
    let machine = server_version(&find_bin_dir(None).expect("binaries")).expect("version");
    let mut env = env_for(&data);
    env.push(("PORT", common::free_port().to_string()));

    let (ok, _, log) = run(&env, &dir.path().join("v99.log"), &["serve"]).await;
    assert!(!ok, "a cluster of PostgreSQL 99 must not start");
    assert!(
        log.contains("created by PostgreSQL 99")
            && log.contains(&format!("are PostgreSQL {machine}")),
        "{log}"
    );
    assert!(cluster.join("base/precious").exists() && cluster.join("PG_VERSION").exists());

    std::fs::remove_file(cluster.join("PG_VERSION")).expect("remove version");
    let (ok, _, log) = run(&env, &dir.path().join("unknown.log"), &["serve"]).await;
    assert!(!ok, "an unknown data folder must not be used");
    assert!(
        log.contains("holds no PostgreSQL cluster") && log.contains(&cluster.display().to_string()),
        "{log}"
    );
    assert_eq!(
        std::fs::read_to_string(cluster.join("base/precious")).expect("kept"),
        "data"
    );
}

/// Set by [`the_test_harness_leaves_no_cluster_behind`] for the child it runs.
const HARNESS_CHILD: &str = "DEPLOYSTACK_HARNESS_CHILD";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harness_child_uses_the_shared_cluster() {
    // Only does something as the child of the test below.
    if std::env::var_os(HARNESS_CHILD).is_none() {
        return;
    }
    common::pg::shared().await;
    let folder = shared_folder(std::process::id());
    assert!(folder.exists(), "{} exists while running", folder.display());
}

fn shared_folder(pid: u32) -> PathBuf {
    Path::new(common::pg::TEST_ROOT).join(format!("{pid}-shared"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_harness_leaves_no_cluster_behind() {
    let exe = std::env::current_exe().expect("test binary");
    let child = tokio::process::Command::new(exe)
        .args(["--exact", "harness_child_uses_the_shared_cluster"])
        .env(HARNESS_CHILD, "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run the child");
    let pid = child.id().expect("pid");
    let out = child.wait_with_output().await.expect("child output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let folder = shared_folder(pid);
    common::wait_until(
        "the shared cluster's folder to be removed",
        Duration::from_secs(60),
        || async { !folder.exists() },
    )
    .await;
}

/// As root the cluster runs as the `postgres` user; a data folder it cannot reach (a private
/// home folder) stops the start with the way out first, then initdb's own words (not its
/// banner). Run as another user, the cluster is that user's and the case cannot arise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_the_postgres_user_cannot_reach_is_named_with_the_way_out() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("not root: the cluster runs as this user, who reaches every folder it owns");
        return;
    }
    let private = tempfile::tempdir().expect("dir");
    std::fs::set_permissions(private.path(), std::fs::Permissions::from_mode(0o700))
        .expect("a private folder");
    let data = private.path().join("persistent_data");
    let log = private.path().join("server.log");
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        command(&env_for(&data), &log).output(),
    )
    .await
    .expect("the start stops")
    .expect("run the server");
    assert!(!out.status.success());
    // `output()` collects standard error itself.
    let text = format!(
        "{}{}",
        std::fs::read_to_string(&log).unwrap_or_default(),
        String::from_utf8_lossy(&out.stderr)
    );
    let line = text
        .lines()
        .find(|l| l.contains("ERROR"))
        .unwrap_or_else(|| panic!("no error line: {text}"));
    let message = &line[line
        .find("the \"postgres\" system user")
        .unwrap_or_else(|| panic!("{line}"))..];
    assert!(
        message.starts_with(&format!(
            "the \"postgres\" system user cannot reach {}",
            data.join("postgres").display()
        )) && message.contains("Set PERSISTENT_DATA_DIR")
            && message.contains("Detail: initdb failed"),
        "{message}"
    );
    assert!(
        !message.contains("embedded PostgreSQL: embedded PostgreSQL"),
        "{message}"
    );
    assert!(
        !text.contains("Data page checksums"),
        "no initdb banner: {text}"
    );
}
