//! Generated artefacts stay in sync with their sources: `src/db/schema.rs` with the
//! migrations, `openapi/openapi.json` with the code; and every migration can be undone.

mod common;

use std::path::Path;

use common::pg::TestDb;
use deploystack_backend::config::PoolSettings;
use deploystack_backend::db::{migrations, provision, PgConnector};

async fn migrated(db: &TestDb) {
    let connector = PgConnector::new(&db.connection, &PoolSettings::default()).expect("connector");
    let conn = provision::connect_creating_database(&connector)
        .await
        .expect("connect");
    migrations::run_pending(conn).await.expect("migrate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_rs_is_what_diesel_print_schema_generates() {
    let db = TestDb::new().await;
    migrated(&db).await;
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    // scripts/test.sh installs it under target/tools; one on the PATH does as well.
    let local = manifest.join("target/tools/diesel/bin/diesel");
    let diesel = if local.is_file() {
        local
    } else {
        "diesel".into()
    };
    let output = std::process::Command::new(&diesel)
        .args(["print-schema", "--database-url", &db.url()])
        .current_dir(manifest)
        .output()
        .unwrap_or_else(|e| {
            panic!("diesel CLI is required ({e}): run ./scripts/test.sh, which installs it under target/tools/diesel")
        });
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let generated = String::from_utf8(output.stdout).expect("utf-8");
    let committed = std::fs::read_to_string(manifest.join("src/db/schema.rs")).expect("schema.rs");
    assert_eq!(
        committed, generated,
        "src/db/schema.rs is stale: run `diesel print-schema > src/db/schema.rs`"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_migration_reverts_and_reapplies() {
    use diesel::migration::MigrationSource;
    use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
    use diesel_async::AsyncPgConnection;
    use diesel_migrations::MigrationHarness;

    let db = TestDb::new().await;
    migrated(&db).await;
    let before = schema_snapshot(&db).await;
    let connector = PgConnector::new(&db.connection, &PoolSettings::default()).expect("connector");
    let conn = connector.connect().await.expect("connect");
    let total = MigrationSource::<diesel::pg::Pg>::migrations(&migrations::MIGRATIONS)
        .expect("migrations")
        .len();
    let conn = tokio::task::spawn_blocking(move || {
        let mut conn: AsyncConnectionWrapper<AsyncPgConnection> = conn.into();
        let reverted = conn
            .revert_all_migrations(migrations::MIGRATIONS)
            .expect("revert all");
        assert_eq!(reverted.len(), total);
        conn
    })
    .await
    .expect("task");
    assert_eq!(
        schema_snapshot(&db).await,
        Vec::<String>::new(),
        "down.sql leaves objects behind"
    );
    tokio::task::spawn_blocking(move || {
        let mut conn = conn;
        conn.run_pending_migrations(migrations::MIGRATIONS)
            .expect("re-apply");
    })
    .await
    .expect("task");
    assert_eq!(schema_snapshot(&db).await, before);
}

#[test]
fn committed_openapi_spec_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json");
    let committed = std::fs::read_to_string(path).expect("openapi/openapi.json");
    assert!(
        committed == deploystack_backend::api::spec_json(),
        "openapi/openapi.json is stale: run `cargo run -- openapi > openapi/openapi.json`"
    );
}

/// Tables, columns and functions of the public schema, to compare before and after.
async fn schema_snapshot(db: &TestDb) -> Vec<String> {
    db.query(
        "SELECT table_name || '.' || column_name || ':' || data_type FROM information_schema.columns \
         WHERE table_schema = 'public' AND table_name <> '__diesel_schema_migrations' \
         UNION ALL SELECT 'fn ' || proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace \
         ORDER BY 1",
    )
    .await
    .iter()
    .map(|row| row.get::<_, String>(0))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_foreign_key_column_is_indexed() {
    let db = TestDb::new().await;
    migrated(&db).await;
    // A foreign key is covered when some index (or unique/primary key) starts with its columns.
    let uncovered = db
        .query(
            "SELECT c.conrelid::regclass::text || '(' || array_to_string(ARRAY(
                 SELECT a.attname FROM unnest(c.conkey) k JOIN pg_attribute a
                 ON a.attrelid = c.conrelid AND a.attnum = k), ',') || ')'
             FROM pg_constraint c
             WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace
               AND NOT EXISTS (
                 SELECT 1 FROM pg_index i
                 WHERE i.indrelid = c.conrelid
                   AND (i.indkey::int2[])[0:array_length(c.conkey, 1) - 1] = c.conkey)
             ORDER BY 1",
        )
        .await
        .iter()
        .map(|row| row.get::<_, String>(0))
        .collect::<Vec<_>>();
    assert!(
        uncovered.is_empty(),
        "foreign keys without an index: {uncovered:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_and_time_columns_use_native_types() {
    let db = TestDb::new().await;
    migrated(&db).await;
    // Upstream stored JSON as text and times as text or epoch integers; none of that remains.
    let suspicious = db
        .query(
            "SELECT table_name || '.' || column_name || ':' || data_type FROM information_schema.columns
             WHERE table_schema = 'public' AND (
                 (data_type IN ('text', 'integer', 'bigint') AND (column_name LIKE '%\\_at' OR column_name IN ('expires', 'timestamp', 'bucket_timestamp')))
              OR (data_type = 'json'))
             ORDER BY 1",
        )
        .await
        .iter()
        .map(|row| row.get::<_, String>(0))
        .collect::<Vec<_>>();
    assert!(suspicious.is_empty(), "{suspicious:?}");
}
