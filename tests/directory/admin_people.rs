//! `/api/admin/users` and `/api/admin/teams`: paged, searched, counted, and changed by global
//! administrators only.

use serde_json::json;

use crate::People;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_are_listed_searched_and_counted_for_administrators() {
    let p = People::new(&["ann", "Annabel", "bob"]).await;
    let admin = Some(p.admin.as_str());
    let page = p
        .call("GET", "/api/admin/users?limit=2&offset=1", None, admin)
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        page.body["data"]["pagination"],
        json!({"total": 4, "limit": 2, "offset": 1, "has_more": true})
    );
    let names: Vec<&str> = page.body["data"]["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| u["username"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(names, ["ann", "Annabel"], "oldest first");
    assert_eq!(page.body["data"]["users"][0]["role"]["id"], "global_user");
    let found = p
        .call("GET", "/api/admin/users/search?username=ANN", None, admin)
        .await;
    assert_eq!(found.body["data"]["pagination"]["total"], 2);
    let by_email = p
        .call(
            "GET",
            "/api/admin/users/search?email=BOB%40EXAMPLE",
            None,
            admin,
        )
        .await;
    assert_eq!(by_email.body["data"]["users"][0]["username"], "bob");
    let literal = p
        .call("GET", "/api/admin/users/search?username=a_n", None, admin)
        .await;
    assert_eq!(
        literal.body["data"]["pagination"]["total"], 0,
        "_ is literal"
    );
    let admins = p
        .call(
            "GET",
            "/api/admin/users/search?role_id=global_admin&auth_type=email",
            None,
            admin,
        )
        .await;
    assert_eq!(admins.body["data"]["pagination"]["total"], 1);
    for (query, message) in [
        ("limit=0", "Limit must be between 1 and 100"),
        ("limit=101", "Limit must be between 1 and 100"),
        ("offset=-1", "Offset must be non-negative"),
    ] {
        let reply = p
            .call("GET", &format!("/api/admin/users?{query}"), None, admin)
            .await;
        assert_eq!(
            (reply.status, &reply.body["error"]),
            (400, &json!(message)),
            "{query}"
        );
    }
    let stats = p.call("GET", "/api/admin/users/stats", None, admin).await;
    assert_eq!(stats.body["data"]["user_statistics"]["total_users"], 4);
    assert_eq!(stats.body["data"]["user_statistics"]["global_admins"], 1);
    assert_eq!(stats.body["data"]["team_statistics"]["default_teams"], 4);
    let denied = p
        .call("GET", "/api/admin/users", None, Some(p.user(0)))
        .await;
    assert_eq!(denied.status, 403);
    assert_eq!(denied.body["required_role"], "global_admin");
    assert_eq!(denied.body["user_role"], "global_user");
    assert_eq!(
        p.call("GET", "/api/admin/users", None, None).await.status,
        401
    );
    p.site.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_and_deletions_keep_the_last_administrator() {
    let p = People::new(&["ann", "bob"]).await;
    let admin = Some(p.admin.as_str());
    let (me, ann, bob) = (
        p.id_of("admin").await,
        p.id_of("ann").await,
        p.id_of("bob").await,
    );
    let own = p
        .call(
            "PUT",
            &format!("/api/admin/users/{me}/role"),
            Some(json!({"role_id": "global_user"})),
            admin,
        )
        .await;
    assert_eq!(
        (own.status, &own.body["error"]),
        (403, &json!("Cannot change your own role"))
    );
    let promoted = p
        .call(
            "PUT",
            &format!("/api/admin/users/{ann}/role"),
            Some(json!({"role_id": "global_admin"})),
            admin,
        )
        .await;
    assert_eq!(promoted.status, 200, "{}", promoted.body);
    assert_eq!(promoted.body["message"], "Role assigned successfully");
    assert_eq!(promoted.body["data"]["role_id"], "global_admin");
    let unknown = p
        .call(
            "PUT",
            &format!("/api/admin/users/{bob}/role"),
            Some(json!({"role_id": "wizard"})),
            admin,
        )
        .await;
    assert_eq!(
        (unknown.status, &unknown.body["error"]),
        (404, &json!("User or role not found"))
    );
    let own_delete = p
        .call("DELETE", &format!("/api/admin/users/{me}"), None, admin)
        .await;
    assert_eq!(own_delete.body["error"], "Cannot delete your own account");
    // ann, now an administrator, demotes the first one; then the last cannot be demoted.
    let demoted = p
        .call(
            "PUT",
            &format!("/api/admin/users/{me}/role"),
            Some(json!({"role_id": "global_user"})),
            Some(p.user(0)),
        )
        .await;
    assert_eq!(demoted.status, 200, "{}", demoted.body);
    let team = p.team(p.user(1), "Bob's").await;
    let owns = p
        .call(
            "DELETE",
            &format!("/api/admin/users/{bob}"),
            None,
            Some(p.user(0)),
        )
        .await;
    assert_eq!(owns.status, 400);
    assert_eq!(owns.body["owned_teams"][0]["id"], team.as_str());
    assert_eq!(
        p.call(
            "DELETE",
            &format!("/api/teams/{team}"),
            None,
            Some(p.user(1))
        )
        .await
        .status,
        200
    );
    let bob_session = p.user(1).to_owned();
    let deleted = p
        .call(
            "DELETE",
            &format!("/api/admin/users/{bob}"),
            None,
            Some(p.user(0)),
        )
        .await;
    assert_eq!(
        deleted.body,
        json!({"success": true, "message": "User deleted successfully"})
    );
    assert_eq!(
        p.call("GET", "/api/users/me", None, Some(&bob_session))
            .await
            .status,
        401,
        "sessions end"
    );
    assert_eq!(
        p.call(
            "DELETE",
            &format!("/api/admin/users/{bob}"),
            None,
            Some(p.user(0))
        )
        .await
        .status,
        404
    );
    p.site.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teams_are_listed_searched_and_their_limits_set_by_administrators() {
    let p = People::new(&["ann"]).await;
    let admin = Some(p.admin.as_str());
    let team = p.team(p.user(0), "Research Lab").await;
    let list = p
        .call("GET", "/api/admin/teams?limit=10", None, admin)
        .await;
    assert_eq!(list.body["data"]["pagination"]["total"], 3);
    let search = p
        .call("GET", "/api/admin/teams/search?name=research", None, admin)
        .await;
    let teams = search.body["data"]["teams"].as_array().expect("teams");
    assert_eq!(teams.len(), 1, "ignoring case");
    assert_eq!(teams[0]["members_count"], 1);
    assert_eq!(teams[0]["mcp_servers_count"], 0);
    let one = p
        .call("GET", &format!("/api/admin/teams/{team}"), None, admin)
        .await;
    assert_eq!(one.body["message"], "Team retrieved successfully");
    let changed = p
        .call(
            "PUT",
            &format!("/api/admin/teams/{team}"),
            Some(json!({"member_limit": 10, "allow_remote_mcp": true, "description": null})),
            admin,
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert_eq!(changed.body["data"]["member_limit"], 10);
    assert_eq!(changed.body["data"]["allow_remote_mcp"], true);
    for bad in [
        json!({"member_limit": 0}),
        json!({"mcp_server_limit": -1}),
        json!({"name": ""}),
        json!({"slug": "x"}),
    ] {
        let reply = p
            .call(
                "PUT",
                &format!("/api/admin/teams/{team}"),
                Some(bad.clone()),
                admin,
            )
            .await;
        assert_eq!(reply.status, 400, "{bad}: {}", reply.body);
    }
    assert_eq!(
        p.call("GET", "/api/admin/teams/none", None, admin)
            .await
            .status,
        404
    );
    assert_eq!(
        p.call(
            "PUT",
            "/api/admin/teams/none",
            Some(json!({"name": "x"})),
            admin
        )
        .await
        .status,
        404
    );
    assert_eq!(
        p.call("GET", "/api/admin/teams", None, Some(p.user(0)))
            .await
            .status,
        403
    );
    p.site.server.stop().await;
}
