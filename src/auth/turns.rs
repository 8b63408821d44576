//! Turns at the password hasher, handed out trusted first. A loop of sign-ups from many
//! addresses keeps every turn taken; a browser that signed in before (its device cookie)
//! then waits behind one hash, not behind the whole queue. A request that could not get a
//! turn within the wait is told so at once, with the time to retry, instead of after the
//! wait (the queue's length and the hashes' running average say how long it would take).
//! tokio's `Semaphore` is fair but has one queue, hence this.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::oneshot;

/// Who is asking for a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// A client with a valid device cookie for the account it signs in to.
    Trusted,
    /// Anyone else.
    Normal,
}

/// A hash's duration assumed before one was measured.
const FIRST_GUESS: Duration = Duration::from_millis(50);

/// The turns.
pub struct Turns {
    state: Mutex<State>,
    width: usize,
    /// Running average of a turn's length, in microseconds.
    average_us: AtomicU64,
}

struct State {
    free: usize,
    trusted: VecDeque<oneshot::Sender<()>>,
    normal: VecDeque<oneshot::Sender<()>>,
}

/// A turn; given to the next in line when dropped.
pub struct Turn {
    turns: Arc<Turns>,
}

impl Turns {
    /// `width` turns at once.
    pub fn new(width: usize) -> Arc<Self> {
        let width = width.max(1);
        Arc::new(Self {
            state: Mutex::new(State {
                free: width,
                trusted: VecDeque::new(),
                normal: VecDeque::new(),
            }),
            width,
            average_us: AtomicU64::new(micros(FIRST_GUESS)),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A turn within `wait`. `Err(retry_after)` at once when those ahead would take longer
    /// than `wait` by the running average, or once `wait` has passed.
    pub async fn take(
        self: &Arc<Self>,
        priority: Priority,
        wait: Duration,
    ) -> Result<Turn, Duration> {
        let rx = {
            let mut state = self.lock();
            if state.free > 0 {
                state.free -= 1;
                return Ok(Turn {
                    turns: self.clone(),
                });
            }
            // A trusted client is always let in line (they are few, each device limited);
            // anyone else only when those ahead would be done within the wait.
            if priority == Priority::Normal {
                let ahead = state.trusted.len() + state.normal.len();
                let expected = self.expected_wait(ahead);
                if expected > wait {
                    return Err(retry_after(expected));
                }
            }
            let (tx, rx) = oneshot::channel();
            match priority {
                Priority::Trusted => state.trusted.push_back(tx),
                Priority::Normal => state.normal.push_back(tx),
            }
            rx
        };
        let mut waiting = Waiting {
            turns: self,
            rx: Some(rx),
        };
        let received = tokio::time::timeout(wait, async {
            match waiting.rx.as_mut() {
                Some(rx) => rx.await.is_ok(),
                None => false,
            }
        })
        .await;
        match received {
            Ok(true) => {
                waiting.rx = None;
                Ok(Turn {
                    turns: self.clone(),
                })
            }
            // Timed out (the drop below gives back a turn sent meanwhile) or, impossibly,
            // the sender vanished.
            _ => Err(retry_after(self.expected_wait(self.queued()))),
        }
    }

    /// Records how long a turn's work took (the running average of the last few).
    pub fn record(&self, took: Duration) {
        let sample = micros(took);
        let _ = self
            .average_us
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |avg| {
                Some(avg - avg / 8 + sample / 8)
            });
    }

    /// How long `ahead` waiting requests take before a new one gets a turn: every turn is
    /// taken, so the new one waits for the rounds of `width` turns ahead of it, and its own.
    fn expected_wait(&self, ahead: usize) -> Duration {
        let rounds = u64::try_from(ahead / self.width + 1).unwrap_or(u64::MAX);
        let average = self.average_us.load(Ordering::Relaxed);
        Duration::from_micros(rounds.saturating_mul(average))
    }

    fn queued(&self) -> usize {
        let state = self.lock();
        state.trusted.len() + state.normal.len()
    }

    /// Gives a turn to the next in line, trusted first, or frees it.
    fn release(&self) {
        let mut state = self.lock();
        loop {
            let next = match state.trusted.pop_front() {
                Some(tx) => Some(tx),
                None => state.normal.pop_front(),
            };
            match next {
                // A waiter that gave up has closed its receiver: try the next.
                Some(tx) => {
                    if tx.send(()).is_ok() {
                        return;
                    }
                }
                None => {
                    state.free += 1;
                    return;
                }
            }
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        self.turns.release();
    }
}

/// A place in line; a turn handed to it after it stopped waiting is passed on.
struct Waiting<'a> {
    turns: &'a Turns,
    rx: Option<oneshot::Receiver<()>>,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if let Some(mut rx) = self.rx.take() {
            rx.close();
            if rx.try_recv().is_ok() {
                self.turns.release();
            }
        }
    }
}

/// What `Retry-After` says for `wait`: whole seconds, at least one.
fn retry_after(wait: Duration) -> Duration {
    Duration::from_secs(wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
        .max(Duration::from_secs(1))
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: Duration = Duration::from_secs(30);

    #[tokio::test]
    async fn the_trusted_go_first_and_turns_are_never_lost() {
        let turns = Turns::new(1);
        let held = turns.take(Priority::Normal, LONG).await.expect("free");
        let order = std::cell::RefCell::new(Vec::new());
        let waiter = |p: Priority, name: &'static str| {
            let (turns, order) = (&turns, &order);
            async move {
                let turn = turns.take(p, LONG).await.expect("a turn");
                order.borrow_mut().push(name);
                tokio::task::yield_now().await;
                drop(turn);
            }
        };
        let release = async {
            // The normal request is in line first, the trusted one second.
            while turns.queued() < 2 {
                tokio::task::yield_now().await;
            }
            drop(held);
        };
        futures_util::future::join3(
            waiter(Priority::Normal, "normal"),
            waiter(Priority::Trusted, "trusted"),
            release,
        )
        .await;
        assert_eq!(*order.borrow(), ["trusted", "normal"]);
        assert_eq!(turns.lock().free, 1, "every turn came back");
    }

    #[tokio::test]
    async fn a_line_too_long_is_refused_at_once_with_a_time_to_retry() {
        let turns = Turns::new(2);
        turns.record(Duration::from_millis(400));
        let a = turns.take(Priority::Normal, LONG).await.expect("free");
        let b = turns.take(Priority::Normal, LONG).await.expect("free");
        // Two ahead in line → at least two rounds of the running average.
        let wait = Duration::from_millis(500);
        let started = std::time::Instant::now();
        let refused = turns
            .take(Priority::Normal, Duration::from_millis(10))
            .await;
        assert!(refused.is_err());
        assert!(started.elapsed() < wait, "refused without waiting");
        assert!(refused.err().expect("err") >= Duration::from_secs(1));
        drop((a, b));
        assert_eq!(turns.lock().free, 2);
    }

    #[tokio::test]
    async fn a_waiter_that_gives_up_passes_its_turn_on() {
        let turns = Turns::new(1);
        let held = turns.take(Priority::Normal, LONG).await.expect("free");
        // Expected to get a turn within the wait (one hash of ~50 ms ahead), it waits and
        // gives up after 200 ms.
        let gave_up = turns
            .take(Priority::Normal, Duration::from_millis(200))
            .await;
        assert!(gave_up.is_err());
        assert_eq!(turns.queued(), 1, "its closed place is still in line");
        drop(held);
        let state = turns.lock();
        assert_eq!(
            (state.free, state.normal.len()),
            (1, 0),
            "skipped, turn freed"
        );
    }

    #[test]
    fn the_average_follows_what_turns_took() {
        let turns = Turns::new(4);
        for _ in 0..64 {
            turns.record(Duration::from_millis(200));
        }
        let avg = turns.average_us.load(Ordering::Relaxed);
        assert!((190_000..=200_000).contains(&avg), "{avg}");
        // Four at once: three ahead is one round, eight ahead three.
        assert_eq!(turns.expected_wait(3), Duration::from_micros(avg));
        assert_eq!(turns.expected_wait(4), Duration::from_micros(2 * avg));
        assert_eq!(turns.expected_wait(8), Duration::from_micros(3 * avg));
        assert_eq!(
            retry_after(Duration::from_millis(10)),
            Duration::from_secs(1)
        );
        assert_eq!(
            retry_after(Duration::from_millis(2001)),
            Duration::from_secs(3)
        );
        assert_eq!(retry_after(Duration::from_secs(2)), Duration::from_secs(2));
    }
}
