//! `/api/teams/:id/members` and `/ownership`: who may see, add, change and remove members.

use serde_json::json;

use crate::People;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_are_managed_by_the_teams_administrators_and_seen_by_its_members() {
    let p = People::new(&["owner", "carol", "dave", "erin"]).await;
    let team = p.team(p.user(0), "Ops").await;
    let members = format!("/api/teams/{team}/members");
    let add = |email: &str, role: &str, session: String| {
        let p = &p;
        let members = members.clone();
        let body = json!({"email": email, "role": role});
        async move { p.call("POST", &members, Some(body), Some(&session)).await }
    };
    let added = add("CAROL@example.com", "team_admin", p.user(0).to_owned()).await;
    assert_eq!(added.status, 201, "{}", added.body);
    assert_eq!(
        added.body["message"],
        "Team member 'CAROL@example.com' added successfully"
    );
    assert_eq!(added.body["data"]["role"], "team_admin");
    assert_eq!(added.body["data"]["is_admin"], true);
    // A plain member cannot add; a stranger is not a member.
    let dave_added = add("dave@example.com", "team_user", p.user(1).to_owned()).await;
    assert_eq!(dave_added.status, 201, "a team administrator adds");
    let by_member = add("erin@example.com", "team_user", p.user(2).to_owned()).await;
    assert_eq!(by_member.status, 403);
    assert_eq!(by_member.body["required_permission"], "team.members.manage");
    assert_eq!(by_member.body["user_team_role"], "team_user");
    let by_stranger = add("erin@example.com", "team_user", p.user(3).to_owned()).await;
    assert_eq!(
        by_stranger.body["error"],
        "You are not a member of this team"
    );
    let twice = add("dave@example.com", "team_user", p.user(0).to_owned()).await;
    assert_eq!(
        (twice.status, &twice.body["error"]),
        (409, &json!("User is already a member of this team"))
    );
    let unknown = add("zed@example.com", "team_user", p.user(0).to_owned()).await;
    assert_eq!(unknown.status, 400);
    assert!(unknown.body["error"]
        .as_str()
        .is_some_and(|e| e.starts_with("User with email 'zed@example.com' not found")));
    let full = add("erin@example.com", "team_user", p.user(0).to_owned()).await;
    assert_eq!(
        full.body["error"],
        "Team has reached maximum capacity (3 members)"
    );
    // Members and global administrators see the list; nobody else.
    let list = p.call("GET", &members, None, Some(p.user(2))).await;
    assert_eq!(list.body["data"].as_array().map(Vec::len), Some(3));
    assert_eq!(
        p.call("GET", &members, None, Some(&p.admin)).await.status,
        200
    );
    let hidden = p.call("GET", &members, None, Some(p.user(3))).await;
    assert_eq!(
        (hidden.status, &hidden.body["error"]),
        (
            403,
            &json!("You do not have permission to view this team's members")
        )
    );
    assert_eq!(
        p.call("GET", "/api/teams/none/members", None, Some(&p.admin))
            .await
            .status,
        404
    );
    p.site.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_removals_and_ownership_follow_upstreams_rules() {
    let p = People::new(&["owner", "carol", "dave"]).await;
    let team = p.team(p.user(0), "Ops").await;
    for (email, role) in [
        ("carol@example.com", "team_admin"),
        ("dave@example.com", "team_user"),
    ] {
        let reply = p
            .call(
                "POST",
                &format!("/api/teams/{team}/members"),
                Some(json!({"email": email, "role": role})),
                Some(p.user(0)),
            )
            .await;
        assert_eq!(reply.status, 201);
    }
    let (owner, carol, dave) = (
        p.id_of("owner").await,
        p.id_of("carol").await,
        p.id_of("dave").await,
    );
    let role = |user: &str, role: &str, session: String| {
        let p = &p;
        let path = format!("/api/teams/{team}/members/{user}/role");
        let body = json!({"role": role});
        async move { p.call("PUT", &path, Some(body), Some(&session)).await }
    };
    let promoted = role(&dave, "team_admin", p.user(1).to_owned()).await;
    assert_eq!(promoted.status, 200, "{}", promoted.body);
    assert_eq!(
        promoted.body["message"],
        "Team member role updated successfully"
    );
    let owner_demoted = role(&owner, "team_user", p.user(1).to_owned()).await;
    assert_eq!(owner_demoted.status, 400, "the owner stays team_admin");
    assert_eq!(
        role(&dave, "team_user", p.user(0).to_owned()).await.status,
        200
    );
    // An administrator removes plain members only; the owner anyone but itself.
    let remove = |user: &str, session: String| {
        let p = &p;
        let path = format!("/api/teams/{team}/members/{user}");
        async move { p.call("DELETE", &path, None, Some(&session)).await }
    };
    let owner_removed = remove(&owner, p.admin.clone()).await;
    assert_eq!(
        owner_removed.body["error"],
        "Cannot remove team owner. Transfer ownership first."
    );
    let admin_by_admin = remove(&carol, p.user(1).to_owned()).await;
    assert_eq!(admin_by_admin.status, 403);
    assert_eq!(
        admin_by_admin.body["error"],
        "You do not have permission to remove this member"
    );
    let removed = remove(&dave, p.user(1).to_owned()).await;
    assert_eq!(
        removed.body,
        json!({"success": true, "message": "Team member removed successfully"})
    );
    let gone = remove(&dave, p.user(0).to_owned()).await;
    assert_eq!(gone.status, 400);
    // Ownership goes to a member, by the owner; the old owner stays an administrator.
    let transfer = |to: &str, session: String| {
        let p = &p;
        let path = format!("/api/teams/{team}/ownership");
        let body = json!({"newOwnerId": to});
        async move { p.call("PUT", &path, Some(body), Some(&session)).await }
    };
    assert_eq!(transfer(&carol, p.user(1).to_owned()).await.status, 403);
    assert_eq!(
        transfer(&dave, p.user(0).to_owned()).await.body["error"],
        "New owner must be a team member"
    );
    let transferred = transfer(&carol, p.user(0).to_owned()).await;
    assert_eq!(
        transferred.body["message"],
        "Team ownership transferred successfully"
    );
    let list = p
        .call(
            "GET",
            &format!("/api/teams/{team}/members"),
            None,
            Some(p.user(0)),
        )
        .await;
    let by_name = |name: &str| {
        list.body["data"]
            .as_array()
            .and_then(|m| m.iter().find(|m| m["username"] == name).cloned())
            .expect("member")
    };
    assert_eq!(by_name("carol")["is_owner"], true);
    assert_eq!(by_name("owner")["role"], "team_admin");
    // The last team administrator is never demoted.
    assert_eq!(remove(&owner, p.user(1).to_owned()).await.status, 200);
    let last = role(&carol, "team_user", p.user(1).to_owned()).await;
    assert_eq!(last.status, 400);
    p.site.server.stop().await;
}
