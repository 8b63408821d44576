//! `users create-admin` for headless installs, and `users list`.

use std::process::Stdio;

use tokio::io::AsyncWriteExt;

use crate::common::process::{command, external_env};
use crate::support::Site;

async fn users(site: &Site, args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut vars = external_env(&site.db, site.dir.path());
    vars.push((
        "DEPLOYSTACK_ENCRYPTION_SECRET",
        "test-encryption-secret".into(),
    ));
    let log = site.dir.path().join("users.log");
    let mut child = command(&vars, &log)
        .arg("users")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run users");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin.as_bytes()).await.expect("write");
    drop(input);
    let out = child.wait_with_output().await.expect("output");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        format!(
            "{}{}",
            std::fs::read_to_string(&log).unwrap_or_default(),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_is_created_from_the_command_line_and_can_sign_in() {
    let site = Site::new().await;
    let (ok, _, log) = users(
        &site,
        &[
            "create-admin",
            "--username",
            "root",
            "--email",
            "Root@Example.com",
        ],
        "short\n",
    )
    .await;
    assert!(
        !ok && log.contains("password must be 8 to 128 characters"),
        "{log}"
    );
    let (ok, out, log) = users(
        &site,
        &[
            "create-admin",
            "--username",
            "root",
            "--email",
            "Root@Example.com",
            "--first-name",
            "Ro",
        ],
        "a long enough password\n",
    )
    .await;
    assert!(ok, "{log}");
    assert!(
        out.starts_with("created the administrator root (root@example.com), id "),
        "{out}"
    );
    assert!(!log.contains("a long enough password"), "{log}");
    let reply = site
        .login("root@example.com", "a long enough password")
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["user"]["role_id"], "global_admin");
    // An operator may add another administrator while accounts exist.
    site.register("ann").await;
    let (ok, _, log) = users(
        &site,
        &[
            "create-admin",
            "--username",
            "ops",
            "--email",
            "ops@example.com",
        ],
        "another long password\n",
    )
    .await;
    assert!(ok, "{log}");
    let (ok, out, _) = users(&site, &["list"], "").await;
    assert!(ok);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("id") && lines[0].contains("email") && lines[0].contains("role"),
        "{out}"
    );
    assert_eq!(lines.len(), 4, "{out}");
    assert!(
        lines[1].contains("root@example.com") && lines[1].contains("global_admin"),
        "{out}"
    );
    assert!(
        lines[2].contains("ann@example.com") && lines[2].contains("global_user"),
        "{out}"
    );
    assert!(
        lines[3].contains("ops@example.com") && lines[3].contains("global_admin"),
        "{out}"
    );
    // The command's own session was ended.
    assert_eq!(
        site.rows("SELECT count(*) FROM auth_sessions").await[0].get::<_, i64>(0),
        2,
        "the sign-in and ann's sign-up only"
    );
    site.server.stop().await;
}
