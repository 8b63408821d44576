//! Teams and memberships.

use deploystack_backend::db::models::{TeamId, TeamRole, UserId};
use deploystack_backend::services::ServiceError;

use crate::locks::{run_while_held, session};
use crate::{count, fixture, team, user};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn team_is_created_with_its_owner_as_team_admin() {
    let f = fixture().await;
    let ada = user(&f, "ada").await;
    let t = team(&f, "acme", &ada).await;
    let members = f.teams.list_members(&t.id).await.expect("members");
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].0.role, TeamRole::Admin);
    assert_eq!(members[0].1.id, ada.id);
    assert_eq!(
        f.teams
            .get_team_by_slug("acme")
            .await
            .expect("get")
            .map(|t| t.id),
        Some(t.id.clone())
    );
    let other = f
        .teams
        .create_team("zeta", "zeta", None, &ada.id, false)
        .await
        .expect("team");
    let page = f.teams.list_teams(1, 1).await.expect("page");
    assert_eq!(
        page.iter().map(|t| &t.id).collect::<Vec<_>>(),
        vec![&other.id]
    );
    f.teams.delete_team(&other.id).await.expect("delete");
    let mine = f.teams.list_teams_for_user(&ada.id).await.expect("list");
    assert_eq!(mine, vec![(t, TeamRole::Admin)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn team_creation_rolls_back_as_a_whole() {
    let f = fixture().await;
    let sql = &f.db;
    let ada = user(&f, "ada").await;
    team(&f, "acme", &ada).await;

    // A taken slug: no second team, no stray membership.
    let err = f
        .teams
        .create_team("Other", "acme", None, &ada.id, false)
        .await
        .expect_err("dup");
    assert!(
        matches!(&err, ServiceError::Conflict(m) if m.contains("teams_slug_key")),
        "{err:?}"
    );
    // An unknown owner.
    let err = f
        .teams
        .create_team("Ghost", "ghost", None, &UserId::generate(), false)
        .await
        .expect_err("fk");
    assert!(matches!(err, ServiceError::NotFound(_)), "{err:?}");

    // The membership insert fails after the team insert succeeded: both are rolled back.
    sql.execute(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$; \
         CREATE TRIGGER refuse BEFORE INSERT ON team_memberships FOR EACH ROW EXECUTE FUNCTION refuse()",
    )
    .await;
    f.teams
        .create_team("Beta", "beta", None, &ada.id, false)
        .await
        .expect_err("trigger");
    assert_eq!(count(sql, "SELECT count(*) FROM teams").await, 1);
    assert_eq!(count(sql, "SELECT count(*) FROM team_memberships").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memberships_add_change_remove_with_rules() {
    let f = fixture().await;
    let ada = user(&f, "ada").await;
    let bob = user(&f, "bob").await;
    let t = team(&f, "acme", &ada).await;

    let m = f
        .teams
        .add_member(&t.id, &bob.id, TeamRole::User)
        .await
        .expect("add");
    assert_eq!(m.role, TeamRole::User);
    let err = f
        .teams
        .add_member(&t.id, &bob.id, TeamRole::User)
        .await
        .expect_err("dup");
    assert!(matches!(err, ServiceError::Conflict(_)), "{err:?}");
    let err = f
        .teams
        .add_member(&t.id, &UserId::generate(), TeamRole::User)
        .await
        .expect_err("fk");
    assert!(matches!(err, ServiceError::NotFound(_)), "{err:?}");
    let err = f
        .teams
        .add_member(&TeamId::generate(), &bob.id, TeamRole::User)
        .await
        .expect_err("no team");
    assert!(matches!(err, ServiceError::NotFound(_)), "{err:?}");

    assert!(f
        .teams
        .change_member_role(&t.id, &bob.id, TeamRole::Admin)
        .await
        .expect("change"));
    assert!(!f
        .teams
        .change_member_role(&t.id, &UserId::generate(), TeamRole::Admin)
        .await
        .expect("change"));
    let err = f
        .teams
        .change_member_role(&t.id, &ada.id, TeamRole::User)
        .await
        .expect_err("owner");
    assert!(matches!(err, ServiceError::Invalid(_)), "{err:?}");

    let err = f
        .teams
        .remove_member(&t.id, &ada.id)
        .await
        .expect_err("owner");
    assert!(matches!(err, ServiceError::Invalid(_)), "{err:?}");
    assert!(f.teams.remove_member(&t.id, &bob.id).await.expect("remove"));
    assert!(!f
        .teams
        .remove_member(&t.id, &bob.id)
        .await
        .expect("remove again"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_limit_holds_under_concurrency() {
    let f = fixture().await;
    let sql = &f.db;
    let ada = user(&f, "ada").await;
    let t = team(&f, "acme", &ada).await; // member_limit 3, the owner is one
    let mut others = Vec::new();
    for i in 0..6 {
        others.push(user(&f, &format!("u{i}")).await);
    }
    let adds = others
        .iter()
        .map(|u| f.teams.add_member(&t.id, &u.id, TeamRole::User));
    let results = futures_util::future::join_all(adds).await;
    let added = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(added, 2);
    assert!(results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .all(|e| matches!(e, ServiceError::Invalid(_))));
    assert_eq!(count(sql, "SELECT count(*) FROM team_memberships").await, 3);
}

/// Another session transfers the team to `to` and keeps its transaction open while `call`
/// runs; it commits once `call` finished or waits for the team row.
async fn during_transfer<T, F>(f: &crate::Fixture, team: &TeamId, to: &UserId, call: F) -> T
where
    T: Send + 'static,
    F: std::future::Future<Output = T> + Send + 'static,
{
    let transfer = session(&f.db).await;
    transfer
        .batch_execute(&format!(
            "BEGIN; UPDATE teams SET owner_id = '{to}' WHERE id = '{team}'"
        ))
        .await
        .expect("transfer");
    run_while_held(&f.db, &transfer, call).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owner_check_and_membership_write_are_one_transaction() {
    let f = fixture().await;
    let sql = &f.db;
    let ada = user(&f, "ada").await;
    let bob = user(&f, "bob").await;
    let cy = user(&f, "cy").await;
    let t = team(&f, "acme", &ada).await;
    for u in [&bob, &cy] {
        f.teams
            .add_member(&t.id, &u.id, TeamRole::Admin)
            .await
            .expect("add");
    }
    let owner_is_team_admin = "SELECT count(*) FROM teams t JOIN team_memberships m \
         ON m.team_id = t.id AND m.user_id = t.owner_id AND m.role = 'team_admin'";

    // Bob is removed while the team is being transferred to him: the removal waits for the
    // transfer and then refuses, instead of leaving an owner outside the team.
    let (teams, team_id, bob_id) = (f.teams.clone(), t.id.clone(), bob.id.clone());
    let removal = during_transfer(&f, &t.id, &bob.id, async move {
        teams.remove_member(&team_id, &bob_id).await
    })
    .await;
    assert!(
        matches!(removal, Err(ServiceError::Invalid(_))),
        "{removal:?}"
    );
    assert_eq!(count(sql, owner_is_team_admin).await, 1);

    // Cy is demoted while the team is being transferred to her: refused the same way.
    let (teams, team_id, cy_id) = (f.teams.clone(), t.id.clone(), cy.id.clone());
    let demotion = during_transfer(&f, &t.id, &cy.id, async move {
        teams
            .change_member_role(&team_id, &cy_id, TeamRole::User)
            .await
    })
    .await;
    assert!(
        matches!(demotion, Err(ServiceError::Invalid(_))),
        "{demotion:?}"
    );
    assert_eq!(count(sql, owner_is_team_admin).await, 1);

    // Without a transfer under way, the former owner is an ordinary member again.
    assert!(f.teams.remove_member(&t.id, &bob.id).await.expect("remove"));
}
