//! HTTP conformance: `Allow` on every 405, the spec declaring every status the server answers
//! (with bodies of the declared shape), and clear messages for bad setup bodies.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{json, Value};

use super::server_for;
use crate::common::pg::TestDb;
use crate::common::server::{json_of, TestServer};

const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "QUERY",
];

/// Methods the spec lists for `path` (upper case), `HEAD` added where `GET` is.
fn spec_methods(spec: &Value, path: &str) -> BTreeSet<String> {
    let mut methods: BTreeSet<String> = spec["paths"][path]
        .as_object()
        .map(|ops| ops.keys().map(|m| m.to_uppercase()).collect())
        .unwrap_or_default();
    if methods.contains("GET") {
        methods.insert("HEAD".to_owned());
    }
    methods
}

fn allow_of(resp: &reqwest::Response) -> BTreeSet<String> {
    resp.headers()
        .get("allow")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(',').map(|m| m.trim().to_owned()).collect())
        .unwrap_or_default()
}

async fn send(server: &TestServer, method: &str, path: &str) -> reqwest::Response {
    let with_body = method == "POST";
    let method = Method::from_bytes(method.as_bytes()).expect("method");
    let mut request = server.http.request(method, format!("{}{path}", server.url));
    if with_body {
        // A body the setup rejects (400), so no test here performs it.
        request = request
            .header("content-type", "application/json")
            .body("{}");
    }
    request.send().await.expect("request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_path_answers_other_methods_with_405_and_allow() {
    let db = TestDb::new().await;
    let (server, _dir) = server_for(&db).await;
    let spec: Value = serde_json::from_str(&deploystack_backend::api::spec_json()).expect("spec");
    let templates = deploystack_backend::api::allow_table().templates();
    for path in spec["paths"].as_object().expect("paths").keys() {
        assert!(
            templates.contains(path),
            "{path} missing from the Allow table"
        );
    }
    for path in &templates {
        let expected = if spec["paths"].get(path).is_some() {
            spec_methods(&spec, path)
        } else {
            // Pages: read-only.
            ["GET", "HEAD"].map(str::to_owned).into()
        };
        for method in METHODS {
            let resp = send(&server, method, path).await;
            let status = resp.status().as_u16();
            if expected.contains(method) {
                assert!(
                    status != 405 && status != 404,
                    "{method} {path} is allowed but answered {status}"
                );
                continue;
            }
            assert_eq!(status, 405, "{method} {path}");
            assert_eq!(allow_of(&resp), expected, "Allow of {method} {path}");
            if method != "HEAD" {
                let (_, body) = json_of(resp).await;
                assert_eq!(body["error"], "Method Not Allowed", "{method} {path}");
            }
        }
    }
    // Nothing above ran the setup, and the server still serves.
    assert_eq!(server.get("/api/db/status").await.1["initialized"], false);
    server.stop().await;
}

/// Resolves a `$ref` to its schema in `components`.
fn schema<'a>(spec: &'a Value, declared: &'a Value) -> &'a Value {
    match declared["$ref"].as_str() {
        Some(reference) => {
            let name = reference.trim_start_matches("#/components/schemas/");
            &spec["components"]["schemas"][name]
        }
        None => declared,
    }
}

/// `status` is declared for `operation` (explicitly, not through `default`) and `body` has
/// the declared schema's required fields, and no others when the schema is closed.
fn assert_declared(spec: &Value, operation: &str, status: u16, body: &Value) {
    let (method, path) = operation.split_once(' ').expect("METHOD path");
    let op = &spec["paths"][path][method.to_lowercase()];
    let response = &op["responses"][status.to_string()];
    assert!(
        response.is_object(),
        "{operation} answered {status}, which the spec does not declare: {body}"
    );
    let declared = &response["content"]["application/json; charset=utf-8"]["schema"];
    let schema = schema(spec, declared);
    let object = body.as_object().expect("JSON object body");
    for field in schema["required"].as_array().into_iter().flatten() {
        let field = field.as_str().expect("field name");
        assert!(
            object.contains_key(field),
            "{operation} {status}: `{field}` missing from {body}"
        );
    }
    if schema["additionalProperties"] == false {
        let properties = schema["properties"].as_object().expect("properties");
        for key in object.keys() {
            assert!(properties.contains_key(key), "{operation} {status}: {key}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spec_declares_every_status_the_server_answers() {
    let db = TestDb::new().await;
    let (server, _dir) = server_for(&db).await;
    let (code, spec) = server.get("/documentation/json").await;
    assert_eq!(code, 200);
    let text = server
        .http
        .get(format!("{}/documentation/json", server.url))
        .send()
        .await
        .expect("GET")
        .text()
        .await
        .expect("text");
    assert_eq!(
        text,
        deploystack_backend::api::spec_json(),
        "served = committed"
    );
    let setup_schema = &spec["components"]["schemas"]["SetupRequest"];
    assert_eq!(
        setup_schema["additionalProperties"], false,
        "{setup_schema}"
    );
    let ui = server
        .http
        .get(format!("{}/documentation", server.url))
        .send()
        .await
        .expect("GET")
        .text()
        .await
        .expect("html");
    assert!(
        ui.contains("\"additionalProperties\": false"),
        "the UI shows the same spec"
    );

    // Every operation declares a JSON 500 (a panic answers it anywhere).
    for (path, ops) in spec["paths"].as_object().expect("paths") {
        for (method, op) in ops.as_object().expect("operations") {
            assert!(op["responses"]["500"].is_object(), "{method} {path}");
        }
    }

    // Operations without a body, as a client calls them.
    for path in ["/api/db/status", "/api/health", "/api/health/ready", "/"] {
        let (status, body) = server.get(path).await;
        assert_declared(&spec, &format!("GET {path}"), status, &body);
    }

    // Everything a client can get wrong with the setup body.
    let setup = "POST /api/db/setup";
    let url = format!("{}/api/db/setup", server.url);
    let big = format!(
        "{{\"type\":\"{}\"}}",
        "x".repeat(deploystack_backend::api::MAX_BODY_BYTES)
    );
    let cases: Vec<(Option<&str>, String, u16)> = vec![
        (Some("application/json"), big, 413),
        (Some("text/plain"), r#"{"type":"postgresql"}"#.into(), 415),
        (None, r#"{"type":"postgresql"}"#.into(), 415),
        (Some("application/json"), "{\"type\":".into(), 400),
        (
            Some("application/json"),
            r#"{"type":"postgresql","extra":1}"#.into(),
            400,
        ),
    ];
    for (content_type, body, expected) in cases {
        let mut request = server.http.post(&url).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let (status, answer) = json_of(request.send().await.expect("POST")).await;
        assert_eq!(status, expected, "{answer}");
        assert_declared(&spec, setup, status, &answer);
    }
    let (status, body) = server.setup().await;
    assert_declared(&spec, setup, status, &body);
    let (status, body) = server.setup().await;
    assert_eq!(status, 409);
    assert_declared(&spec, setup, status, &body);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_setup_bodies_get_messages_naming_the_problem() {
    let db = TestDb::new().await;
    let (server, _dir) = server_for(&db).await;
    let expected = r#"Expected a JSON body {"type":"postgresql"}."#;
    let cases = [
        (
            r#"{"type":"postgresql","extra":1}"#,
            "The request body has an unknown field `extra`.",
        ),
        ("{}", "The request body is missing the field `type`."),
        (
            r#"{"type":null}"#,
            "The request body is missing the field `type`.",
        ),
        (
            r#"{"type":"sqlite"}"#,
            r#"The field `type` has an invalid value "sqlite"."#,
        ),
        (
            r#"{"type":42}"#,
            "The field `type` must be a string, not an integer.",
        ),
        (
            r#"{"type":"postgresql","type":"postgresql"}"#,
            "The field `type` is given more than once.",
        ),
        ("[]", "The request body is not a JSON object."),
        ("", "The request body is empty."),
        (
            "{\"type\":",
            "The request body is not valid JSON: EOF while parsing a value at line 1 column 8.",
        ),
    ];
    for (body, problem) in cases {
        let resp = server
            .http
            .post(format!("{}/api/db/setup", server.url))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("POST");
        let (code, answer) = json_of(resp).await;
        assert_eq!(code, 400, "{body}: {answer}");
        assert_eq!(
            answer,
            json!({"error": "Invalid request body", "message": format!("{problem} {expected}")}),
            "{body}"
        );
    }
    // Client input quoted back is cut short.
    let long = format!(r#"{{"type":"postgresql","{}":1}}"#, "k".repeat(500));
    let (code, answer) = server
        .post_json("/api/db/setup", &serde_json::from_str(&long).expect("JSON"))
        .await;
    assert_eq!(code, 400);
    assert!(
        answer["message"].as_str().is_some_and(|m| m.len() < 200),
        "{answer}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_bodies_not_sent_as_json_are_415() {
    let db = TestDb::new().await;
    let (server, dir) = server_for(&db).await;
    let url = format!("{}/api/db/setup", server.url);
    let resp = server
        .http
        .post(&url)
        .header("content-type", "text/plain")
        .body(r#"{"type":"postgresql"}"#)
        .send()
        .await
        .expect("POST");
    let (code, body) = json_of(resp).await;
    assert_eq!(code, 415);
    assert_eq!(body["error"], "Unsupported Media Type");
    assert_eq!(
        body["message"],
        "The request body must be sent as `Content-Type: application/json`, not `text/plain`. \
         Expected a JSON body {\"type\":\"postgresql\"}."
    );
    let resp = server
        .http
        .post(&url)
        .body(r#"{"type":"postgresql"}"#)
        .send()
        .await
        .expect("POST");
    let (code, body) = json_of(resp).await;
    assert_eq!(code, 415);
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("no `Content-Type`")),
        "{body}"
    );
    assert!(!dir.path().join("db.selection.json").exists());
    assert!(!db.exists().await);
    server.stop().await;
}
