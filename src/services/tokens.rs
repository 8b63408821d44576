//! OAuth access and refresh tokens. Only the SHA-256 of a token is stored: a leaked table
//! does not leak usable tokens. The plaintext exists once, in the value returned at issue.

use chrono::{Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use rand::distr::{Alphanumeric, SampleString};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use super::{ServiceError, ServiceResult};
use crate::db::models::{
    AccessToken, NewAccessToken, NewRefreshToken, RefreshToken, TeamId, TokenId, UserId,
};
use crate::db::schema::{oauth_access_tokens as access, oauth_refresh_tokens as refresh};
use crate::db::Database;

/// Length of generated tokens (alphanumeric: ~285 bits).
const TOKEN_LENGTH: usize = 48;

/// A token just issued: the only time its plaintext is available.
pub struct IssuedToken<T> {
    /// The token to hand to the client.
    pub token: SecretString,
    /// What was stored.
    pub record: T,
}

/// Who a token is for.
#[derive(Debug, Clone)]
pub struct TokenGrant {
    /// The user it acts for.
    pub user_id: UserId,
    /// The team it is scoped to.
    pub team_id: TeamId,
    /// The OAuth client.
    pub client_id: String,
    /// Space-separated scopes.
    pub scope: String,
}

/// Issue, verify and revoke tokens.
#[derive(Clone)]
pub struct TokenService {
    db: Database,
}

/// Hex SHA-256 of a token, as stored.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn generate() -> SecretString {
    SecretString::from(Alphanumeric.sample_string(&mut rand::rng(), TOKEN_LENGTH))
}

impl TokenService {
    /// A service over `db`.
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// Issues an access token valid for `ttl`; `NotFound` for an unknown user or team.
    pub async fn issue_access_token(
        &self,
        grant: &TokenGrant,
        ttl: Duration,
    ) -> ServiceResult<IssuedToken<AccessToken>> {
        let token = generate();
        let new = NewAccessToken {
            id: TokenId::generate(),
            user_id: grant.user_id.clone(),
            team_id: grant.team_id.clone(),
            client_id: grant.client_id.clone(),
            scope: grant.scope.clone(),
            token_hash: hash_token(token.expose_secret()),
            expires_at: Utc::now() + ttl,
        };
        let mut conn = self.db.conn().await?;
        let record = diesel::insert_into(access::table)
            .values(&new)
            .returning(AccessToken::as_returning())
            .get_result(&mut conn)
            .await?;
        Ok(IssuedToken { token, record })
    }

    /// The stored token matching `token`, if it exists and has not expired.
    pub async fn verify_access_token(&self, token: &str) -> ServiceResult<Option<AccessToken>> {
        let mut conn = self.db.conn().await?;
        Ok(access::table
            .filter(access::token_hash.eq(hash_token(token)))
            .filter(access::expires_at.gt(Utc::now()))
            .select(AccessToken::as_select())
            .first(&mut conn)
            .await
            .optional()?)
    }

    /// Revokes an access token; `false` when it does not exist.
    pub async fn revoke_access_token(&self, token: &str) -> ServiceResult<bool> {
        let mut conn = self.db.conn().await?;
        let n = diesel::delete(access::table.filter(access::token_hash.eq(hash_token(token))))
            .execute(&mut conn)
            .await?;
        Ok(n > 0)
    }

    /// Deletes every expired access token; returns how many (upstream `revokeExpiredTokens`).
    pub async fn revoke_expired_tokens(&self) -> ServiceResult<usize> {
        let mut conn = self.db.conn().await?;
        Ok(
            diesel::delete(access::table.filter(access::expires_at.lt(Utc::now())))
                .execute(&mut conn)
                .await?,
        )
    }

    /// Issues a single-use refresh token valid for `ttl`.
    pub async fn issue_refresh_token(
        &self,
        grant: &TokenGrant,
        ttl: Duration,
    ) -> ServiceResult<IssuedToken<RefreshToken>> {
        let token = generate();
        let new = NewRefreshToken {
            id: TokenId::generate(),
            user_id: grant.user_id.clone(),
            team_id: grant.team_id.clone(),
            client_id: grant.client_id.clone(),
            scope: grant.scope.clone(),
            token_hash: hash_token(token.expose_secret()),
            expires_at: Utc::now() + ttl,
        };
        let mut conn = self.db.conn().await?;
        let record = diesel::insert_into(refresh::table)
            .values(&new)
            .returning(RefreshToken::as_returning())
            .get_result(&mut conn)
            .await?;
        Ok(IssuedToken { token, record })
    }

    /// Consumes a refresh token: marks it used and returns it, in one statement, so two
    /// concurrent exchanges of the same token cannot both succeed. `None` when unknown,
    /// expired or already used.
    pub async fn use_refresh_token(&self, token: &str) -> ServiceResult<Option<RefreshToken>> {
        let mut conn = self.db.conn().await?;
        Ok(diesel::update(
            refresh::table
                .filter(refresh::token_hash.eq(hash_token(token)))
                .filter(refresh::used.eq(false))
                .filter(refresh::expires_at.gt(Utc::now())),
        )
        .set(refresh::used.eq(true))
        .returning(RefreshToken::as_returning())
        .get_result(&mut conn)
        .await
        .optional()?)
    }

    /// Revokes a refresh token; `false` when it does not exist.
    pub async fn revoke_refresh_token(&self, token: &str) -> ServiceResult<bool> {
        let mut conn = self.db.conn().await?;
        let n = diesel::delete(refresh::table.filter(refresh::token_hash.eq(hash_token(token))))
            .execute(&mut conn)
            .await?;
        Ok(n > 0)
    }

    /// Revokes every token of `user` in `team` (both kinds); returns how many. Both deletes
    /// run in one transaction: a failure of either leaves every token in place, never a
    /// user whose access tokens are gone but whose refresh tokens can mint new ones.
    pub async fn revoke_user_team_tokens(
        &self,
        user: &UserId,
        team: &TeamId,
    ) -> ServiceResult<usize> {
        let mut conn = self.db.conn().await?;
        conn.transaction::<_, ServiceError, _>(async |conn| {
            let a = diesel::delete(
                access::table
                    .filter(access::user_id.eq(user))
                    .filter(access::team_id.eq(team)),
            )
            .execute(conn)
            .await
            .map_err(ServiceError::from_delete)?;
            let r = diesel::delete(
                refresh::table
                    .filter(refresh::user_id.eq(user))
                    .filter(refresh::team_id.eq(team)),
            )
            .execute(conn)
            .await
            .map_err(ServiceError::from_delete)?;
            Ok(a + r)
        })
        .await
    }
}
