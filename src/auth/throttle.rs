//! Attempts counted per key in fixed windows, in PostgreSQL (`auth_throttle`), so every
//! process on the database shares the counts: a second server behind the load balancer
//! allows no more guesses than one. An attempt is counted before its password is checked,
//! in one statement for all its keys, so a burst of concurrent guesses sees itself and a
//! client that disconnects mid-check has still spent its attempt (nothing is handed back on
//! a dropped request). Hand-written rather than a rate-limiting crate: the counts live in
//! the database and a success clears or takes back specific keys, which token buckets such
//! as `governor` (in memory) do not offer.

use std::time::Duration;

use diesel::sql_types::{Array, BigInt, Integer, Text};
use diesel_async::RunQueryDsl;

use super::error::AuthError;
use crate::db::Database;

/// The window of sign-in counts.
pub const SIGN_IN_WINDOW: Duration = Duration::from_secs(60);
/// Failed sign-ins of one account from clients without its device cookie, per window.
pub const ACCOUNT_FAILURES: u32 = 10;
/// Failed sign-ins from one device cookie, per window.
pub const DEVICE_FAILURES: u32 = 10;
/// Failed sign-ins from one client address (an IPv6 /64), per window.
pub const ADDRESS_FAILURES: u32 = 30;
/// The window of registrations.
pub const REGISTRATION_WINDOW: Duration = Duration::from_secs(600);
/// Registrations that reach the password hash from one client address, per window.
pub const ADDRESS_REGISTRATIONS: u32 = 10;

/// Counts older than this are swept.
const KEEP: Duration = Duration::from_secs(3600);

/// One count to take: its key, its limit and its window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    key: String,
    max: u32,
    window: Duration,
}

impl Limit {
    /// Failed sign-ins of an account (its id), or of an unknown login (its normalized text:
    /// the email in lower case, the username in lower case; both sign in ignoring case).
    pub fn account(account: &str) -> Self {
        Self::new(
            format!("account:{account}"),
            ACCOUNT_FAILURES,
            SIGN_IN_WINDOW,
        )
    }

    /// Failed sign-ins from one device cookie (its nonce).
    pub fn device(nonce: &str) -> Self {
        Self::new(format!("device:{nonce}"), DEVICE_FAILURES, SIGN_IN_WINDOW)
    }

    /// Failed sign-ins from a client address key.
    pub fn address(address: &str) -> Self {
        Self::new(
            format!("address:{address}"),
            ADDRESS_FAILURES,
            SIGN_IN_WINDOW,
        )
    }

    /// Registrations hashed for a client address key.
    pub fn registration(address: &str) -> Self {
        Self::new(
            format!("register:{address}"),
            ADDRESS_REGISTRATIONS,
            REGISTRATION_WINDOW,
        )
    }

    fn new(key: String, max: u32, window: Duration) -> Self {
        Self { key, max, window }
    }

    /// The key counted under.
    pub fn key(&self) -> &str {
        &self.key
    }
}

#[derive(diesel::QueryableByName)]
struct Counted {
    #[diesel(sql_type = Text)]
    key: String,
    #[diesel(sql_type = Integer)]
    hits: i32,
    #[diesel(sql_type = BigInt)]
    left_ms: i64,
}

/// The counters on a database.
#[derive(Clone)]
pub struct Throttle {
    db: Database,
}

impl Throttle {
    /// Counters in `db`.
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// Counts one attempt under each of `limits`. `Err(wait)` when any of them is now past
    /// its limit (the attempt is counted all the same: hammering a locked key keeps it
    /// locked, never longer than its window).
    pub async fn hit(&self, limits: &[Limit]) -> Result<Result<(), Duration>, AuthError> {
        if limits.is_empty() {
            return Ok(Ok(()));
        }
        // Keys in one order in every statement: two overlapping attempts lock rows alike.
        let mut sorted: Vec<&Limit> = limits.iter().collect();
        sorted.sort_by(|a, b| a.key.cmp(&b.key));
        sorted.dedup_by(|a, b| a.key == b.key);
        let keys: Vec<&str> = sorted.iter().map(|l| l.key.as_str()).collect();
        let windows: Vec<i64> = sorted.iter().map(|l| millis(l.window)).collect();
        let conn = self.db.shared().await?;
        let counted: Vec<Counted> = diesel::sql_query(
            "INSERT INTO auth_throttle AS t (key, window_start, window_ms, hits) \
             SELECT k, now(), w, 1 FROM unnest($1::text[], $2::bigint[]) AS u(k, w) \
             ON CONFLICT (key) DO UPDATE SET \
               hits = CASE WHEN t.window_start <= now() - EXCLUDED.window_ms * interval '1 millisecond' \
                           THEN 1 ELSE t.hits + 1 END, \
               window_start = CASE WHEN t.window_start <= now() - EXCLUDED.window_ms * interval '1 millisecond' \
                           THEN now() ELSE t.window_start END, \
               window_ms = EXCLUDED.window_ms \
             RETURNING t.key, t.hits, \
               (extract(epoch FROM t.window_start - now()) * 1000)::bigint AS left_ms",
        )
        .bind::<Array<Text>, _>(&keys)
        .bind::<Array<BigInt>, _>(&windows)
        .load(&mut &*conn)
        .await?;
        Ok(verdict(&sorted, &counted))
    }

