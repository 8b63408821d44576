//! A state-changing request carrying the session cookie must come from this server's origin
//! or an allowed frontend origin; requests naming no origin (curl, scripts) pass.

use serde_json::json;

use crate::support::Site;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_carrying_writes_from_other_origins_are_refused() {
    let site = Site::with(|cfg| {
        cfg.http.origins =
            deploystack_backend::net::AllowedOrigins::parse("https://app.example.com")
                .expect("valid");
    })
    .await;
    let session = site.register("admin").await.session();
    let put = |origin: Option<&'static str>, referer: Option<&'static str>, value: &'static str| {
        let site = &site;
        let session = session.clone();
        async move {
            let mut request = site
                .server
                .http
                .put(site.url("/api/settings/global.page_url"))
                .json(&json!({"value": value}));
            if let Some(origin) = origin {
                request = request.header("origin", origin);
            }
            if let Some(referer) = referer {
                request = request.header("referer", referer);
            }
            site.send(request, Some(&session)).await
        }
    };
    let refused = put(Some("https://evil.example"), None, "https://evil.example").await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(refused.body["error"], "Forbidden");
    assert!(
        refused.body["message"]
            .as_str()
            .is_some_and(|m| m.contains("https://evil.example")),
        "{}",
        refused.body
    );
    let by_referer = put(
        None,
        Some("https://evil.example/page"),
        "https://evil.example",
    )
    .await;
    assert_eq!(by_referer.status, 403);
    assert_eq!(
        put(Some("null"), None, "https://x.example").await.status,
        403
    );
    let unchanged = site
        .get("/api/settings/global.page_url", Some(&session))
        .await;
    assert_ne!(unchanged.body["data"]["value"], "https://evil.example");
    // The allowed frontend, this server itself, and a client that names no origin pass.
    assert_eq!(
        put(Some("https://app.example.com"), None, "https://a.example")
            .await
            .status,
        200
    );
    let own = site.server.url.clone();
    let own: &'static str = Box::leak(own.into_boxed_str());
    assert_eq!(put(Some(own), None, "https://b.example").await.status, 200);
    assert_eq!(put(None, None, "https://c.example").await.status, 200);

    // A body-less sign-out from another site does not end the session.
    let request = site
        .server
        .http
        .post(site.url("/api/auth/logout"))
        .header("origin", "https://evil.example");
    assert_eq!(site.send(request, Some(&session)).await.status, 403);
    assert_eq!(site.get("/api/users/me", Some(&session)).await.status, 200);
    let request = site
        .server
        .http
        .post(site.url("/api/auth/logout"))
        .header("origin", "https://app.example.com");
    assert_eq!(site.send(request, Some(&session)).await.status, 200);
    assert_eq!(site.get("/api/users/me", Some(&session)).await.status, 401);
    site.server.stop().await;
}
