//! `cleanup_expired_oauth_pending_flows`: deletes OAuth flows past their expiry, so their
//! state parameter can no longer complete a flow and rows do not pile up.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::Serialize;

use crate::db::schema::oauth_pending_flows as flows;
use crate::db::Database;
use crate::jobs::handlers::NoPayload;
use crate::jobs::job::{Job, JobContext, JobError};

/// What was removed.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingFlowsResult {
    deleted_count: usize,
}

/// The handler.
pub struct CleanupExpiredOauthPendingFlows {
    db: Database,
}

impl CleanupExpiredOauthPendingFlows {
    /// On `db`.
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

impl Job for CleanupExpiredOauthPendingFlows {
    const TYPE: &'static str = "cleanup_expired_oauth_pending_flows";
    type Payload = NoPayload;
    type Output = PendingFlowsResult;

    async fn run(&self, _: NoPayload, _ctx: JobContext) -> Result<Self::Output, JobError> {
        let mut conn = self.db.conn().await?;
        let deleted_count =
            diesel::delete(flows::table.filter(flows::expires_at.lt(diesel::dsl::now)))
                .execute(&mut conn)
                .await?;
        Ok(PendingFlowsResult { deleted_count })
    }
}
