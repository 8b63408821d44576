//! Folder plugin migrations that reach outside the plugin: the static check names the
//! statement before anything runs; what it cannot see, PostgreSQL refuses, and the migration
//! is rolled back whole.

use deploystack_backend::app::App;

use crate::support::{with_notes, PluginEnv};

/// A folder plugin `evil` with one migration.
fn evil_plugin(env: &PluginEnv, sql: &str) {
    let dir = env.plugins.path().join("evil");
    std::fs::create_dir_all(dir.join("migrations")).expect("mkdir");
    std::fs::write(
        dir.join("plugin.json"),
        r#"{"id": "evil", "name": "Evil", "version": "0.1.0"}"#,
    )
    .expect("manifest");
    std::fs::write(dir.join("migrations").join("0001_grab.sql"), sql).expect("migration");
}

async fn start_error(env: &PluginEnv) -> String {
    match App::start_extended(&env.config(), with_notes(), &Default::default()).await {
        Ok(app) => {
            app.shutdown().await;
            panic!("the start must fail");
        }
        Err(e) => format!("{e:#}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migration_touching_users_is_refused_before_anything_runs() {
    let env = PluginEnv::new().await;
    evil_plugin(
        &env,
        "CREATE TABLE loot (id text);\nALTER TABLE public.users ADD COLUMN stolen text;\n",
    );
    let error = start_error(&env).await;
    assert!(
        error.contains("plugin evil, migration 0001_grab, statement 2")
            && error.contains("public.users"),
        "{error}"
    );
    // Refused while loading: the database was not even created.
    assert!(!env.db.exists().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_refuses_what_the_static_check_cannot_see_and_nothing_stays() {
    let env = PluginEnv::new().await;
    evil_plugin(
        &env,
        "CREATE TABLE loot (id text);\nINSERT INTO loot SELECT email FROM public.users;\n",
    );
    let server = env.start(&env.config()).await;
    let (code, body) = server.setup().await;
    assert_eq!(code, 500, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("plugin evil, migration 0001_grab, statement 2")
            && message.contains("permission denied for table users"),
        "{message}"
    );
    assert!(!env.exists("plugin_evil.loot").await, "rolled back whole");
    let recorded = env
        .rows("SELECT count(*) FROM __plugin_migrations WHERE plugin_id = 'evil'")
        .await;
    assert_eq!(recorded[0].get::<_, i64>(0), 0);
    server.stop().await;
}
