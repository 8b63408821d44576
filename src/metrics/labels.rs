//! Label values that cost no allocation per request: routes are the server's own templates
//! (shared strings), methods and statuses are copied as they are.

use std::fmt::Write;
use std::sync::Arc;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};

/// A route template such as `/api/plugin/notes/notes/:id`, or a fixed word for requests that
/// matched none (so unknown paths cannot grow the number of series).
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct Route(pub Arc<str>);

impl EncodeLabelValue for Route {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> std::fmt::Result {
        encoder.write_str(&self.0)
    }
}

/// An HTTP method; the standard ones by name, any other as `other`.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub struct Method(pub &'static str);

impl Method {
    /// The label for `method`.
    pub fn of(method: &poem::http::Method) -> Self {
        use poem::http::Method as M;
        Self(match *method {
            M::GET => "GET",
            M::HEAD => "HEAD",
            M::POST => "POST",
            M::PUT => "PUT",
            M::PATCH => "PATCH",
            M::DELETE => "DELETE",
            M::OPTIONS => "OPTIONS",
            _ => "other",
        })
    }
}

impl EncodeLabelValue for Method {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> std::fmt::Result {
        encoder.write_str(self.0)
    }
}

/// An HTTP status code.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub struct Status(pub u16);

impl EncodeLabelValue for Status {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> std::fmt::Result {
        write!(encoder, "{}", self.0)
    }
}

/// A request counted by method, route and status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Method.
    pub method: Method,
    /// Route template.
    pub route: Route,
    /// Status code.
    pub status: Status,
}

/// A request timed by method and route.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// Method.
    pub method: Method,
    /// Route template.
    pub route: Route,
}

/// One connection pool (`primary` today; replicas later).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    /// `primary`, or the replica's `host:port`.
    pub pool: String,
}

/// One read replica.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReplicaLabels {
    /// Its `host:port`.
    pub replica: String,
}

/// Jobs of one type in one status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabels {
    /// `pending` or `processing`.
    pub status: String,
    /// The job type (labelled `type`).
    pub r#type: String,
}

/// The lifecycle phase.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    /// Its name.
    pub phase: &'static str,
}

/// The schema version.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VersionLabels {
    /// The newest applied core migration.
    pub version: String,
}
