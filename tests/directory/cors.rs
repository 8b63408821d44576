//! CORS for a frontend on another origin: preflights answered, every answer (errors too)
//! with the exact origin and credentials; other origins get nothing.

use crate::support::Site;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_origin_is_answered_with_credentials_and_others_are_not() {
    let site = Site::with(|cfg| {
        cfg.http.origins =
            deploystack_backend::net::AllowedOrigins::parse("https://app.example.com")
                .expect("valid");
    })
    .await;
    let http = &site.server.http;
    let preflight = http
        .request(reqwest::Method::OPTIONS, site.url("/api/users/me"))
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "PATCH")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .expect("preflight");
    assert_eq!(preflight.status(), 204);
    let h = preflight.headers();
    assert_eq!(h["access-control-allow-origin"], "https://app.example.com");
    assert_eq!(h["access-control-allow-credentials"], "true");
    assert_eq!(h["access-control-allow-headers"], "content-type");
    assert!(h["access-control-allow-methods"]
        .to_str()
        .expect("ascii")
        .contains("DELETE"));
    assert!(h["vary"].to_str().expect("ascii").contains("Origin"));
    // An error answer carries them too, so the page can read it.
    let denied = http
        .get(site.url("/api/users/me"))
        .header("origin", "https://app.example.com")
        .header("content-type", "application/json")
        .send()
        .await
        .expect("GET");
    assert_eq!(denied.status(), 401);
    assert_eq!(
        denied.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert_eq!(denied.headers()["access-control-allow-credentials"], "true");
    // Upstream's development origins are allowed by default.
    let dev = http
        .get(site.url("/api/db/status"))
        .header("origin", "http://localhost:5173")
        .send()
        .await
        .expect("GET");
    assert_eq!(
        dev.headers()["access-control-allow-origin"],
        "http://localhost:5173"
    );
    for origin in ["https://evil.example", "null"] {
        let other = http
            .get(site.url("/api/db/status"))
            .header("origin", origin)
            .send()
            .await
            .expect("GET");
        assert!(
            other.headers().get("access-control-allow-origin").is_none(),
            "{origin}"
        );
        let preflight = http
            .request(reqwest::Method::OPTIONS, site.url("/api/auth/email/login"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .send()
            .await
            .expect("preflight");
        assert_eq!(preflight.status(), 403, "{origin}");
    }
    site.server.stop().await;
}
