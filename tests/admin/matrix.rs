//! Every admin route as anonymous (401), as a user (403) and as the administrator (neither).

use serde_json::{json, Value};

use crate::Admin;

/// Method, path and body of every admin route.
pub fn routes() -> Vec<(&'static str, &'static str, Option<Value>)> {
    vec![
        ("GET", "/api/settings", None),
        ("GET", "/api/settings/global.page_url", None),
        (
            "POST",
            "/api/settings",
            Some(json!({"key": "matrix.new", "value": "x", "type": "string"})),
        ),
        (
            "PUT",
            "/api/settings/global.page_url",
            Some(json!({"description": "front"})),
        ),
        ("DELETE", "/api/settings/matrix.gone", None),
        (
            "POST",
            "/api/settings/search",
            Some(json!({"pattern": "smtp"})),
        ),
        (
            "POST",
            "/api/settings/bulk",
            Some(json!({"settings": [{"key": "global.show_version", "value": true}]})),
        ),
        ("GET", "/api/settings/groups", None),
        ("GET", "/api/settings/groups/global", None),
        ("GET", "/api/settings/categories", None),
        ("GET", "/api/settings/health", None),
        ("GET", "/api/admin/jobs", None),
        ("GET", "/api/admin/jobs/search?type=x", None),
        ("GET", "/api/admin/jobs/stats", None),
        ("GET", "/api/admin/jobs/some-job", None),
        ("GET", "/api/admin/jobs/batches/some-batch", None),
        ("POST", "/api/admin/jobs/batches/some-batch/cancel", None),
        ("POST", "/api/admin/jobs/batches/some-batch/retry", None),
    ]
}

/// The answer of `route` for `session`.
pub async fn call(
    admin: &Admin,
    (method, path, body): &(&'static str, &'static str, Option<Value>),
    session: Option<&str>,
) -> crate::support::Reply {
    let http = &admin.site.server.http;
    let url = admin.site.url(path);
    let request = match *method {
        "GET" => http.get(url),
        "POST" => http.post(url),
        "PUT" => http.put(url),
        "DELETE" => http.delete(url),
        other => panic!("{other}"),
    };
    let request = match body {
        Some(body) => request.json(body),
        None => request,
    };
    admin.site.send(request, session).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_admin_route_is_for_the_administrator_only() {
    let admin = Admin::new().await;
    let denied = json!({"success": false, "error": "Insufficient permissions", "required_role": "global_admin"});
    let anonymous = json!({"success": false, "error": "Authentication required"});
    for route in routes() {
        let reply = call(&admin, &route, None).await;
        assert_eq!(
            (reply.status, &reply.body),
            (401, &anonymous),
            "{route:?} anonymous"
        );
        let reply = call(&admin, &route, Some("0".repeat(64).as_str())).await;
        assert_eq!(
            (reply.status, &reply.body),
            (401, &anonymous),
            "{route:?} unknown session"
        );
        let reply = call(&admin, &route, Some(&admin.user)).await;
        assert_eq!(
            (reply.status, &reply.body),
            (403, &denied),
            "{route:?} user"
        );
        let reply = call(&admin, &route, Some(&admin.admin)).await;
        assert!(
            ![401, 403, 500].contains(&reply.status),
            "{route:?} admin: {} {}",
            reply.status,
            reply.body
        );
    }
    // Nothing the user or anonymous calls did happened.
    assert!(
        admin
            .site
            .rows("SELECT 1 FROM global_settings WHERE key = 'matrix.new'")
            .await
            .len()
            == 1,
        "created once, by the administrator"
    );
    admin.site.server.stop().await;
}
