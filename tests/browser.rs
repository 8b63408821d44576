//! The setup wizard and the Swagger UI in a real headless Chromium, against a real server
//! and database. Screenshots of each state land in `target/tmp/screenshots/`.

mod common;

use common::browser::Browser;
use common::pg::{OwnCluster, TestDb};
use common::server::{config, TestServer};
use fantoccini::Locator;

async fn server_for(db: &TestDb) -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("dir");
    let server = TestServer::start(&config(db.connection.clone(), dir.path())).await;
    (server, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wizard_lists_the_variables_when_credentials_are_incomplete() {
    let db = TestDb::new().await;
    let mut connection = db.connection.clone();
    connection.password = None;
    let dir = tempfile::tempdir().expect("dir");
    let server = TestServer::start(&config(connection, dir.path())).await;
    let browser = Browser::start().await;
    browser
        .client
        .goto(&format!("{}/setup", server.url))
        .await
        .expect("goto");
    let text = browser.wait_visible("#state-incomplete").await;
    assert!(
        text.contains("POSTGRES_PASSWORD") && text.contains("embedded PostgreSQL"),
        "{text}"
    );
    assert!(!browser.is_visible("#state-ready").await);
    browser.screenshot("1-credentials-incomplete").await;
    browser.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wizard_sets_up_the_database_with_a_click() {
    let db = TestDb::new().await;
    let (server, _dir) = server_for(&db).await;
    let browser = Browser::start().await;

    // A browser opening / is sent to the wizard while setup is pending.
    browser.client.goto(&server.url).await.expect("goto");
    let url = browser.client.current_url().await.expect("url");
    assert_eq!(url.path(), "/setup");

    let text = browser.wait_visible("#state-ready").await;
    assert!(
        text.contains(&format!(
            "PostgreSQL at {}:{}/{}",
            db.connection.host, db.connection.port, db.connection.database
        )) && text.contains("Production")
            && !text.contains("For production, set"),
        "{text}"
    );
    let button = browser
        .client
        .find(Locator::Css("#setup-button"))
        .await
        .expect("button");
    assert_eq!(button.text().await.expect("label"), "Set up the database");
    browser.screenshot("2-ready-for-setup").await;

    browser.click("#setup-button").await;
    let done = browser.wait_visible("#state-done").await;
    assert!(done.contains("The database is set up"), "{done}");
    assert!(!browser.is_visible("#restart-notice").await);
    let outcome = browser
        .client
        .find(Locator::Css("#outcome"))
        .await
        .expect("live region");
    assert_eq!(
        outcome.attr("aria-live").await.expect("attr").as_deref(),
        Some("polite")
    );
    assert_eq!(
        outcome.text().await.expect("text"),
        "Database setup completed."
    );
    // Focus moves to the outcome so keyboard and screen reader users land on it.
    let focused = browser.client.active_element().await.expect("focus");
    assert_eq!(
        focused.attr("id").await.expect("id").as_deref(),
        Some("done-title")
    );
    browser.screenshot("3-setup-succeeded").await;
    assert_eq!(server.get("/api/db/status").await.1["initialized"], true);

    // Reloading shows the set-up state; a browser at / lands there too (the next step is
    // on that page), while API clients still get the banner.
    browser
        .client
        .goto(&format!("{}/setup", server.url))
        .await
        .expect("goto");
    browser.wait_visible("#state-done").await;
    browser.screenshot("4-already-set-up").await;
    browser.client.goto(&server.url).await.expect("goto");
    let url = browser.client.current_url().await.expect("url");
    assert_eq!(url.path(), "/setup");
    browser.wait_visible("#admin-form-step").await;
    let (_, banner) = server.get("/").await;
    assert_eq!(banner["status"], "Database Connected");
    browser.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wizard_shows_the_error_and_retries_when_postgres_returns() {
    let port = common::free_port();
    let own = OwnCluster::prepare(port).await;
    let first = own.cluster.start().await.expect("start");
    let db = TestDb::on(&first);
    first.stop().await.expect("stop");
    let (server, _dir) = server_for(&db).await;
    let browser = Browser::start().await;
    browser
        .client
        .goto(&format!("{}/setup", server.url))
        .await
        .expect("goto");
    // PostgreSQL is down: no setup button, a notice that the backend keeps trying.
    let text = browser.wait_visible("#state-unavailable").await;
    assert!(text.contains("keeps trying"), "{text}");
    assert!(!browser.is_visible("#state-ready").await);
    browser.screenshot("5-database-unavailable").await;

    // Back up: the page finds out by itself and offers setup.
    let running = own.cluster.start().await.expect("restart");
    browser.wait_visible("#state-ready").await;

    // Down again between the status and the click: the error, and a usable retry.
    running.stop().await.expect("stop");
    browser.click("#setup-button").await;
    let error = browser.wait_visible("#error").await;
    assert!(
        error.contains("Database unavailable") && error.contains("Check the backend logs"),
        "{error}"
    );
    let button = browser
        .client
        .find(Locator::Css("#setup-button"))
        .await
        .expect("button");
    assert!(
        button.is_enabled().await.expect("enabled"),
        "retry must be possible"
    );
    browser.screenshot("6-setup-error").await;

    let running = own.cluster.start().await.expect("restart");
    browser.click("#setup-button").await;
    browser.wait_visible("#state-done").await;
    assert!(
        !browser.is_visible("#error").await,
        "the old error is cleared"
    );
    browser.close().await;
    server.stop().await;
    drop(db);
    running.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wizard_fits_a_narrow_screen() {
    let db = TestDb::new().await;
    let (server, _dir) = server_for(&db).await;
    let browser = Browser::start().await;
    browser
        .client
        .set_window_size(360, 740)
        .await
        .expect("resize");
    browser
        .client
        .goto(&format!("{}/setup", server.url))
        .await
        .expect("goto");
    browser.wait_visible("#state-ready").await;
    let overflow = browser
        .client
        .execute(
            "return document.documentElement.scrollWidth > window.innerWidth;",
            vec![],
        )
        .await
        .expect("script");
    assert_eq!(
        overflow,
        serde_json::Value::Bool(false),
        "horizontal scrolling on a narrow screen"
    );
    browser.screenshot("6-narrow-screen").await;
    browser.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swagger_ui_lists_operations_and_executes_one() {
    let db = TestDb::new().await;
    let (server, _dir) = server_for(&db).await;
    let browser = Browser::start().await;
    browser
        .client
        .goto(&format!("{}/documentation", server.url))
        .await
        .expect("goto");
    browser
        .wait_visible("#operations-Database-getDatabaseStatus")
        .await;
    let page = browser
        .client
        .find(Locator::Css("#ui"))
        .await
        .expect("ui")
        .text()
        .await
        .expect("text");
    for path in [
        "/api/db/status",
        "/api/db/setup",
        "/api/health",
        "/api/health/ready",
    ] {
        assert!(page.contains(path), "Swagger UI lacks {path}");
    }

    browser
        .click("#operations-Database-getDatabaseStatus .opblock-summary-control")
        .await;
    browser
        .wait_visible("#operations-Database-getDatabaseStatus .try-out__btn")
        .await;
    browser
        .click("#operations-Database-getDatabaseStatus .try-out__btn")
        .await;
    browser
        .wait_visible("#operations-Database-getDatabaseStatus .execute")
        .await;
    browser
        .click("#operations-Database-getDatabaseStatus .execute")
        .await;
    let response = browser
        .wait_visible("#operations-Database-getDatabaseStatus .live-responses-table .response-col_description pre")
        .await;
    let mut live: serde_json::Value = serde_json::from_str(&response).expect("JSON response body");
    assert_eq!(live["database"]["kind"], "external");
    live.as_object_mut().map(|o| o.remove("database"));
    assert_eq!(
        live,
        serde_json::json!({"configured": true, "initialized": false, "dialect": "postgresql", "state": "setup_required"})
    );
    browser.screenshot("7-swagger-try-it-out").await;
    browser.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wizard_shows_why_the_backend_refuses_instead_of_offering_setup() {
    let db = TestDb::new().await;
    let (server, _dir) = server_for(&db).await;
    assert_eq!(server.setup().await.0, 200);
    common::wait_until(
        "the settings listener",
        std::time::Duration::from_secs(10),
        || async { server.state.settings.cache_enabled() },
    )
    .await;
    // Another process rotates the encryption secret: this server's key is stale.
    // (as a rotation leaves it: the key check belongs to another secret, and the notice)
    db.execute(&format!(
        "UPDATE encryption_key_check SET check_value = 'another secret'; SELECT pg_notify('{}', '{}')",
        deploystack_backend::settings::notify::CHANNEL,
        deploystack_backend::settings::notify::KEY_ROTATED
    ))
    .await;
    common::wait_until(
        "the rotation notice",
        std::time::Duration::from_secs(10),
        || async { server.state.settings.key_rotated() },
    )
    .await;
    // Why is for administrators: anonymous callers get upstream's three fields.
    let browser = Browser::start().await;
    browser
        .sign_in(&server.url, &server.admin_session().await)
        .await;
    browser
        .client
        .goto(&format!("{}/setup", server.url))
        .await
        .expect("goto");
    let text = browser.wait_visible("#state-refused").await;
    assert!(text.contains("restart"), "{text}");
    assert!(!browser.is_visible("#state-ready").await);
    browser.screenshot("8-refused").await;
    browser.close().await;
    server.stop().await;
}

/// The wizard's last step: after setup, the first account is created there and signed in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wizard_creates_the_administrator_and_signs_them_in() {
    let db = TestDb::new().await;
    let (server, _dir) = server_for(&db).await;
    let browser = Browser::start().await;
    browser
        .client
        .goto(&format!("{}/setup", server.url))
        .await
        .expect("goto");
    browser.wait_visible("#state-ready").await;
    browser.click("#setup-button").await;
    let step = browser.wait_visible("#admin-form-step").await;
    assert!(step.contains("Create the administrator account"), "{step}");
    browser.screenshot("6-administrator-step").await;

    // The server's own validation messages, next to their fields.
    browser.fill("#admin-username", "a").await;
    browser.fill("#admin-email", "not-an-email").await;
    browser.fill("#admin-password", "short").await;
    browser.click("#admin-button").await;
    let error = browser.wait_visible("#admin-password-error").await;
    assert_eq!(error, "Password must be 8 to 128 characters.");
    let error = browser.wait_visible("#admin-username-error").await;
    assert!(
        error.starts_with("Username must be 3 to 30 characters"),
        "{error}"
    );
    assert!(browser.is_visible("#admin-email-error").await);
    browser.screenshot("7-administrator-step-errors").await;

    browser.fill("#admin-username", "admin").await;
    browser.fill("#admin-email", "Admin@Example.com").await;
    browser
        .fill("#admin-password", "a good long password")
        .await;
    browser.click("#admin-button").await;
    let signed_in = browser.wait_visible("#admin-signed-in").await;
    assert!(
        signed_in.contains("admin (admin@example.com)"),
        "{signed_in}"
    );
    assert!(!browser.is_visible("#admin-form-step").await);
    browser.screenshot("8-administrator-signed-in").await;

    // The browser holds the session: /api/users/me answers the administrator.
    browser
        .client
        .goto(&format!("{}/api/users/me", server.url))
        .await
        .expect("goto");
    let text = browser
        .client
        .find(Locator::Css("body"))
        .await
        .expect("body")
        .text()
        .await
        .expect("text");
    let me: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(me["username"], "admin");
    assert_eq!(me["role_id"], "global_admin");
    browser.screenshot("9-users-me").await;
    browser.close().await;

    // Another browser (no session) is told an administrator exists; no form.
    let other = Browser::start().await;
    other
        .client
        .goto(&format!("{}/setup", server.url))
        .await
        .expect("goto");
    let exists = other.wait_visible("#admin-exists").await;
    assert!(exists.contains("An administrator exists"), "{exists}");
    assert!(!other.is_visible("#admin-form-step").await);
    other.close().await;
    server.stop().await;
}

/// With the embedded database, the wizard says so and what production needs instead; once
/// the frontend's address is set, the done state links to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wizard_names_the_embedded_database_and_links_the_frontend() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).expect("chmod");
    let unused = deploystack_backend::config::ConnectionTarget {
        host: "unused".into(),
        port: 5432,
        database: "unused".into(),
        user: "unused".into(),
        password: None,
        tls: deploystack_backend::config::TlsMode::Disabled,
    };
    let mut cfg = config(unused, dir.path());
    cfg.postgres = deploystack_backend::config::PostgresSource::Embedded;
    let server = TestServer::start(&cfg).await;
    let browser = Browser::start().await;
    browser
        .client
        .goto(&format!("{}/setup", server.url))
        .await
        .expect("goto");
    let text = browser.wait_visible("#state-ready").await;
    assert!(
        text.contains("Embedded PostgreSQL")
            && text.contains("For trying out")
            && text.contains("For production, set POSTGRES_HOST"),
        "{text}"
    );
    browser.screenshot("10-embedded-database").await;
    browser.click("#setup-button").await;
    browser.wait_visible("#admin-form-step").await;
    assert!(browser.is_visible("#no-frontend").await);
    server
        .state
        .settings
        .set("global.page_url", "https://deploystack.example.com")
        .await
        .expect("set");
    browser
        .client
        .goto(&format!("{}/setup", server.url))
        .await
        .expect("goto");
    let next = browser.wait_visible("#next-frontend").await;
    assert!(next.contains("https://deploystack.example.com"), "{next}");
    browser.screenshot("11-frontend-link").await;
    browser.close().await;
    server.stop().await;
}

/// A browser that did not run the setup (no setup grant) is asked for the setup token, and
/// with it creates the first administrator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wizard_in_another_browser_asks_for_the_setup_token() {
    let db = TestDb::new().await;
    let (server, dir) = server_for(&db).await;
    assert_eq!(server.setup().await.0, 200);
    let token_path = dir.path().join("setup.token");
    common::wait_until(
        "the setup token",
        std::time::Duration::from_secs(20),
        || async { token_path.exists() },
    )
    .await;
    let token = std::fs::read_to_string(&token_path).expect("token");
    let browser = Browser::start().await;
    browser
        .client
        .goto(&format!("{}/setup", server.url))
        .await
        .expect("goto");
    browser.wait_visible("#admin-form-step").await;
    assert!(!browser.is_visible("#admin-token-field").await);
    browser.fill("#admin-username", "admin").await;
    browser.fill("#admin-email", "admin@example.com").await;
    browser
        .fill("#admin-password", "a good long password")
        .await;
    browser.click("#admin-button").await;
    let error = browser.wait_visible("#admin-token-error").await;
    assert!(error.contains("setup token"), "{error}");
    browser.screenshot("10-administrator-setup-token").await;
    browser.fill("#admin-token", token.trim()).await;
    browser.click("#admin-button").await;
    let signed_in = browser.wait_visible("#admin-signed-in").await;
    assert!(
        signed_in.contains("admin (admin@example.com)"),
        "{signed_in}"
    );
    browser.close().await;
    server.stop().await;
}
