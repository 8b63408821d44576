//! Request counts and latency histograms by route template, recorded by a middleware that
//! sits outside the panic catcher, so requests that panicked count as the 500s they became.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use futures_util::future::Either;
use futures_util::FutureExt;

use poem::{Endpoint, IntoResponse, Middleware, PathPattern, Request, Response, Result};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use super::labels::{Method, RequestLabels, Route, RouteLabels, Status};

/// Route label of requests that matched no route.
const UNMATCHED: &str = "unmatched";

type Latencies = Family<RouteLabels, Histogram, fn() -> Histogram>;

/// The HTTP families.
#[derive(Clone)]
pub struct HttpMetrics {
    requests: Family<RequestLabels, Counter>,
    latency: Latencies,
    unmatched: Route,
}

impl std::fmt::Debug for HttpMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HttpMetrics")
    }
}

/// 0.25 ms to about 4 s, doubling: a cached answer and a slow query both land in a bucket
/// of their own.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
}

impl HttpMetrics {
    /// Registers the families in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let requests = Family::<RequestLabels, Counter>::default();
        let latency: Latencies = Family::new_with_constructor(latency_histogram);
        registry.register(
            "deploystack_http_requests",
            "HTTP requests answered, by method, route template and status",
            requests.clone(),
        );
        registry.register(
            "deploystack_http_request_duration_seconds",
            "Time from receiving a request to its answer, by method and route template",
            latency.clone(),
        );
        Self {
            requests,
            latency,
            unmatched: Route(Arc::from(UNMATCHED)),
        }
    }

    fn observe(&self, method: Method, route: Route, status: u16, seconds: f64) {
        self.latency
            .get_or_create(&RouteLabels {
                method,
                route: route.clone(),
            })
            .observe(seconds);
        self.requests
            .get_or_create(&RequestLabels {
                method,
                route,
                status: Status(status),
            })
            .inc();
    }
}

/// The middleware: records every answer in [`HttpMetrics`].
pub struct RequestMetrics(pub Option<HttpMetrics>);

impl<E: Endpoint> Middleware<E> for RequestMetrics {
    type Output = RequestMetricsEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        RequestMetricsEndpoint {
            inner,
            metrics: self.0.clone(),
        }
    }
}

/// Endpoint wrapped by [`RequestMetrics`].
pub struct RequestMetricsEndpoint<E> {
    inner: E,
    metrics: Option<HttpMetrics>,
}

impl<E: Endpoint> Endpoint for RequestMetricsEndpoint<E> {
    type Output = Response;

    // Not an `async fn`, so the request is not stored beside the inner future, and without
    // metrics the layer adds nothing to it.
    fn call(&self, req: Request) -> impl Future<Output = Result<Response>> + Send {
        let Some(metrics) = &self.metrics else {
            return Either::Left(
                self.inner
                    .call(req)
                    .map(|r| r.map(IntoResponse::into_response)),
            );
        };
        let method = Method::of(req.method());
        let started = Instant::now();
        Either::Right(self.inner.call(req).map(move |result| {
            let resp = match result {
                Ok(resp) => resp.into_response(),
                Err(err) => err.into_response(),
            };
            let route = match resp.data::<PathPattern>() {
                Some(PathPattern(pattern)) => Route(pattern.clone()),
                None => metrics.unmatched.clone(),
            };
            metrics.observe(
                method,
                route,
                resp.status().as_u16(),
                started.elapsed().as_secs_f64(),
            );
            Ok(resp)
        }))
    }
}
