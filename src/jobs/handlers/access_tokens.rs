//! `cleanup_expired_oauth_tokens`: deletes expired OAuth access tokens through
//! `TokenService::revoke_expired_tokens` (upstream ran this on a timer of its own).

use serde::Serialize;

use crate::db::Database;
use crate::jobs::handlers::NoPayload;
use crate::jobs::job::{Job, JobContext, JobError};
use crate::services::tokens::TokenService;

/// What was removed.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExpiredTokensResult {
    revoked_count: usize,
}

/// The handler.
pub struct CleanupExpiredOauthTokens {
    tokens: TokenService,
}

impl CleanupExpiredOauthTokens {
    /// On `db`.
    pub fn new(db: Database) -> Self {
        Self {
            tokens: TokenService::new(db),
        }
    }
}

impl Job for CleanupExpiredOauthTokens {
    const TYPE: &'static str = "cleanup_expired_oauth_tokens";
    type Payload = NoPayload;
    type Output = ExpiredTokensResult;

    async fn run(&self, _: NoPayload, _ctx: JobContext) -> Result<Self::Output, JobError> {
        Ok(ExpiredTokensResult {
            revoked_count: self.tokens.revoke_expired_tokens().await?,
        })
    }
}
