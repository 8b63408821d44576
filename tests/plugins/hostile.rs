//! A hostile folder plugin, tried every way we know to get the core's rights back, with a
//! superuser core login and with the embedded cluster's non-superuser owner. Each attempt is
//! one folder plugin:
//!
//! 1. through the real path (`PluginCatalog::load`, then `PluginMigrator::run`, what the start
//!    and `plugins migrate` do), which must refuse it with a message naming plugin, migration
//!    and statement;
//! 2. where the courtesy check refused it, again with the check out of the way: its
//!    statements sent one by one on the plugin role's own login, so PostgreSQL alone judges;
//! 3. after both, nothing of the core may have changed (objects, rights, memberships,
//!    settings, rows), no plugin table may hold a core row, and the role's password is gone.
//!
//! `cargo test --test plugins hostile -- --nocapture` prints what refused each attempt.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use deploystack_backend::config::{Config, ConnectionTarget};
use deploystack_backend::db::{Database, PgConnector};
use deploystack_backend::plugins::login::Logins;
use deploystack_backend::plugins::provision::{provision, RoleAuthority, RoleLimits};
use deploystack_backend::plugins::{PluginCatalog, PluginId, PluginMigrator};
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};

use crate::common::pg::{url_of, TestDb};
use crate::common::server::{config, TestServer};

/// What must stop an attempt.
enum Expect {
    /// The courtesy check, before anything runs (then PostgreSQL too, with the check out of
    /// the way: one of these texts when the check names a refusal PostgreSQL has a word for).
    Check(&'static str),
    /// PostgreSQL (or the runner ending a session that outlived its timeout), with a message
    /// holding one of these texts.
    Postgres(&'static [&'static str]),
    /// Nothing needs stopping: the migration applies and reads nothing of the core.
    Harmless,
}

struct Attempt {
    name: &'static str,
    /// The migration; `{core}` is the core's login role.
    sql: &'static str,
    /// The statement that must be named.
    statement: usize,
    expect: Expect,
    /// Whether to send the statements again on the plugin's login without the check (not for
    /// statements that would sleep for minutes there).
    bypass: bool,
}

const DENIED_USERS: &[&str] = &["permission denied for table users"];
const DENIED_ROLE: &[&str] = &["permission denied to set role"];

