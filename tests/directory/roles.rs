//! `/api/roles`: global administrators manage custom roles; built-in ones stay.

use serde_json::json;

use crate::People;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_roles_are_created_changed_and_deleted_by_administrators_only() {
    let p = People::new(&["ann"]).await;
    let admin = Some(p.admin.as_str());
    let list = p.call("GET", "/api/roles", None, admin).await;
    assert_eq!(list.body["data"].as_array().map(Vec::len), Some(4));
    let denied = p.call("GET", "/api/roles", None, Some(p.user(0))).await;
    assert_eq!(denied.status, 403);
    assert_eq!(denied.body["required_permission"], "roles.manage");
    let permissions = p.call("GET", "/api/roles/permissions", None, admin).await;
    assert!(permissions.body["data"]["permissions"]
        .as_array()
        .is_some_and(|p| p.iter().any(|x| x == "teams.view")));
    assert!(permissions.body["data"]["default_roles"]["team_user"].is_array());
    let created = p
        .call("POST", "/api/roles", Some(json!({"id": "auditor", "name": "Auditor", "description": "reads", "permissions": ["teams.view"]})), admin)
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["data"]["is_system_role"], false);
    for (body, status) in [
        (
            json!({"id": "auditor", "name": "Other", "permissions": ["teams.view"]}),
            409,
        ),
        (
            json!({"id": "x2", "name": "Auditor", "permissions": ["teams.view"]}),
            409,
        ),
        (
            json!({"id": "x3", "name": "X3", "permissions": ["teams.fly"]}),
            400,
        ),
        (json!({"id": "x4", "name": "X4", "permissions": []}), 400),
    ] {
        let reply = p
            .call("POST", "/api/roles", Some(body.clone()), admin)
            .await;
        assert_eq!(reply.status, status, "{body}: {}", reply.body);
    }
    let invalid = p
        .call(
            "POST",
            "/api/roles",
            Some(json!({"id": "x5", "name": "X5", "permissions": ["a.b"]})),
            admin,
        )
        .await;
    assert_eq!(invalid.body["error"], "Invalid permissions");
    assert_eq!(invalid.body["invalid_permissions"], json!(["a.b"]));
    let changed = p
        .call(
            "PUT",
            "/api/roles/auditor",
            Some(json!({"permissions": ["teams.view", "team.members.view"]})),
            admin,
        )
        .await;
    assert_eq!(
        changed.body["data"]["permissions"],
        json!(["teams.view", "team.members.view"])
    );
    let system = p
        .call(
            "PUT",
            "/api/roles/global_user",
            Some(json!({"name": "X"})),
            admin,
        )
        .await;
    assert_eq!(
        (system.status, &system.body["error"]),
        (403, &json!("Cannot update system roles"))
    );
    assert_eq!(
        p.call("DELETE", "/api/roles/global_admin", None, admin)
            .await
            .body["error"],
        "Cannot delete system roles"
    );
    assert_eq!(
        p.call("GET", "/api/roles/none", None, admin).await.status,
        404
    );
    let deleted = p.call("DELETE", "/api/roles/auditor", None, admin).await;
    assert_eq!(
        deleted.body,
        json!({"success": true, "message": "Role deleted successfully"})
    );
    p.site.server.stop().await;
}
