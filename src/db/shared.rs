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
//! There is one shared connection per runtime worker thread, opened at first use, so callers
//! of a thread mostly meet the connection task on their own thread. A connection that ended
//! (server restart, network failure, answer deadline) or reached its lifetime is replaced
//! before the next statement; while it is being opened, callers wait for that one attempt and
//! all get its error at once if it fails, as the pool's callers do.
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
    fn usable(&self) -> bool {
        !self.ended.is_set() && self.retire_at.is_none_or(|at| Instant::now() < at)
    }
}

/// An attempt to open a connection, awaited by every caller that needs it meanwhile.
type Attempt = Shared<BoxFuture<'static, Result<Arc<OpenShared>, String>>>;

/// One slot: its open connection, and the attempt to open the next one.
#[derive(Default)]
struct Slot {
    open: ArcSwapOption<OpenShared>,
    attempt: Mutex<Option<Attempt>>,
}

/// The shared connections of one pool; see the module documentation.
pub struct SharedConnections {
    connector: PgConnector,
    lifetime: Option<Duration>,
    slots: Box<[Slot]>,
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
            slots: (0..count.max(1)).map(|_| Slot::default()).collect(),
        }
    }

    /// The calling thread's shared connection, opened (or replaced) first when needed; fails
    /// at once with PostgreSQL's reason when it cannot be opened.
    pub async fn get(&self) -> Result<SharedConn, DbError> {
        let slot = &self.slots[THREAD_NUMBER.with(|n| *n) % self.slots.len()];
        if let Some(open) = slot.open.load_full().filter(|o| o.usable()) {
            return Ok(SharedConn(open));
        }
        let attempt = {
            let mut attempt = slot.attempt.lock().unwrap_or_else(|e| e.into_inner());
            // Replaced by another caller while this one waited for the lock.
            if let Some(open) = slot.open.load_full().filter(|o| o.usable()) {
                return Ok(SharedConn(open));
            }
            attempt.get_or_insert_with(|| self.open_one()).clone()
        };
        let result = attempt.clone().await;
        {
            let mut current = slot.attempt.lock().unwrap_or_else(|e| e.into_inner());
            if current.as_ref().is_some_and(|a| a.ptr_eq(&attempt)) {
                *current = None;
                if let Ok(open) = &result {
                    slot.open.store(Some(open.clone()));
                }
            }
        }
        result.map(SharedConn).map_err(DbError::Unavailable)
    }

    fn open_one(&self) -> Attempt {
        let connector = self.connector.clone();
        let lifetime = self.lifetime;
        async move {
            let (conn, ended) = connector
                .connect_watched()
                .await
                .map_err(|e| e.to_string())?;
            Ok(Arc::new(OpenShared {
                conn,
                ended,
                retire_at: lifetime.map(|l| Instant::now() + super::lifetime::jittered(l)),
            }))
        }
        .boxed()
        .shared()
    }

    /// How many shared connections are open now (metrics, tests).
    pub fn open_count(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.open.load().as_ref().is_some_and(|o| o.usable()))
            .count()
    }
}
