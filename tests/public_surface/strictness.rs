//! Input is what it says: a wrong JSON type, a key or a query parameter given twice are
//! refused naming them; usernames are unique whatever their case; two session cookies are
//! none; sign-up opens no session while sign-in is off; the documentation and version
//! settings do what they say.

use serde_json::json;

use crate::support::Site;

async fn raw_register(site: &Site, body: &str) -> crate::support::Reply {
    let request = site
        .server
        .http
        .post(site.url("/api/auth/email/register"))
        .header("content-type", "application/json")
        .body(body.to_owned());
    site.send_with(request, None, true).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_types_and_keys_given_twice_are_named() {
    let site = Site::new().await;
    let reply = raw_register(
        &site,
        r#"{"username":123,"email":"a@b.co","password":"12345678"}"#,
    )
    .await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert_eq!(
        reply.body,
        json!({"success": false, "error": "Validation error",
               "details": [{"field": "username", "message": "must be a string, not an integer"}]})
    );
    let reply = raw_register(
        &site,
        r#"{"username":"ann","email":"a@b.co","password":"12345678","password":"other-one"}"#,
    )
    .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.body["details"][0]["field"], "password");
    assert_eq!(
        reply.body["details"][0]["message"],
        "is given more than once"
    );
    let reply = raw_register(
        &site,
        r#"{"username":"ann","email":true,"password":"12345678"}"#,
    )
    .await;
    assert_eq!(reply.body["details"][0]["field"], "email");
    assert_eq!(
        site.rows("SELECT count(*) FROM users").await[0].get::<_, i64>(0),
        0
    );

    let admin = site.register("admin").await.session();
    let reply = site
        .get(
            "/api/settings/global.page_url?reveal=true&reveal=false",
            Some(&admin),
        )
        .await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert_eq!(
        reply.body["message"],
        "The query parameter `reveal` is given more than once."
    );
    assert_eq!(site.get("/api/health?a=1&b=2", None).await.status, 200);
    site.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usernames_are_unique_whatever_their_case_and_sign_in_ignores_it() {
    let site = Site::new().await;
    site.register("bob").await;
    for taken in ["Bob", "BOB"] {
        let reply = site
            .post(
                "/api/auth/email/register",
                json!({"username": taken, "email": format!("{taken}2@example.com"), "password": "12345678"}),
                None,
            )
            .await;
        assert_eq!(reply.status, 400, "{taken}");
        assert_eq!(reply.body["error"], "Username already in use.");
    }
    assert_eq!(site.login("BoB", "password-bob").await.status, 200);
    // The database holds it too, whatever writes the row.
    let err = site
        .db
        .try_execute("INSERT INTO users (id, username, email, auth_type) VALUES ('x', 'bOb', 'x@example.com', 'email_signup')")
        .await;
    assert!(err.is_err(), "a unique index on lower(username)");
    site.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_session_cookies_are_none() {
    let site = Site::new().await;
    let token = site.register("ann").await.session();
    let me = |cookie: String| {
        let site = &site;
        async move {
            site.server
                .http
                .get(site.url("/api/users/me"))
                .header("cookie", cookie)
                .send()
                .await
                .expect("answer")
                .status()
                .as_u16()
        }
    };
    assert_eq!(me(format!("session={token}")).await, 200);
    assert_eq!(me(format!("session=junk; session={token}")).await, 401);
    assert_eq!(me(format!("session={token}; session={token}")).await, 401);
    site.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_opens_no_session_while_sign_in_is_off() {
    let site = Site::new().await;
    site.register("admin").await;
    site.server
        .state
        .settings
        .set("global.enable_login", "false")
        .await
        .expect("set");
    let reply = site
        .post(
            "/api/auth/email/register",
            json!({"username": "bob", "email": "bob@example.com", "password": "12345678"}),
            None,
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert!(
        reply.headers.get("set-cookie").is_none(),
        "{:?}",
        reply.headers
    );
    let sessions = site
        .rows("SELECT count(*) FROM auth_sessions s JOIN users u ON u.id = s.user_id WHERE u.username = 'bob'")
        .await;
    assert_eq!(sessions[0].get::<_, i64>(0), 0);
    site.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documentation_and_version_settings_do_what_they_say() {
    let site = Site::new().await;
    assert!(site.server.get("/").await.1["version"].is_string());
    let docs = site
        .server
        .http
        .get(site.url("/documentation/json"))
        .send()
        .await
        .expect("docs");
    assert_eq!(docs.status(), 200);
    for (key, value) in [
        ("global.enable_swagger_docs", "false"),
        ("global.show_version", "false"),
    ] {
        site.server
            .state
            .settings
            .set(key, value)
            .await
            .expect("set");
    }
    for path in ["/documentation", "/documentation/", "/documentation/json"] {
        let (code, body) = site.server.get(path).await;
        assert_eq!(
            (code, body),
            (
                404,
                json!({"error": "Not Found", "message": "API documentation is disabled."})
            ),
            "{path}"
        );
    }
    let (_, banner) = site.server.get("/").await;
    assert!(banner.get("version").is_none(), "{banner}");
    assert_eq!(banner["status"], "Database Connected");
    site.server.stop().await;
}
