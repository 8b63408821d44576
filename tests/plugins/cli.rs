//! `plugins list` and `plugins migrate` through the example binary (the backend with the
//! notes plugin compiled in), against a database set up by a server.

use std::path::PathBuf;

use secrecy::ExposeSecret;

use crate::common::server::config;
use crate::support::PluginEnv;

fn notes_server_binary() -> PathBuf {
    // target/<profile>/deps/<test> → target/<profile>/examples/notes_server
    let exe = std::env::current_exe().expect("test binary");
    exe.parent()
        .and_then(|deps| deps.parent())
        .map(|profile| profile.join("examples").join("notes_server"))
        .expect("target folder")
}

/// Runs `plugins <args>` with the database's superuser as the application role (a role that
/// may create roles itself).
async fn plugins(env: &PluginEnv, args: &[&str]) -> (bool, String, String) {
    plugins_as(env, &env.db.superuser, &[], args).await
}

/// Runs `plugins <args>` logged in as `c`, with the extra variables `vars`.
async fn plugins_as(
    env: &PluginEnv,
    c: &deploystack_backend::config::ConnectionTarget,
    vars: &[(&str, &str)],
    args: &[&str],
) -> (bool, String, String) {
    let out = tokio::process::Command::new(notes_server_binary())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("NO_COLOR", "1")
        .env("POSTGRES_HOST", &c.host)
        .env("POSTGRES_PORT", c.port.to_string())
        .env("POSTGRES_DATABASE", &c.database)
        .env("POSTGRES_USER", &c.user)
        .env(
            "POSTGRES_PASSWORD",
            c.password
                .as_ref()
                .map(|p| p.expose_secret().to_owned())
                .unwrap_or_default(),
        )
        .env("PERSISTENT_DATA_DIR", env.data.path())
        .env("PLUGINS_PATH", env.plugins.path())
        .env("DEPLOYSTACK_ENCRYPTION_SECRET", "test-encryption-secret")
        .envs(vars.iter().copied())
        .arg("plugins")
        .args(args)
        .output()
        .await
        .expect("run notes_server (built by cargo test as an example)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn line_of<'a>(out: &'a str, id: &str) -> Vec<&'a str> {
    out.lines()
        .find(|l| l.starts_with(id))
        .map(|l| l.split_whitespace().collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_and_migrate_from_the_command_line() {
    let env = PluginEnv::new().await;
    let (ok, _, err) = plugins(&env, &["list"]).await;
    assert!(!ok && err.contains("setup has not been performed"), "{err}");

    // Set up by a server running as the superuser: roles made by its own session.
    let mut cfg = config(env.db.superuser.clone(), env.data.path());
    cfg.plugins.path = Some(env.plugins.path().to_path_buf());
    let server = env.start(&cfg).await;
    assert_eq!(server.setup().await.0, 200);
    server.stop().await;

    let (ok, out, err) = plugins(&env, &["list"]).await;
    assert!(ok, "{err}");
    assert_eq!(
        line_of(&out, "notes"),
        ["notes", "1.0.0", "compiled", "1/1", "roles"]
    );
    assert_eq!(
        line_of(&out, "bookmarks"),
        ["bookmarks", "1.0.0", "folder", "1/1", "roles"]
    );

    std::fs::write(
        env.bookmarks_migrations().join("0002_add_note.sql"),
        "ALTER TABLE bookmarks ADD COLUMN note text",
    )
    .expect("write");
    let (ok, out, _) = plugins(&env, &["list"]).await;
    assert!(ok);
    assert_eq!(line_of(&out, "bookmarks")[3], "1/2");
    let (ok, out, err) = plugins(&env, &["migrate"]).await;
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "applied bookmarks 0002_add_note");
    let (ok, out, _) = plugins(&env, &["migrate"]).await;
    assert!(ok);
    assert_eq!(out.trim(), "plugin migrations are up to date");
    let (_, out, _) = plugins(&env, &["list"]).await;
    assert_eq!(line_of(&out, "bookmarks")[3], "2/2");
    assert!(env.exists("plugin_bookmarks.bookmarks").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_without_plugin_roles_says_the_plugins_run_with_the_cores_rights() {
    let env = PluginEnv::new().await;
    // The owner role may not create roles, and no administrative login is at hand.
    let mut cfg = config(env.db.connection.clone(), env.data.path());
    cfg.plugins.path = Some(env.plugins.path().to_path_buf());
    cfg.plugins.allow_convention = true;
    let server = env.start(&cfg).await;
    assert_eq!(server.setup().await.0, 200);
    server.stop().await;
    let allow = [("PLUGIN_ALLOW_CONVENTION_ISOLATION", "true")];
    let (ok, out, err) = plugins_as(&env, &env.db.connection, &allow, &["list"]).await;
    assert!(ok, "{err}");
    assert_eq!(line_of(&out, "bookmarks")[4], "convention");
    assert!(
        out.contains("WARNING: notes, bookmarks isolated by naming only")
            && out.contains("runs with the core's rights"),
        "{out}"
    );
    // Without the operator's consent they are not migrated at all.
    let (ok, _, err) = plugins_as(&env, &env.db.connection, &[], &["migrate"]).await;
    assert!(
        !ok && err.contains("PLUGIN_ALLOW_CONVENTION_ISOLATION"),
        "{err}"
    );
}
