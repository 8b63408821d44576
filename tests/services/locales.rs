//! Constraint errors are classified by SQLSTATE and constraint name, so a server whose
//! `lc_messages` is not English classifies them the same. The test database answers in
//! German; the test checks that it really does, so it cannot pass in English by accident.

use std::process::Command;

use deploystack_backend::db::models::UserId;
use deploystack_backend::services::{ServiceError, TeamService, UserService};

use crate::common::pg::ready_database;
use crate::{fixture, registration};

/// The OS locale whose messages the server is switched to.
const GERMAN: &str = "de_DE.UTF-8";

/// Whether the OS has [`GERMAN`] (`locale -a` spells it `de_DE.utf8`).
fn has_german_locale() -> bool {
    Command::new("locale")
        .arg("-a")
        .output()
        .map(|out| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|l| l.eq_ignore_ascii_case("de_DE.utf8") || l == GERMAN)
        })
        .unwrap_or(false)
}

/// PostgreSQL accepts `lc_messages` only for a locale the OS has. `scripts/test.sh`
/// generates it; a direct `cargo test` as root generates it here. `--no-archive` writes a
/// locale folder that an already running server finds without a restart.
fn ensure_german_locale() {
    if has_german_locale() {
        return;
    }
    let _ = Command::new("localedef")
        .args(["--no-archive", "-i", "de_DE", "-f", "UTF-8", GERMAN])
        .status();
    assert!(
        has_german_locale(),
        "the OS locale {GERMAN} is missing: run scripts/test.sh, or as root \
         `apt-get install locales && localedef -i de_DE -f UTF-8 {GERMAN}`"
    );
}

/// `text` is a German server message (PostgreSQL's translations are installed with the
/// server package), not an English one.
fn assert_german(text: &str) {
    assert!(
        !text.contains("still referenced") && !text.contains("not present"),
        "the server answered in English: {text}"
    );
    assert!(
        text.contains("Schlüssel"),
        "the server did not answer in German: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_key_errors_are_classified_whatever_the_server_language() {
    ensure_german_locale();
    let f = fixture().await;
    // `lc_messages` is a superuser setting.
    f.db.execute_as_superuser(&format!(
        "ALTER DATABASE \"{}\" SET lc_messages = '{GERMAN}'",
        f.db.connection.database
    ))
    .await;
    // Sessions opened from now on answer in German; a new pool opens new ones.
    let database = ready_database(&f.db).await;
    let users = UserService::new(database.clone());
    let teams = TeamService::new(database);
    let ada = users.create_user(registration("ada")).await.expect("user");
    teams
        .create_team("acme", "acme", None, &ada.id, false)
        .await
        .expect("team");

    // Deleting a parent that a RESTRICT key still references: Conflict.
    let err = users.delete_user(&ada.id).await.expect_err("owner");
    let ServiceError::Conflict(text) = &err else {
        panic!("deleting a team owner must be a Conflict: {err:?}");
    };
    assert!(text.starts_with("teams_owner_id_fkey"), "{text}");
    assert_german(text);

    // Writing a child whose parent is missing: NotFound.
    let err = teams
        .create_team("ghost", "ghost", None, &UserId::generate(), false)
        .await
        .expect_err("unknown owner");
    let ServiceError::NotFound(text) = &err else {
        panic!("an unknown owner must be NotFound: {err:?}");
    };
    assert!(text.starts_with("teams_owner_id_fkey"), "{text}");
    assert_german(text);
}
