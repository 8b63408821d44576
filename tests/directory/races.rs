//! What upstream decided by reading, then writing, decided in one transaction: concurrent
//! requests cannot pass a limit, take one slug twice, add one member twice, or remove the
//! last administrator.

use futures_util::future::join_all;
use serde_json::json;

use crate::People;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creations_respect_the_team_limit_and_get_distinct_slugs() {
    let p = People::new(&["ann", "user1", "user2", "user3", "user4", "user5"]).await;
    // ann belongs to her default team: of ten creations at once, two fit the limit of 3.
    let creations = (0..10).map(|n| {
        p.call(
            "POST",
            "/api/teams",
            Some(json!({"name": format!("T{n}")})),
            Some(p.user(0)),
        )
    });
    let statuses: Vec<u16> = join_all(creations).await.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        2,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 400),
        "{statuses:?}"
    );
    // Five accounts create a team of one name at once: five slugs.
    let same = (1..=5).map(|n| {
        p.call(
            "POST",
            "/api/teams",
            Some(json!({"name": "Same Name"})),
            Some(p.user(n)),
        )
    });
    let replies = join_all(same).await;
    let mut slugs: Vec<String> = replies
        .iter()
        .map(|r| {
            assert_eq!(r.status, 201, "{}", r.body);
            r.body["data"]["slug"].as_str().expect("slug").to_owned()
        })
        .collect();
    slugs.sort();
    assert_eq!(
        slugs,
        [
            "same-name",
            "same-name-2",
            "same-name-3",
            "same-name-4",
            "same-name-5"
        ]
    );
    p.site.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_additions_respect_the_member_limit_and_never_duplicate() {
    let p = People::new(&["owner", "user1", "user2", "user3", "user4", "user5"]).await;
    let team = p.team(p.user(0), "Crowd").await;
    let members = format!("/api/teams/{team}/members");
    let adds = (1..=5).map(|n| {
        p.call(
            "POST",
            &members,
            Some(json!({"email": format!("user{n}@example.com"), "role": "team_user"})),
            Some(p.user(0)),
        )
    });
    let statuses: Vec<u16> = join_all(adds).await.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        2,
        "owner + 2 = 3: {statuses:?}"
    );
    let count: i64 = p
        .site
        .rows(&format!(
            "SELECT count(*) FROM team_memberships WHERE team_id = '{team}'"
        ))
        .await[0]
        .get(0);
    assert_eq!(count, 3);
    let other = p.team(p.user(0), "Pair").await;
    let path = format!("/api/teams/{other}/members");
    let twice = (0..6).map(|_| {
        p.call(
            "POST",
            &path,
            Some(json!({"email": "user5@example.com", "role": "team_user"})),
            Some(p.user(0)),
        )
    });
    let mut statuses: Vec<u16> = join_all(twice).await.iter().map(|r| r.status).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 409, 409, 409, 409, 409]);
    p.site.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_administrators_demoting_each_other_at_once_leave_one() {
    let p = People::new(&["ann"]).await;
    let (first, ann) = (p.id_of("admin").await, p.id_of("ann").await);
    let promoted = p
        .call(
            "PUT",
            &format!("/api/admin/users/{ann}/role"),
            Some(json!({"role_id": "global_admin"})),
            Some(&p.admin),
        )
        .await;
    assert_eq!(promoted.status, 200);
    let (ann_path, first_path) = (
        format!("/api/admin/users/{ann}/role"),
        format!("/api/admin/users/{first}/role"),
    );
    for round in 0..2 {
        let (a, b) = futures_util::join!(
            p.call(
                "PUT",
                &ann_path,
                Some(json!({"role_id": "global_user"})),
                Some(&p.admin)
            ),
            p.call(
                "PUT",
                &first_path,
                Some(json!({"role_id": "global_user"})),
                Some(p.user(0))
            ),
        );
        let admins: i64 = p
            .site
            .rows("SELECT count(*) FROM users WHERE role_id = 'global_admin'")
            .await[0]
            .get(0);
        assert_eq!(admins, 1, "round {round}: {} {}", a.body, b.body);
        let mut statuses = [a.status, b.status];
        statuses.sort_unstable();
        // One demotion went through; the other was refused (it would have left none), or
        // came from an account demoted a moment before (no longer an administrator).
        assert_eq!(statuses[0], 200, "{} {}", a.body, b.body);
        assert!(
            statuses[1] == 400 || statuses[1] == 403,
            "{} {}",
            a.body,
            b.body
        );
        // Promote again for the next round.
        let (admin_session, other) = if a.status == 200 {
            (p.admin.clone(), ann.clone())
        } else {
            (p.user(0).to_owned(), first.clone())
        };
        let again = p
            .call(
                "PUT",
                &format!("/api/admin/users/{other}/role"),
                Some(json!({"role_id": "global_admin"})),
                Some(&admin_session),
            )
            .await;
        assert_eq!(again.status, 200, "{}", again.body);
    }
    p.site.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_transfer_and_a_demotion_at_once_leave_the_owner_an_administrator() {
    let p = People::new(&["owner", "carol"]).await;
    let team = p.team(p.user(0), "Hand-over").await;
    let added = p
        .call(
            "POST",
            &format!("/api/teams/{team}/members"),
            Some(json!({"email": "carol@example.com", "role": "team_admin"})),
            Some(p.user(0)),
        )
        .await;
    assert_eq!(added.status, 201);
    let carol = p.id_of("carol").await;
    let (ownership, role) = (
        format!("/api/teams/{team}/ownership"),
        format!("/api/teams/{team}/members/{carol}/role"),
    );
    let (_, _) = futures_util::join!(
        p.call(
            "PUT",
            &ownership,
            Some(json!({"newOwnerId": carol})),
            Some(p.user(0))
        ),
        p.call(
            "PUT",
            &role,
            Some(json!({"role": "team_user"})),
            Some(p.user(0))
        ),
    );
    let rows = p
        .site
        .rows(&format!(
            "SELECT m.role FROM teams t JOIN team_memberships m ON m.team_id = t.id AND m.user_id = t.owner_id WHERE t.id = '{team}'"
        ))
        .await;
    assert_eq!(rows[0].get::<_, String>(0), "team_admin");
    p.site.server.stop().await;
}
