//! Per-query instrumentation, in diesel's instrumentation slot of every connection the
//! connector opens: the duration of each statement into a histogram by statement kind
//! (`/metrics`, when something serves metrics), and a warning for each statement slower than
//! `POSTGRES_SLOW_QUERY_MS` with its text (parameters stay out: they are values, and values
//! may be secrets) and duration; the request's span adds its request id.
//!
//! The statement's text is only built for a statement that is slow or counted: diesel builds
//! it from the query on demand.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::connection::{Instrumentation, InstrumentationEvent};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use tracing::warn;

/// Statement durations by kind, as `/metrics` shows them.
pub type QueryHistogram = Family<QueryLabels, Histogram, fn() -> Histogram>;

/// Labels of a statement's duration.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueryLabels {
    /// `select`, `insert`, `update`, `delete`, `with`, or `other`.
    pub kind: &'static str,
}

/// Buckets of the statement duration histogram, in seconds (0.1 ms to 10 s).
pub fn new_histogram() -> Histogram {
    Histogram::new([
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        5.0, 10.0,
    ])
}

/// What every connection of a connector records; cheap to clone.
#[derive(Clone, Default)]
pub struct Observation {
    /// Statements slower than this are logged; `None`: none are.
    pub slow: Option<Duration>,
    /// Where durations go, when metrics are served.
    pub histogram: Option<Arc<QueryHistogram>>,
}

impl Observation {
    /// Whether it records anything at all.
    pub fn is_active(&self) -> bool {
        self.slow.is_some() || self.histogram.is_some()
    }

    /// The instrumentation of one connection.
    pub fn instrument(&self) -> QueryObserver {
        QueryObserver {
            observation: self.clone(),
            started: None,
        }
    }
}

/// One connection's instrumentation.
pub struct QueryObserver {
    observation: Observation,
    started: Option<Instant>,
}

impl Instrumentation for QueryObserver {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        match event {
            InstrumentationEvent::StartQuery { .. } => self.started = Some(Instant::now()),
            InstrumentationEvent::FinishQuery { query, .. } => {
                let Some(started) = self.started.take() else {
                    return;
                };
                let elapsed = started.elapsed();
                let slow = self.observation.slow.is_some_and(|limit| elapsed >= limit);
                if !slow && self.observation.histogram.is_none() {
                    return;
                }
                let mut text = String::new();
                let _ = write!(text, "{query}");
                let statement = without_parameters(&text);
                if let Some(histogram) = &self.observation.histogram {
                    histogram
                        .get_or_create(&QueryLabels {
                            kind: kind(statement),
                        })
                        .observe(elapsed.as_secs_f64());
                }
                if slow {
                    warn!(
                        duration_ms = elapsed.as_millis() as u64,
                        statement = %one_line(statement),
                        "slow query"
                    );
                }
            }
            _ => {}
        }
    }
}

/// The statement without the parameter values diesel appends (` -- binds: [...]`).
fn without_parameters(text: &str) -> &str {
    text.rfind(" -- binds: ").map_or(text, |at| &text[..at])
}

/// The statement's first keyword, as a label.
fn kind(statement: &str) -> &'static str {
    let word = statement
        .trim_start()
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or_default();
    match word.to_ascii_lowercase().as_str() {
        "select" => "select",
        "insert" => "insert",
        "update" => "update",
        "delete" => "delete",
        "with" => "with",
        _ => "other",
    }
}

/// Whitespace folded, at most 2000 characters: one log line per statement.
fn one_line(statement: &str) -> String {
    let mut out = String::with_capacity(statement.len().min(2000));
    for word in statement.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
        if out.len() > 2000 {
            let mut cut = 2000;
            while !out.is_char_boundary(cut) {
                cut -= 1;
            }
            out.truncate(cut);
            out.push('…');
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_never_reach_the_statement_text() {
        let text = "SELECT \"users\".\"id\" FROM \"users\" WHERE \"users\".\"email\" = $1 -- binds: [\"ann@example.com\"]";
        let statement = without_parameters(text);
        assert_eq!(
            statement,
            "SELECT \"users\".\"id\" FROM \"users\" WHERE \"users\".\"email\" = $1"
        );
        assert_eq!(kind(statement), "select");
        assert_eq!(kind("  with x AS (SELECT 1) SELECT * FROM x"), "with");
        assert_eq!(kind("BEGIN"), "other");
        assert_eq!(one_line("SELECT 1\n   FROM  t"), "SELECT 1 FROM t");
    }
}
