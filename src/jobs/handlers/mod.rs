//! The built-in jobs: upstream's cleanup jobs whose work is in our database, with upstream's
//! type names, payloads and schedules, plus the expiry of OAuth access tokens and of
//! sessions.
//!
//! Upstream jobs that need outside systems keep their names reserved ([`RESERVED_TYPES`]):
//! nothing here pretends to send mail or sync a registry. Enqueued without a registered
//! handler, such a job fails at once with upstream's `No worker registered for job type`.

mod access_tokens;
mod activity_metrics;
mod cleanup_old_jobs;
mod log_partitions;
mod oauth_pending_flows;
mod satellite_heartbeats;
mod server_logs;
mod sessions;

pub use access_tokens::CleanupExpiredOauthTokens;
pub use activity_metrics::CleanupMcpClientActivityMetrics;
pub use cleanup_old_jobs::{CleanupOldJobs, CleanupOldJobsPayload};
pub use log_partitions::{
    MaintainLogPartitions, PartitionUpkeep, DEFAULT_AHEAD_DAYS, PARTITIONED_TABLES,
};
pub use oauth_pending_flows::CleanupExpiredOauthPendingFlows;
pub use satellite_heartbeats::{CleanupSatelliteHeartbeats, HeartbeatLimits};
pub use server_logs::{CleanupMcpServerLogs, ServerLogLimit};
pub use sessions::CleanupExpiredSessions;

use crate::db::Database;
use crate::jobs::job::{Job, Registry};
use crate::jobs::queue::encode;
use crate::jobs::schedule::Schedule;

/// Upstream job types that need systems outside the database (mail, the MCP registry,
/// remote MCP servers, OAuth providers). Their names stay reserved for the handlers that
/// will do that work; none is registered here.
pub const RESERVED_TYPES: &[&str] = &[
    "send_email",
    "coordinate_registry_sync",
    "sync_mcp_server",
    "refresh_oauth_tokens",
    "mcp_health_check",
    "mcp_credential_validation",
    "mcp_server_cascade_delete",
];

/// The built-in handlers on `db`.
pub fn registry(db: &Database) -> Registry {
    let mut registry = Registry::new();
    registry
        .register(CleanupOldJobs::new(db.clone()))
        .register(CleanupMcpClientActivityMetrics::new(db.clone()))
        .register(CleanupSatelliteHeartbeats::new(db.clone()))
        .register(CleanupMcpServerLogs::new(db.clone()))
        .register(CleanupExpiredOauthPendingFlows::new(db.clone()))
        .register(CleanupExpiredOauthTokens::new(db.clone()))
        .register(CleanupExpiredSessions::new(db.clone()))
        .register(MaintainLogPartitions::new(db.clone()));
    registry
}

/// Upstream's cron table for the built-in jobs (the jobs that need outside systems are not
/// scheduled: nothing would run them).
pub fn schedules() -> Vec<Schedule> {
    fn of<J: Job>(cron: &'static str, payload: J::Payload) -> Schedule {
        Schedule {
            job_type: J::TYPE,
            cron,
            // Built-in payloads are plain structs: they always encode.
            payload: encode::<J>(&payload).unwrap_or_default(),
        }
    }
    vec![
        of::<CleanupMcpClientActivityMetrics>("*/30 * * * *", Default::default()),
        of::<CleanupOldJobs>("0 */6 * * *", CleanupOldJobsPayload::default()),
        of::<CleanupSatelliteHeartbeats>("*/3 * * * *", HeartbeatLimits::default()),
        of::<CleanupMcpServerLogs>("*/10 * * * *", ServerLogLimit::default()),
        of::<CleanupExpiredOauthPendingFlows>("*/3 * * * *", Default::default()),
        of::<CleanupExpiredOauthTokens>("*/15 * * * *", Default::default()),
        of::<CleanupExpiredSessions>("23 * * * *", Default::default()),
        of::<MaintainLogPartitions>("7 * * * *", PartitionUpkeep::default()),
    ]
}

/// An empty payload that accepts (and ignores) any object, as upstream's `{}`.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct NoPayload {}
