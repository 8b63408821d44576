//! `/metrics`: on its own loopback listener, or on the API behind a token, never on the API
//! without one; request counts by route template, the pool, the job queue, the schema and
//! the setup phase, as a real Prometheus scrape reads them.

use deploystack_backend::config::MetricsSettings;
use deploystack_backend::jobs::EnqueueOptions;
use secrecy::SecretString;
use serde_json::json;

use crate::common::pg::TestDb;
use crate::common::server::{config, json_of, TestServer};

const TOKEN: &str = "scrape-token-4f1d9a7c2b";
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The value of the one sample whose line starts with `series` followed by a space.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| {
            v.trim()
                .parse()
                .unwrap_or_else(|e| panic!("{series}: {v}: {e}"))
        })
}

async fn scrape(http: &reqwest::Client, url: &str, token: Option<&str>) -> (u16, String, String) {
    let mut req = http.get(url);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let resp = req.send().await.expect("scrape");
    let code = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (code, content_type, resp.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loopback_listener_serves_what_the_server_is_doing() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("dir");
    let mut cfg = config(db.connection.clone(), dir.path());
    cfg.pool.max_size = 7;
    cfg.metrics = MetricsSettings {
        addr: Some("127.0.0.1:0".parse().expect("addr")),
        token: None,
    };
    let server = TestServer::start(&cfg).await;
    let url = format!(
        "{}/metrics",
        server.metrics_url.clone().expect("metrics listener")
    );

    // Before setup: the phase, no pool, no queue figures.
    let (code, content_type, text) = scrape(&server.http, &url, None).await;
    assert_eq!((code, content_type.as_str()), (200, OPENMETRICS), "{text}");
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert_eq!(
        sample(&text, r#"deploystack_setup_phase{phase="setup_required"}"#),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, r#"deploystack_setup_phase{phase="ready"}"#),
        Some(0.0)
    );
    assert_eq!(
        sample(&text, r#"deploystack_db_pool_connections{pool="primary"}"#),
        None
    );
    assert_eq!(sample(&text, "deploystack_jobs_figures_up"), Some(0.0));

    assert_eq!(server.setup().await.0, 200);
    for _ in 0..3 {
        assert_eq!(server.get("/api/health/ready").await.0, 200);
    }
    assert_eq!(server.get("/api/plugin/none/x/17").await.0, 404);
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    server
        .state
        .jobs
        .queue()
        .enqueue(
            "metrics_probe",
            json!({}),
            EnqueueOptions {
                scheduled_for: Some(later),
                ..EnqueueOptions::default()
            },
        )
        .await
        .expect("enqueue");

    let (code, _, text) = scrape(&server.http, &url, None).await;
    assert_eq!(code, 200, "{text}");
    assert_eq!(
        sample(&text, r#"deploystack_setup_phase{phase="ready"}"#),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, r#"deploystack_setup_phase{phase="setup_required"}"#),
        Some(0.0)
    );
    // Requests by route template: exact counts, the scrapes themselves not among them.
    assert_eq!(
        sample(
            &text,
            r#"deploystack_http_requests_total{method="GET",route="/api/health/ready",status="200"}"#
        ),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"deploystack_http_request_duration_seconds_count{method="GET",route="/api/health/ready"}"#
        ),
        Some(3.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"deploystack_http_requests_total{method="POST",route="/api/db/setup",status="200"}"#
        ),
        Some(1.0)
    );
    // An unknown path is never a label of its own: it counts as `unmatched`.
    assert!(!text.contains("/x/17"), "{text}");
    assert_eq!(
        sample(
            &text,
            r#"deploystack_http_requests_total{method="GET",route="unmatched",status="404"}"#
        ),
        Some(1.0)
    );
    assert!(!text.contains("/metrics"), "{text}");
    // The pool, the queue and the schema.
    assert_eq!(
        sample(
            &text,
            r#"deploystack_db_pool_max_connections{pool="primary"}"#
        ),
        Some(7.0)
    );
    let open = sample(&text, r#"deploystack_db_pool_connections{pool="primary"}"#).expect("pool");
    assert!((1.0..=7.0).contains(&open), "{open}");
    assert_eq!(
        sample(&text, r#"deploystack_db_pool_waiting{pool="primary"}"#),
        Some(0.0)
    );
    let created = sample(
        &text,
        r#"deploystack_db_pool_connections_created_total{pool="primary"}"#,
    )
    .expect("created");
    assert!(created >= open, "{created} < {open}");
    assert!(text.contains("# TYPE deploystack_db_pool_connections_created counter"));
    // Every statement's duration, by kind (the queue's figures ran selects just now).
    assert!(text.contains("# TYPE deploystack_db_query_duration_seconds histogram"));
    let selects = sample(
        &text,
        r#"deploystack_db_query_duration_seconds_count{kind="select"}"#,
    )
    .expect("selects counted");
    assert!(selects >= 1.0, "{selects}");
    assert_eq!(sample(&text, "deploystack_jobs_figures_up"), Some(1.0));
    assert_eq!(
        sample(
            &text,
            r#"deploystack_jobs{status="pending",type="metrics_probe"}"#
        ),
        Some(1.0),
        "{text}"
    );
    let known = sample(&text, "deploystack_schema_migrations_known").expect("known");
    assert!(known >= 1.0);
    assert_eq!(
        sample(&text, "deploystack_schema_migrations_applied"),
        Some(known)
    );
    assert!(
        text.contains("deploystack_schema_version{version=\""),
        "{text}"
    );

    // The API itself has no /metrics without a token; the listener has nothing else.
    assert_eq!(server.get("/metrics").await.0, 404);
    let metrics_root = server.metrics_url.clone().expect("url");
    let (code, body) = json_of(
        server
            .http
            .get(format!("{metrics_root}/api/health/ready"))
            .send()
            .await
            .expect("get"),
    )
    .await;
    assert_eq!(code, 404, "{body}");
    let (code, body) = json_of(server.http.post(&url).send().await.expect("post")).await;
    assert_eq!(
        (code, body["error"].as_str()),
        (405, Some("method_not_allowed"))
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_api_metrics_need_the_token() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("dir");
    let mut cfg = config(db.connection.clone(), dir.path());
    cfg.metrics = MetricsSettings {
        addr: None,
        token: Some(SecretString::from(TOKEN)),
    };
    let server = TestServer::start(&cfg).await;
    assert!(server.metrics_url.is_none());
    let url = format!("{}/metrics", server.url);

    for token in [None, Some("scrape-token-wrong-00000"), Some("")] {
        let resp = server.http.get(&url);
        let resp = match token {
            Some(t) => resp.bearer_auth(t),
            None => resp,
        };
        let resp = resp.send().await.expect("scrape");
        assert_eq!(
            resp.headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok()),
            Some("Bearer")
        );
        let (code, body) = json_of(resp).await;
        assert_eq!(code, 401, "{body}");
        assert_eq!(body["error"], "unauthorized");
        assert!(!body.to_string().contains(TOKEN));
    }
    let (code, content_type, text) = scrape(&server.http, &url, Some(TOKEN)).await;
    assert_eq!((code, content_type.as_str()), (200, OPENMETRICS), "{text}");
    assert_eq!(
        sample(&text, r#"deploystack_setup_phase{phase="setup_required"}"#),
        Some(1.0)
    );
    // Refused scrapes are requests like any other.
    assert_eq!(
        sample(
            &text,
            r#"deploystack_http_requests_total{method="GET",route="/metrics",status="401"}"#
        ),
        Some(3.0),
        "{text}"
    );
    server.stop().await;
}