    /// Forgets the counts of `keys` (a success clears the account's failures).
    pub async fn clear(&self, keys: &[&str]) -> Result<(), AuthError> {
        let conn = self.db.shared().await?;
        diesel::sql_query("DELETE FROM auth_throttle WHERE key = ANY($1::text[])")
            .bind::<Array<Text>, _>(keys)
            .execute(&mut &*conn)
            .await?;
        Ok(())
    }

    /// Takes this attempt back from `key` (a success from an address says nothing of the
    /// others there).
    pub async fn take_back(&self, key: &str) -> Result<(), AuthError> {
        let conn = self.db.shared().await?;
        diesel::sql_query("UPDATE auth_throttle SET hits = hits - 1 WHERE key = $1 AND hits > 0")
            .bind::<Text, _>(key)
            .execute(&mut &*conn)
            .await?;
        Ok(())
    }

    /// Removes counts whose window ended long ago; how many.
    pub async fn sweep(&self) -> Result<usize, AuthError> {
        let mut conn = self.db.conn().await?;
        Ok(diesel::sql_query(
            "DELETE FROM auth_throttle WHERE window_start < now() - $1 * interval '1 millisecond'",
        )
        .bind::<BigInt, _>(millis(KEEP))
        .execute(&mut conn)
        .await?)
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// `Err(wait)` when a counted key is past its limit: the longest time left until such a
/// key's window ends (`left_ms` is the window's start relative to now, so it is negative).
fn verdict(limits: &[&Limit], counted: &[Counted]) -> Result<(), Duration> {
    let mut wait = Duration::ZERO;
    for row in counted {
        let Some(limit) = limits.iter().find(|l| l.key == row.key) else {
            continue;
        };
        if u32::try_from(row.hits).unwrap_or(u32::MAX) > limit.max {
            let ends_in = millis(limit.window).saturating_add(row.left_ms).max(1);
            wait = wait.max(Duration::from_millis(ends_in.unsigned_abs()));
        }
    }
    if wait.is_zero() {
        Ok(())
    } else {
        Err(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(key: &str, hits: i32, left_ms: i64) -> Counted {
        Counted {
            key: key.into(),
            hits,
            left_ms,
        }
    }

    #[test]
    fn only_a_count_past_its_limit_makes_the_client_wait_until_its_window_ends() {
        let account = Limit::account("u1");
        let address = Limit::address("10.0.0.1");
        let limits = [&account, &address];
        let at_limit = [
            row("account:u1", 10, -5_000),
            row("address:10.0.0.1", 30, -1),
        ];
        assert_eq!(verdict(&limits, &at_limit), Ok(()));
        let past = [
            row("account:u1", 11, -20_000),
            row("address:10.0.0.1", 31, -50_000),
        ];
        assert_eq!(verdict(&limits, &past), Err(Duration::from_secs(40)));
        // A window that has just ended still asks for a moment, never for nothing.
        let ended = [row("account:u1", 11, -60_000)];
        assert_eq!(verdict(&limits, &ended), Err(Duration::from_millis(1)));
        assert_eq!(verdict(&limits, &[row("other", 99, 0)]), Ok(()));
    }

    #[test]
    fn each_kind_of_count_has_its_own_key_limit_and_window() {
        assert_eq!(Limit::account("a").key(), "account:a");
        assert_eq!(Limit::device("n").key(), "device:n");
        assert_eq!(Limit::address("1.2.3.4").max, ADDRESS_FAILURES);
        let r = Limit::registration("1.2.3.4");
        assert_eq!(
            (r.key(), r.max, r.window),
            ("register:1.2.3.4", 10, REGISTRATION_WINDOW)
        );
        assert_eq!(Limit::device("n").max, DEVICE_FAILURES);
        assert_eq!(Limit::account("a").window, SIGN_IN_WINDOW);
    }
}
