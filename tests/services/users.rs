//! Accounts: registration rules, lookups, updates and deletes.

use deploystack_backend::db::models::{GlobalRole, RoleId, TeamId, UserChanges, UserId};
use deploystack_backend::services::ServiceError;

use crate::locks::{run_while_held, session};
use crate::{count, fixture, registration, team, user};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_user_is_admin_and_later_users_are_not() {
    let f = fixture().await;
    let first = user(&f, "ada").await;
    assert_eq!(first.role_id, Some(RoleId::from(GlobalRole::Admin)));
    assert!(first.email_verified);
    let second = user(&f, "bob").await;
    assert_eq!(second.role_id, Some(RoleId::from(GlobalRole::User)));
    assert!(!second.email_verified);

    assert_eq!(
        f.users.get_user(&first.id).await.expect("get"),
        Some(first.clone())
    );
    assert_eq!(
        f.users.get_user(&UserId::generate()).await.expect("get"),
        None
    );
    assert_eq!(
        f.users
            .get_user_by_email("bob@example.com")
            .await
            .expect("get")
            .map(|u| u.id),
        Some(second.id.clone())
    );
    let page = f.users.list_users(1, 1).await.expect("list");
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].id, second.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_registrations_make_exactly_one_admin() {
    let f = fixture().await;
    let sql = &f.db;
    let creations = (0..8).map(|i| f.users.create_user(registration(&format!("u{i}"))));
    for result in futures_util::future::join_all(creations).await {
        result.expect("create");
    }
    assert_eq!(
        count(
            sql,
            "SELECT count(*) FROM users WHERE role_id = 'global_admin'"
        )
        .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_email_is_a_conflict() {
    let f = fixture().await;
    user(&f, "ada").await;
    let err = f
        .users
        .create_user(registration("ada"))
        .await
        .expect_err("duplicate");
    assert!(
        matches!(&err, ServiceError::Conflict(m) if m.contains("users_email_key")),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_and_deletes_report_whether_a_row_changed() {
    let f = fixture().await;
    let ada = user(&f, "ada").await;
    let changes = UserChanges {
        username: Some("ada2".into()),
        ..UserChanges::default()
    };
    assert!(f
        .users
        .update_user(&ada.id, &changes)
        .await
        .expect("update"));
    assert!(!f
        .users
        .update_user(&UserId::generate(), &changes)
        .await
        .expect("update"));
    assert!(f
        .users
        .set_global_role(&ada.id, GlobalRole::User)
        .await
        .expect("role"));
    let t = team(&f, "acme", &ada).await;
    assert!(f
        .teams
        .update_team_name(&t.id, "Acme Inc")
        .await
        .expect("rename"));
    assert!(!f
        .teams
        .update_team_name(&TeamId::generate(), "x")
        .await
        .expect("rename"));
    assert_eq!(
        f.teams.get_team(&t.id).await.expect("get").map(|t| t.name),
        Some("Acme Inc".into())
    );
    assert!(f.teams.delete_team(&t.id).await.expect("delete"));
    assert!(!f.teams.delete_team(&t.id).await.expect("delete again"));
    assert!(f.users.delete_user(&ada.id).await.expect("delete"));
    assert!(!f.users.delete_user(&ada.id).await.expect("delete again"));
}

/// The advisory lock key `create_user` serializes first-user decisions on (any process
/// registering users must take it).
const FIRST_USER_LOCK: i64 = 0x0064_7375_7365_7273;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_waits_for_a_first_registration_in_flight() {
    let f = fixture().await;
    let sql = &f.db;
    // Another process is registering the first user: it holds the lock, its row is not
    // committed yet. A registration now must wait and then see that user, not become a
    // second admin of a table that looked empty.
    let other = session(sql).await;
    other
        .batch_execute(&format!(
            "BEGIN; SELECT pg_advisory_xact_lock({FIRST_USER_LOCK}); \
             INSERT INTO users (id, username, email, auth_type, role_id, email_verified) \
             VALUES ('first', 'first', 'first@example.com', 'email_signup', 'global_admin', true)"
        ))
        .await
        .expect("first registration");
    let users = f.users.clone();
    let bob = run_while_held(sql, &other, async move {
        users.create_user(registration("bob")).await
    })
    .await
    .expect("create");
    assert_eq!(bob.role_id, Some(RoleId::from(GlobalRole::User)));
    assert!(!bob.email_verified);
    assert_eq!(
        count(
            sql,
            "SELECT count(*) FROM users WHERE role_id = 'global_admin'"
        )
        .await,
        1
    );
}
