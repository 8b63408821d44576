//! Shared connections for single statements, many callers at once: node-postgres'
//! `pool.query()` beside the pool's `pool.connect()`.
//!
//! A pooled connection serves one caller at a time, so each statement costs a send that wakes
//! a sleeping PostgreSQL backend and a receive that wakes the caller. Statements sent on one
//! shared connection by concurrent callers are *pipelined* by tokio-postgres: whatever is
//! queued goes out in one write, PostgreSQL runs them in turn without sleeping in between, and
//! one read brings several answers back. Under load that divides the per-statement system
//! calls and wake-ups, on both sides, by the number of statements in flight.
//!
//! There are as many shared connections as the runtime has worker threads (one on the
//! default current-thread runtime), each opened at first use; each thread that uses them
//! takes the next in turn, so callers of a thread mostly meet the connection task on their
//! own thread. A connection that ended
//! (server restart, network failure, answer deadline) is replaced before the next statement:
//! callers wait for that one attempt, which runs as a task of its own, and all get its error
//! at once if it fails, as the pool's callers do. One that reached its lifetime keeps serving
//! until its replacement is open.
//!
//! Only for statements that need no session of their own: no transaction, no `SET`, nothing a
//! later statement relies on. PostgreSQL runs a connection's statements one after another, so
//! a long one delays those queued behind it: keep shared statements short.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use diesel_async::AsyncPgConnection;
use futures_util::future::{BoxFuture, Shared};
use futures_util::FutureExt;

use crate::db::connector::{Ended, PgConnector};
use crate::db::error::DbError;

/// A shared connection in use; statements run on it through `&mut &*conn` (diesel-async's
/// pipelining through shared references, which offer no transactions). Holding it keeps the
/// connection open, nothing more.
#[derive(Clone)]
pub struct SharedConn(Arc<OpenShared>);

impl std::ops::Deref for SharedConn {
    type Target = AsyncPgConnection;

    fn deref(&self) -> &AsyncPgConnection {
        &self.0.conn
    }
}

/// One open shared connection.
struct OpenShared {
    conn: AsyncPgConnection,
    ended: Ended,
    retire_at: Option<Instant>,
}

impl OpenShared {
    fn is_old(&self) -> bool {
        self.retire_at.is_some_and(|at| Instant::now() >= at)
    }
}

/// An attempt to open a connection: a task of its own, so it finishes (and is recorded in its
/// slot) however many of the callers awaiting it give up; each of them gets its outcome.
type Attempt = Shared<BoxFuture<'static, Result<(), String>>>;

/// One slot: its open connection, and the attempt to open the next one.
#[derive(Default)]
struct Slot {
    open: ArcSwapOption<OpenShared>,
    attempt: Mutex<Attempts>,
}

/// A slot's attempt in progress, and when the last one failed.
#[derive(Default)]
struct Attempts {
    running: Option<Attempt>,
    failed_at: Option<Instant>,
}

/// How long an old connection that could not be replaced keeps serving before the next try.
const RETRY_OLD: Duration = Duration::from_secs(1);
/// Attempts one caller makes when each new connection ends before it can be used.
const TRIES: usize = 3;

/// The shared connections of one pool; see the module documentation.
pub struct SharedConnections {
    connector: PgConnector,
    lifetime: Option<Duration>,
    slots: Box<[Arc<Slot>]>,
}

/// Gives each thread its own slot, in turn.
static NEXT_THREAD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static THREAD_NUMBER: usize = NEXT_THREAD.fetch_add(1, Ordering::Relaxed);
}

impl SharedConnections {
    /// `count` slots (at least one), none open yet; connections are retired at a jittered
    /// `lifetime`, like pooled ones.
    pub fn new(connector: PgConnector, lifetime: Option<Duration>, count: usize) -> Self {
        Self {
            connector,
            lifetime,
            slots: (0..count.max(1)).map(|_| Arc::default()).collect(),
        }
    }

