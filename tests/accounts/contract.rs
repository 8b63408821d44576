//! Upstream's contract, answer by answer, with its exact bodies.

use serde_json::json;

use crate::support::Site;

/// Upstream's 401, exactly (no other field).
fn auth_required() -> serde_json::Value {
    json!({"success": false, "error": "Authentication required"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_account_becomes_the_signed_in_administrator_with_a_default_team() {
    let site = Site::new().await;
    let status = site.get("/api/auth/status", None).await;
    assert_eq!(
        status.body,
        json!({"administrator_exists": false, "login_enabled": true, "registration_enabled": true,
               "frontend_url": null})
    );
    let reply = site
        .post(
            "/api/auth/email/register",
            json!({"username": "Ann_1", "email": "Ann@Example.com", "password": "correct horse",
                   "first_name": "Ann", "last_name": null}),
            None,
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let id = reply.body["user"]["id"].as_str().expect("id").to_owned();
    assert_eq!(
        reply.body,
        json!({
            "success": true,
            "message": "User registered successfully. You are now logged in as the global administrator.",
            "user": {"id": id, "username": "Ann_1", "email": "ann@example.com",
                     "first_name": "Ann", "last_name": null, "role_id": "global_admin"}
        })
    );
    let cookie = reply.set_cookie().to_owned();
    assert!(
        cookie.contains("; Path=/")
            && cookie.contains("; HttpOnly")
            && cookie.contains("; SameSite=Lax")
            && cookie.contains("; Max-Age=34560000")
            && !cookie.contains("Secure"),
        "{cookie}"
    );
    let token = reply.session();
    assert_eq!(token.len(), 64);
    // Only the token's hash is stored.
    let stored: String = site.rows("SELECT id FROM auth_sessions").await[0].get(0);
    assert_ne!(stored, token);

    let me = site.get("/api/users/me", Some(&token)).await;
    assert_eq!(me.status, 200, "{}", me.body);
    // The bare profile upstream's frontend reads, with the header options.
    assert!(me.body.get("success").is_none(), "{}", me.body);
    assert_eq!(me.body["id"], id.as_str());
    assert_eq!(
        me.body["user_display_settings"],
        json!({"header_show_discord": false, "header_show_feedback": true})
    );
    assert_eq!(me.body["role_id"], "global_admin");
    assert_eq!(me.body["email_verified"], true);
    assert_eq!(me.body["auth_type"], "email_signup");

    let teams = site
        .rows(&format!(
            "SELECT t.name, t.slug, t.is_default, m.role FROM teams t \
             JOIN team_memberships m ON m.team_id = t.id AND m.user_id = t.owner_id \
             WHERE t.owner_id = '{id}'"
        ))
        .await;
    assert_eq!(teams.len(), 1);
    assert_eq!(teams[0].get::<_, String>(0), "Ann_1");
    assert_eq!(teams[0].get::<_, String>(1), "ann_1");
    assert!(teams[0].get::<_, bool>(2));
    assert_eq!(teams[0].get::<_, String>(3), "team_admin");

    // Later accounts are users, also signed in, with a team of their own.
    let bob = site.register("bob").await;
    assert_eq!(
        bob.body["message"],
        "User registered successfully. You can now log in to your account."
    );
    assert_eq!(bob.body["user"]["role_id"], "global_user");
    let me = site.get("/api/users/me", Some(&bob.session())).await;
    assert_eq!(me.body["email_verified"], false);
    let status = site.get("/api/auth/status", None).await;
    assert_eq!(status.body["administrator_exists"], true);
    site.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_refusals_have_upstreams_bodies() {
    let site = Site::new().await;
    site.register("ann").await;
    let cases = [
        (
            json!({"username": "ann2", "email": "ANN@example.com", "password": "12345678"}),
            json!({"success": false, "error": "Email address already in use."}),
        ),
        (
            json!({"username": "ann", "email": "other@example.com", "password": "12345678"}),
            json!({"success": false, "error": "Username already in use."}),
        ),
        (
            json!({"username": "a b", "email": "nope", "password": "short", "last_name": "x".repeat(101)}),
            json!({"success": false, "error": "Validation error", "details": [
                {"field": "username", "message": "must be 3 to 30 characters of a-z, A-Z, 0-9, _, . and -"},
                {"field": "email", "message": "must be an email address (name@example.com), at most 255 characters"},
                {"field": "password", "message": "must be 8 to 128 characters"},
                {"field": "last_name", "message": "must be at most 100 characters"},
            ]}),
        ),
        (
            json!({"username": "carl", "email": "carl@example.com", "password": "12345678", "role_id": "global_admin"}),
            json!({"success": false, "error": "Validation error", "details": [
                {"field": "body", "message": "The request body has an unknown field `role_id`."}]}),
        ),
        (
            json!({"username": "carl", "password": "12345678"}),
            json!({"success": false, "error": "Validation error", "details": [
                {"field": "email", "message": "is required"}]}),
        ),
    ];
    for (body, expected) in cases {
        let reply = site
            .post("/api/auth/email/register", body.clone(), None)
            .await;
        assert_eq!((reply.status, &reply.body), (400, &expected), "{body}");
        assert!(reply.headers.get("set-cookie").is_none());
    }
    assert_eq!(
        site.rows("SELECT count(*) FROM users").await[0].get::<_, i64>(0),
        1,
        "nothing was created"
    );
    site.server
        .state
        .settings
        .set("global.enable_email_registration", "false")
        .await
        .expect("set");
    let reply = site
        .post(
            "/api/auth/email/register",
            json!({"username": "dora", "email": "dora@example.com", "password": "12345678"}),
            None,
        )
        .await;
    assert_eq!(reply.status, 403);
    assert_eq!(
        reply.body,
        json!({"success": false, "error": "Email registration is currently disabled by administrator."})
    );
    site.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_by_email_or_username_and_every_miss_answers_alike() {
    let site = Site::new().await;
    let ann = site.register("ann").await;
    let id = ann.body["user"]["id"].as_str().expect("id").to_owned();
    // Email addresses and usernames are both compared ignoring case.
    for login in ["ann@example.com", "ANN@Example.COM", "ann", "Ann"] {
        let reply = site.login(login, "password-ann").await;
        assert_eq!(reply.status, 200, "{login}: {}", reply.body);
        assert_eq!(
            reply.body,
            json!({"success": true, "message": "Logged in successfully.", "user": {
                "id": id, "username": "ann", "email": "ann@example.com",
                "first_name": null, "last_name": null, "role_id": "global_admin"}})
        );
        let me = site.get("/api/users/me", Some(&reply.session())).await;
        assert_eq!(me.body["id"], id.as_str());
    }
    // An account without a password (a GitHub sign-up).
    site.sql(
        "INSERT INTO users (id, username, email, auth_type) VALUES ('gh', 'gh', 'gh@example.com', 'github')",
    )
    .await;
    let miss = json!({"success": false, "error": "Invalid email/username or password."});
    for (login, password) in [
        ("ann", "password-ANN"),
        ("nobody@example.com", "password-ann"),
        ("ann_", "password-ann"),
        ("gh@example.com", "anything-at-all"),
    ] {
        let reply = site.login(login, password).await;
        assert_eq!((reply.status, &reply.body), (400, &miss), "{login}");
        assert!(reply.headers.get("set-cookie").is_none());
    }
    let reply = site
        .post("/api/auth/email/login", json!({"login": "ann"}), None)
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.body["error"], "Validation error");
    site.server
        .state
        .settings
        .set("global.enable_login", "false")
        .await
        .expect("set");
    let reply = site.login("ann", "password-ann").await;
    assert_eq!(reply.status, 403);
    assert_eq!(
        reply.body,
        json!({"success": false, "error": "Login is currently disabled by administrator."})
    );
    site.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_ends_the_session_at_once_and_clears_the_cookie() {
    let site = Site::new().await;
    let first = site.register("ann").await.session();
    let second = site.login("ann", "password-ann").await.session();
    let out = site.post("/api/auth/logout", json!({}), Some(&first)).await;
    assert_eq!(out.status, 200);
    assert_eq!(
        out.body,
        json!({"success": true, "message": "Logged out successfully."})
    );
    assert!(
        out.set_cookie().starts_with("session=; Path=/; Max-Age=0"),
        "{}",
        out.set_cookie()
    );
    let me = site.get("/api/users/me", Some(&first)).await;
    assert_eq!(me.status, 401);
    assert_eq!(me.body, auth_required());
    // Another session of the same account lives on.
    assert_eq!(site.get("/api/users/me", Some(&second)).await.status, 200);
    // Without a session: the same answer, nothing to end.
    let out = site.post("/api/auth/logout", json!({}), None).await;
    assert_eq!(out.status, 200);
    site.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_live_session_me_answers_401() {
    let site = Site::new().await;
    let me = site.get("/api/users/me", None).await;
    assert_eq!((me.status, me.body), (401, auth_required()));
    for token in ["garbage", &"a".repeat(64), "", "'; DROP TABLE users; --"] {
        let me = site.get("/api/users/me", Some(token)).await;
        assert_eq!((me.status, me.body), (401, auth_required()), "{token}");
    }
    site.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_forms_cannot_sign_in_or_register() {
    let site = Site::new().await;
    site.register("ann").await;
    for (path, content_type, body) in [
        (
            "/api/auth/email/login",
            "application/x-www-form-urlencoded",
            "login=ann&password=password-ann",
        ),
        (
            "/api/auth/email/register",
            "application/x-www-form-urlencoded",
            "username=eve&email=eve%40example.com&password=12345678",
        ),
        (
            "/api/auth/email/login",
            "text/plain",
            r#"{"login":"ann","password":"password-ann"}"#,
        ),
        (
            "/api/auth/email/register",
            "multipart/form-data; boundary=x",
            "--x--",
        ),
    ] {
        let request = site
            .server
            .http
            .post(site.url(path))
            .header("content-type", content_type)
            .header("origin", "https://evil.example")
            .body(body);
        let reply = site.send(request, None).await;
        assert_eq!(reply.status, 415, "{path} {content_type}: {}", reply.body);
        assert_eq!(reply.body["success"], false);
        assert_eq!(reply.body["error"], "Unsupported Media Type");
        assert!(reply.headers.get("set-cookie").is_none());
    }
    assert_eq!(
        site.rows("SELECT count(*) FROM users").await[0].get::<_, i64>(0),
        1
    );
    site.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cookie_is_secure_over_tls_and_with_same_site_none() {
    let login = |site: &Site| {
        site.server
            .http
            .post(site.url("/api/auth/email/login"))
            .header("x-forwarded-proto", "https")
            .json(&json!({"login": "ann", "password": "password-ann"}))
    };
    // From a peer that is not a trusted proxy, the header is not believed.
    let site = Site::new().await;
    site.register("ann").await;
    let reply = site.send(login(&site), None).await;
    assert!(
        !reply.set_cookie().contains("Secure"),
        "{}",
        reply.set_cookie()
    );
    site.server.stop().await;
    // From a trusted proxy, it is.
    let site = Site::with(|cfg| {
        cfg.http.trusted_proxies =
            deploystack_backend::net::TrustedProxies::parse("127.0.0.1").expect("valid");
    })
    .await;
    site.register("ann").await;
    let reply = site.send(login(&site), None).await;
    assert!(
        reply.set_cookie().ends_with("; Secure"),
        "{}",
        reply.set_cookie()
    );
    site.server.stop().await;

    let site = Site::with(|cfg| {
        cfg.accounts.same_site = deploystack_backend::config::SameSite::None;
    })
    .await;
    let reply = site.register("bob").await;
    assert!(
        reply.set_cookie().contains("SameSite=None") && reply.set_cookie().ends_with("; Secure"),
        "{}",
        reply.set_cookie()
    );
    site.server.stop().await;
}
