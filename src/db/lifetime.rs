//! Connection recycling: each pooled connection gets a lifetime drawn between 85 % and 100 %
//! of `POSTGRES_MAX_LIFETIME_MS`, so a pool filled at start does not reconnect all at once
//! when that time comes. The retirement date travels with the connection in diesel's
//! instrumentation slot (the one per-connection place a pool user can reach); a connection
//! past it is retired when next checked out, before any query is sent on it, so recycling
//! never fails a request.

use std::time::{Duration, Instant};

use diesel::connection::{Instrumentation, InstrumentationEvent};
use diesel_async::{
    AnsiTransactionManager, AsyncConnection, AsyncPgConnection, TransactionManager,
};
use rand::Rng;

/// Largest share of the lifetime a connection may be retired early by.
pub const JITTER: f64 = 0.15;

/// The retirement date of one connection; records nothing.
struct Expiry {
    at: Instant,
}

impl Instrumentation for Expiry {
    fn on_connection_event(&mut self, _event: InstrumentationEvent<'_>) {}
}

/// `lifetime` shortened by a random share of up to [`JITTER`].
pub fn jittered(lifetime: Duration) -> Duration {
    lifetime.mul_f64(1.0 - rand::rng().random_range(0.0..=JITTER))
}

/// Gives a new connection its retirement date.
pub(crate) fn stamp(conn: &mut AsyncPgConnection, lifetime: Duration) {
    conn.set_instrumentation(Expiry {
        at: Instant::now() + jittered(lifetime),
    });
}

/// Whether `conn` is past its retirement date (never, for an unstamped one). Call only on a
/// connection with no query in flight, as a freshly checked-out one is.
pub(crate) fn is_expired(conn: &mut AsyncPgConnection) -> bool {
    conn.instrumentation()
        .downcast_ref::<Expiry>()
        .is_some_and(|e| Instant::now() >= e.at)
}

/// Marks `conn` so the pool closes it when it is returned instead of keeping it.
pub(crate) fn retire(conn: &mut AsyncPgConnection) {
    AnsiTransactionManager::transaction_manager_status_mut(conn).set_in_error();
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
