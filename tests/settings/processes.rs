//! The cache across processes, the operator CLI, the generated secret, two starting servers.

use std::time::Duration;

use deploystack_backend::settings::groups;
use secrecy::{ExposeSecret, SecretString};

use crate::common;
use crate::common::pg::TestDb;
use crate::{cli, cli_env, count, initialized, total_settings};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_is_invalidated_by_writes_of_another_process() {
    let db = TestDb::new().await;
    let (_database, settings) = initialized(&db).await;
    let _listener = settings.listen(
        deploystack_backend::db::PgConnector::new(&db.connection, &Default::default())
            .expect("connector"),
    );
    common::wait_until("the cache to listen", Duration::from_secs(10), || async {
        settings.cache_enabled()
    })
    .await;
    assert_eq!(
        settings
            .get_string("smtp.host")
            .await
            .expect("get")
            .as_deref(),
        Some("")
    );
    // A change behind the cache's back (no NOTIFY) is not seen: the read is served from memory.
    db.execute("UPDATE global_settings SET value = 'sneaky' WHERE key = 'smtp.host'")
        .await;
    assert_eq!(
        settings
            .get_string("smtp.host")
            .await
            .expect("get")
            .as_deref(),
        Some("")
    );

    // The operator CLI, another process, notifies: the cached value is dropped.
    let dir = tempfile::tempdir().expect("dir");
    let env = cli_env(&db, dir.path());
    let (ok, _, log) = cli(&env, dir.path(), &["set", "smtp.host", "smtp.example.org"]).await;
    assert!(ok, "{log}");
    common::wait_until(
        "the other process's write",
        Duration::from_secs(10),
        || async {
            settings
                .get_string("smtp.host")
                .await
                .expect("get")
                .as_deref()
                == Some("smtp.example.org")
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_cli_lists_gets_and_sets_with_validation() {
    let db = TestDb::new().await;
    let (_database, settings) = initialized(&db).await;
    let dir = tempfile::tempdir().expect("dir");
    let env = cli_env(&db, dir.path());

    let (ok, out, log) = cli(&env, dir.path(), &["set", "smtp.password", "from-cli"]).await;
    assert!(ok, "{log}");
    assert!(out.contains("smtp.password updated"));
    assert!(!log.contains("from-cli"));
    let (ok, out, _) = cli(&env, dir.path(), &["get", "smtp.password"]).await;
    assert!(ok);
    assert_eq!(out.trim_end(), "from-cli");
    assert_eq!(
        settings
            .get_string("smtp.password")
            .await
            .expect("get")
            .as_deref(),
        Some("from-cli")
    );

    let (ok, out, _) = cli(&env, dir.path(), &["list", "--group", "smtp"]).await;
    assert!(ok);
    assert!(
        out.lines().count() == 9
            && out.starts_with("key ")
            && out.contains("smtp.port")
            && out.contains("<encrypted>"),
        "{out}"
    );
    assert!(!out.contains("from-cli"));

    let (ok, _, log) = cli(&env, dir.path(), &["set", "smtp.port", "lots"]).await;
    assert!(!ok, "a bad value must fail");
    assert!(log.contains("smtp.port"), "log: {log:?}");
    assert_eq!(
        settings.get_number("smtp.port").await.expect("unchanged"),
        Some(587.0)
    );
    let (ok, _, log) = cli(&env, dir.path(), &["get", "nope"]).await;
    assert!(!ok && log.contains("nope"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_secret_is_written_only_when_persisted_then_private_and_reused() {
    use deploystack_backend::settings::secret::{resolve, SecretSource};
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("encryption.secret");
    let first = resolve(None, dir.path()).expect("generate");
    assert_eq!(first.source, SecretSource::Generated(path.clone()));
    assert!(
        !path.exists(),
        "a new secret stays in memory until its key check is recorded"
    );
    first.persist().expect("persist");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).expect("file").permissions().mode() & 0o777,
        0o600
    );
    let second = resolve(None, dir.path()).expect("reuse");
    assert_eq!(second.source, SecretSource::File(path));
    assert_eq!(first.secret.expose_secret(), second.secret.expose_secret());
    assert!(first.secret.expose_secret().len() >= 32);
    // Another process's secret is never overwritten.
    let other = resolve(None, tempfile::tempdir().expect("dir").path()).expect("generate");
    let clash = deploystack_backend::settings::secret::ResolvedSecret {
        secret: other.secret,
        source: SecretSource::Generated(dir.path().join("encryption.secret")),
    };
    assert!(clash.persist().is_err());
    let configured = SecretString::from("from-env".to_owned());
    let chosen = resolve(Some(&configured), dir.path()).expect("env");
    assert_eq!(chosen.secret.expose_secret(), "from-env");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_initialize_one_database_at_once() {
    let db = TestDb::new().await;
    let dir_a = tempfile::tempdir().expect("dir");
    let dir_b = tempfile::tempdir().expect("dir");
    let (env_a, env_b) = (cli_env(&db, dir_a.path()), cli_env(&db, dir_b.path()));
    // Both find a selection file and bootstrap the same empty database concurrently.
    let (log_a, log_b) = (dir_a.path().join("a.log"), dir_b.path().join("b.log"));
    let (a, b) = tokio::join!(
        common::process::BackendProcess::start(&env_a, &log_a),
        common::process::BackendProcess::start(&env_b, &log_b),
    );
    for process in [&a, &b] {
        let url = format!("{}/api/health/ready", process.url);
        common::wait_until("ready", Duration::from_secs(30), || async {
            reqwest::get(&url)
                .await
                .map(|r| r.status().as_u16() == 200)
                .unwrap_or(false)
        })
        .await;
    }
    assert_eq!(
        count(&db, "SELECT count(*) FROM global_settings").await,
        total_settings()
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM global_setting_groups").await,
        groups::ALL.len() as i64
    );
    let (log_a, log_b) = (a.log_text(), b.log_text());
    assert!(a.terminate().await.success() && b.terminate().await.success());
    for log in [log_a, log_b] {
        assert!(
            !log.contains("initializer failed") && !log.contains("ERROR"),
            "{log}"
        );
        assert!(log.contains("global settings initialized"), "{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_cli_reads_values_from_stdin_and_names_the_known_groups() {
    use tokio::io::AsyncWriteExt;

    let db = TestDb::new().await;
    let (_database, settings) = initialized(&db).await;
    let dir = tempfile::tempdir().expect("dir");
    let env = cli_env(&db, dir.path());
    let cases: [(&[&str], &str); 2] = [
        (&["set", "smtp.password", "-"], "stdin-secret-1\n"),
        (&["set", "smtp.password"], "stdin-secret-2\r\n"),
    ];
    for (args, input) in cases {
        let log = dir.path().join("stdin.log");
        let mut child = common::process::command(&env, &log)
            .arg("settings")
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(input.as_bytes()).await.expect("write");
        drop(stdin);
        let out = child.wait_with_output().await.expect("wait");
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(out.status.success(), "{args:?}: {text}");
        assert!(!text.contains(input.trim_end()), "the value is not logged");
        assert_eq!(
            settings
                .get_string("smtp.password")
                .await
                .expect("get")
                .as_deref(),
            Some(input.trim_end())
        );
    }
    // No input at all (stdin is /dev/null here) is an error, not an empty value.
    let (ok, _, log) = cli(&env, dir.path(), &["set", "smtp.password"]).await;
    assert!(!ok && log.contains("no value on standard input"), "{log}");
    assert_eq!(
        settings
            .get_string("smtp.password")
            .await
            .expect("get")
            .as_deref(),
        Some("stdin-secret-2")
    );

    let (ok, out, log) = cli(&env, dir.path(), &["list", "--group", "nosuchgroup"]).await;
    assert!(!ok, "an unknown group is an error");
    assert!(out.is_empty(), "{out}");
    assert!(
        log.contains("nosuchgroup") && groups::ALL.iter().all(|g| log.contains(g.id)),
        "{log}"
    );
}

/// Errors of command-line use read as a command's (`error: ...`, no timestamp, no colour off
/// a terminal); a value the command cannot take exits 2, a failure to do the work exits 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_errors_read_as_errors_and_exit_2_for_usage_and_1_for_failures() {
    let db = TestDb::new().await;
    let _ = initialized(&db).await;
    let dir = tempfile::tempdir().expect("dir");
    let env = cli_env(&db, dir.path());
    let run = |vars: Vec<(&'static str, String)>, args: &'static [&'static str]| {
        let log = dir.path().join("err.log");
        async move {
            let out = crate::common::process::command(&vars, &log)
                .args(args)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .output()
                .await
                .expect("run");
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        }
    };
    let (code, stderr) = run(env.clone(), &["settings", "set", "smtp.port", "many"]).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        "error: invalid value for smtp.port: \"many\" is not a number"
    );
    let (code, stderr) = run(env.clone(), &["settings", "list", "--group", "nope"]).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.starts_with("error: unknown settings group \"nope\""),
        "{stderr}"
    );
    let (code, _) = run(env.clone(), &["settings", "frobnicate"]).await;
    assert_eq!(code, Some(2), "clap's usage errors");
    // PostgreSQL refuses the login: a failure, exit 1.
    let mut wrong = env.clone();
    for (name, value) in wrong.iter_mut() {
        if *name == "POSTGRES_PASSWORD" {
            *value = "not-the-password".into();
        }
    }
    let (code, stderr) = run(wrong, &["settings", "get", "smtp.port"]).await;
    assert_eq!(code, Some(1), "{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: ") && !last.contains('\u{1b}'),
        "{stderr}"
    );
}
