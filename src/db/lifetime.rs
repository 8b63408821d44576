//! Connection recycling: each pooled connection gets a lifetime drawn between 85 % and 100 %
//! of `POSTGRES_MAX_LIFETIME_MS`, so a pool filled at start does not reconnect all at once
//! when that time comes. The retirement date travels beside the connection, in the
//! [`PooledPg`] the pool manages; a connection past it is retired when next checked out,
//! before any query is sent on it, so recycling never fails a request.

use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use diesel_async::AsyncPgConnection;
use rand::Rng;

/// Largest share of the lifetime a connection may be retired early by.
pub const JITTER: f64 = 0.15;

/// `lifetime` shortened by a random share of up to [`JITTER`].
pub fn jittered(lifetime: Duration) -> Duration {
    lifetime.mul_f64(1.0 - rand::rng().random_range(0.0..=JITTER))
}

/// A pooled connection with its retirement date. Derefs to the connection, so every query
/// API takes it (and the pool's guard around it) as it takes the connection itself.
pub struct PooledPg {
    conn: AsyncPgConnection,
    retire_at: Option<Instant>,
    retired: bool,
}

impl PooledPg {
    /// `conn`, to be retired after `lifetime` (shortened at random), or never.
    pub fn new(conn: AsyncPgConnection, lifetime: Option<Duration>) -> Self {
        Self {
            conn,
            retire_at: lifetime.map(|l| Instant::now() + jittered(l)),
            retired: false,
        }
    }

    /// Whether it is past its retirement date.
    pub fn is_expired(&self) -> bool {
        self.retire_at.is_some_and(|at| Instant::now() >= at)
    }

    /// Marks it so the pool closes it when it is returned instead of keeping it.
    pub fn retire(&mut self) {
        self.retired = true;
    }

    /// Whether it was retired.
    pub fn is_retired(&self) -> bool {
        self.retired
    }
}

impl Deref for PooledPg {
    type Target = AsyncPgConnection;

    fn deref(&self) -> &AsyncPgConnection {
        &self.conn
    }
}

impl DerefMut for PooledPg {
    fn deref_mut(&mut self) -> &mut AsyncPgConnection {
        &mut self.conn
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_are_spread_below_the_maximum() {
        let max = Duration::from_secs(1800);
        let drawn: Vec<Duration> = (0..200).map(|_| jittered(max)).collect();
        let floor = max.mul_f64(1.0 - JITTER);
        assert!(drawn.iter().all(|d| *d <= max && *d >= floor));
        let spread = drawn.iter().max().copied().unwrap_or_default()
            - drawn.iter().min().copied().unwrap_or_default();
        // 200 uniform draws over 270 s: a spread under 60 s would mean no jitter at all.
        assert!(spread > Duration::from_secs(60), "{spread:?}");
    }
}
