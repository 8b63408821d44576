//! Both example plugins through setup and start: tables, routes, settings, hooks, jobs, the
//! OpenAPI document, and migrations added or changed between starts.

use std::time::Duration;

use deploystack_backend::app::App;
use deploystack_backend::jobs::EnqueueOptions;
use serde_json::json;

use crate::common::server::TestServer;
use crate::notes_plugin::{MAX_LENGTH, WELCOME_ID};
use crate::support::{with_notes, PluginEnv};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_plugins_work_end_to_end_after_setup() {
    let env = PluginEnv::new().await;
    let server = env.start(&env.config()).await;
    let (_, status) = server.get("/api/db/status").await;
    assert_eq!(
        status["plugins"],
        json!({"isolation": "pending", "loaded": ["notes", "bookmarks"]})
    );
    let (code, body) = server.setup().await;
    assert_eq!(code, 200, "{body}");
    let status = server.admin_status().await;
    assert_eq!(status["plugins"]["isolation"], "roles", "{status}");

    // Tables, each in its plugin's schema, owned by the plugin's role.
    let owners = env
        .rows(
            "SELECT n.nspname || '.' || c.relname, pg_get_userbyid(c.relowner) FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname LIKE 'plugin\\_%' AND c.relkind = 'r' ORDER BY 1",
        )
        .await;
    let owners: Vec<(String, String)> = owners.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        owners,
        [
            (
                "plugin_bookmarks.bookmarks".into(),
                "plugin_bookmarks".into()
            ),
            ("plugin_notes.notes".into(), "plugin_notes".into())
        ]
    );
    let recorded = env
        .rows("SELECT plugin_id, version, name FROM __plugin_migrations ORDER BY 1")
        .await;
    let recorded: Vec<(String, i64, String)> = recorded
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        recorded,
        [
            ("bookmarks".into(), 1, "create_bookmarks".into()),
            ("notes".into(), 1, "create_notes".into())
        ]
    );

    // The route, with the hook's seeded note, a write and a refused write.
    let (code, list) = server.get("/api/plugin/notes/notes").await;
    assert_eq!(code, 200, "{list}");
    assert_eq!(list[0]["id"], WELCOME_ID);
    let (code, note) = server
        .post_json("/api/plugin/notes/notes", &json!({"body": "first"}))
        .await;
    assert_eq!(code, 201, "{note}");
    assert_eq!(note["body"], "first");
    let (code, error) = server
        .post_json("/api/plugin/notes/notes", &json!({"body": "  "}))
        .await;
    assert_eq!((code, error["error"].as_str()), (400, Some("Invalid note")));
    let (code, error) = server
        .post_json("/api/plugin/notes/notes", &json!({"body": "x", "extra": 1}))
        .await;
    assert_eq!(code, 400, "{error}");
    assert!(error["message"].is_string(), "{error}");
    let (_, list) = server.get("/api/plugin/notes/notes").await;
    assert_eq!(list.as_array().map(Vec::len), Some(2));

    // Settings: typed, defaulted, encrypted where declared, in the plugin's group.
    let settings = &server.state.settings;
    settings.set(MAX_LENGTH, "3").await.expect("set");
    let (code, _) = server
        .post_json("/api/plugin/notes/notes", &json!({"body": "four"}))
        .await;
    assert_eq!(code, 400);
    assert!(settings.set(MAX_LENGTH, "many").await.is_err());
    // A declared plugin setting deleted by hand is recreated, typed, by the next write.
    env.batch("DELETE FROM global_settings WHERE key = 'notes.max_length'")
        .await
        .expect("delete");
    settings.set(MAX_LENGTH, "3").await.expect("recreated");
    let row = env
        .rows("SELECT type, group_id FROM global_settings WHERE key = 'notes.max_length'")
        .await;
    assert_eq!(
        (row[0].get::<_, String>(0), row[0].get::<_, String>(1)),
        ("number".to_owned(), "notes".to_owned())
    );
    assert_eq!(
        settings
            .get_number("bookmarks.max_per_user")
            .await
            .expect("get"),
        Some(100.0)
    );
    let rows = env
        .rows(
            "SELECT key, group_id, is_encrypted FROM global_settings \
             WHERE group_id IN ('notes', 'bookmarks') ORDER BY key",
        )
        .await;
    let rows: Vec<(String, String, bool)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        rows,
        [
            ("bookmarks.max_per_user".into(), "bookmarks".into(), false),
            ("bookmarks.preview_api_key".into(), "bookmarks".into(), true),
            ("notes.max_length".into(), "notes".into(), false)
        ]
    );

    // The plugin's job, run by the server's workers as the plugin.
    let queue = server.state.jobs.queue();
    let id = queue
        .enqueue(
            "notes.purge",
            json!({"olderThanDays": 0}),
            EnqueueOptions::default(),
        )
        .await
        .expect("enqueue");
    crate::common::wait_until("the purge job", Duration::from_secs(20), || async {
        queue.job(&id).await.is_ok_and(|j| j.status == "completed")
    })
    .await;
    assert_eq!(
        queue.job(&id).await.expect("job").result,
        Some(json!({"deleted": 2}))
    );

    // The served document lists the plugin's operations; the Allow table knows them.
    let (_, spec) = server.get("/documentation/json").await;
    let path = &spec["paths"]["/api/plugin/notes/notes"];
    assert!(
        path["get"].is_object() && path["post"].is_object(),
        "{spec}"
    );
    let resp = server
        .http
        .delete(format!("{}/api/plugin/notes/notes", server.url))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(resp.status().as_u16(), 405);
    assert_eq!(resp.headers()["allow"], "GET, HEAD, POST");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_added_after_setup_get_their_tables_at_the_next_start() {
    let env = PluginEnv::new().await;
    let mut plain = env.config();
    plain.plugins.path = None;
    let server = TestServer::start(&plain).await;
    assert_eq!(server.setup().await.0, 200);
    server.stop().await;
    assert!(!env.exists("plugin_notes.notes").await);

    let server = env.start(&env.config()).await;
    server.wait_initialized().await;
    assert!(env.exists("plugin_notes.notes").await);
    assert!(env.exists("plugin_bookmarks.bookmarks").await);
    let (code, list) = server.get("/api/plugin/notes/notes").await;
    assert_eq!((code, list[0]["id"].as_str()), (200, Some(WELCOME_ID)));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_migration_is_applied_at_the_next_start_and_data_is_kept() {
    let env = PluginEnv::new().await;
    let server = env.set_up().await;
    server.stop().await;
    env.batch(
        "INSERT INTO plugin_bookmarks.bookmarks (user_id, url) VALUES ('u1', 'https://a.example')",
    )
    .await
    .expect("insert");
    std::fs::write(
        env.bookmarks_migrations().join("0002_add_tags.sql"),
        "ALTER TABLE bookmarks ADD COLUMN tags text[] NOT NULL DEFAULT '{}';\n\
         CREATE INDEX bookmarks_tags_idx ON bookmarks USING gin (tags);\n",
    )
    .expect("write migration");

    let server = env.start(&env.config()).await;
    server.wait_initialized().await;
    let rows = env
        .rows("SELECT url, tags FROM plugin_bookmarks.bookmarks")
        .await;
    assert_eq!(rows.len(), 1, "data kept");
    assert_eq!(rows[0].get::<_, Vec<String>>(1), Vec::<String>::new());
    let versions = env
        .rows("SELECT version FROM __plugin_migrations WHERE plugin_id = 'bookmarks' ORDER BY 1")
        .await;
    let versions: Vec<i64> = versions.iter().map(|r| r.get(0)).collect();
    assert_eq!(versions, [1, 2]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_applied_migration_that_changed_stops_the_start() {
    let env = PluginEnv::new().await;
    let server = env.set_up().await;
    server.stop().await;
    let file = env.bookmarks_migrations().join("0001_create_bookmarks.sql");
    let sql = std::fs::read_to_string(&file).expect("read");
    std::fs::write(&file, sql.replace("DEFAULT ''", "DEFAULT 'untitled'")).expect("write");

    let error = refused_start(&env).await;
    assert!(
        error.contains("plugin bookmarks")
            && error.contains("0001_create_bookmarks")
            && error.contains("checksum"),
        "{error}"
    );
    // Nothing was dropped or changed.
    assert!(env.exists("plugin_bookmarks.bookmarks").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_migration_ordered_before_an_applied_one_is_refused() {
    let env = PluginEnv::new().await;
    std::fs::rename(
        env.bookmarks_migrations().join("0001_create_bookmarks.sql"),
        env.bookmarks_migrations().join("0005_create_bookmarks.sql"),
    )
    .expect("rename");
    let server = env.set_up().await;
    server.stop().await;
    std::fs::write(
        env.bookmarks_migrations().join("0002_late.sql"),
        "CREATE TABLE late (id int)",
    )
    .expect("write");
    let error = refused_start(&env).await;
    assert!(
        error.contains("0002_late") && error.contains("0005_create_bookmarks"),
        "{error}"
    );
    assert!(!env.exists("plugin_bookmarks.late").await);
}

/// The error of a start that must be refused.
async fn refused_start(env: &PluginEnv) -> String {
    match App::start_extended(&env.config(), with_notes(), &Default::default()).await {
        Ok(app) => {
            app.shutdown().await;
            panic!("the start must be refused");
        }
        Err(e) => format!("{e:#}"),
    }
}
