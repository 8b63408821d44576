//! `cleanup_expired_sessions`: deletes sessions past their expiry, and sign-in counts whose
//! window ended long ago, hourly through the queue (a session is refused the moment it
//! expires, and an ended window counts nothing, whether or not its row is gone yet).

use serde::Serialize;

use crate::auth::{Sessions, Throttle};
use crate::db::Database;
use crate::jobs::handlers::NoPayload;
use crate::jobs::job::{Job, JobContext, JobError};

/// What was removed.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExpiredSessionsResult {
    deleted_count: usize,
    deleted_counters: usize,
}

/// The handler.
pub struct CleanupExpiredSessions {
    sessions: Sessions,
    throttle: Throttle,
}

impl CleanupExpiredSessions {
    /// On `db`.
    pub fn new(db: Database) -> Self {
        Self {
            sessions: Sessions::new(db.clone()),
            throttle: Throttle::new(db),
        }
    }
}

impl Job for CleanupExpiredSessions {
    const TYPE: &'static str = "cleanup_expired_sessions";
    type Payload = NoPayload;
    type Output = ExpiredSessionsResult;

    async fn run(&self, _: NoPayload, _ctx: JobContext) -> Result<Self::Output, JobError> {
        let deleted_count = self
            .sessions
            .delete_expired()
            .await
            .map_err(|e| JobError::retry(e.to_string()))?;
        let deleted_counters = self
            .throttle
            .sweep()
            .await
            .map_err(|e| JobError::retry(e.to_string()))?;
        Ok(ExpiredSessionsResult {
            deleted_count,
            deleted_counters,
        })
    }
}
