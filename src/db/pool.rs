//! The bb8 pool of diesel-async connections that every request handler draws from.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use std::time::Duration;

use diesel_async::pooled_connection::{PoolError, PoolableConnection};
use tokio::sync::watch;
use tracing::warn;

use crate::config::PoolSettings;
use crate::db::connector::PgConnector;
use crate::db::error::DbError;
use crate::db::lifetime::PooledPg;
use crate::db::shared::{SharedConn, SharedConnections};

/// The bb8 pool type.
pub type DbPool = bb8::Pool<PgManager>;

/// A connection checked out of the pool, owned so it can outlive the pool handle it came from.
pub type DbConn = bb8::PooledConnection<'static, PgManager>;

/// Opens the pool's connections through the connector (TLS, session settings, the query
/// instrumentation) with their retirement dates, and closes retired and broken ones.
pub struct PgManager {
    connector: PgConnector,
    lifetime: Option<Duration>,
}

impl bb8::ManageConnection for PgManager {
    type Connection = PooledPg;
    type Error = PoolError;

    async fn connect(&self) -> Result<PooledPg, PoolError> {
        let conn = self
            .connector
            .connect()
            .await
            .map_err(|e| PoolError::ConnectionError(e.into()))?;
        Ok(PooledPg::new(conn, self.lifetime))
    }

    async fn is_valid(&self, _conn: &mut PooledPg) -> Result<(), PoolError> {
        // Not asked: checking every checkout with `SELECT 1` halves throughput.
        Ok(())
    }

    fn has_broken(&self, conn: &mut PooledPg) -> bool {
        std::thread::panicking() || conn.is_retired() || conn.is_broken()
    }
}

/// The pool plus a feed of its connection failures.
///
/// bb8 never hands a failed connection attempt to the caller waiting for it: the waiter only
/// times out. Watching the failures lets a request that waits for a connection fail at once,
/// with PostgreSQL's own reason, when the server is down.
#[derive(Clone)]
pub struct LivePool {
    /// Private: every checkout goes through [`LivePool::get`], which fails fast.
    pool: DbPool,
    failures: watch::Receiver<Option<String>>,
    max_size: u32,
    /// Connections retired at checkout for their age.
    recycled: Arc<AtomicU64>,
    /// Callers inside [`LivePool::get`] now. Counted here rather than taken from bb8, whose
    /// count drifts upwards when a waiter gives up early (as a fail-fast one does).
    waiting: Arc<AtomicU64>,
    /// Connections for single statements of many callers at once, beside the pool.
    shared: Arc<SharedConnections>,
}

/// The pool's state, for metrics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PoolFigures {
    /// `POSTGRES_POOL_MAX`.
    pub max: u32,
    /// Connections open.
    pub open: u32,
    /// Of which idle.
    pub idle: u32,
    /// Callers waiting for a connection.
    pub waiting: u64,
    /// Checkouts that timed out, since start.
    pub timeouts: u64,
    /// Connections opened, since start.
    pub created: u64,
    /// Connections closed because they broke, since start.
    pub closed_broken: u64,
    /// Connections closed because they reached their lifetime, since start.
    pub recycled: u64,
    /// Total time callers waited for a connection, since start.
    pub wait_seconds: f64,
    /// Shared connections open beside the pool ([`crate::db::shared`]).
    pub shared: u32,
}

impl LivePool {
    /// Builds the pool without waiting for connections, so a server that is down at this
    /// moment does not stop the process; connection errors surface per request as 503s.
    pub fn new(connector: &PgConnector, settings: &PoolSettings) -> Self {
        let lifetime = settings.max_lifetime;
        // One per runtime worker thread, so a thread's callers find its connection's task.
        let workers = tokio::runtime::Handle::try_current()
            .map(|h| h.metrics().num_workers())
            .unwrap_or(1);
        let shared = Arc::new(SharedConnections::new(connector.clone(), lifetime, workers));
        let manager = PgManager {
            connector: connector.clone(),
            lifetime,
        };
        let (sender, failures) = watch::channel(None);
        let pool = bb8::Pool::builder()
            .max_size(settings.max_size)
            .min_idle(Some(settings.min_idle))
            .connection_timeout(settings.connect_timeout)
            // `None` (POSTGRES_IDLE_TIMEOUT_MS=0) keeps idle connections open; bb8 panics on zero.
            .idle_timeout(settings.idle_timeout)
            // Not bb8's own lifetime check: it would close every connection at the same age
            // (and idle ones on one reaper tick). Each connection is retired at its own
            // jittered age when next checked out instead (see `lifetime`); idle ones above
            // `min_idle` go with the idle timeout.
            .max_lifetime(None)
            // Checking every checkout with `SELECT 1` halves throughput; diesel-async still drops
            // connections that are closed or stuck in a transaction when they are returned.
            .test_on_check_out(false)
            // A failed attempt is reported (below) instead of being retried until the timeout.
            .retry_connection(false)
            .error_sink(Box::new(FailureFeed(sender)))
            .build_unchecked(manager);
        Self {
            pool,
            failures,
            max_size: settings.max_size,
            waiting: Arc::new(AtomicU64::new(0)),
            recycled: Arc::new(AtomicU64::new(0)),
            shared,
        }
    }

