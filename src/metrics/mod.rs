//! Prometheus metrics: HTTP requests by route, the pools, the job queue, the schema version
//! and the setup phase, in the OpenMetrics text format. Served only where the operator says
//! (see [`crate::config::MetricsSettings`]): never on the public API without a token.

mod http;
mod labels;
mod scrape;
pub mod serve;

use prometheus_client::registry::Registry;
use tokio::sync::Mutex;

pub use http::{HttpMetrics, RequestMetrics};
pub use serve::MetricsEndpoint;

use crate::config::MetricsSettings;
use crate::db::observe::{new_histogram, QueryHistogram};
use crate::db::Database;
use crate::jobs::JobQueue;
use crate::lifecycle::Phase;

/// What a scrape reads, as narrow handles: the setup phase, the pools (through the database
/// handle) and the job queue, not the application's state (which holds the metrics).
#[derive(Clone)]
pub struct Sources {
    /// The lifecycle phase, as setup publishes it.
    pub phase: tokio::sync::watch::Receiver<Phase>,
    /// The pools' figures and the database for the queue's.
    pub database: Database,
    /// The job queue.
    pub queue: JobQueue,
}

/// The registry and the families the server records into.
pub struct Metrics {
    settings: MetricsSettings,
    registry: Registry,
    http: HttpMetrics,
    queries: std::sync::Arc<QueryHistogram>,
    scraped: scrape::ScrapedMetrics,
    /// One scrape at a time: scrape-time families are cleared and refilled.
    scrape: Mutex<()>,
}

impl Metrics {
    /// An empty registry with every family declared, served as `settings` say.
    pub fn new(settings: MetricsSettings) -> Self {
        let mut registry = Registry::default();
        let http = HttpMetrics::register(&mut registry);
        let scraped = scrape::ScrapedMetrics::register(&mut registry);
        let queries = std::sync::Arc::new(QueryHistogram::new_with_constructor(
            new_histogram as fn() -> _,
        ));
        registry.register(
            "deploystack_db_query_duration_seconds",
            "Duration of database statements, by statement kind",
            queries.as_ref().clone(),
        );
        Self {
            settings,
            registry,
            http,
            queries,
            scraped,
            scrape: Mutex::new(()),
        }
    }

    /// Where and how `/metrics` is served.
    pub fn settings(&self) -> &MetricsSettings {
        &self.settings
    }

    /// Where the HTTP middleware records.
    pub fn http(&self) -> HttpMetrics {
        self.http.clone()
    }

    /// Where the database connections record their statements' durations.
    pub fn query_histogram(&self) -> std::sync::Arc<QueryHistogram> {
        self.queries.clone()
    }

    /// The text a scrape gets: scrape-time figures read now, then every family encoded.
    pub async fn render(&self, sources: &Sources) -> String {
        let _one_at_a_time = self.scrape.lock().await;
        let phase = *sources.phase.borrow();
        self.scraped
            .refresh(phase, &sources.database, &sources.queue)
            .await;
        let mut text = String::with_capacity(16 * 1024);
        if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            // Writing to a String cannot fail; a label encoder could, and would be a bug.
            tracing::error!(error = %e, "cannot encode the metrics");
        }
        text
    }
}