    /// The calling thread's shared connection. One that ended is replaced first, and the
    /// caller fails at once with PostgreSQL's reason when no new one can be opened; one that
    /// is only old keeps serving while its replacement opens, so recycling never fails or
    /// delays a statement.
    pub async fn get(&self) -> Result<SharedConn, DbError> {
        let slot = &self.slots[THREAD_NUMBER.with(|n| *n) % self.slots.len()];
        for _ in 0..TRIES {
            if let Some(open) = slot.open.load_full().filter(|o| !o.ended.is_set()) {
                if open.is_old() {
                    // Started, not awaited: the task runs by itself.
                    drop(self.attempt(slot, true));
                }
                return Ok(SharedConn(open));
            }
            if let Some(attempt) = self.attempt(slot, false) {
                attempt.await.map_err(DbError::Unavailable)?;
            }
            // Opened (by this attempt or another): the next turn hands it out.
        }
        Err(DbError::Unavailable(format!(
            "{}: each new connection closed at once",
            self.connector.target()
        )))
    }

    /// The slot's attempt in progress, or a new one; none when the slot holds a connection
    /// that needs no replacing (opened meanwhile), or, for an old one (`old`), when the last
    /// attempt failed less than [`RETRY_OLD`] ago.
    fn attempt(&self, slot: &Arc<Slot>, old: bool) -> Option<Attempt> {
        let mut attempts = slot.attempt.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(running) = &attempts.running {
            return Some(running.clone());
        }
        let open = slot.open.load();
        if open
            .as_ref()
            .is_some_and(|o| !o.ended.is_set() && !o.is_old())
        {
            return None;
        }
        if old
            && attempts
                .failed_at
                .is_some_and(|at| at.elapsed() < RETRY_OLD)
        {
            return None;
        }
        let task = tokio::spawn(open_into(
            slot.clone(),
            self.connector.clone(),
            self.lifetime,
        ));
        let attempt = async move {
            task.await
                .unwrap_or_else(|e| Err(format!("opening a connection failed: {e}")))
        }
        .boxed()
        .shared();
        attempts.running = Some(attempt.clone());
        Some(attempt)
    }

    /// How many shared connections are open now (metrics, tests).
    pub fn open_count(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.open.load().as_ref().is_some_and(|o| !o.ended.is_set()))
            .count()
    }
}

/// Opens a connection for `slot` and records it there (replacing the one it had); the
/// slot's attempt ends with this task, however it ends.
async fn open_into(
    slot: Arc<Slot>,
    connector: PgConnector,
    lifetime: Option<Duration>,
) -> Result<(), String> {
    let ending = EndAttempt(Some(slot.clone()));
    let opened = connector.connect_watched().await;
    ending.disarm();
    let mut attempts = slot.attempt.lock().unwrap_or_else(|e| e.into_inner());
    attempts.running = None;
    let (conn, ended) = match opened {
        Ok(opened) => opened,
        Err(e) => {
            attempts.failed_at = Some(Instant::now());
            return Err(e.to_string());
        }
    };
    attempts.failed_at = None;
    slot.open.store(Some(Arc::new(OpenShared {
        conn,
        ended,
        retire_at: lifetime.map(|l| Instant::now() + super::lifetime::jittered(l)),
    })));
    Ok(())
}

/// Ends a slot's attempt whose task stopped before its outcome (a panic, or its runtime
/// shutting down), so the next caller starts a new one instead of meeting that one forever.
struct EndAttempt(Option<Arc<Slot>>);

impl EndAttempt {
    /// The task reached its outcome and records it itself.
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for EndAttempt {
    fn drop(&mut self) {
        if let Some(slot) = self.0.take() {
            let mut attempts = slot.attempt.lock().unwrap_or_else(|e| e.into_inner());
            attempts.running = None;
            attempts.failed_at = Some(Instant::now());
        }
    }
}
