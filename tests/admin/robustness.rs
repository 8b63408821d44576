//! Bad input of every kind to every admin route that takes a body: malformed JSON, wrong
//! types, huge values, unknown fields, random bytes. Every answer is a 4xx JSON body, never a
//! 500, and a seeded random search tries many more shapes than the hand-written cases.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::Admin;

const WRITES: &[(&str, &str)] = &[
    ("POST", "/api/settings"),
    ("PUT", "/api/settings/global.page_url"),
    ("POST", "/api/settings/search"),
    ("POST", "/api/settings/bulk"),
];

fn random_value(rng: &mut StdRng, depth: u32) -> Value {
    match rng.random_range(0..if depth > 2 { 5 } else { 7 }) {
        0 => Value::Null,
        1 => json!(rng.random::<bool>()),
        2 => json!(rng.random::<i64>()),
        3 => json!(rng.random::<f64>() * 1e300),
        4 => {
            let len = rng.random_range(0..40);
            Value::String(
                (0..len)
                    .map(|_| char::from(rng.random_range(0u8..=127)))
                    .collect(),
            )
        }
        5 => Value::Array(
            (0..rng.random_range(0..4))
                .map(|_| random_value(rng, depth + 1))
                .collect(),
        ),
        _ => {
            let keys = [
                "key",
                "value",
                "type",
                "description",
                "encrypted",
                "group_id",
                "settings",
                "pattern",
                "x",
            ];
            Value::Object(
                (0..rng.random_range(0..5))
                    .map(|_| {
                        (
                            keys[rng.random_range(0..keys.len())].to_owned(),
                            random_value(rng, depth + 1),
                        )
                    })
                    .collect(),
            )
        }
    }
}

