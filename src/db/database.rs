//! The `getDb()` of upstream: a handle that is either not ready or holds the live pool.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwapOption;

use crate::db::error::DbError;
use crate::db::pool::{DbConn, LivePool};
use crate::db::replicas::{ReplicaReport, ReplicaSet};
use crate::db::shared::SharedConn;

/// Shared by every handler; setup swaps a pool in without a restart, and a read costs one
/// atomic load, so the hot path never waits on a lock.
#[derive(Clone, Default)]
pub struct Database {
    pool: Arc<ArcSwapOption<LivePool>>,
    /// Read replicas, when `POSTGRES_READ_HOSTS` names some and the database is served.
    replicas: Arc<ArcSwapOption<ReplicaSet>>,
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

    /// A connection to the primary for one request (the default for everything); fails fast
    /// with PostgreSQL's reason when it is down. Later [`Database::read`]s of the same unit of
    /// work (see [`crate::db::routing`]) go to the primary too.
    pub async fn conn(&self) -> Result<DbConn, DbError> {
        super::routing::note_primary();
        self.live()?.get().await
    }

    /// [`Database::conn`], named for what the caller is about to do.
    pub async fn write(&self) -> Result<DbConn, DbError> {
        self.conn().await
    }

    /// A connection for reads that tolerate replica lag: a usable replica's, unless this unit
    /// of work used the primary already (read-your-writes) or no replica is usable; then the
    /// primary's.
    pub async fn read(&self) -> Result<DbConn, DbError> {
        if !super::routing::used_primary() {
            if let Some(replicas) = self.replicas.load().as_ref() {
                if let Some(conn) = replicas.connection(super::routing::after_lsn()).await {
                    return Ok(conn);
                }
            }
        }
        self.conn_untracked().await
    }

    /// Whether reads may go to replicas (then positions are worth handing out).
    pub fn has_replicas(&self) -> bool {
        self.replicas.load().is_some()
    }

    /// The primary's WAL position now: at or past every commit made before, so a unit of
    /// work that starts after it (see [`crate::db::routing`]) sees them all. The insert
    /// position, not the write position: with `synchronous_commit = off` (or `fsync = off`)
    /// a commit may not be written yet, and a replica at the write position may lack it.
    pub async fn primary_lsn(&self) -> Result<u64, DbError> {
        use diesel_async::RunQueryDsl;

        #[derive(diesel::QueryableByName)]
        struct Lsn {
            #[diesel(sql_type = diesel::sql_types::Text)]
            lsn: String,
        }
        let conn = self.live()?.shared().await?;
        let row = diesel::sql_query("SELECT pg_current_wal_insert_lsn()::text AS lsn")
            .get_result::<Lsn>(&mut &*conn)
            .await?;
        super::routing::parse_lsn(&row.lsn)
            .ok_or_else(|| DbError::Unavailable(format!("unexpected WAL position {}", row.lsn)))
    }

    /// A primary connection that does not mark the unit of work (reads falling back, checks).
    pub(crate) async fn conn_untracked(&self) -> Result<DbConn, DbError> {
        self.live()?.get().await
    }

    /// Serves reads from `replicas` from now on.
    pub fn install_replicas(&self, replicas: Arc<ReplicaSet>) {
        if !self.closed.load(Ordering::SeqCst) {
            self.replicas.store(Some(replicas));
        }
    }

    /// The replicas' last verdicts; empty without replicas.
    pub fn replica_reports(&self) -> Vec<ReplicaReport> {
        self.replicas
            .load()
            .as_ref()
            .map(|r| r.report())
            .unwrap_or_default()
    }

    fn live(&self) -> Result<Arc<LivePool>, DbError> {
        self.pool.load_full().ok_or(DbError::NotInitialized)
    }

    /// The live pool's state; `None` before setup.
    pub fn pool_figures(&self) -> Option<crate::db::pool::PoolFigures> {
        self.pool.load().as_ref().map(|p| p.figures())
    }

    /// Runs `SELECT 1` on a shared connection: the readiness probe. Not on a pooled one, so a
    /// pool busy with long requests does not make the backend unready (its callers wait, they
    /// do not fail); a database that does not answer does, at once.
    pub async fn ping(&self) -> Result<(), DbError> {
        use diesel::sql_types::Integer;
        use diesel::IntoSql;
        use diesel_async::RunQueryDsl;

        let conn = self.shared().await?;
        diesel::select(1_i32.into_sql::<Integer>())
            .get_result::<i32>(&mut &*conn)
            .await
            .map_err(|e| DbError::Unavailable(e.to_string()))?;
        Ok(())
    }

    /// A primary connection shared with concurrent callers, for one statement that needs no
    /// session of its own (no transaction, no `SET`): no wait for a free pooled connection,
    /// and concurrent statements are pipelined. See [`crate::db::shared`].
    pub async fn shared(&self) -> Result<SharedConn, DbError> {
        super::routing::note_primary();
        self.live()?.shared().await
    }

    /// Drops the pool so its connections close (at shutdown), and refuses any later one.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.pool.store(None);
        self.replicas.store(None);
    }
}
