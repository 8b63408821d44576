//! Failed sign-ins, counted per account and per client address in fixed one-minute windows.
//! Past the limit, every attempt of that account (or from that address) is answered 429 with
//! the seconds left until the window ends, before any password is checked, so guessing costs
//! an attacker a minute per ten guesses and costs the server no hashing.
//!
//! The address is the TCP peer's: behind a reverse proxy it is the proxy's, shared by every
//! client, hence the higher per-address limit. Counts are per process (each replica keeps its
//! own). Hand-written rather than a rate-limiting crate: only failures count, and a check must
//! not consume anything, which token buckets such as `governor` do not offer.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Length of a counting window.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Failed sign-ins of one account per window.
pub const ACCOUNT_FAILURES_PER_WINDOW: u32 = 10;
/// Failed sign-ins from one address per window (several people may share one).
pub const ADDRESS_FAILURES_PER_WINDOW: u32 = 30;

/// Windows kept before expired ones are swept.
const SWEEP_ABOVE: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Account(String),
    Address(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

/// The counters.
pub struct FailureLimiter {
    windows: Mutex<HashMap<Key, Window>>,
    per_account: u32,
    per_address: u32,
    window: Duration,
}

impl Default for FailureLimiter {
    fn default() -> Self {
        Self::new(
            ACCOUNT_FAILURES_PER_WINDOW,
            ADDRESS_FAILURES_PER_WINDOW,
            WINDOW,
        )
    }
}

impl FailureLimiter {
    /// Limits per window of `window`.
    pub fn new(per_account: u32, per_address: u32, window: Duration) -> Self {
        Self {
            windows: Mutex::new(HashMap::new()),
            per_account,
            per_address,
            window,
        }
    }

    /// `Err(wait)` when `account` (as typed, case-insensitively) or `address` is over its
    /// limit; consumes nothing.
    pub fn check(&self, account: &str, address: Option<IpAddr>) -> Result<(), Duration> {
        let windows = self.lock();
        let now = Instant::now();
        let mut wait = Duration::ZERO;
        for (key, limit) in self.keys(account, address) {
            if let Some(w) = windows.get(&key) {
                let elapsed = now.duration_since(w.started);
                if elapsed < self.window && w.failures >= limit {
                    wait = wait.max(self.window - elapsed);
                }
            }
        }
        if wait.is_zero() {
            Ok(())
        } else {
            Err(wait)
        }
    }

    /// Counts a failed sign-in.
    pub fn failed(&self, account: &str, address: Option<IpAddr>) {
        let mut windows = self.lock();
        let now = Instant::now();
        if windows.len() > SWEEP_ABOVE {
            windows.retain(|_, w| now.duration_since(w.started) < self.window);
        }
        for (key, _) in self.keys(account, address) {
            let w = windows.entry(key).or_insert(Window {
                started: now,
                failures: 0,
            });
            if now.duration_since(w.started) >= self.window {
                *w = Window {
                    started: now,
                    failures: 0,
                };
            }
            w.failures = w.failures.saturating_add(1);
        }
    }

    /// A successful sign-in clears the account's failures (not the address's).
    pub fn succeeded(&self, account: &str) {
        self.lock().remove(&Key::Account(account.to_lowercase()));
    }

    fn keys(&self, account: &str, address: Option<IpAddr>) -> Vec<(Key, u32)> {
        let mut keys = vec![(Key::Account(account.to_lowercase()), self.per_account)];
        if let Some(address) = address {
            keys.push((Key::Address(address), self.per_address));
        }
        keys
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Window>> {
        // A panic while holding the lock leaves plain counters behind: still usable.
        self.windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_holds_per_account_and_per_address_until_the_window_ends() {
        let limiter = FailureLimiter::new(3, 5, Duration::from_millis(200));
        let here: IpAddr = [10, 0, 0, 1].into();
        for _ in 0..3 {
            assert!(limiter.check("Ann", Some(here)).is_ok());
            limiter.failed("Ann", Some(here));
        }
        let wait = limiter
            .check("ann", None)
            .expect_err("account over its limit");
        assert!(wait <= Duration::from_millis(200));
        assert!(
            limiter.check("bob", Some(here)).is_ok(),
            "address below its limit"
        );
        limiter.failed("bob", Some(here));
        limiter.failed("carl", Some(here));
        assert!(
            limiter.check("dora", Some(here)).is_err(),
            "address over its limit"
        );
        assert!(limiter.check("dora", None).is_ok());
        std::thread::sleep(Duration::from_millis(250));
        assert!(limiter.check("ann", Some(here)).is_ok(), "a new window");
        limiter.failed("bob", None);
        limiter.succeeded("BOB");
        assert!(limiter.check("bob", None).is_ok());
    }
}
