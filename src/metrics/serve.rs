//! The `/metrics` endpoint: on its own listener (`METRICS_ADDR`) and, with a token, on the
//! API's. A scrape without the right `Authorization: Bearer` header gets a JSON 401.

use std::sync::Arc;

use poem::http::{header, Method, StatusCode};
use poem::{Endpoint, Request, Response, Result};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use super::{Metrics, Sources};
use crate::api::error::{json_response, ErrorBody};

/// Path of the endpoint on either listener.
pub const PATH: &str = "/metrics";

/// Media type of the OpenMetrics text format, which Prometheus reads.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `GET /metrics`: the figures, when the caller may see them.
pub struct MetricsEndpoint {
    metrics: Arc<Metrics>,
    sources: Sources,
    /// SHA-256 of the token: compared digest to digest, so the comparison's timing says
    /// nothing about the token.
    token_digest: Option<[u8; 32]>,
}

impl MetricsEndpoint {
    /// The endpoint; with `METRICS_TOKEN` set every scrape must present it.
    pub fn new(metrics: Arc<Metrics>, sources: Sources) -> Self {
        let token_digest = token_digest(metrics.settings().token.as_ref());
        Self {
            metrics,
            sources,
            token_digest,
        }
    }

    fn allowed(&self, req: &Request) -> bool {
        let Some(expected) = &self.token_digest else {
            return true;
        };
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| digest(t.trim()));
        given.as_ref() == Some(expected)
    }
}

fn token_digest(token: Option<&SecretString>) -> Option<[u8; 32]> {
    token.map(|t| digest(t.expose_secret()))
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Endpoint for MetricsEndpoint {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Response> {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            let mut resp = json_response(
                StatusCode::METHOD_NOT_ALLOWED,
                &ErrorBody::new("method_not_allowed", "/metrics answers GET only"),
            );
            resp.headers_mut()
                .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
            return Ok(resp);
        }
        if !self.allowed(&req) {
            let mut resp = json_response(
                StatusCode::UNAUTHORIZED,
                &ErrorBody::new(
                    "unauthorized",
                    "/metrics needs the header `Authorization: Bearer <METRICS_TOKEN>`",
                ),
            );
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            return Ok(resp);
        }
        let body = self.metrics.render(&self.sources).await;
        Ok(Response::builder()
            .content_type(CONTENT_TYPE)
            .header(header::CACHE_CONTROL, "no-store")
            .body(body))
    }
}

/// The whole `METRICS_ADDR` listener: `/metrics`, and a JSON 404 for anything else.
pub fn listener_endpoint(metrics: Arc<Metrics>, sources: Sources) -> impl Endpoint {
    use poem::EndpointExt;

    poem::Route::new()
        .at(PATH, MetricsEndpoint::new(metrics, sources))
        .catch_all_error(|e| async move { crate::api::error::to_json_response(e) })
}
