//! `/api/users`: the bare profile, one's teams, reading and changing accounts, deleting one's
//! own.

use serde_json::json;

use crate::People;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_profile_is_bare_and_accounts_are_ones_own_or_an_administrators() {
    let p = People::new(&["ann", "bob"]).await;
    let ann = p.id_of("ann").await;
    let bob = p.id_of("bob").await;
    let me = p.call("GET", "/api/users/me", None, Some(p.user(0))).await;
    assert_eq!(me.status, 200);
    for key in [
        "id",
        "username",
        "email",
        "first_name",
        "last_name",
        "role_id",
        "auth_type",
        "github_id",
        "user_display_settings",
    ] {
        assert!(me.body.get(key).is_some(), "{key}: {}", me.body);
    }
    assert_eq!(me.body["id"], ann.as_str());
    // One's own account, or any for an administrator; nobody else's.
    let own = p
        .call("GET", &format!("/api/users/{ann}"), None, Some(p.user(0)))
        .await;
    assert_eq!(
        (own.status, own.body["username"].as_str()),
        (200, Some("ann"))
    );
    assert!(own.body.get("user_display_settings").is_none());
    let other = p
        .call("GET", &format!("/api/users/{bob}"), None, Some(p.user(0)))
        .await;
    assert_eq!(other.status, 403);
    assert_eq!(
        other.body,
        json!({"success": false, "error": "Can only access your own resources or requires admin permissions"})
    );
    let admin = p
        .call("GET", &format!("/api/users/{bob}"), None, Some(&p.admin))
        .await;
    assert_eq!(admin.body["username"], "bob");
    let missing = p
        .call("GET", "/api/users/nobody", None, Some(&p.admin))
        .await;
    assert_eq!(
        (missing.status, &missing.body["error"]),
        (404, &json!("User not found"))
    );
    let anonymous = p
        .call("GET", &format!("/api/users/{bob}"), None, None)
        .await;
    assert_eq!(anonymous.status, 401);
    let teams = p
        .call("GET", "/api/users/me/teams", None, Some(p.user(0)))
        .await;
    assert_eq!(teams.body["success"], true);
    let list = teams.body["teams"].as_array().expect("teams");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["is_default"], true);
    assert_eq!(list[0]["role"], "team_admin");
    assert_eq!(list[0]["is_owner"], true);
    let bobs = p
        .call(
            "GET",
            &format!("/api/users/{bob}/teams"),
            None,
            Some(&p.admin),
        )
        .await;
    assert_eq!(bobs.body["teams"][0]["owner_id"], bob.as_str());
    assert_eq!(
        p.call(
            "GET",
            &format!("/api/users/{bob}/teams"),
            None,
            Some(p.user(0))
        )
        .await
        .status,
        403
    );
    p.site.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_changes_keep_names_and_addresses_unique_and_roles_guarded() {
    let p = People::new(&["ann", "bob"]).await;
    let ann = p.id_of("ann").await;
    let put = |body: serde_json::Value, session: String| {
        let p = &p;
        let ann = ann.clone();
        async move {
            p.call(
                "PUT",
                &format!("/api/users/{ann}"),
                Some(body),
                Some(&session),
            )
            .await
        }
    };
    let reply = put(
        json!({"email": "Ann.New@Example.com", "first_name": "Ann"}),
        p.user(0).to_owned(),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["message"], "Profile updated successfully.");
    assert_eq!(
        reply.body["user"]["email"], "ann.new@example.com",
        "lower case"
    );
    for clash in [
        json!({"username": "BOB"}),
        json!({"email": "bob@example.com"}),
        json!({"email": "BOB@example.com"}),
    ] {
        let reply = put(clash.clone(), p.user(0).to_owned()).await;
        assert_eq!(reply.status, 409, "{clash}: {}", reply.body);
        assert_eq!(reply.body["error"], "Username or email already exists");
    }
    let own_role = put(json!({"role_id": "global_admin"}), p.user(0).to_owned()).await;
    assert_eq!(
        (own_role.status, &own_role.body["error"]),
        (403, &json!("Cannot change your own role"))
    );
    let bad_role = put(json!({"role_id": "nope"}), p.admin.clone()).await;
    assert_eq!(
        (bad_role.status, &bad_role.body["error"]),
        (400, &json!("Invalid role ID"))
    );
    for invalid in [
        json!({}),
        json!({"username": "a b"}),
        json!({"username": "x".repeat(31)}),
        json!({"email": "no"}),
        json!({"other": 1}),
    ] {
        assert_eq!(
            put(invalid.clone(), p.user(0).to_owned()).await.status,
            400,
            "{invalid}"
        );
    }
    let bob = p.id_of("bob").await;
    let not_yours = p
        .call(
            "PUT",
            &format!("/api/users/{bob}"),
            Some(json!({"first_name": "x"})),
            Some(p.user(0)),
        )
        .await;
    assert_eq!(not_yours.status, 403);
    let promoted = p
        .call(
            "PUT",
            &format!("/api/users/{bob}"),
            Some(json!({"role_id": "global_admin"})),
            Some(&p.admin),
        )
        .await;
    assert_eq!(
        promoted.body["user"]["role_id"], "global_admin",
        "{}",
        promoted.body
    );
    p.site.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_ones_account_ends_its_sessions_and_keeps_the_last_administrator() {
    let p = People::new(&["ann"]).await;
    let ann_team = p.team(p.user(0), "Ann's project").await;
    let refused = p
        .call("DELETE", "/api/users/me", None, Some(p.user(0)))
        .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(refused.body["owned_teams"][0]["id"], ann_team.as_str());
    assert_eq!(
        p.call(
            "DELETE",
            &format!("/api/teams/{ann_team}"),
            None,
            Some(p.user(0))
        )
        .await
        .status,
        200
    );
    let second = p.site.login("ann", "password-ann").await.session();
    let deleted = p
        .call("DELETE", "/api/users/me", None, Some(p.user(0)))
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    assert!(
        deleted.set_cookie().starts_with("session=;"),
        "cookie removed"
    );
    for session in [p.user(0), second.as_str()] {
        assert_eq!(
            p.call("GET", "/api/users/me", None, Some(session))
                .await
                .status,
            401
        );
    }
    assert_eq!(
        p.site
            .rows("SELECT count(*) FROM teams WHERE name = 'ann'")
            .await[0]
            .get::<_, i64>(0),
        0,
        "default team gone"
    );
    let last = p
        .call("DELETE", "/api/users/me", None, Some(&p.admin))
        .await;
    assert_eq!(
        (last.status, &last.body["error"]),
        (403, &json!("Cannot delete the last global administrator"))
    );
    p.site.server.stop().await;
}
