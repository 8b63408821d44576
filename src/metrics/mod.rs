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
use crate::state::AppState;

/// The registry and the families the server records into.
pub struct Metrics {
    settings: MetricsSettings,
    registry: Registry,
    http: HttpMetrics,
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
        Self {
            settings,
            registry,
            http,
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

    /// The text a scrape gets: scrape-time figures read now, then every family encoded.
    pub async fn render(&self, state: &AppState) -> String {
        let _one_at_a_time = self.scrape.lock().await;
        self.scraped
            .refresh(state.setup.phase(), &state.database, state.jobs.queue())
            .await;
        let mut text = String::with_capacity(16 * 1024);
        if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            // Writing to a String cannot fail; a label encoder could, and would be a bug.
            tracing::error!(error = %e, "cannot encode the metrics");
        }
        text
    }
}
