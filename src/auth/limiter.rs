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
        self.begin_at(account, address, Instant::now())
    }

    /// [`Self::begin`] at `now`: tests name the instant, so a window's last instant and its
    /// end are both tried.
    fn begin_at(
        &self,
        account: &str,
        address: Option<IpAddr>,
        now: Instant,
    ) -> Result<Attempt<'_>, Duration> {
        let mut windows = self.lock();
        if windows.len() > SWEEP_ABOVE {
            windows.retain(|_, w| now.duration_since(w.started) < self.window);
        }
        let keys = self.keys(account, address);
        let mut wait = Duration::ZERO;
        for (key, limit) in &keys {
            // A window that has ended leaves nothing to wait.
            if let Some(w) = windows.get(key).filter(|w| w.failures >= *limit) {
                let left = self.window.saturating_sub(now.duration_since(w.started));
                wait = wait.max(left);
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

    const MINUTE: Duration = Duration::from_secs(60);
    const NANO: Duration = Duration::from_nanos(1);

    impl FailureLimiter {
        fn tracked(&self) -> usize {
            self.lock().len()
        }
    }

    #[test]
    fn the_limit_holds_per_account_and_per_address_until_the_window_ends() {
        let limiter = FailureLimiter::new(3, 5, MINUTE);
        let here: IpAddr = [10, 0, 0, 1].into();
        let t0 = Instant::now();
        for _ in 0..3 {
            limiter
                .begin_at("Ann", Some(here), t0)
                .expect("below")
                .failed();
        }
        let wait = limiter
            .begin_at("ann", None, t0 + Duration::from_secs(20))
            .err()
            .expect("account over its limit");
        assert_eq!(wait, Duration::from_secs(40), "until the window ends");
        for name in ["bob", "carl"] {
            limiter
                .begin_at(name, Some(here), t0)
                .expect("address below")
                .failed();
        }
        assert!(
            limiter.begin_at("dora", Some(here), t0).is_err(),
            "address over its limit"
        );
        assert!(limiter.begin_at("dora", None, t0).is_ok());
        // The window's last instant still counts; its end starts a new one.
        assert!(limiter.begin_at("ann", None, t0 + MINUTE - NANO).is_err());
        assert!(limiter
            .begin_at("dora", Some(here), t0 + MINUTE - NANO)
            .is_err());
        let t1 = t0 + MINUTE;
        assert!(
            limiter.begin_at("ann", Some(here), t1).is_ok(),
            "a new window"
        );
        limiter
            .begin_at("bob", None, t1)
            .expect("new window")
            .failed();
        limiter
            .begin_at("BOB", None, t1)
            .expect("one failure")
            .succeeded();
        for _ in 0..3 {
            limiter.begin_at("bob", None, t1).expect("cleared").failed();
        }
        assert!(limiter.begin_at("bob", None, t1).is_err());
    }

    #[test]
    fn a_new_window_starts_counting_from_one() {
        let limiter = FailureLimiter::new(2, 100, MINUTE);
        let t0 = Instant::now();
        limiter.begin_at("ann", None, t0).expect("first").failed();
        limiter
            .begin_at("ann", None, t0 + MINUTE)
            .expect("new window")
            .failed();
        limiter
            .begin_at("ann", None, t0 + MINUTE)
            .expect("second failure of the new window")
            .failed();
        assert!(limiter.begin_at("ann", None, t0 + MINUTE).is_err());
    }

    #[test]
    fn expired_windows_are_swept_past_the_threshold_and_live_ones_kept() {
        let limiter = FailureLimiter::new(1, 100, MINUTE);
        let t0 = Instant::now();
        limiter
            .begin_at("victim", None, t0 + NANO)
            .expect("first")
            .failed();
        for i in 1..SWEEP_ABOVE {
            limiter
                .begin_at(&format!("user{i}"), None, t0)
                .expect("below")
                .failed();
        }
        assert_eq!(limiter.tracked(), SWEEP_ABOVE);
        // At the threshold nothing is swept yet.
        let t1 = t0 + MINUTE;
        limiter.begin_at("late1", None, t1).expect("below").failed();
        assert_eq!(limiter.tracked(), SWEEP_ABOVE + 1);
        // Past it, windows that ended go; the victim's (a nanosecond younger) and the new
        // ones stay, so the victim is still over its limit.
        limiter.begin_at("late2", None, t1).expect("below").failed();
        assert_eq!(limiter.tracked(), 3);
        assert!(limiter.begin_at("victim", None, t1).is_err());
    }

    #[test]
    fn attempts_in_flight_count_against_the_limit() {
        let limiter = FailureLimiter::new(3, 100, MINUTE);
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
        let limiter = FailureLimiter::new(10, 2, MINUTE);
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
