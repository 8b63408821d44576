//! The `getDb()` of upstream: a handle that is either not ready or holds the live pool.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwapOption;

use crate::db::error::DbError;
use crate::db::pool::{DbConn, LivePool};

/// Shared by every handler; setup swaps a pool in without a restart, and a read costs one
/// atomic load, so the hot path never waits on a lock.
#[derive(Clone, Default)]
pub struct Database {
    pool: Arc<ArcSwapOption<LivePool>>,
    /// Set for good by [`Database::close`]: a pool installed afterwards (by a transition
    /// that outlived the shutdown wait) is dropped at once instead of being served.
    closed: Arc<AtomicBool>,
}

impl Database {
    /// A handle with no pool yet: every request gets [`DbError::NotInitialized`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes `pool` the live pool; called once setup or start-up migration succeeded.
    pub fn install(&self, pool: LivePool) {
        self.pool.store(Some(Arc::new(pool)));
        if self.closed.load(Ordering::SeqCst) {
            self.pool.store(None);
        }
    }

    /// Whether setup completed and the schema is migrated.
    pub fn is_ready(&self) -> bool {
        self.pool.load().is_some()
    }

    /// A connection for one request; fails fast with PostgreSQL's reason when it is down.
    pub async fn conn(&self) -> Result<DbConn, DbError> {
        self.live()?.get().await
    }

    fn live(&self) -> Result<Arc<LivePool>, DbError> {
        self.pool.load_full().ok_or(DbError::NotInitialized)
    }

    /// The live pool's state; `None` before setup.
    pub fn pool_figures(&self) -> Option<crate::db::pool::PoolFigures> {
        self.pool.load().as_ref().map(|p| p.figures())
    }

    /// Runs `SELECT 1` through the pool: the readiness probe.
    pub async fn ping(&self) -> Result<(), DbError> {
        use diesel::sql_types::Integer;
        use diesel::IntoSql;
        use diesel_async::RunQueryDsl;

        let mut conn = self.conn().await?;
        diesel::select(1_i32.into_sql::<Integer>())
            .get_result::<i32>(&mut conn)
            .await
            .map_err(|e| DbError::Unavailable(e.to_string()))?;
        Ok(())
    }

    /// Drops the pool so its connections close (at shutdown), and refuses any later one.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.pool.store(None);
    }
}
