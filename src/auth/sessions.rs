//! Sessions: a 32-byte random token in the cookie, only its SHA-256 in `auth_sessions.id`, so
//! reading the database never yields a usable session. A session lives 30 days and is
//! extended to 30 days again when less than half is left (lucia's rule). Validation is one
//! statement on a shared connection (the session joined to its user), so a logged-out
//! session or a deleted user (whose sessions the foreign key removes) stops working at the
//! next request; the extension is a second statement, at most once in 15 days per session.

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use super::error::AuthError;
use crate::db::models::{User, UserId};
use crate::db::schema::{auth_sessions, users};
use crate::db::Database;

/// How long a session lives without use.
pub const SESSION_LIFETIME: Duration = Duration::days(30);
/// A session with less than this left is extended to [`SESSION_LIFETIME`].
pub const RENEW_BELOW: Duration = Duration::days(15);

/// Random bytes in a token.
const TOKEN_BYTES: usize = 32;

/// A session token as the cookie carries it (64 lowercase hex digits). `Debug` hides it.
pub struct SessionToken(SecretString);

impl std::fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionToken(..)")
    }
}

impl SessionToken {
    fn generate() -> Self {
        let mut bytes = [0u8; TOKEN_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        Self(SecretString::from(hex::encode(bytes)))
    }

    /// The value for the cookie.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

/// Whether a session ending at `expires_at` is extended at `now`: strictly less than half of
/// its life left (exactly half is not yet).
fn renewal_due(expires_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    expires_at - now < RENEW_BELOW
}

/// The row id of `token`: the hex SHA-256 of its text. `None` for anything that is not a
/// token's shape, which is then never looked up.
fn row_id(token: &str) -> Option<String> {
    let well_formed = token.len() == 2 * TOKEN_BYTES
        && token
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    well_formed.then(|| hex::encode(Sha256::digest(token.as_bytes())))
}

/// Sessions in `auth_sessions`.
#[derive(Clone)]
pub struct Sessions {
    db: Database,
}

impl Sessions {
    /// Sessions on `db`.
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// Starts a session for `user`.
    pub async fn create(&self, user: &UserId) -> Result<SessionToken, AuthError> {
        let token = SessionToken::generate();
        let id = row_id(token.expose()).ok_or(AuthError::Hashing("token shape".into()))?;
        let conn = self.db.shared().await?;
        diesel::insert_into(auth_sessions::table)
            .values((
                auth_sessions::id.eq(id),
                auth_sessions::user_id.eq(user),
                auth_sessions::expires_at.eq(Utc::now() + SESSION_LIFETIME),
            ))
            .execute(&mut &*conn)
            .await?;
        Ok(token)
    }

    /// The user of a live session, extending it when less than half of its life is left.
    pub async fn user_of(&self, token: &str) -> Result<Option<User>, AuthError> {
        let Some(id) = row_id(token) else {
            return Ok(None);
        };
        let conn = self.db.shared().await?;
        let found: Option<(User, DateTime<Utc>)> = auth_sessions::table
            .inner_join(users::table)
            .filter(auth_sessions::id.eq(&id))
            .filter(auth_sessions::expires_at.gt(diesel::dsl::now))
            .select((User::as_select(), auth_sessions::expires_at))
            .first(&mut &*conn)
            .await
            .optional()?;
        let Some((user, expires_at)) = found else {
            return Ok(None);
        };
        let now = Utc::now();
        if renewal_due(expires_at, now) {
            diesel::update(auth_sessions::table.find(&id))
                .set(auth_sessions::expires_at.eq(now + SESSION_LIFETIME))
                .execute(&mut &*conn)
                .await?;
        }
        Ok(Some(user))
    }

    /// Ends the session of `token` (nothing when there is none).
    pub async fn end(&self, token: &str) -> Result<(), AuthError> {
        let Some(id) = row_id(token) else {
            return Ok(());
        };
        let conn = self.db.shared().await?;
        diesel::delete(auth_sessions::table.find(id))
            .execute(&mut &*conn)
            .await?;
        Ok(())
    }

    /// Removes expired sessions; how many.
    pub async fn delete_expired(&self) -> Result<usize, AuthError> {
        let mut conn = self.db.conn().await?;
        Ok(diesel::delete(
            auth_sessions::table.filter(auth_sessions::expires_at.le(diesel::dsl::now)),
        )
        .execute(&mut conn)
        .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_extended_only_with_less_than_half_left() {
        let now = Utc::now();
        assert!(!renewal_due(now + SESSION_LIFETIME, now));
        assert!(!renewal_due(now + RENEW_BELOW, now), "exactly half left");
        assert!(renewal_due(
            now + RENEW_BELOW - Duration::microseconds(1),
            now
        ));
        assert!(renewal_due(now, now));
    }

    #[test]
    fn only_a_tokens_shape_is_looked_up_and_only_by_its_hash() {
        let token = SessionToken::generate();
        let id = row_id(token.expose()).expect("well formed");
        assert_eq!(id.len(), 64);
        assert_ne!(id, token.expose());
        assert_eq!(format!("{token:?}"), "SessionToken(..)");
        for bad in ["", "abc", &"g".repeat(64), &"A".repeat(64), &"a".repeat(65)] {
            assert_eq!(row_id(bad), None, "{bad}");
        }
    }
}
