//! The real binary: embedded mode, several processes setting up one database, start-up
//! validation of the environment, the `migrate` and `openapi` subcommands.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::pg::TestDb;
use common::process::{command, external_env, BackendProcess};
use common::server::json_of;
use serde_json::json;

async fn post_setup(url: &str) -> (u16, serde_json::Value) {
    let resp = reqwest::Client::new()
        .post(format!("{url}/api/db/setup"))
        .json(&json!({"type": "postgresql"}))
        .send()
        .await
        .expect("POST");
    json_of(resp).await
}

async fn get(url: &str, path: &str) -> (u16, serde_json::Value) {
    json_of(reqwest::get(format!("{url}{path}")).await.expect("GET")).await
}

/// A folder the `postgres` user can traverse (tempdir() creates mode 0700).
fn shared_tempdir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("deploystack-proc-")
        .tempdir()
        .expect("dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).expect("chmod");
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_mode_starts_sets_up_and_restarts() {
    let dir = shared_tempdir();
    let data = dir.path().join("persistent_data");
    let env = vec![("PERSISTENT_DATA_DIR", data.display().to_string())];

    let first = BackendProcess::start(&env, &dir.path().join("first.log")).await;
    let (code, mut body) = get(&first.url, "/api/db/status").await;
    assert_eq!(code, 200);
    assert_eq!(body["database"]["kind"], "embedded");
    assert!(
        body["database"]["target"]
            .as_str()
            .is_some_and(|t| t.starts_with("127.0.0.1:") && t.ends_with("/deploystack")),
        "{body}"
    );
    body.as_object_mut().map(|o| o.remove("database"));
    assert_eq!(
        body,
        json!({"configured": true, "initialized": false, "dialect": "postgresql", "state": "setup_required"})
    );
    let (code, body) = post_setup(&first.url).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(get(&first.url, "/api/health/ready").await.0, 200);
    let status = first.terminate().await;
    let exited = chrono::Utc::now();
    let log = std::fs::read_to_string(dir.path().join("first.log")).expect("log");
    assert!(status.success(), "clean exit: {status}\n{log}");
    let stopped = log
        .find("embedded PostgreSQL stopped")
        .expect("cluster stopped");
    // Measured, not asserted: the exit follows the cluster's stop at once.
    let line_start = log[..stopped].rfind('\n').map_or(0, |at| at + 1);
    if let Some(Ok(logged)) = log[line_start..]
        .split_whitespace()
        .next()
        .map(chrono::DateTime::parse_from_rfc3339)
    {
        eprintln!(
            "exit {} after \"embedded PostgreSQL stopped\"",
            exited - logged.to_utc()
        );
    }
    let last = log.trim_end().lines().last().unwrap_or_default();
    assert!(
        last.contains("deploystack-backend stopped")
            && log.rfind(last).is_some_and(|at| at > stopped),
        "a final line after the cluster stopped: {log}"
    );

    // The cluster is stopped with the server: its lock file is gone.
    assert!(
        !data.join("postgres/data/postmaster.pid").exists(),
        "postgres still running"
    );
    let password =
        std::fs::read_to_string(data.join("postgres/superuser.password")).expect("password");
    let mode = std::fs::metadata(data.join("postgres/superuser.password"))
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "password file is private");

    // A command-line tool with the server stopped starts the cluster briefly, quietly.
    let out = command(&env, &dir.path().join("settings.log"))
        .args(["settings", "get", "smtp.port"])
        .output()
        .await
        .expect("settings get");
    let cli_text = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{cli_text}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "587");
    assert!(!cli_text.contains("WARN"), "{cli_text}");

    let port = std::fs::read_to_string(data.join("postgres/port")).expect("port file");
    let second = BackendProcess::start(&env, &dir.path().join("second.log")).await;
    common::wait_until(
        "the restarted backend to be ready",
        Duration::from_secs(30),
        || async { get(&second.url, "/api/db/status").await.1["initialized"] == true },
    )
    .await;
    assert_eq!(post_setup(&second.url).await.0, 409);
    let log = second.log_text();
    assert!(
        log.contains(&format!(
            "embedded PostgreSQL is running port={}",
            port.trim()
        )),
        "the port of the first start is kept: {log}"
    );
    let owner_password =
        std::fs::read_to_string(data.join("postgres/owner.password")).expect("owner password");
    for secret in [password.trim(), owner_password.trim()] {
        assert!(
            !log.contains(secret),
            "a generated password is never logged"
        );
    }
    // PostgreSQL's notices about our own idempotent statements are not news at info level.
    assert!(
        !log.contains("NOTICE") && !log.contains("already exists, skipping"),
        "{log}"
    );
    assert!(second.terminate().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_set_up_one_database_once() {
    // Separate folders (replicas on two hosts) and one shared folder.
    for shared_folder in [false, true] {
        let db = TestDb::new().await;
        let dir_a = tempfile::tempdir().expect("dir");
        let dir_b = if shared_folder {
            None
        } else {
            Some(tempfile::tempdir().expect("dir"))
        };
        let folder_b = dir_b.as_ref().map_or(dir_a.path(), |d| d.path());
        // Replicas on two hosts share the secret through the environment (they must); two
        // processes on one folder share the file one of them generates.
        let env = |folder| {
            let mut env = external_env(&db, folder);
            if !shared_folder {
                env.push((
                    "DEPLOYSTACK_ENCRYPTION_SECRET",
                    "shared-replica-secret".into(),
                ));
            }
            env
        };
        // Whatever the machine's cores: one replica on a current-thread runtime, the other
        // on a multi-thread one.
        let with_workers = |folder, workers: &str| {
            let mut vars = env(folder);
            vars.push(("WORKER_THREADS", workers.into()));
            vars
        };
        let a = BackendProcess::start(
            &with_workers(dir_a.path(), "1"),
            &dir_a.path().join("a.log"),
        )
        .await;
        let b =
            BackendProcess::start(&with_workers(folder_b, "3"), &dir_a.path().join("b.log")).await;
        let calls = (0..6).map(|i| {
            let url = if i % 2 == 0 {
                a.url.clone()
            } else {
                b.url.clone()
            };
            async move { post_setup(&url).await }
        });
        let results = futures_util::future::join_all(calls).await;
        let ok = results.iter().filter(|(c, _)| *c == 200).count();
        let conflict = results.iter().filter(|(c, _)| *c == 409).count();
        assert_eq!(
            (ok, conflict),
            (1, 5),
            "shared folder {shared_folder}: {results:?}"
        );
        for process in [&a, &b] {
            let (_, status) = get(&process.url, "/api/db/status").await;
            assert_eq!(status["initialized"], true);
        }
        for folder in [dir_a.path(), folder_b] {
            let text = std::fs::read_to_string(folder.join("db.selection.json")).expect("file");
            let value: serde_json::Value = serde_json::from_str(&text).expect("whole JSON file");
            assert_eq!(value["type"], "postgresql");
        }
        let logs = [a.log_text(), b.log_text()];
        let completions: usize = logs
            .iter()
            .map(|l| l.matches("database setup completed").count())
            .sum();
        assert_eq!(
            completions, 1,
            "exactly one process initialized the database: {logs:?}"
        );
        let initialized: usize = logs
            .iter()
            .map(|l| l.matches("global settings initialized").count())
            .sum();
        assert_eq!(initialized, 1, "initializers ran once: {logs:?}");
        assert!(a.terminate().await.success());
        assert!(b.terminate().await.success());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_environment_stops_the_process_naming_the_variable() {
    let dir = tempfile::tempdir().expect("dir");
    let cases = [
        ("POSTGRES_PORT", "five-four-three-two"),
        ("PORT", "http"),
        ("HOST", "not an address"),
        ("POSTGRES_SSL", "maybe"),
        ("POSTGRES_SSL_ROOT_CERT", "/nonexistent/ca.pem"),
        ("POSTGRES_POOL_MAX", "0"),
        ("POSTGRES_STATEMENT_TIMEOUT_MS", "-1"),
        // Above PostgreSQL's limit: must not start and then be "unreachable" forever.
        ("POSTGRES_STATEMENT_TIMEOUT_MS", "2147483648"),
        ("POSTGRES_SETUP_LOCK_TIMEOUT_MS", "0"),
        ("WORKER_THREADS", "0"),
        ("TOKIO_WORKER_THREADS", "many"),
    ];
    for (i, (name, value)) in cases.into_iter().enumerate() {
        let log = dir.path().join(format!("{i}-{name}.log"));
        let vars = vec![
            (name, value.to_owned()),
            ("POSTGRES_PASSWORD", "x".to_owned()),
            ("PERSISTENT_DATA_DIR", dir.path().display().to_string()),
        ];
        let status = tokio::time::timeout(Duration::from_secs(30), command(&vars, &log).status())
            .await
            .expect("exits at once")
            .expect("run");
        assert!(!status.success(), "{name}={value} must stop the process");
        let text = std::fs::read_to_string(&log).expect("log");
        assert!(text.contains(name), "{name}: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_logs_or_responses() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("dir");
    let secret = "Zq9-unlikely-secret-Zq9";
    let mut env = external_env(&db, dir.path());
    env.retain(|(k, _)| *k != "POSTGRES_PASSWORD");
    env.push(("POSTGRES_PASSWORD", secret.to_owned()));
    env.push(("RUST_LOG", "trace".to_owned()));
    let process = BackendProcess::start(&env, &dir.path().join("log")).await;
    let (code, body) = post_setup(&process.url).await;
    assert_eq!(code, 500, "{body}");
    assert!(!body.to_string().contains(secret));
    // The caller gets a short reason; PostgreSQL's own words (naming the role) are logged.
    assert!(!body.to_string().contains("authentication"), "{body}");
    let log = process.log_text();
    assert!(process.terminate().await.success());
    assert!(log.contains("password authentication failed"), "{log}");
    assert!(!log.contains(secret), "secret in log");

    // A working installation logging at trace level: neither the database password, the
    // encryption secret nor a decrypted setting reaches the server's or the CLI's log.
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("dir");
    let encryption_secret = "Enc-7f3a-unlikely-encryption-secret";
    let setting_value = "smtp-pass-0b9e-unlikely";
    let mut env = external_env(&db, dir.path());
    let db_password = env
        .iter()
        .find(|(k, _)| *k == "POSTGRES_PASSWORD")
        .map(|(_, v)| v.clone())
        .expect("password");
    env.push((
        "DEPLOYSTACK_ENCRYPTION_SECRET",
        encryption_secret.to_owned(),
    ));
    env.push(("RUST_LOG", "trace".to_owned()));
    let process = BackendProcess::start(&env, &dir.path().join("server.log")).await;
    assert_eq!(post_setup(&process.url).await.0, 200);
    let cli_log = dir.path().join("cli.log");
    let status = command(&env, &cli_log)
        .args(["settings", "set", "smtp.password", setting_value])
        .status()
        .await
        .expect("settings set");
    assert!(status.success());
    let mut texts = vec![std::fs::read_to_string(&cli_log).unwrap_or_default()];
    for path in [
        "/",
        "/api/db/status",
        "/api/health/ready",
        "/documentation/json",
    ] {
        texts.push(
            reqwest::get(format!("{}{path}", process.url))
                .await
                .expect("GET")
                .text()
                .await
                .expect("body"),
        );
    }
    texts.push(process.log_text());
    assert!(process.terminate().await.success());
    for text in &texts {
        for secret in [db_password.as_str(), encryption_secret, setting_value] {
            assert!(!text.contains(secret), "a secret leaked: {text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_subcommand_applies_then_reports_up_to_date() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("dir");
    let env = external_env(&db, dir.path());
    for expected in ["applied 00000000000000", "database is up to date"] {
        let out = command(&env, &dir.path().join("migrate.log"))
            .arg("migrate")
            .stdout(std::process::Stdio::piped())
            .output()
            .await
            .expect("run migrate");
        assert!(
            out.status.success(),
            "{}",
            std::fs::read_to_string(dir.path().join("migrate.log")).unwrap_or_default()
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains(expected), "{stdout}");
    }
    // migrate alone does not perform setup.
    let rows = db.query("SELECT count(*) FROM deploystack_setup").await;
    assert_eq!(rows[0].get::<_, i64>(0), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_subcommand_prints_the_committed_spec() {
    let dir = tempfile::tempdir().expect("dir");
    let out = command(&[], &dir.path().join("log"))
        .arg("openapi")
        .stdout(std::process::Stdio::piped())
        .output()
        .await
        .expect("run openapi");
    assert!(out.status.success());
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json"))
            .expect("openapi/openapi.json");
    assert_eq!(String::from_utf8_lossy(&out.stdout), committed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unverified_tls_is_logged_with_the_safe_choice() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("dir");
    let mut env = external_env(&db, dir.path());
    env.push(("POSTGRES_SSL", "true".to_owned()));
    let process = BackendProcess::start(&env, &dir.path().join("log")).await;
    assert_eq!(post_setup(&process.url).await.0, 200, "TLS works");
    let log = process.log_text();
    assert!(process.terminate().await.success());
    let warning = log
        .lines()
        .find(|l| l.contains("WARN") && l.contains("POSTGRES_SSL=true"))
        .unwrap_or_else(|| panic!("no warning about unverified TLS:\n{log}"));
    assert!(warning.contains("POSTGRES_SSL_ROOT_CERT"), "{warning}");
}
