//! Initialization: empty database, idempotence, metadata refresh, concurrency.

use deploystack_backend::settings::groups;
use deploystack_backend::settings::init::initialize;

use crate::common::pg::{ready_database, TestDb};
use crate::{cipher, count, initialized, total_settings, SECRET};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_fills_an_empty_database_then_changes_nothing() {
    let db = TestDb::new().await;
    let database = ready_database(&db).await;
    let c = cipher(SECRET);
    let mut conn = database.conn().await.expect("conn");
    let first = initialize(&mut conn, &c).await.expect("init");
    assert_eq!(first.groups_inserted, groups::ALL.len() as i64);
    assert_eq!(first.settings_inserted, total_settings());
    assert_eq!((first.groups_updated, first.settings_updated), (0, 0));
    // SMTP is off by default: its empty required settings are not reported.
    assert!(
        first.empty_required.is_empty(),
        "{:?}",
        first.empty_required
    );
    assert!(first.unknown_keys.is_empty());
    assert_eq!(
        count(&db, "SELECT count(*) FROM global_settings").await,
        total_settings()
    );

    // Defaults and flags as declared; secrets encrypted even when empty.
    let rows = db
        .query("SELECT value, is_encrypted, type, group_id, sort_order FROM global_settings WHERE key IN ('smtp.port', 'smtp.password') ORDER BY key")
        .await;
    assert!(crate::decrypts(rows[0].get::<_, &str>(0)) && rows[0].get::<_, bool>(1));
    assert_eq!(rows[1].get::<_, &str>(0), "587");
    assert_eq!(rows[1].get::<_, &str>(2), "number");
    assert_eq!(rows[1].get::<_, &str>(3), "smtp");
    assert_eq!(rows[1].get::<_, i32>(4), 2);

    let second = initialize(&mut conn, &c).await.expect("init again");
    assert_eq!(
        (
            second.groups_inserted,
            second.groups_updated,
            second.settings_inserted,
            second.settings_updated
        ),
        (0, 0, 0, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_never_overwrites_values_and_refreshes_code_owned_metadata() {
    let db = TestDb::new().await;
    let (database, settings) = initialized(&db).await;
    settings
        .set("smtp.host", "mail.example.com")
        .await
        .expect("set");
    settings.set("smtp.password", "hunter2").await.expect("set");
    settings.set("smtp.enabled", "true").await.expect("set");
    db.execute(
        "UPDATE global_settings SET name = 'old', description = 'old', sort_order = 99, type = 'string' WHERE key = 'smtp.port'; \
         UPDATE global_setting_groups SET name = 'Old name', sort_order = 42 WHERE id = 'smtp'; \
         INSERT INTO global_settings (key, value, type) VALUES ('legacy.flag', 'x', 'string'); \
         UPDATE global_settings SET value = 'plain-key', is_encrypted = false WHERE key = 'github.oauth.client_secret'",
    )
    .await;
    let mut conn = database.conn().await.expect("conn");
    let report = initialize(&mut conn, settings.cipher())
        .await
        .expect("init");
    assert_eq!((report.groups_updated, report.settings_updated), (1, 1));
    assert_eq!(report.unknown_keys, ["legacy.flag"]);
    assert_eq!(report.encrypted_now, ["github.oauth.client_secret"]);
    assert_eq!(report.empty_required, ["smtp.username"]);

    let row = &db
        .query("SELECT name, type, sort_order FROM global_settings WHERE key = 'smtp.port'")
        .await[0];
    assert_eq!(
        (
            row.get::<_, &str>(0),
            row.get::<_, &str>(1),
            row.get::<_, i32>(2)
        ),
        ("SMTP port", "number", 2)
    );
    assert_eq!(
        count(
            &db,
            "SELECT sort_order::bigint FROM global_setting_groups WHERE id = 'smtp'"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM global_settings WHERE key = 'legacy.flag'"
        )
        .await,
        1
    );
    assert_eq!(
        settings
            .get_string("smtp.host")
            .await
            .expect("get")
            .as_deref(),
        Some("mail.example.com")
    );
    assert_eq!(
        settings
            .get_string("smtp.password")
            .await
            .expect("get")
            .as_deref(),
        Some("hunter2")
    );
    assert_eq!(
        settings
            .get_string("github.oauth.client_secret")
            .await
            .expect("get")
            .as_deref(),
        Some("plain-key")
    );
    let raw = &db
        .query("SELECT value FROM global_settings WHERE key = 'github.oauth.client_secret'")
        .await[0];
    assert!(crate::decrypts(raw.get::<_, &str>(0)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_initializations_agree() {
    let db = TestDb::new().await;
    let database = ready_database(&db).await;
    let c = cipher(SECRET);
    let runs = (0..4).map(|_| {
        let database = database.clone();
        let c = c.clone();
        async move {
            let mut conn = database.conn().await.expect("conn");
            initialize(&mut conn, &c).await.expect("init")
        }
    });
    let reports = futures_util::future::join_all(runs).await;
    assert_eq!(
        reports.iter().map(|r| r.settings_inserted).sum::<i64>(),
        total_settings()
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM global_settings").await,
        total_settings()
    );
}