fn attempts() -> Vec<Attempt> {
    use Expect::{Check, Harmless, Postgres};
    let a = |name, sql, statement, expect, bypass| Attempt {
        name,
        sql,
        statement,
        expect,
        bypass,
    };
    vec![
        a("unicode-escaped identifier calls set_config",
          "CREATE TABLE loot (v text);\nINSERT INTO loot SELECT U&\"set\\005fconfig\"('role', '{core}', false);\nINSERT INTO loot SELECT email FROM public.users;",
          2, Postgres(DENIED_ROLE), false),
        a("unicode-escaped identifier calls query_to_xml",
          "CREATE TABLE loot (v text);\nINSERT INTO loot SELECT U&\"query\\005fto\\005fxml\"('select email from public.users', false, false, '')::text;",
          2, Postgres(DENIED_USERS), false),
        a("unicode-escaped string with UESCAPE names the role setting",
          "CREATE TABLE loot (v text);\nINSERT INTO loot SELECT set_config(U&'r!006Fle' UESCAPE '!', '{core}', false);",
          2, Postgres(DENIED_ROLE), false),
        a("set_config('role') to the core's role",
          "CREATE TABLE loot (v text);\nINSERT INTO loot SELECT set_config('role', '{core}', false);\nINSERT INTO loot SELECT email FROM public.users;",
          2, Postgres(DENIED_ROLE), false),
        a("RESET ROLE, then read users",
          "CREATE TABLE loot (v text);\nRESET ROLE;\nINSERT INTO loot SELECT email FROM public.users;",
          2, Check("RESET ROLE statements are not allowed"), true),
        a("SET ROLE to the core's role",
          "SET ROLE {core};",
          1, Check("SET ROLE statements are not allowed"), true),
        a("SET SESSION AUTHORIZATION to the core's role",
          "SET SESSION AUTHORIZATION {core};",
          1, Check("statements are not allowed"), true),
        a("DO block runs RESET ROLE and reads users",
          "CREATE TABLE loot (v text);\nDO $$ BEGIN EXECUTE 'RESET ROLE'; EXECUTE 'INSERT INTO loot SELECT email FROM public.users'; END $$;",
          2, Postgres(DENIED_USERS), false),
        a("SECURITY DEFINER function called from a column default",
          "CREATE FUNCTION grab() RETURNS text LANGUAGE sql SECURITY DEFINER AS $$ SELECT string_agg(email, ',') FROM public.users $$;\nCREATE TABLE loot (v text DEFAULT grab());\nINSERT INTO loot DEFAULT VALUES;",
          1, Check("CREATE FUNCTION statements are not allowed"), true),
        a("trigger function switches role and reads users",
          "CREATE TABLE loot (v text);\nCREATE FUNCTION steal() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM set_config('role', '{core}', true); INSERT INTO loot SELECT email FROM public.users; RETURN NULL; END $$;\nCREATE TRIGGER steal AFTER INSERT ON loot FOR EACH STATEMENT EXECUTE FUNCTION steal();\nINSERT INTO loot VALUES ('x');",
          2, Check("CREATE FUNCTION statements are not allowed"), true),
        a("query_to_xml runs SQL given as text",
          "CREATE TABLE loot (v text);\nINSERT INTO loot SELECT query_to_xml('select email from public.users', false, false, '')::text;",
          2, Postgres(DENIED_USERS), false),
        a("COPY ... FROM PROGRAM",
          "CREATE TABLE loot (v text);\nCOPY loot FROM PROGRAM 'id';",
          2, Check("COPY statements are not allowed"), true),
        a("pg_read_file reads a server file",
          "CREATE TABLE loot (v text);\nINSERT INTO loot SELECT pg_read_file('PG_VERSION');",
          2, Postgres(&["permission denied for function pg_read_file"]), false),
        a("CREATE EXTENSION",
          "CREATE EXTENSION IF NOT EXISTS pgcrypto;",
          1, Check("CREATE EXTENSION statements are not allowed"), true),
        a("ALTER DEFAULT PRIVILEGES for the core's role",
          "ALTER DEFAULT PRIVILEGES FOR ROLE {core} IN SCHEMA public GRANT SELECT ON TABLES TO PUBLIC;",
          1, Check("ALTER DEFAULT statements are not allowed"), true),
        a("GRANT on a core table TO PUBLIC",
          "CREATE TABLE loot (v text);\nGRANT SELECT ON public.users TO PUBLIC;\nINSERT INTO loot SELECT email FROM public.users;",
          2, Check("GRANT statements are not allowed"), true),
        a("GRANT the core's role to itself",
          "GRANT {core} TO CURRENT_USER;",
          1, Check("GRANT statements are not allowed"), true),
        a("a view over a core table",
          "CREATE VIEW peek AS SELECT email FROM public.users;\nCREATE TABLE loot AS SELECT * FROM peek;",
          2, Postgres(DENIED_USERS), false),
        a("LOCK TABLE public.users",
          "LOCK TABLE public.users IN ACCESS EXCLUSIVE MODE;",
          1, Check("LOCK"), true),
        a("UPDATE pg_settings turns off triggers and foreign keys",
          "UPDATE pg_settings SET setting = '{core}' WHERE name = 'role';\nUPDATE pg_settings SET setting = 'replica' WHERE name = 'session_replication_role';",
          2, Postgres(&["permission denied to set parameter \"session_replication_role\""]), false),
        a("CREATE EVENT TRIGGER",
          "CREATE EVENT TRIGGER grab ON ddl_command_start EXECUTE FUNCTION pg_catalog.pg_event_trigger_ddl_commands();",
          1, Postgres(&["permission denied to create event trigger", "statements are not allowed"]), true),
        a("DROP of a core table hidden behind U&",
          "CREATE TABLE loot (v text);\nDROP TABLE loot, U&\"public\".users;",
          2, Postgres(&["must be owner of table users"]), false),
        a("a table in public",
          "CREATE TABLE public.loot (v text);",
          1, Check("outside the plugin's schema"), true),
        a("a very long statement",
          "CREATE TABLE loot (v text);\nINSERT INTO loot SELECT pg_sleep(600)::text;",
          2, Postgres(&["canceling statement due to statement timeout"]), false),
        a("a very long statement after lifting statement_timeout",
          "CREATE TABLE loot (v text);\nINSERT INTO loot SELECT set_config('statement_timeout', '0', false);\nINSERT INTO loot SELECT pg_sleep(600)::text;",
          3, Postgres(&["still running after"]), false),
        a("a loop that catches its own cancellation",
          "DO $$ BEGIN LOOP BEGIN PERFORM pg_sleep(600); EXCEPTION WHEN query_canceled THEN NULL; END; END LOOP; END $$;",
          1, Postgres(&["still running after"]), false),
        a("sets its own role's password, to log in later",
          "ALTER ROLE CURRENT_USER PASSWORD 'known-to-the-plugin';",
          1, Check("ALTER ROLE statements are not allowed"), true),
        a("plugin_api made to act for a user the plugin names",
          "CREATE TABLE loot (v text);\nINSERT INTO loot SELECT set_config('deploystack.user_id', 'u-0001', false);\nINSERT INTO loot SELECT username FROM plugin_api.current_user_profile;",
          0, Harmless, false),
    ]
}

