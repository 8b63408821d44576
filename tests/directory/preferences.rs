//! `/api/users/me/preferences`: declared keys with their defaults, typed writes.

use serde_json::json;

use crate::People;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preferences_read_as_declared_and_refuse_what_is_not() {
    let p = People::new(&["ann", "bob"]).await;
    let ann = Some(p.user(0));
    let all = p.call("GET", "/api/users/me/preferences", None, ann).await;
    assert_eq!(all.body["success"], true);
    assert_eq!(all.body["preferences"]["walkthrough_completed"], false);
    assert_eq!(all.body["preferences"]["email_notifications_enabled"], true);
    let status = p
        .call(
            "GET",
            "/api/users/me/preferences/walkthrough/status",
            None,
            ann,
        )
        .await;
    assert_eq!(status.body["should_show_walkthrough"], true);
    let set = p
        .call(
            "POST",
            "/api/users/me/preferences",
            Some(json!({"walkthrough_completed": true, "beta_features_enabled": true})),
            ann,
        )
        .await;
    assert_eq!(
        set.body,
        json!({"success": true, "message": "Preferences updated successfully"})
    );
    assert_eq!(
        p.call(
            "GET",
            "/api/users/me/preferences/walkthrough_completed",
            None,
            ann
        )
        .await
        .body["value"],
        true
    );
    assert_eq!(
        p.call(
            "GET",
            "/api/users/me/preferences/walkthrough/status",
            None,
            ann
        )
        .await
        .body["should_show_walkthrough"],
        false
    );
    // Another account's preferences are its own.
    assert_eq!(
        p.call(
            "GET",
            "/api/users/me/preferences/walkthrough_completed",
            None,
            Some(p.user(1))
        )
        .await
        .body["value"],
        false
    );
    for (method, path, body) in [
        ("POST", "/api/users/me/preferences", json!({})),
        (
            "POST",
            "/api/users/me/preferences",
            json!({"walkthrough_completed": "yes"}),
        ),
        (
            "POST",
            "/api/users/me/preferences",
            json!({"theme": "dark"}),
        ),
        (
            "PUT",
            "/api/users/me/preferences/theme",
            json!({"value": "dark"}),
        ),
        (
            "PUT",
            "/api/users/me/preferences/beta_features_enabled",
            json!({"value": "true"}),
        ),
    ] {
        let reply = p.call(method, path, Some(body.clone()), ann).await;
        assert_eq!(reply.status, 400, "{method} {path} {body}: {}", reply.body);
    }
    let put = p
        .call(
            "PUT",
            "/api/users/me/preferences/beta_features_enabled",
            Some(json!({"value": false})),
            ann,
        )
        .await;
    assert_eq!(
        put.body["message"],
        "Preference 'beta_features_enabled' updated successfully"
    );
    assert_eq!(
        p.call("GET", "/api/users/me/preferences/nothing", None, ann)
            .await
            .status,
        404
    );
    for id in ["n1", "n2", "n1"] {
        let ack = p
            .call(
                "POST",
                "/api/users/me/preferences/notifications/acknowledge",
                Some(json!({"notification_id": id})),
                ann,
            )
            .await;
        assert_eq!(
            ack.body["message"],
            format!("Notification '{id}' acknowledged successfully")
        );
    }
    assert_eq!(
        p.call(
            "GET",
            "/api/users/me/preferences/notification_acknowledgments",
            None,
            ann
        )
        .await
        .body["value"],
        "n1,n2"
    );
    assert_eq!(
        p.call(
            "POST",
            "/api/users/me/preferences/walkthrough/cancel",
            None,
            Some(p.user(1))
        )
        .await
        .status,
        200
    );
    assert_eq!(
        p.call("GET", "/api/users/me/preferences", None, None)
            .await
            .status,
        401
    );
    p.site.server.stop().await;
}
