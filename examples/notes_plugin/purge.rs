//! `notes.purge`: deletes notes older than a number of days.

use deploystack_backend::jobs::{Job, JobContext, JobError};
use deploystack_backend::plugins::PluginDb;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};

use super::table::notes;

/// The job's handler.
pub struct PurgeNotes {
    db: PluginDb,
}

impl PurgeNotes {
    /// A handler acting through `db`.
    pub fn new(db: PluginDb) -> Self {
        Self { db }
    }
}

/// `{"olderThanDays": N}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PurgePayload {
    /// Notes written more than this many days ago are deleted.
    pub older_than_days: u32,
}

/// What a run did.
#[derive(Debug, Serialize)]
pub struct Purged {
    /// Notes deleted.
    pub deleted: usize,
}

impl Job for PurgeNotes {
    const TYPE: &'static str = "notes.purge";
    type Payload = PurgePayload;
    type Output = Purged;

    async fn run(&self, payload: PurgePayload, _ctx: JobContext) -> Result<Purged, JobError> {
        let cutoff =
            chrono::Utc::now() - chrono::Duration::days(i64::from(payload.older_than_days));
        let deleted = self
            .db
            .transaction(|conn| {
                Box::pin(async move {
                    diesel::delete(notes::table.filter(notes::created_at.lt(cutoff)))
                        .execute(conn)
                        .await
                })
            })
            .await
            .map_err(JobError::retry)?;
        Ok(Purged { deleted })
    }
}