async fn send_raw(
    admin: &Admin,
    method: &str,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, String) {
    let http = &admin.site.server.http;
    let url = admin.site.url(path);
    let request = match method {
        "POST" => http.post(url),
        _ => http.put(url),
    };
    let resp = request
        .header("content-type", content_type)
        .header("cookie", format!("session={}", admin.admin))
        .body(body)
        .send()
        .await
        .expect("send");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

fn assert_clean_refusal(status: u16, text: &str, what: &str) {
    assert!(
        (200..500).contains(&status) && status != 401 && status != 403,
        "{what}: {status} {text}"
    );
    let body: Value =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {text}"));
    if status >= 400 {
        assert_eq!(body["success"], false, "{what}: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_are_refused_with_json_never_500() {
    let admin = Admin::new().await;
    let huge = "x".repeat(900_000);
    let handmade: Vec<(&str, Vec<u8>)> = vec![
        ("application/json", b"".to_vec()),
        ("application/json", b"{".to_vec()),
        ("application/json", b"null".to_vec()),
        ("application/json", b"[]".to_vec()),
        ("application/json", b"\"text\"".to_vec()),
        (
            "application/json",
            b"{\"key\": 1, \"value\": [], \"type\": false}".to_vec(),
        ),
        ("application/json", b"{\"unknown\": true}".to_vec()),
        (
            "application/json",
            b"{\"settings\": {\"not\": \"a list\"}}".to_vec(),
        ),
        (
            "application/json",
            b"{\"settings\": [1, \"two\", null]}".to_vec(),
        ),
        (
            "application/json",
            format!("{{\"key\": \"k.huge\", \"value\": \"{huge}\", \"type\": \"string\"}}")
                .into_bytes(),
        ),
        ("application/json", vec![0xff, 0xfe, 0x00, 0x7b]),
        (
            "application/json",
            b"{\"key\": \"a\\u0000b\", \"value\": \"v\\u0000\", \"type\": \"string\"}".to_vec(),
        ),
        ("text/plain", b"{\"pattern\": \"x\"}".to_vec()),
        (
            "application/x-www-form-urlencoded",
            b"key=a&value=b".to_vec(),
        ),
    ];
    for (method, path) in WRITES {
        for (content_type, body) in &handmade {
            let (status, text) = send_raw(&admin, method, path, content_type, body.clone()).await;
            assert_clean_refusal(
                status,
                &text,
                &format!(
                    "{method} {path} {content_type} {:.60}",
                    String::from_utf8_lossy(body)
                ),
            );
        }
    }
    let mut rng = StdRng::seed_from_u64(0x5eed);
    for round in 0..300 {
        let (method, path) = WRITES[round % WRITES.len()];
        let body = random_value(&mut rng, 0).to_string().into_bytes();
        let (status, text) = send_raw(&admin, method, path, "application/json", body.clone()).await;
        assert_clean_refusal(
            status,
            &text,
            &format!("{method} {path} {}", String::from_utf8_lossy(&body)),
        );
    }
    // Query parameters of the reads.
    for query in [
        "limit=%00",
        "offset=99999999999999999999",
        "status=%FF",
        "before=%27;--",
        "type=",
    ] {
        let reply = admin
            .site
            .get(&format!("/api/admin/jobs?{query}"), Some(&admin.admin))
            .await;
        assert!(reply.status < 500, "{query}: {}", reply.body);
    }
    let reply = admin
        .site
        .get("/api/settings?reveal=perhaps", Some(&admin.admin))
        .await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    admin.site.server.stop().await;
}

/// PostgreSQL's text cannot hold a NUL character: each field that reaches it refuses one as
/// bad input, naming the field, instead of failing in the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_characters_are_bad_input_everywhere() {
    let admin = Admin::new().await;
    let site = &admin.site;
    let session = Some(admin.admin.as_str());
    let created = site
        .post(
            "/api/settings",
            json!({"key": "probe.plain", "value": "v", "type": "string"}),
            session,
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    // Each field that reaches PostgreSQL, with the status it must get.
    let bodies: Vec<(&str, &str, Value, u16)> = vec![
        (
            "POST",
            "/api/settings",
            json!({"key": "probe.a", "value": "v\u{0}", "type": "string"}),
            400,
        ),
        (
            "POST",
            "/api/settings",
            json!({"key": "probe.b", "value": "v", "type": "string", "description": "d\u{0}"}),
            400,
        ),
        (
            "POST",
            "/api/settings",
            json!({"key": "probe.c", "value": "v", "type": "string", "group_id": "g\u{0}"}),
            400,
        ),
        (
            "POST",
            "/api/settings",
            json!({"key": "probe.d\u{0}", "value": "v", "type": "string"}),
            400,
        ),
        (
            "POST",
            "/api/settings",
            json!({"key": "probe.s", "value": "v\u{0}", "type": "string", "encrypted": true}),
            400,
        ),
        (
            "PUT",
            "/api/settings/probe.plain",
            json!({"value": "v\u{0}"}),
            400,
        ),
        (
            "PUT",
            "/api/settings/probe.plain",
            json!({"description": "d\u{0}"}),
            400,
        ),
        (
            "PUT",
            "/api/settings/probe.plain",
            json!({"group_id": "g\u{0}"}),
            400,
        ),
        ("PUT", "/api/settings/probe%00", json!({"value": "v"}), 404),
        (
            "POST",
            "/api/settings/search",
            json!({"pattern": "a\u{0}"}),
            200,
        ),
        (
            "POST",
            "/api/settings/bulk",
            json!({"settings": [{"key": "probe.e", "value": "v\u{0}", "type": "string"}]}),
            400,
        ),
        (
            "POST",
            "/api/auth/email/register",
            json!({"username": "nul", "email": "nul@example.com", "password": "password-nul", "first_name": "a\u{0}"}),
            400,
        ),
        (
            "POST",
            "/api/auth/email/register",
            json!({"username": "nul", "email": "nul\u{0}@example.com", "password": "password-nul"}),
            400,
        ),
        (
            "POST",
            "/api/auth/email/login",
            json!({"login": "nul\u{0}", "password": "password-nul"}),
            400,
        ),
    ];
    for (method, path, body, expected) in bodies {
        let request = match method {
            "POST" => site.server.http.post(site.url(path)),
            _ => site.server.http.put(site.url(path)),
        };
        let reply = site.send(request.json(&body), session).await;
        assert_eq!(
            reply.status, expected,
            "{method} {path} {body}: {}",
            reply.body
        );
        assert_eq!(
            reply.body["success"],
            expected == 200,
            "{path}: {}",
            reply.body
        );
        if expected == 400 && path.starts_with("/api/settings") {
            let said = reply.body.to_string();
            assert!(
                said.contains("NUL") || said.contains("invalid setting key"),
                "{said}"
            );
        }
    }
    for (path, expected) in [
        ("/api/settings/probe%00", 404),
        ("/api/settings/groups/g%00", 404),
        ("/api/admin/jobs?type=a%00", 400),
        ("/api/admin/jobs?before=a%00", 400),
        ("/api/admin/jobs/search?id=a%00", 400),
        ("/api/admin/jobs/search?type=a%00", 400),
        ("/api/admin/jobs/a%00", 404),
        ("/api/admin/jobs/batches/a%00", 404),
    ] {
        let reply = site.get(path, session).await;
        assert_eq!(reply.status, expected, "GET {path}: {}", reply.body);
        assert_eq!(reply.body["success"], false, "{path}: {}", reply.body);
    }
    let reply = site
        .send(
            site.server.http.delete(site.url("/api/settings/probe%00")),
            session,
        )
        .await;
    assert_eq!(reply.status, 404, "{}", reply.body);
    for path in [
        "/api/admin/jobs/batches/a%00/cancel",
        "/api/admin/jobs/batches/a%00/retry",
    ] {
        let reply = site.post(path, json!({}), session).await;
        assert_eq!(reply.status, 404, "POST {path}: {}", reply.body);
    }
    // Nothing was stored, and the plain setting is as it was.
    let stored = site
        .rows("SELECT count(*) FROM global_settings WHERE key LIKE 'probe.%'")
        .await;
    assert_eq!(stored[0].get::<_, i64>(0), 1);
    let registered = site
        .rows("SELECT count(*) FROM users WHERE username = 'nul'")
        .await;
    assert_eq!(registered[0].get::<_, i64>(0), 0);
    admin.site.server.stop().await;
}
