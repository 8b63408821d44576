//! `oauth_access_tokens` and `oauth_refresh_tokens`: only SHA-256 hashes of tokens are stored.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::redact::debug_redacting;
use super::{TeamId, TokenId, UserId};
use crate::db::schema::{oauth_access_tokens, oauth_refresh_tokens};

/// An issued access token (its hash). `Debug` hides the hash: it identifies a live credential.
#[derive(Clone, PartialEq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = oauth_access_tokens, check_for_backend(diesel::pg::Pg))]
pub struct AccessToken {
    /// Id.
    pub id: TokenId,
    /// User it acts for.
    pub user_id: UserId,
    /// Team it is scoped to.
    pub team_id: TeamId,
    /// OAuth client it was issued to.
    pub client_id: String,
    /// Space-separated scopes.
    pub scope: String,
    /// Hex SHA-256 of the token.
    pub token_hash: String,
    /// Issue time.
    pub created_at: DateTime<Utc>,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
}

debug_redacting!(AccessToken {
    id,
    user_id,
    team_id,
    client_id,
    scope,
    #[redact]
    token_hash,
    created_at,
    expires_at,
});

/// An access token to store. `Debug` hides the hash.
#[derive(Clone, Insertable)]
#[diesel(table_name = oauth_access_tokens)]
pub struct NewAccessToken {
    /// Id.
    pub id: TokenId,
    /// User.
    pub user_id: UserId,
    /// Team.
    pub team_id: TeamId,
    /// Client.
    pub client_id: String,
    /// Scopes.
    pub scope: String,
    /// Hex SHA-256 of the token.
    pub token_hash: String,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
}

/// An issued refresh token (its hash). `Debug` hides the hash: it identifies a live credential.
#[derive(Clone, PartialEq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = oauth_refresh_tokens, check_for_backend(diesel::pg::Pg))]
pub struct RefreshToken {
    /// Id.
    pub id: TokenId,
    /// User.
    pub user_id: UserId,
    /// Team.
    pub team_id: TeamId,
    /// Client.
    pub client_id: String,
    /// Scopes.
    pub scope: String,
    /// Hex SHA-256 of the token.
    pub token_hash: String,
    /// Already exchanged (refresh tokens are single-use).
    pub used: bool,
    /// Issue time.
    pub created_at: DateTime<Utc>,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
}

debug_redacting!(RefreshToken {
    id,
    user_id,
    team_id,
    client_id,
    scope,
    #[redact]
    token_hash,
    used,
    created_at,
    expires_at,
});

/// A refresh token to store. `Debug` hides the hash.
#[derive(Clone, Insertable)]
#[diesel(table_name = oauth_refresh_tokens)]
pub struct NewRefreshToken {
    /// Id.
    pub id: TokenId,
    /// User.
    pub user_id: UserId,
    /// Team.
    pub team_id: TeamId,
    /// Client.
    pub client_id: String,
    /// Scopes.
    pub scope: String,
    /// Hex SHA-256 of the token.
    pub token_hash: String,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
}

debug_redacting!(NewAccessToken {
    id,
    user_id,
    team_id,
    client_id,
    scope,
    #[redact]
    token_hash,
    expires_at,
});

debug_redacting!(NewRefreshToken {
    id,
    user_id,
    team_id,
    client_id,
    scope,
    #[redact]
    token_hash,
    expires_at,
});