/// How the core logs in.
#[derive(Clone, Copy, Debug)]
enum CoreLogin {
    /// As the cluster's superuser (`POSTGRES_USER=postgres`, upstream's default).
    Superuser,
    /// As the embedded cluster's owner role, plugin roles made by the superuser.
    Owner,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_way_out_fails_with_a_superuser_core_login() {
    run_suite(CoreLogin::Superuser, "hostile-s").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_way_out_fails_with_the_owner_core_login() {
    run_suite(CoreLogin::Owner, "hostile-o").await;
}

async fn run_suite(login: CoreLogin, prefix: &str) {
    let db = TestDb::new().await;
    let data = tempfile::tempdir().expect("data dir");
    let (core, admin) = match login {
        CoreLogin::Superuser => (db.superuser.clone(), None),
        CoreLogin::Owner => (db.connection.clone(), Some(db.superuser.clone())),
    };
    let mut cfg = config(core.clone(), data.path());
    cfg.plugins.role_admin = admin.clone();
    cfg.plugins.statement_timeout = Duration::from_millis(1500);
    cfg.plugins.lock_timeout = Duration::from_millis(500);
    let server = TestServer::start(&cfg).await;
    assert_eq!(server.setup().await.0, 200);
    server.stop().await;
    superuser_batch(
        &db,
        "INSERT INTO users (id, username, email, auth_type) \
         VALUES ('u-0001', 'canary-name', 'canary@core.invalid', 'email_signup')",
    )
    .await;
    for (index, attempt) in attempts().into_iter().enumerate() {
        let id = format!("{prefix}-{}", index + 1);
        try_one(&db, &cfg, &core, admin.as_ref(), login, &id, &attempt).await;
    }
}

async fn try_one(
    db: &TestDb,
    cfg: &Config,
    core: &ConnectionTarget,
    admin: Option<&ConnectionTarget>,
    login: CoreLogin,
    id: &str,
    attempt: &Attempt,
) {
    let root = tempfile::tempdir().expect("plugins dir");
    let sql = attempt.sql.replace("{core}", &core.user);
    write_plugin(root.path(), id, &sql);
    let app = PgConnector::new(core, &cfg.pool).expect("connector");
    let admin = admin.map(|a| PgConnector::new(a, &cfg.pool).expect("admin connector"));
    // The role, schema and grants the core makes for a plugin are the core's doing: the
    // snapshot is taken with them in place.
    drop(provisioned(cfg, &app, admin.as_ref(), id).await);
    let before = snapshot(db).await;
    let loaded = PluginCatalog::load(Vec::new(), Some(root.path()), &Database::new(), None);
    let (refuser, outcome) = match loaded {
        Err(e) => ("the check", Err(e)),
        Ok(catalog) => {
            let migrator =
                PluginMigrator::new(Arc::new(catalog), app.clone(), admin.clone(), &cfg.plugins);
            ("PostgreSQL", migrator.run().await.map(|_| ()))
        }
    };
    let schema = PluginId::parse(id).expect("id").schema();
    match (&attempt.expect, outcome) {
        (Expect::Harmless, outcome) => {
            outcome.unwrap_or_else(|e| panic!("{}: {e}", attempt.name));
            println!("[{login:?}] {}: applied, nothing read", attempt.name);
        }
        (_, Ok(())) => panic!("[{login:?}] {}: the migration was applied", attempt.name),
        (expect, Err(e)) => {
            let message = e.to_string();
            let named = format!(
                "plugin {id}, migration 0001_attempt, statement {}",
                attempt.statement
            );
            assert!(
                message.contains(&named),
                "[{login:?}] {}: {message}",
                attempt.name
            );
            let texts: &[&str] = match expect {
                Expect::Check(text) => {
                    assert_eq!(
                        refuser, "the check",
                        "[{login:?}] {}: {message}",
                        attempt.name
                    );
                    &[text]
                }
                Expect::Postgres(texts) => {
                    assert_eq!(
                        refuser, "PostgreSQL",
                        "[{login:?}] {}: {message}",
                        attempt.name
                    );
                    texts
                }
                Expect::Harmless => unreachable!(),
            };
            assert!(
                texts.iter().any(|t| message.contains(t)),
                "[{login:?}] {}: {message}",
                attempt.name
            );
            println!(
                "[{login:?}] {}: refused by {refuser}: {message}",
                attempt.name
            );
            let recorded = superuser_rows(
                db,
                &format!("SELECT count(*) FROM __plugin_migrations WHERE plugin_id = '{id}'"),
            )
            .await;
            assert_eq!(recorded[0].get::<_, i64>(0), 0, "{}", attempt.name);
        }
    }
    if attempt.bypass {
        let errors = without_the_check(db, cfg, &app, admin.as_ref(), id, &sql).await;
        println!(
            "[{login:?}] {}: without the check, PostgreSQL said: {}",
            attempt.name,
            errors.join(" | ")
        );
    }
    let after = snapshot(db).await;
    let gone: Vec<&str> = before
        .lines()
        .filter(|l| !after.lines().any(|a| a == *l))
        .collect();
    let new: Vec<&str> = after
        .lines()
        .filter(|l| !before.lines().any(|b| b == *l))
        .collect();
    assert!(
        gone.is_empty() && new.is_empty(),
        "[{login:?}] {}: the core changed: gone {gone:#?}, new {new:#?}",
        attempt.name
    );
    assert_no_core_rows(db, &schema, attempt.name).await;
    let login = superuser_rows(
        db,
        &format!(
            "SELECT rolpassword IS NULL AND NOT rolcanlogin FROM pg_authid WHERE rolname = '{schema}'"
        ),
    )
    .await;
    assert!(
        login[0].get::<_, bool>(0),
        "{}: the role can still log in",
        attempt.name
    );
}

/// A plugin's SQL may set its own role's password (PostgreSQL lets any role) and open a
/// session of its own while its migrations run; that session ends with them, and the
/// password logs in nowhere afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_the_plugin_sets_itself_dies_with_its_migrations() {
    let db = TestDb::new().await;
    let data = tempfile::tempdir().expect("data dir");
    let mut cfg = config(db.connection.clone(), data.path());
    cfg.plugins.role_admin = Some(db.superuser.clone());
    let server = TestServer::start(&cfg).await;
    assert_eq!(server.setup().await.0, 200);
    server.stop().await;
    let id = "hostile-password";
    let app = PgConnector::new(&db.connection, &cfg.pool).expect("connector");
    let admin = PgConnector::new(&db.superuser, &cfg.pool).expect("admin connector");
    let (mut core, admin_session) = provisioned(&cfg, &app, Some(&admin), id).await;
    let plugin = PluginId::parse(id).expect("id");
    let role = plugin.schema();
    let mut logins = Logins::new(admin_session, &app, limits(&cfg));
    let mut session = logins.open(&mut core, &plugin).await.expect("plugin login");
    session
        .conn
        .batch_execute("ALTER ROLE CURRENT_USER PASSWORD 'known-to-the-plugin'")
        .await
        .expect("a role may set its own password");
    let mut own = db.connection.clone();
    own.user = role.clone();
    own.password = Some("known-to-the-plugin".to_owned().into());
    let (outside, driver) = tokio_postgres::connect(&url_of(&own), tokio_postgres::NoTls)
        .await
        .expect("the plugin's own login works while its migrations run");
    let driven = tokio::spawn(driver);
    outside
        .simple_query("SELECT 1")
        .await
        .expect("outside session");
    logins.close(&mut core, session).await.expect("close");
    assert!(
        outside.simple_query("SELECT 1").await.is_err(),
        "the plugin's own session outlived its migrations"
    );
    let _ = driven.await;
    let again = tokio_postgres::connect(&url_of(&own), tokio_postgres::NoTls).await;
    let refused = again
        .err()
        .and_then(|e| e.as_db_error().map(|d| d.message().to_owned()))
        .unwrap_or_default();
    assert!(
        refused.contains("not permitted to log in") || refused.contains("authentication failed"),
        "the plugin's password still logs in: {refused:?}"
    );
}

/// The migration's statements sent one by one on the plugin role's own login, as PostgreSQL
/// alone would judge them; PostgreSQL's errors.
async fn without_the_check(
    db: &TestDb,
    cfg: &Config,
    app: &PgConnector,
    admin: Option<&PgConnector>,
    id: &str,
    sql: &str,
) -> Vec<String> {
    let _ = db;
    let (mut core, admin_session) = provisioned(cfg, app, admin, id).await;
    let id = PluginId::parse(id).expect("id");
    let mut logins = Logins::new(admin_session, app, limits(cfg));
    let mut session = logins.open(&mut core, &id).await.expect("plugin login");
    let mut errors = Vec::new();
    for statement in sql.split(";\n").map(str::trim).filter(|s| !s.is_empty()) {
        let statement = statement.trim_end_matches(';');
        // Each in a transaction of its own, as a migration's statements run.
        session.conn.batch_execute("BEGIN").await.expect("begin");
        match diesel::sql_query(statement)
            .execute(&mut session.conn)
            .await
        {
            Ok(_) => session.conn.batch_execute("COMMIT").await.expect("commit"),
            Err(e) => {
                errors.push(e.to_string());
                session
                    .conn
                    .batch_execute("ROLLBACK")
                    .await
                    .expect("rollback");
            }
        }
    }
    logins.close(&mut core, session).await.expect("close");
    errors
}

fn limits(cfg: &Config) -> RoleLimits {
    RoleLimits {
        statement_timeout: cfg.plugins.statement_timeout,
        lock_timeout: cfg.plugins.lock_timeout,
    }
}

/// The plugin's role and schema made as the start makes them; the core's session and the
/// administrative one used.
async fn provisioned(
    cfg: &Config,
    app: &PgConnector,
    admin: Option<&PgConnector>,
    id: &str,
) -> (
    diesel_async::AsyncPgConnection,
    Option<diesel_async::AsyncPgConnection>,
) {
    let id = PluginId::parse(id).expect("id");
    let mut core = app.connect().await.expect("core session");
    let authority = RoleAuthority {
        admin,
        allow_convention: false,
        limits: limits(cfg),
    };
    let provisioned = provision(&mut core, std::slice::from_ref(&id), &authority)
        .await
        .expect("provision");
    (core, provisioned.admin)
}

fn write_plugin(root: &Path, id: &str, sql: &str) {
    let dir = root.join(id);
    std::fs::create_dir_all(dir.join("migrations")).expect("mkdir");
    std::fs::write(
        dir.join("plugin.json"),
        format!(r#"{{"id": "{id}", "name": "Hostile", "version": "0.1.0"}}"#),
    )
    .expect("manifest");
    std::fs::write(dir.join("migrations").join("0001_attempt.sql"), sql).expect("migration");
}

/// What a plugin could change of the core: its objects, their owners and rights, roles and
/// memberships (but the plugin roles' own, which provisioning makes), default privileges,
/// settings, row security, event triggers, extensions, and the core's rows.
const SNAPSHOT: &str = r"
SELECT string_agg(line, E'\n' ORDER BY line) FROM (
  SELECT format('ns %s %s %s', n.nspname, pg_get_userbyid(n.nspowner), n.nspacl) AS line
    FROM pg_namespace n
   WHERE n.nspname NOT LIKE 'plugin\_hostile%' AND n.nspname NOT LIKE 'pg\_temp%'
     AND n.nspname NOT LIKE 'pg\_toast\_temp%'
  UNION ALL
  SELECT format('rel %s.%s %s %s %s %s', n.nspname, c.relname, c.relkind,
                pg_get_userbyid(c.relowner), c.relacl, c.relrowsecurity)
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname IN ('public', 'plugin_api')
  UNION ALL
  SELECT format('col %s.%s %s %s %s', c.relname, a.attname, format_type(a.atttypid, a.atttypmod),
                a.attnotnull, pg_get_expr(d.adbin, d.adrelid))
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
   WHERE n.nspname IN ('public', 'plugin_api') AND a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
  SELECT format('fn %s.%s(%s) %s %s %s', n.nspname, p.proname,
                pg_get_function_identity_arguments(p.oid), pg_get_userbyid(p.proowner), p.proacl,
                md5(p.prosrc))
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
   WHERE n.nspname IN ('public', 'plugin_api')
  UNION ALL
  SELECT format('trigger %s %s', t.tgrelid::regclass, t.tgname)
    FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname IN ('public', 'plugin_api')
  UNION ALL
  SELECT format('policy %s %s %s', polrelid::regclass, polname, pg_get_expr(polwithcheck, polrelid))
    FROM pg_policy
  UNION ALL
  SELECT format('role %s %s %s %s %s %s %s', rolname, rolsuper, rolinherit, rolcreaterole,
                rolcreatedb, rolreplication, rolbypassrls)
    FROM pg_roles WHERE rolname NOT LIKE 'plugin\_%'
  UNION ALL
  SELECT format('member %s in %s', pg_get_userbyid(m.member), pg_get_userbyid(m.roleid))
    FROM pg_auth_members m
   WHERE pg_get_userbyid(m.roleid) NOT LIKE 'plugin\_%'
      OR pg_get_userbyid(m.member) LIKE 'plugin\_%'
  UNION ALL
  SELECT format('default acl %s %s %s %s', pg_get_userbyid(defaclrole), defaclnamespace,
                defaclobjtype, defaclacl)
    FROM pg_default_acl
  UNION ALL
  SELECT format('database %s %s', datname, datacl) FROM pg_database
   WHERE datname IN (current_database(), 'postgres', 'template1')
  UNION ALL
  SELECT format('setting %s %s', setrole, setconfig) FROM pg_db_role_setting
   WHERE setdatabase IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()))
     AND pg_get_userbyid(setrole) NOT LIKE 'plugin\_%'
  UNION ALL
  SELECT format('event trigger %s', evtname) FROM pg_event_trigger
  UNION ALL
  SELECT format('extension %s %s', extname, extversion) FROM pg_extension
  UNION ALL
  SELECT format('users %s', md5(string_agg(u::text, ',' ORDER BY u.id))) FROM users u
  UNION ALL
  SELECT format('settings %s', md5(string_agg(s::text, ',' ORDER BY s.key))) FROM global_settings s
  UNION ALL
  SELECT format('plugin migrations %s', md5(coalesce(string_agg(p::text, ',' ORDER BY p.plugin_id, p.version), '')))
    FROM __plugin_migrations p WHERE p.plugin_id NOT LIKE 'hostile-%'
) lines";

