//! `/api/teams`: one's teams, creating within the limit with free slugs, changing and
//! deleting by role, and usage.

use serde_json::json;

use crate::People;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teams_are_created_within_the_limit_with_free_slugs() {
    let p = People::new(&["ann", "bob"]).await;
    let created = p
        .call(
            "POST",
            "/api/teams",
            Some(json!({"name": "Data Team!", "description": "d"})),
            Some(p.user(0)),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["message"], "Team created successfully");
    assert_eq!(created.body["data"]["slug"], "data-team");
    assert_eq!(created.body["data"]["is_default"], false);
    let same = p
        .call(
            "POST",
            "/api/teams",
            Some(json!({"name": "data team"})),
            Some(p.user(1)),
        )
        .await;
    assert_eq!(same.body["data"]["slug"], "data-team-2");
    // The default team counts: ann now belongs to 2 of 3.
    assert_eq!(
        p.call(
            "POST",
            "/api/teams",
            Some(json!({"name": "Third"})),
            Some(p.user(0))
        )
        .await
        .status,
        201
    );
    let over = p
        .call(
            "POST",
            "/api/teams",
            Some(json!({"name": "Fourth"})),
            Some(p.user(0)),
        )
        .await;
    assert_eq!(over.status, 400);
    assert_eq!(
        over.body["error"],
        "You have reached the maximum limit of 3 teams"
    );
    for bad in [
        json!({}),
        json!({"name": ""}),
        json!({"name": "x".repeat(101)}),
        json!({"name": "a", "owner_id": "x"}),
    ] {
        assert_eq!(
            p.call("POST", "/api/teams", Some(bad.clone()), Some(p.user(1)))
                .await
                .status,
            400,
            "{bad}"
        );
    }
    assert_eq!(
        p.call("POST", "/api/teams", Some(json!({"name": "a"})), None)
            .await
            .status,
        401
    );
    let mine = p.call("GET", "/api/teams/me", None, Some(p.user(0))).await;
    let teams = mine.body["data"].as_array().expect("teams");
    assert_eq!(teams.len(), 3);
    assert!(teams
        .iter()
        .all(|t| t["is_owner"] == true && t["is_admin"] == true && t["member_count"] == 1));
    let default = p
        .call("GET", "/api/teams/me/default", None, Some(p.user(0)))
        .await;
    assert_eq!(default.body["data"]["name"], "ann");
    assert_eq!(
        default.body["message"],
        "Default team retrieved successfully"
    );
    p.site.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_is_read_changed_and_deleted_by_whom_upstream_allows() {
    let p = People::new(&["ann", "bob"]).await;
    let team = p.team(p.user(0), "Alpha").await;
    let path = format!("/api/teams/{team}");
    assert_eq!(
        p.call("GET", &path, None, Some(p.user(0))).await.body["data"]["role"],
        "team_admin"
    );
    for stranger in [p.user(1), p.admin.as_str()] {
        let reply = p.call("GET", &path, None, Some(stranger)).await;
        assert_eq!(
            (reply.status, &reply.body["error"]),
            (403, &json!("You do not have access to this team"))
        );
    }
    assert_eq!(
        p.call("GET", "/api/teams/none", None, Some(p.user(0)))
            .await
            .status,
        404
    );
    let renamed = p
        .call(
            "PUT",
            &path,
            Some(json!({"name": "Beta", "description": null})),
            Some(p.user(0)),
        )
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    assert_eq!(renamed.body["data"]["name"], "Beta");
    assert_eq!(renamed.body["data"]["slug"], "alpha", "the slug stays");
    let by_stranger = p
        .call("PUT", &path, Some(json!({"name": "X"})), Some(p.user(1)))
        .await;
    assert_eq!(
        (by_stranger.status, &by_stranger.body["error"]),
        (403, &json!("Only team administrators can update teams"))
    );
    let default = p
        .call("GET", "/api/teams/me/default", None, Some(p.user(0)))
        .await
        .body["data"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let rename_default = p
        .call(
            "PUT",
            &format!("/api/teams/{default}"),
            Some(json!({"name": "Mine"})),
            Some(p.user(0)),
        )
        .await;
    assert_eq!(
        rename_default.body["error"],
        "Default team names cannot be changed"
    );
    let delete_default = p
        .call(
            "DELETE",
            &format!("/api/teams/{default}"),
            None,
            Some(p.user(0)),
        )
        .await;
    assert_eq!(
        delete_default.body["error"],
        "Default teams cannot be deleted"
    );
    let by_other = p.call("DELETE", &path, None, Some(p.user(1))).await;
    assert_eq!(
        (by_other.status, &by_other.body["error"]),
        (403, &json!("Only team owners can delete teams"))
    );
    let usage = p
        .call("GET", &format!("{path}/usage"), None, Some(p.user(0)))
        .await;
    assert_eq!(
        usage.body,
        json!({"success": true, "data": {"is_default_team": false, "total_installed_mcp_servers": 0,
               "non_http_mcp_servers": 0, "http_mcp_servers": 0,
               "limits": {"mcp_server_limit": 5, "non_http_mcp_limit": 1}}})
    );
    assert_eq!(
        p.call("GET", &format!("{path}/usage"), None, Some(p.user(1)))
            .await
            .status,
        403
    );
    assert_eq!(
        p.call("GET", "/api/teams/none/usage", None, Some(p.user(1)))
            .await
            .status,
        404
    );
    let deleted = p.call("DELETE", &path, None, Some(p.user(0))).await;
    assert_eq!(
        deleted.body,
        json!({"success": true, "message": "Team deleted successfully"})
    );
    assert_eq!(
        p.call("GET", &path, None, Some(p.user(0))).await.status,
        404
    );
    p.site.server.stop().await;
}
