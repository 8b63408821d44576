//! The key check as the first initializer, in the cases that involve the secret's file: a
//! process that lost the race to generate the shared secret adopts the winner's, and an
//! ordinary start with a secret file touches no rotation file.

use std::sync::Arc;

use deploystack_backend::config::PoolSettings;
use deploystack_backend::db::{LivePool, PgConnector};
use deploystack_backend::lifecycle::Initializer;
use deploystack_backend::settings::key_check::{self, KeyCheckInitializer};
use deploystack_backend::settings::secret::{ResolvedSecret, SecretSource};
use secrecy::SecretString;

use crate::common::log_capture::LogCapture;
use crate::common::pg::{ready_database, TestDb};

/// A migrated database with no key check yet, and a pool on it.
async fn without_check(db: &TestDb) -> LivePool {
    ready_database(db).await;
    db.execute("DELETE FROM encryption_key_check").await;
    let settings = PoolSettings::default();
    LivePool::new(
        &PgConnector::new(&db.connection, &settings).expect("connector"),
        &settings,
    )
}

fn resolved(secret: &str, source: SecretSource) -> Arc<ResolvedSecret> {
    Arc::new(ResolvedSecret {
        secret: SecretString::from(secret.to_owned()),
        source,
    })
}

#[tokio::test]
async fn a_process_that_lost_the_race_to_generate_the_secret_adopts_the_winners() {
    let db = TestDb::new().await;
    let pool = without_check(&db).await;
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("encryption.secret");
    // The winner generated its secret, recorded its check and wrote the shared file.
    let winner = crate::cipher("the-winners-secret");
    KeyCheckInitializer::new(
        winner.clone(),
        resolved("the-winners-secret", SecretSource::Generated(file.clone())),
    )
    .run(&pool)
    .await
    .expect("the winner records its check");
    assert!(file.exists());
    // The loser generated another one before the file existed: it passes with the file's.
    let loser = crate::cipher("the-losers-own-secret");
    KeyCheckInitializer::new(
        loser.clone(),
        resolved(
            "the-losers-own-secret",
            SecretSource::Generated(file.clone()),
        ),
    )
    .run(&pool)
    .await
    .expect("the loser adopts the winner's secret");
    assert_eq!(
        loser
            .decrypt(&winner.encrypt("shared"))
            .map(|s| secrecy::ExposeSecret::expose_secret(&s).to_owned())
            .expect("the same key now"),
        "shared"
    );
    // A secret that is neither the recorded one nor the file's is refused.
    let other = crate::cipher("a-third-secret");
    let refused = KeyCheckInitializer::new(
        other,
        resolved(
            "a-third-secret",
            SecretSource::Generated(dir.path().join("elsewhere.secret")),
        ),
    )
    .run(&pool)
    .await;
    assert!(refused.is_err());
}

/// One thread: the capturing subscriber is this thread's default, and every task runs on it.
#[tokio::test(flavor = "current_thread")]
async fn a_start_with_a_secret_file_and_no_rotation_leaves_the_files_alone() {
    let capture = LogCapture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let db = TestDb::new().await;
    let pool = without_check(&db).await;
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("encryption.secret");
    std::fs::write(&file, "the-file-secret\n").expect("write");
    let cipher = crate::cipher("the-file-secret");
    let mut conn = pool.get().await.expect("conn");
    key_check::record(&mut conn, &cipher).await.expect("record");
    drop(conn);
    KeyCheckInitializer::new(
        cipher,
        resolved("the-file-secret", SecretSource::File(file.clone())),
    )
    .run(&pool)
    .await
    .expect("the key check passes");
    let logs = capture.text();
    assert!(
        !logs.contains("rotation"),
        "no rotation file to deal with, nothing said about one: {logs}"
    );
    // With a rotation's uncommitted new secret beside it, that file is removed (and said).
    let next = dir.path().join("encryption.secret.next");
    std::fs::write(&next, "an-uncommitted-secret\n").expect("write");
    KeyCheckInitializer::new(
        crate::cipher("the-file-secret"),
        resolved("the-file-secret", SecretSource::File(file.clone())),
    )
    .run(&pool)
    .await
    .expect("the key check passes");
    assert!(!next.exists());
    assert!(capture
        .text()
        .contains("removing the new secret of a rotation that did not commit"));
    assert_eq!(
        std::fs::read_to_string(&file).expect("file"),
        "the-file-secret\n"
    );
}

#[test]
fn its_failures_are_named_for_the_operator() {
    // Setup's answer names a failing gatekeeper by this label ("encryption key check: ...").
    let initializer = KeyCheckInitializer::new(
        crate::cipher("any"),
        resolved("any", SecretSource::Configured),
    );
    assert_eq!(initializer.name(), "encryption key check");
    assert!(initializer.must_pass());
}