async fn snapshot(db: &TestDb) -> String {
    superuser_rows(db, SNAPSHOT).await[0].get(0)
}

/// No table of the plugin's schema holds a core row (the canary user's email or name).
async fn assert_no_core_rows(db: &TestDb, schema: &str, attempt: &str) {
    let tables = superuser_rows(
        db,
        &format!(
            "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = '{schema}' AND c.relkind IN ('r', 'm', 'p')"
        ),
    )
    .await;
    for table in tables {
        let table: String = table.get(0);
        let found = superuser_rows(
            db,
            &format!(
                "SELECT count(*) FROM {table} x \
                 WHERE x::text LIKE '%canary@core.invalid%' OR x::text LIKE '%canary-name%'"
            ),
        )
        .await;
        assert_eq!(
            found[0].get::<_, i64>(0),
            0,
            "{attempt}: {table} holds a core row"
        );
    }
}

async fn superuser_rows(db: &TestDb, sql: &str) -> Vec<tokio_postgres::Row> {
    let (client, connection) =
        tokio_postgres::connect(&url_of(&db.superuser), tokio_postgres::NoTls)
            .await
            .expect("connect as superuser");
    let task = tokio::spawn(connection);
    let rows = client.query(sql, &[]).await.expect(sql);
    drop(client);
    let _ = task.await;
    rows
}

async fn superuser_batch(db: &TestDb, sql: &str) {
    let (client, connection) =
        tokio_postgres::connect(&url_of(&db.superuser), tokio_postgres::NoTls)
            .await
            .expect("connect as superuser");
    let task = tokio::spawn(connection);
    client.batch_execute(sql).await.expect(sql);
    drop(client);
    let _ = task.await;
}
