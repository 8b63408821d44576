//! Failed sign-ins, counted per account and per client address in fixed one-minute windows.
//! Past the limit, every attempt of that account (or from that address) is answered 429 with
//! the seconds left until the window ends, before any password is checked, so guessing costs
//! an attacker a minute per ten guesses and costs the server no hashing.
//!
//! The address is the TCP peer's: behind a reverse proxy it is the proxy's, shared by every
//! client, hence the higher per-address limit. Counts are per process (each replica keeps its
//! own). Hand-written rather than a rate-limiting crate: only failures count (an attempt counts
//! while its password is checked, and is taken back when it succeeds), which token buckets
//! such as `governor` do not offer.

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

    /// Starts a sign-in attempt: `Err(wait)` when `account` (as typed, case-insensitively)
    /// or `address` is over its limit, otherwise the attempt, counted as a failure from now
    /// on. Counting before the password is checked keeps a burst of concurrent guesses to the
    /// limit: each one sees the others. The attempt is taken back when it succeeds or ends
    /// without an answer (a database error, a dropped request).
    pub fn begin(&self, account: &str, address: Option<IpAddr>) -> Result<Attempt<'_>, Duration> {
        let mut windows = self.lock();
        let now = Instant::now();
        if windows.len() > SWEEP_ABOVE {
            windows.retain(|_, w| now.duration_since(w.started) < self.window);
        }
        let keys = self.keys(account, address);
        let mut wait = Duration::ZERO;
        for (key, limit) in &keys {
            if let Some(w) = windows.get(key) {
                let elapsed = now.duration_since(w.started);
                if elapsed < self.window && w.failures >= *limit {
                    wait = wait.max(self.window - elapsed);
                }
            }
        }
        if !wait.is_zero() {
            return Err(wait);
        }
        let mut counted = Vec::with_capacity(keys.len());
        for (key, _) in keys {
            let w = windows.entry(key.clone()).or_insert(Window {
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
            counted.push((key, w.started));
        }
        Ok(Attempt {
            limiter: self,
            counted,
            settled: false,
        })
    }

    /// Takes back one failure of `key` counted in the window that started at `started`
    /// (a window begun since has not counted it).
    fn take_back(&self, windows: &mut HashMap<Key, Window>, key: &Key, started: Instant) {
        if let Some(w) = windows.get_mut(key) {
            if w.started == started {
                w.failures = w.failures.saturating_sub(1);
            }
        }
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

/// A sign-in attempt in progress, counted as a failure until it is settled otherwise.
#[must_use = "an attempt dropped unsettled is taken back"]
pub struct Attempt<'a> {
    limiter: &'a FailureLimiter,
    counted: Vec<(Key, Instant)>,
    settled: bool,
}

impl Attempt<'_> {
    /// The password was wrong (or the account unknown): the failure stays counted.
    pub fn failed(mut self) {
        self.settled = true;
    }

    /// The password matched: the account's failures are cleared, and this attempt is taken
    /// back from the address's (one person's success says nothing of the others').
    pub fn succeeded(mut self) {
        self.settled = true;
        let mut windows = self.limiter.lock();
        for (key, started) in &self.counted {
            match key {
                Key::Account(_) => {
                    windows.remove(key);
                }
                Key::Address(_) => self.limiter.take_back(&mut windows, key, *started),
            }
        }
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let mut windows = self.limiter.lock();
        for (key, started) in &self.counted {
            self.limiter.take_back(&mut windows, key, *started);
        }
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
            limiter.begin("Ann", Some(here)).expect("below").failed();
        }
        let wait = limiter
            .begin("ann", None)
            .err()
            .expect("account over its limit");
        assert!(wait <= Duration::from_millis(200));
        limiter
            .begin("bob", Some(here))
            .expect("address below")
            .failed();
        limiter
            .begin("carl", Some(here))
            .expect("address below")
            .failed();
        assert!(
            limiter.begin("dora", Some(here)).is_err(),
            "address over its limit"
        );
        assert!(limiter.begin("dora", None).is_ok());
        std::thread::sleep(Duration::from_millis(250));
        assert!(limiter.begin("ann", Some(here)).is_ok(), "a new window");
        limiter.begin("bob", None).expect("new window").failed();
        limiter.begin("BOB", None).expect("one failure").succeeded();
        for _ in 0..3 {
            limiter.begin("bob", None).expect("cleared").failed();
        }
    }

    #[test]
    fn attempts_in_flight_count_against_the_limit() {
        let limiter = FailureLimiter::new(3, 100, Duration::from_secs(60));
        let burst: Vec<_> = (0..3)
            .map(|_| limiter.begin("ann", None).expect("below"))
            .collect();
        assert!(
            limiter.begin("ann", None).is_err(),
            "a fourth guess while three are checked"
        );
        drop(burst);
        assert!(
            limiter.begin("ann", None).is_ok(),
            "attempts ended without an answer are taken back"
        );
    }

    #[test]
    fn a_success_takes_its_attempt_back_from_the_address_only() {
        let limiter = FailureLimiter::new(10, 2, Duration::from_secs(60));
        let here: IpAddr = [10, 0, 0, 2].into();
        limiter.begin("ann", Some(here)).expect("first").failed();
        limiter
            .begin("bob", Some(here))
            .expect("second")
            .succeeded();
        limiter
            .begin("carl", Some(here))
            .expect("the success was taken back")
            .failed();
        assert!(limiter.begin("dora", Some(here)).is_err(), "two failures");
    }
}
