//! Writes racing other sessions: `set` reads and writes one locked row in one transaction.

use deploystack_backend::settings::SettingsError;

use crate::common::pg::TestDb;
use crate::locks::{run_while_held, session};
use crate::{count, initialized};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_reports_a_setting_deleted_while_it_writes() {
    let db = TestDb::new().await;
    let (_database, settings) = initialized(&db).await;
    db.execute("INSERT INTO global_settings (key, value) VALUES ('custom.race', 'old')")
        .await;

    // Another session deletes the (undeclared) setting and commits while `set` runs: `set`
    // must say it is gone, not report success after updating nothing.
    let deleter = session(&db).await;
    deleter
        .batch_execute("BEGIN; DELETE FROM global_settings WHERE key = 'custom.race'")
        .await
        .expect("delete");
    let writer = settings.clone();
    let result = run_while_held(&db, &deleter, async move {
        writer.set("custom.race", "new").await
    })
    .await;
    assert!(
        matches!(&result, Err(SettingsError::NotFound(key)) if key == "custom.race"),
        "{result:?}"
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM global_settings WHERE key = 'custom.race'"
        )
        .await,
        0
    );

    // Without a concurrent delete the same write succeeds and is stored.
    db.execute("INSERT INTO global_settings (key, value) VALUES ('custom.race', 'old')")
        .await;
    settings.set("custom.race", "new").await.expect("set");
    assert_eq!(
        settings.get_string("custom.race").await.expect("get"),
        Some("new".into())
    );
}
