//! Upstream's settings routes with the defects fixed.

use serde_json::json;

use crate::common::server::{config, TestServer};
use crate::Admin;

async fn stored(admin: &Admin, key: &str) -> (String, bool) {
    let rows = admin
        .site
        .rows(&format!(
            "SELECT value, is_encrypted FROM global_settings WHERE key = '{key}'"
        ))
        .await;
    (rows[0].get(0), rows[0].get(1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_masked_unless_revealed_and_stay_encrypted() {
    let admin = Admin::new().await;
    let site = &admin.site;
    let session = Some(admin.admin.as_str());
    let reply = site
        .send(
            site.server
                .http
                .put(site.url("/api/settings/smtp.password"))
                .json(&json!({"value": "hunter2-secret"})),
            session,
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["data"]["value"], "********");
    assert_eq!(reply.body["message"], "Setting updated successfully");
    let (value, encrypted) = stored(&admin, "smtp.password").await;
    assert!(encrypted && !value.contains("hunter2"), "stored encrypted");

    let reply = site.get("/api/settings/smtp.password", session).await;
    assert_eq!(reply.body["data"]["value"], "********");
    assert_eq!(reply.body["data"]["is_encrypted"], true);
    let reply = site
        .get("/api/settings/smtp.password?reveal=true", session)
        .await;
    assert_eq!(reply.body["data"]["value"], "hunter2-secret");
    let list = site.get("/api/settings", session).await;
    assert!(
        !list.body.to_string().contains("hunter2"),
        "masked in lists"
    );
    let groups = site.get("/api/settings/groups", session).await;
    assert!(
        !groups.body.to_string().contains("hunter2"),
        "masked in groups"
    );

    // A form that shows the mask and is saved as is changes nothing.
    site.send(
        site.server
            .http
            .put(site.url("/api/settings/smtp.password"))
            .json(&json!({"value": "********", "description": "relay password"})),
        session,
    )
    .await;
    let reply = site
        .get("/api/settings/smtp.password?reveal=true", session)
        .await;
    assert_eq!(reply.body["data"]["value"], "hunter2-secret");
    assert_eq!(reply.body["data"]["description"], "relay password");

    // A declared secret cannot be stored in plaintext.
    let reply = site
        .send(
            site.server
                .http
                .put(site.url("/api/settings/smtp.password"))
                .json(&json!({"encrypted": false})),
            session,
        )
        .await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert!(stored(&admin, "smtp.password").await.1);

    // A setting of our own, created encrypted, keeps it through a PUT without `encrypted`.
    let reply = site
        .post(
            "/api/settings",
            json!({"key": "custom.token", "value": "t0ken", "type": "string", "encrypted": true}),
            session,
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    site.send(
        site.server
            .http
            .put(site.url("/api/settings/custom.token"))
            .json(&json!({"value": "t0ken-2"})),
        session,
    )
    .await;
    let (value, encrypted) = stored(&admin, "custom.token").await;
    assert!(encrypted && !value.contains("t0ken"));
    // ... and only an explicit `encrypted: false` stores it in plaintext. That reveals the
    // secret: the answer shows it only with `reveal=true`.
    let reply = site
        .send(
            site.server
                .http
                .put(site.url("/api/settings/custom.token"))
                .json(&json!({"encrypted": false})),
            session,
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["data"]["value"], "********");
    assert_eq!(
        stored(&admin, "custom.token").await,
        ("t0ken-2".to_owned(), false)
    );
    let reply = site
        .send(
            site.server
                .http
                .put(site.url("/api/settings/custom.other?reveal=true"))
                .json(&json!({"encrypted": false})),
            session,
        )
        .await;
    assert_eq!(reply.status, 404, "{}", reply.body);
    let reply = site
        .send(
            site.server
                .http
                .put(site.url("/api/settings/custom.token?reveal=true"))
                .json(&json!({"encrypted": true})),
            session,
        )
        .await;
    assert_eq!(
        reply.body["data"]["value"], "t0ken-2",
        "revealed on request"
    );
    let reply = site
        .send(
            site.server
                .http
                .put(site.url("/api/settings/custom.token?reveal=true"))
                .json(&json!({"encrypted": false})),
            session,
        )
        .await;
    assert_eq!(
        reply.body["data"]["value"], "t0ken-2",
        "decrypted and revealed"
    );
    admin.site.server.stop().await;
}

/// One thread: the capturing subscriber is this thread's default, and every task of the
/// server runs on it.
#[tokio::test(flavor = "current_thread")]
async fn each_reveal_is_logged_with_key_and_user_never_the_value() {
    let capture = crate::common::log_capture::LogCapture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let admin = Admin::new().await;
    let site = &admin.site;
    let session = Some(admin.admin.as_str());
    site.send(
        site.server
            .http
            .put(site.url("/api/settings/github.oauth.client_secret"))
            .json(&json!({"value": "s3cr3t-value-xyz"})),
        session,
    )
    .await;
    let me = site.get("/api/users/me", session).await;
    let id = me.body["id"].as_str().expect("id").to_owned();
    let reply = site
        .get(
            "/api/settings/github.oauth.client_secret?reveal=true",
            session,
        )
        .await;
    assert_eq!(reply.body["data"]["value"], "s3cr3t-value-xyz");
    admin.site.server.stop().await;
    let log = capture.text();
    let line = log
        .lines()
        .find(|l| {
            l.contains("revealed an encrypted setting") && l.contains("github.oauth.client_secret")
        })
        .unwrap_or_else(|| panic!("no reveal line in {log}"));
    assert!(line.contains(&id), "{line}");
    assert!(
        !log.contains("s3cr3t-value-xyz"),
        "the value is never logged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_update_delete_and_their_refusals() {
    let admin = Admin::new().await;
    let site = &admin.site;
    let session = Some(admin.admin.as_str());
    let created = site
        .post(
            "/api/settings",
            json!({"key": "custom.limit", "value": 12, "type": "number", "description": "A limit", "group_id": "global"}),
            session,
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["data"]["value"], "12");
    assert_eq!(created.body["message"], "Setting created successfully");
    let again = site
        .post(
            "/api/settings",
            json!({"key": "custom.limit", "value": 1, "type": "number"}),
            session,
        )
        .await;
    assert_eq!(again.status, 409);
    assert_eq!(
        again.body,
        json!({"success": false, "error": "Setting with this key already exists. Use PUT to update."})
    );
    for (body, what) in [
        (
            json!({"key": "custom.bad", "value": "lots", "type": "number"}),
            "not a number",
        ),
        (
            json!({"key": "custom.bad", "value": "x", "type": "colour"}),
            "type",
        ),
        (
            json!({"key": "bad key!", "value": "x", "type": "string"}),
            "invalid setting key",
        ),
        (
            json!({"key": "custom.bad", "value": "x", "type": "string", "group_id": "nope"}),
            "group",
        ),
        (
            json!({"key": "global.enable_login", "value": "x", "type": "string"}),
            "declared as a boolean",
        ),
        (
            json!({"key": "global.enable_login", "value": "false", "type": "boolean"}),
            "already exists",
        ),
        (
            json!({"key": "custom.bad", "type": "string"}),
            "`value` is required",
        ),
        (
            json!({"key": "custom.bad", "value": {"nested": 1}, "type": "string"}),
            "string, a number or a boolean",
        ),
    ] {
        let reply = site.post("/api/settings", body.clone(), session).await;
        assert!(
            [400, 409].contains(&reply.status) && reply.body.to_string().contains(what),
            "{body}: {} {}",
            reply.status,
            reply.body
        );
    }
    let reply = site
        .send(
            site.server
                .http
                .put(site.url("/api/settings/custom.limit"))
                .json(&json!({})),
            session,
        )
        .await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    let reply = site
        .send(
            site.server
                .http
                .put(site.url("/api/settings/nope.none"))
                .json(&json!({"value": "1"})),
            session,
        )
        .await;
    assert_eq!(
        (reply.status, &reply.body),
        (
            404,
            &json!({"success": false, "error": "Setting not found"})
        )
    );
    let reply = site.get("/api/settings/nope.none", session).await;
    assert_eq!(reply.status, 404);
    let reply = site
        .send(
            site.server
                .http
                .delete(site.url("/api/settings/custom.limit")),
            session,
        )
        .await;
    assert_eq!(
        reply.body,
        json!({"success": true, "message": "Setting deleted successfully"})
    );
    let reply = site
        .send(
            site.server
                .http
                .delete(site.url("/api/settings/custom.limit")),
            session,
        )
        .await;
    assert_eq!(reply.status, 404);
    admin.site.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_is_literal_and_groups_nest_their_settings_in_order() {
    let admin = Admin::new().await;
    let site = &admin.site;
    let session = Some(admin.admin.as_str());
    for key in ["lit.a_b", "lit.axb"] {
        let reply = site
            .post(
                "/api/settings",
                json!({"key": key, "value": "v", "type": "string"}),
                session,
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
    }
    // `%` and `_` are plain characters (in LIKE they would match anything).
    for (pattern, expected) in [
        ("a_b", vec!["lit.a_b"]),
        ("a%b", vec![]),
        ("lit.", vec!["lit.a_b", "lit.axb"]),
    ] {
        let found = site
            .post("/api/settings/search", json!({"pattern": pattern}), session)
            .await;
        let keys: Vec<&str> = found.body["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|s| s["key"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(keys, expected, "{pattern}");
    }
    let found = site
        .post("/api/settings/search", json!({"pattern": "smtp."}), session)
        .await;
    assert_eq!(found.body["data"].as_array().map(Vec::len), Some(8));

    let groups = site.get("/api/settings/groups", session).await;
    let ids: Vec<&str> = groups.body["data"]
        .as_array()
        .expect("groups")
        .iter()
        .map(|g| g["id"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(&ids[..3], ["global", "smtp", "github-oauth"], "{ids:?}");
    let smtp = site.get("/api/settings/groups/smtp", session).await;
    let orders: Vec<i64> = smtp.body["data"]["settings"]
        .as_array()
        .expect("settings")
        .iter()
        .map(|s| s["sort_order"].as_i64().unwrap_or(-1))
        .collect();
    let mut sorted = orders.clone();
    sorted.sort();
    assert_eq!(orders, sorted);
    assert_eq!(smtp.body["data"]["settings"][0]["key"], "smtp.enabled");
    let missing = site.get("/api/settings/groups/nope", session).await;
    assert_eq!(
        (missing.status, &missing.body),
        (404, &json!({"success": false, "error": "Group not found"}))
    );
    let categories = site.get("/api/settings/categories", session).await;
    assert!(categories.body["data"]
        .as_array()
        .expect("list")
        .iter()
        .any(|c| c == "smtp"));
    let health = site.get("/api/settings/health", session).await;
    assert_eq!(health.body["data"]["encryption_working"], true);
    admin.site.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_answers_200_207_or_400() {
    let admin = Admin::new().await;
    let site = &admin.site;
    let session = Some(admin.admin.as_str());
    let all = site
        .post(
            "/api/settings/bulk",
            json!({"settings": [
                {"key": "smtp.host", "value": "mail.example.com"},
                {"key": "smtp.port", "value": 2525},
                {"key": "bulk.new", "value": "made", "type": "string"}
            ]}),
            session,
        )
        .await;
    assert_eq!(all.status, 200, "{}", all.body);
    assert_eq!(all.body["data"].as_array().map(Vec::len), Some(3));
    let some = site
        .post(
            "/api/settings/bulk",
            json!({"settings": [{"key": "smtp.port", "value": "many"}, {"key": "smtp.host", "value": "mx"}]}),
            session,
        )
        .await;
    assert_eq!(some.status, 207, "{}", some.body);
    assert_eq!(some.body["errors"][0]["key"], "smtp.port");
    let none = site
        .post(
            "/api/settings/bulk",
            json!({"settings": [{"key": "smtp.port", "value": "many"}, {"value": "no key"}]}),
            session,
        )
        .await;
    assert_eq!(none.status, 400, "{}", none.body);
    assert_eq!(none.body["success"], false);
    assert_eq!(none.body["details"].as_array().map(Vec::len), Some(2));
    // Nothing of the failed items was written.
    let port = site.get("/api/settings/smtp.port", session).await;
    assert_eq!(port.body["data"]["value"], "2525");
    admin.site.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_reaches_another_process_at_once() {
    let admin = Admin::new().await;
    let site = &admin.site;
    let other_dir = tempfile::tempdir().expect("dir");
    std::fs::copy(
        site.dir.path().join("db.selection.json"),
        other_dir.path().join("db.selection.json"),
    )
    .expect("selection");
    let other = TestServer::start(&config(site.db.connection.clone(), other_dir.path())).await;
    other.wait_initialized().await;
    let login = |url: String| async move {
        reqwest::Client::new()
            .post(format!("{url}/api/auth/email/login"))
            .json(&json!({"login": "user", "password": "password-user"}))
            .send()
            .await
            .expect("login")
            .status()
            .as_u16()
    };
    // The other process has read (and cached) the setting.
    assert_eq!(login(other.url.clone()).await, 200);
    let reply = site
        .send(
            site.server
                .http
                .put(site.url("/api/settings/global.enable_login"))
                .json(&json!({"value": false})),
            Some(&admin.admin),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    crate::common::wait_until(
        "the other process to refuse sign-ins",
        std::time::Duration::from_secs(5),
        || {
            let url = other.url.clone();
            async move { login(url).await == 403 }
        },
    )
    .await;
    other.stop().await;
    admin.site.server.stop().await;
}
