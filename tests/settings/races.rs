//! Writes racing other sessions: `set` reads and writes one locked row in one transaction.

use deploystack_backend::settings::key_check::{
    verify_or_record, KeyCheckOutcome, KeyMismatch, KEY_CHECK_TEXT,
};
use deploystack_backend::settings::SettingsError;
use diesel_async::AsyncConnection;

use crate::common::pg::{ready_database, TestDb};
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

/// A first key check recorded by another session while this one decides (its insert waits,
/// then does nothing): this key is compared with the winner's check, and must match it.
async fn first_check_racing(winner_secret: &str) -> Result<KeyCheckOutcome, KeyMismatch> {
    let db = TestDb::new().await;
    let database = ready_database(&db).await;
    db.execute("DELETE FROM encryption_key_check").await;
    let winner = session(&db).await;
    let check = crate::cipher(winner_secret).encrypt(KEY_CHECK_TEXT);
    winner
        .batch_execute(&format!(
            "BEGIN; INSERT INTO encryption_key_check (id, check_value) VALUES (1, '{check}')"
        ))
        .await
        .expect("insert");
    let ours = crate::cipher(crate::SECRET);
    let outcome = run_while_held(&db, &winner, async move {
        let mut conn = database.conn().await.expect("conn");
        conn.transaction::<_, anyhow::Error, _>(async |conn| verify_or_record(conn, &ours).await)
            .await
            .expect("verify")
    })
    .await;
    // The winner's check stays.
    assert_eq!(
        db.query("SELECT check_value FROM encryption_key_check")
            .await[0]
            .get::<_, String>(0),
        check
    );
    outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_key_check_that_loses_the_race_is_compared_with_the_winners() {
    assert_eq!(
        first_check_racing(crate::SECRET).await,
        Ok(KeyCheckOutcome::Matches)
    );
    assert!(first_check_racing("another-secret").await.is_err());
}
