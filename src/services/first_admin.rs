//! Proofs that a caller may create the first administrator. Between setup and the first
//! sign-up, whoever registers first would own the server (and `?reveal=true` every secret),
//! so while no administrator exists a registration must carry one of these: the setup grant
//! (a cookie given to the browser that ran `POST /api/db/setup`) or the start token (written
//! to the log and to `setup.token` at each start without an administrator). Only their
//! SHA-256 is stored; every one of them goes once an administrator exists.

use chrono::{Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::{ServiceError, ServiceResult};
use crate::db::schema::first_admin_tokens;
use crate::db::Database;

/// How long a setup grant is good for.
pub const GRANT_LIFETIME: Duration = Duration::hours(1);
/// How long a start token is good for (each start without an administrator makes another).
pub const START_TOKEN_LIFETIME: Duration = Duration::days(7);

/// Which proof a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProofKind {
    /// The cookie of the browser that ran the setup.
    Grant,
    /// The token of a start without an administrator.
    Start,
}

impl ProofKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Grant => "grant",
            Self::Start => "start",
        }
    }

    fn lifetime(self) -> Duration {
        match self {
            Self::Grant => GRANT_LIFETIME,
            Self::Start => START_TOKEN_LIFETIME,
        }
    }
}

/// The stored form of a proof: the hex SHA-256 of its text.
pub fn proof_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The first-administrator proofs.
#[derive(Clone)]
pub struct FirstAdminProofs {
    db: Database,
}

impl FirstAdminProofs {
    /// Proofs in `db`.
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// A new proof of `kind` (64 hex digits), stored by its hash; `None` when an
    /// administrator exists. Decided under the registrations' lock, so a proof is never
    /// stored after the first administrator's sign-up removed them all.
    pub async fn issue(&self, kind: ProofKind) -> ServiceResult<Option<String>> {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let token = hex::encode(bytes);
        let mut conn = self.db.conn().await?;
        let issued = conn
            .transaction::<_, ServiceError, _>(async |conn| {
                super::users::lock_registrations(conn).await?;
                if super::users::administrator_exists(conn).await? {
                    return Ok(false);
                }
                diesel::insert_into(first_admin_tokens::table)
                    .values((
                        first_admin_tokens::token_hash.eq(proof_hash(&token)),
                        first_admin_tokens::kind.eq(kind.as_str()),
                        first_admin_tokens::expires_at.eq(Utc::now() + kind.lifetime()),
                    ))
                    .execute(conn)
                    .await?;
                Ok(true)
            })
            .await?;
        Ok(issued.then_some(token))
    }

    /// Whether any of `hashes` is a live proof (a cheap check before a password is hashed;
    /// the registration's transaction decides).
    pub async fn any_live(&self, hashes: &[String]) -> ServiceResult<bool> {
        if hashes.is_empty() {
            return Ok(false);
        }
        let conn = self.db.shared().await?;
        Ok(diesel::select(diesel::dsl::exists(
            first_admin_tokens::table
                .filter(first_admin_tokens::token_hash.eq_any(hashes))
                .filter(first_admin_tokens::expires_at.gt(diesel::dsl::now)),
        ))
        .get_result(&mut &*conn)
        .await?)
    }
}

/// Whether one of `hashes` is a live proof, in the registration's transaction: that proof is
/// used up (deleted) when it is.
pub(crate) async fn redeem(conn: &mut AsyncPgConnection, hashes: &[String]) -> QueryResult<bool> {
    if hashes.is_empty() {
        return Ok(false);
    }
    let used = diesel::delete(
        first_admin_tokens::table
            .filter(first_admin_tokens::token_hash.eq_any(hashes))
            .filter(first_admin_tokens::expires_at.gt(diesel::dsl::now)),
    )
    .execute(conn)
    .await?;
    Ok(used > 0)
}

/// Removes every proof: an administrator exists.
pub(crate) async fn forget_all(conn: &mut AsyncPgConnection) -> QueryResult<()> {
    diesel::delete(first_admin_tokens::table)
        .execute(conn)
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proofs_are_stored_by_hash_and_expire_by_kind() {
        let hash = proof_hash("abc");
        assert_eq!(hash.len(), 64);
        assert_ne!(hash, proof_hash("abd"));
        assert_eq!(ProofKind::Grant.lifetime(), Duration::hours(1));
        assert_eq!(ProofKind::Start.lifetime(), Duration::days(7));
        assert_eq!(
            (ProofKind::Grant.as_str(), ProofKind::Start.as_str()),
            ("grant", "start")
        );
    }
}