    /// The pool's state now.
    pub fn figures(&self) -> PoolFigures {
        let state = self.pool.state();
        let stats = state.statistics;
        // Retired connections reach bb8 as broken ones: count them as recycled instead.
        let retired = self.recycled.load(Ordering::Relaxed);
        PoolFigures {
            max: self.max_size,
            open: state.connections,
            idle: state.idle_connections,
            waiting: self.waiting.load(Ordering::Relaxed),
            timeouts: stats.get_timed_out,
            created: stats.connections_created,
            closed_broken: stats.connections_closed_broken.saturating_sub(retired),
            recycled: retired + stats.connections_closed_max_lifetime,
            wait_seconds: stats.get_wait_time.as_secs_f64(),
            shared: u32::try_from(self.shared.open_count()).unwrap_or(u32::MAX),
        }
    }

    /// A connection, or the reason none can be had: PostgreSQL's error as soon as an attempt
    /// to connect fails while the pool holds no connection at all, or a timeout. Connections
    /// that died while idle (PostgreSQL restarted) are discarded here instead of being handed
    /// out, so the first request after a restart already succeeds; connections past their
    /// lifetime are retired here, before any query is sent on them.
    pub async fn get(&self) -> Result<DbConn, DbError> {
        let mut conn = self.wait_for_connection().await?;
        // At most every pooled connection can be dead or old; dropping one lets bb8 close it.
        for _ in 0..self.max_size {
            if conn.is_broken() {
                drop(conn);
            } else if conn.is_expired() {
                conn.retire();
                self.recycled.fetch_add(1, Ordering::Relaxed);
                drop(conn);
            } else {
                break;
            }
            conn = self.wait_for_connection().await?;
        }
        Ok(conn)
    }

    /// A connection shared with other callers, for one statement outside any transaction
    /// (see [`crate::db::shared`]): no waiting for a free pooled connection, and statements of
    /// concurrent callers travel together.
    pub async fn shared(&self) -> Result<SharedConn, DbError> {
        self.shared.get().await
    }

    async fn wait_for_connection(&self) -> Result<DbConn, DbError> {
        let _waiting = Waiting::enter(&self.waiting);
        let mut failures = self.failures.clone();
        failures.mark_unchanged();
        let get = self.pool.get_owned();
        tokio::pin!(get);
        loop {
            tokio::select! {
                biased;
                conn = &mut get => return Ok(conn?),
                changed = failures.changed() => {
                    if changed.is_err() {
                        return Ok(get.await?);
                    }
                    // Only give up when nothing could come back to us: with live connections in
                    // the pool (a burst, or "too many clients"), wait for one to be returned.
                    if self.pool.state().connections == 0 {
                        let reason = failures.borrow_and_update().clone().unwrap_or_default();
                        return Err(DbError::Unavailable(reason));
                    }
                }
            }
        }
    }
}

/// One caller inside [`LivePool::get`], counted until it leaves however it leaves.
struct Waiting<'a>(&'a AtomicU64);

impl<'a> Waiting<'a> {
    fn enter(count: &'a AtomicU64) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Publishes each failed connection attempt to the waiters of [`LivePool::get`].
struct FailureFeed(watch::Sender<Option<String>>);

impl std::fmt::Debug for FailureFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FailureFeed")
    }
}

impl bb8::ErrorSink<PoolError> for FailureFeed {
    fn sink(&self, error: PoolError) {
        let reason = error.to_string();
        warn!(error = %reason, "cannot open a database connection");
        self.0.send_replace(Some(reason));
    }

    fn boxed_clone(&self) -> Box<dyn bb8::ErrorSink<PoolError>> {
        Box::new(FailureFeed(self.0.clone()))
    }
}
