//! PostgreSQL keeps plugins apart: through the handle and in raw SQL as a plugin's role, a
//! plugin reaches its own schema and the `plugin_api` views, nothing else; the role never
//! outlives the transaction on a pooled connection; without CREATEROLE plugins are refused
//! unless convention-only isolation is accepted. Over HTTP, a plugin's handler cannot extract
//! the core's state (its pool and services).

use deploystack_backend::plugins::{PluginDb, PluginDbError};
use diesel::sql_types::{BigInt, Text};
use diesel::QueryableByName;
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};

use crate::support::{loaded, PluginEnv};

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

async fn count(db: &PluginDb, sql: &'static str) -> Result<i64, PluginDbError> {
    db.transaction(|conn| {
        Box::pin(async move {
            let row: Count = diesel::sql_query(sql).get_result(conn).await?;
            Ok(row.n)
        })
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_reaches_only_its_own_schema_through_its_handle() {
    let env = PluginEnv::new().await;
    let server = env.set_up().await;
    let notes = &loaded(&server, "notes").context.db;
    assert_eq!(
        count(notes, "SELECT count(*) AS n FROM notes")
            .await
            .expect("own table"),
        1
    );
    for sql in [
        "SELECT count(*) AS n FROM public.users",
        "SELECT count(*) AS n FROM public.global_settings",
        "SELECT count(*) AS n FROM public.__plugin_migrations",
        "SELECT count(*) AS n FROM plugin_bookmarks.bookmarks",
    ] {
        let e = count(notes, sql).await.expect_err(sql);
        assert!(e.is_permission_denied(), "{sql}: {e}");
    }
    // Unqualified core names do not even resolve: only the plugin's schema is searched.
    let e = count(notes, "SELECT count(*) AS n FROM users")
        .await
        .expect_err("users");
    assert!(e.to_string().contains("does not exist"), "{e}");
    let bookmarks = &loaded(&server, "bookmarks").context.db;
    let e = count(bookmarks, "SELECT count(*) AS n FROM plugin_notes.notes")
        .await
        .expect_err("other plugin");
    assert!(e.is_permission_denied(), "{e}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_role_is_refused_by_postgres_in_raw_sql() {
    let env = PluginEnv::new().await;
    let server = env.set_up().await;
    server.stop().await;
    for sql in [
        "SELECT * FROM public.users",
        "UPDATE public.global_settings SET value = 'x'",
        "INSERT INTO plugin_bookmarks.bookmarks (user_id, url) VALUES ('u', 'https://x')",
        "CREATE TABLE public.evil (a int)",
        "ALTER TABLE public.users ADD COLUMN evil text",
        "DROP TABLE plugin_bookmarks.bookmarks",
        "CREATE SCHEMA evil",
    ] {
        let outcome = env
            .batch(&format!(
                "BEGIN; SET LOCAL ROLE plugin_notes; {sql}; COMMIT"
            ))
            .await;
        let error = outcome.expect_err(sql);
        assert!(
            error.contains("permission denied") || error.contains("must be owner"),
            "{sql}: {error}"
        );
    }
    env.batch("BEGIN; SET LOCAL ROLE plugin_notes; INSERT INTO plugin_notes.notes (id, body) VALUES ('raw', 'as the role'); COMMIT")
        .await
        .expect("its own table");
}

#[derive(QueryableByName)]
struct Session {
    #[diesel(sql_type = Text)]
    role: String,
    #[diesel(sql_type = Text)]
    search_path: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plugin_role_never_reaches_the_next_user_of_a_connection() {
    let env = PluginEnv::new().await;
    let mut cfg = env.config();
    cfg.pool.max_size = 1;
    cfg.pool.min_idle = 0;
    cfg.jobs.concurrency = 0;
    let server = env.start(&cfg).await;
    assert_eq!(server.setup().await.0, 200);
    let notes = &loaded(&server, "notes").context.db;
    // A plugin role may not create temporary tables at all (TEMPORARY is the core's only).
    let temp = notes
        .transaction(|conn| {
            Box::pin(async move {
                conn.batch_execute("CREATE TEMP TABLE users (id text)")
                    .await
            })
        })
        .await
        .expect_err("no TEMPORARY for plugin roles");
    assert!(temp.is_permission_denied(), "{temp}");
    // A (trusted, compiled) plugin that even sets its role for the whole session and, back
    // as the core, leaves a temporary table that would shadow `users` (temporary tables are
    // searched first).
    notes
        .transaction(|conn| {
            Box::pin(async move {
                conn.batch_execute(
                    "RESET ROLE; CREATE TEMP TABLE users (id text); \
                     INSERT INTO users VALUES ('fake'); SET ROLE plugin_notes",
                )
                .await
            })
        })
        .await
        .expect("plugin transaction");
    assert!(count(notes, "SELECT count(*) AS n FROM public.users")
        .await
        .is_err());
    // A transaction whose work fails is rolled back whole, and the connection is reused.
    let failed = notes
        .transaction(|conn| {
            Box::pin(async move {
                diesel::sql_query("INSERT INTO notes (id, body) VALUES ('gone', 'x')")
                    .execute(conn)
                    .await?;
                diesel::sql_query("SELECT 1 / 0").execute(conn).await
            })
        })
        .await;
    assert!(failed.is_err());
    assert_eq!(
        count(notes, "SELECT count(*) AS n FROM notes WHERE id = 'gone'")
            .await
            .expect("count"),
        0
    );
    let mut conn = server
        .state
        .database
        .conn()
        .await
        .expect("the one pooled connection");
    let session: Session = diesel::sql_query(
        "SELECT current_user::text AS role, current_setting('search_path') AS search_path",
    )
    .get_result(&mut *conn)
    .await
    .expect("query");
    assert_eq!(session.role, env.db.connection.user);
    assert_eq!(session.search_path, "\"$user\", public");
    let users: Count = diesel::sql_query("SELECT count(*) AS n FROM users")
        .get_result(&mut *conn)
        .await
        .expect("core query");
    assert_eq!(users.n, 0, "the core reads its own users table");
    drop(conn);
    server.stop().await;
}

#[derive(QueryableByName)]
struct Team {
    #[diesel(sql_type = Text)]
    team_id: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_read_the_core_only_through_plugin_api() {
    let env = PluginEnv::new().await;
    let server = env.set_up().await;
    env.batch(
        "INSERT INTO users (id, username, email, auth_type) VALUES \
           ('u1', 'ann', 'ann@example.com', 'email_signup'), ('u2', 'bob', 'bob@example.com', 'email_signup'); \
         INSERT INTO teams (id, name, slug, owner_id) VALUES ('t1', 'Ann', 'ann', 'u1'), ('t2', 'Bob', 'bob', 'u2'); \
         INSERT INTO team_memberships (id, team_id, user_id, role) VALUES ('m1', 't1', 'u1', 'team_admin'), ('m2', 't2', 'u2', 'team_admin')",
    )
    .await
    .expect("seed");
    let notes = &loaded(&server, "notes").context.db;
    let teams = |db: PluginDb| async move {
        db.transaction(|conn| {
            Box::pin(async move {
                let rows: Vec<Team> =
                    diesel::sql_query("SELECT team_id FROM plugin_api.current_user_teams")
                        .load(conn)
                        .await?;
                Ok(rows.into_iter().map(|t| t.team_id).collect::<Vec<_>>())
            })
        })
        .await
        .expect("plugin_api")
    };
    assert_eq!(teams(notes.acting_for("u1")).await, ["t1"]);
    assert_eq!(teams(notes.acting_for("u2")).await, ["t2"]);
    assert!(teams(notes.clone()).await.is_empty());
    // A note written for a user records who, through plugin_api's function.
    let author = notes
        .acting_for("u1")
        .transaction(|conn| {
            Box::pin(async move {
                #[derive(QueryableByName)]
                struct Author {
                    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
                    author_id: Option<String>,
                }
                let row: Author = diesel::sql_query(
                    "INSERT INTO notes (id, body) VALUES ('n1', 'x') RETURNING author_id",
                )
                .get_result(conn)
                .await?;
                Ok(row.author_id)
            })
        })
        .await
        .expect("insert");
    assert_eq!(author.as_deref(), Some("u1"));
    assert!(count(notes, "SELECT count(*) AS n FROM public.teams")
        .await
        .expect_err("teams")
        .is_permission_denied());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_createrole_plugins_are_refused_unless_convention_is_accepted() {
    let env = PluginEnv::new().await;
    let mut cfg = env.config();
    cfg.plugins.role_admin = None;
    let server = env.start(&cfg).await;
    let (code, body) = server.setup().await;
    assert_eq!(code, 500, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("CREATEROLE") && message.contains("PLUGIN_ALLOW_CONVENTION_ISOLATION"),
        "{message}"
    );
    let (_, status) = server.get("/api/db/status").await;
    assert_eq!(status["state"], "refused", "{status}");
    assert!(!env.exists("plugin_notes.notes").await);
    server.stop().await;

    // The refused setup left nothing recorded: it is simply retried.
    cfg.plugins.allow_convention = true;
    let server = env.start(&cfg).await;
    let (code, body) = server.setup().await;
    assert_eq!(code, 200, "{body}");
    let status = server.admin_status().await;
    assert_eq!(status["plugins"]["isolation"], "convention", "{status}");
    let (code, _) = server
        .post_json(
            "/api/plugin/notes/notes",
            &serde_json::json!({"body": "hi"}),
        )
        .await;
    assert_eq!(code, 201);
    let owner = env
        .rows("SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'plugin_notes'")
        .await;
    assert_eq!(owner[0].get::<_, String>(0), env.db.connection.user);
    server.stop().await;

    // Once roles can be made, the plugin's objects move to its role.
    let server = env.start(&env.config()).await;
    server.wait_initialized().await;
    let status = server.admin_status().await;
    assert_eq!(status["plugins"]["isolation"], "roles", "{status}");
    let owner = env
        .rows("SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'plugin_notes.notes'::regclass")
        .await;
    assert_eq!(owner[0].get::<_, String>(0), "plugin_notes");
    let notes = &loaded(&server, "notes").context.db;
    assert_eq!(
        count(notes, "SELECT count(*) AS n FROM notes")
            .await
            .expect("own"),
        2
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_and_schemas_not_made_by_deploystack_are_not_taken_over() {
    let env = PluginEnv::new().await;
    let dir = env.plugins.path().join("squatted");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(
        dir.join("plugin.json"),
        r#"{"id": "squatted", "name": "S", "version": "1"}"#,
    )
    .expect("manifest");
    // A login role of that name, made by someone else (roles are shared by the cluster),
    // and a schema named like a plugin's that belongs to another role.
    env.db.create_empty().await;
    env.batch(&format!(
        "DROP ROLE IF EXISTS plugin_squatted; CREATE ROLE plugin_squatted LOGIN; \
         CREATE SCHEMA plugin_bookmarks AUTHORIZATION {}",
        env.db.superuser.user
    ))
    .await
    .expect("squat");
    let server = env.start(&env.config()).await;
    let (code, body) = server.setup().await;
    assert_eq!(code, 500, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("\"plugin_squatted\" exists but can log in"),
        "{message}"
    );
    server.stop().await;

    std::fs::remove_dir_all(&dir).expect("rm");
    let server = env.start(&env.config()).await;
    let (code, body) = server.setup().await;
    assert_eq!(code, 500, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("schema \"plugin_bookmarks\" exists and belongs to the role"),
        "{message}"
    );
    server.stop().await;
    env.batch("DROP ROLE plugin_squatted")
        .await
        .expect("clean up");
}

/// A plugin whose only operation tries to take the core's state.
struct Snoop;

struct SnoopApi;

#[poem_openapi::OpenApi]
impl SnoopApi {
    #[oai(path = "/api/plugin/snoop/state", method = "get")]
    async fn state(
        &self,
        state: poem::web::Data<&deploystack_backend::state::AppState>,
    ) -> poem_openapi::payload::PlainText<String> {
        poem_openapi::payload::PlainText(format!("pool ready: {}", state.database.is_ready()))
    }
}

impl deploystack_backend::plugins::Plugin for Snoop {
    fn id(&self) -> &str {
        "snoop"
    }
    fn name(&self) -> &str {
        "Snoop"
    }
    fn version(&self) -> &str {
        "0"
    }
    fn routes(
        &self,
        _ctx: &deploystack_backend::plugins::PluginContext,
    ) -> Option<deploystack_backend::plugins::PluginRoutes> {
        Some(deploystack_backend::plugins::PluginRoutes::new(SnoopApi))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_handler_cannot_take_the_core_state() {
    let env = PluginEnv::new().await;
    let mut extensions = crate::support::with_notes();
    extensions.plugins.push(std::sync::Arc::new(Snoop));
    let server = crate::common::server::TestServer::start_extended(&env.config(), extensions).await;
    let resp = reqwest::get(format!("{}/api/plugin/snoop/state", server.url))
        .await
        .expect("request");
    let code = resp.status().as_u16();
    let body = resp.text().await.unwrap_or_default();
    assert_eq!(code, 500, "{body}");
    assert!(!body.contains("pool ready"), "{body}");
    // The core's operations still get it.
    assert_eq!(server.get("/api/db/status").await.0, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_role_holds_nothing_beyond_its_schema() {
    let env = PluginEnv::new().await;
    let server = env.set_up().await;
    server.stop().await;
    let database = &env.db.connection.database;
    let rows = env
        .rows(&format!(
            "SELECT r.rolcanlogin, r.rolconnlimit, \
                    (SELECT rolpassword IS NULL FROM pg_authid WHERE rolname = r.rolname), \
                    has_database_privilege(r.rolname, '{database}', 'CREATE'), \
                    has_database_privilege(r.rolname, '{database}', 'TEMPORARY'), \
                    has_database_privilege(r.rolname, 'postgres', 'CONNECT'), \
                    has_database_privilege(r.rolname, 'template1', 'CONNECT'), \
                    has_schema_privilege(r.rolname, 'public', 'CREATE'), \
                    has_schema_privilege(r.rolname, 'plugin_api', 'CREATE'), \
                    (SELECT count(*) FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace \
                       AND has_function_privilege(r.rolname, p.oid, 'EXECUTE')), \
                    (SELECT count(*) FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace \
                       AND c.relkind IN ('r', 'p', 'v') AND c.relname <> '__plugin_migrations' \
                       AND (has_table_privilege(r.rolname, c.oid, 'SELECT') \
                            OR has_table_privilege(r.rolname, c.oid, 'INSERT'))), \
                    (SELECT count(*) FROM pg_auth_members m WHERE m.member = r.oid), \
                    (SELECT setconfig::text FROM pg_db_role_setting WHERE setrole = r.oid AND setdatabase = 0) \
             FROM pg_roles r WHERE r.rolname = 'plugin_bookmarks'"
        ))
        .await;
    let row = &rows[0];
    assert_eq!(row.get::<_, i32>(1), 4, "connection limit");
    // Roles are the cluster's: another test's database may be running this plugin's
    // migrations right now, with the role's login open for them. Waited out, not timed.
    let mut login = (row.get::<_, bool>(0), row.get::<_, bool>(2));
    for _ in 0..100 {
        if login == (false, true) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let rows = env
            .rows(
                "SELECT rolcanlogin, rolpassword IS NULL FROM pg_authid \
                 WHERE rolname = 'plugin_bookmarks'",
            )
            .await;
        login = (rows[0].get(0), rows[0].get(1));
    }
    assert_eq!(
        login,
        (false, true),
        "no login and no password between migration runs"
    );
    for (column, what) in [
        (3, "CREATE on the database"),
        (4, "TEMPORARY"),
        (5, "CONNECT to postgres"),
        (6, "CONNECT to template1"),
        (7, "CREATE in public"),
        (8, "CREATE in plugin_api"),
    ] {
        assert!(!row.get::<_, bool>(column), "{what}");
    }
    assert_eq!(row.get::<_, i64>(9), 0, "the core's functions in public");
    assert_eq!(row.get::<_, i64>(10), 0, "core tables");
    assert_eq!(row.get::<_, i64>(11), 0, "memberships");
    let settings: String = row.get(12);
    assert!(
        settings.contains("statement_timeout=60000") && settings.contains("lock_timeout=5000"),
        "{settings}"
    );
    // The core keeps what the plugin roles lost.
    let core = &env.db.connection.user;
    let rows = env
        .rows(&format!(
            "SELECT has_database_privilege('{core}', '{database}', 'TEMPORARY'), \
                    has_function_privilege('{core}', 'public.queue_claim(text, integer, double precision)', 'EXECUTE')"
        ))
        .await;
    assert!(rows[0].get::<_, bool>(0) && rows[0].get::<_, bool>(1));
}

/// A compiled plugin with a table, used by no other test: roles are shared by the cluster's
/// databases, so what this test does to its role touches no other test.
struct Switch;

impl deploystack_backend::plugins::Plugin for Switch {
    fn id(&self) -> &str {
        "switch"
    }
    fn name(&self) -> &str {
        "Switch"
    }
    fn version(&self) -> &str {
        "0"
    }
    fn migrations(&self) -> Vec<deploystack_backend::plugins::PluginMigration> {
        vec![deploystack_backend::plugins::PluginMigration::new(
            1,
            "items",
            "CREATE TABLE items (id int)",
        )]
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_role_switch_leaves_no_aborted_transaction_behind() {
    let env = PluginEnv::new().await;
    let mut cfg = env.config();
    cfg.plugins.path = None;
    cfg.pool.max_size = 1;
    cfg.pool.min_idle = 0;
    cfg.jobs.concurrency = 0;
    let extensions = deploystack_backend::app::Extensions {
        plugins: vec![std::sync::Arc::new(Switch)],
        initializers: Vec::new(),
    };
    let server = crate::common::server::TestServer::start_extended(&cfg, extensions).await;
    assert_eq!(server.setup().await.0, 200);
    // The core may no longer act as the plugin (an operator revoked it).
    env.batch(&format!(
        "REVOKE plugin_switch FROM {}",
        env.db.connection.user
    ))
    .await
    .expect("revoke");
    let switch = &loaded(&server, "switch").context.db;
    let e = count(switch, "SELECT count(*) AS n FROM items")
        .await
        .expect_err("the switch fails");
    assert!(e.is_permission_denied(), "{e}");
    // The one pooled connection serves the core at once, outside any transaction.
    let mut conn = server
        .state
        .database
        .conn()
        .await
        .expect("the pooled connection");
    let users: Count = diesel::sql_query("SELECT count(*) AS n FROM users")
        .get_result(&mut *conn)
        .await
        .expect("not in an aborted transaction");
    assert_eq!(users.n, 0);
    drop(conn);
    server.stop().await;
}
