//! Figures read when Prometheus scrapes rather than counted as they happen: the pools' state,
//! the job queue's depth, the schema version and the lifecycle phase. The database is asked
//! with a short deadline, so a slow or absent database costs a scrape its queue figures,
//! never the scrape itself.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::QueryableByName;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

use super::labels::{JobLabels, PhaseLabels, PoolLabels, ReplicaLabels, VersionLabels};
use crate::db::pool::PoolFigures;
use crate::db::replicas::ReplicaState;
use crate::db::Database;
use crate::jobs::JobQueue;
use crate::lifecycle::Phase;

/// Longest a scrape waits for the database.
pub const DATABASE_DEADLINE: Duration = Duration::from_secs(2);

/// Name of the only pool so far; replicas will add theirs.
const PRIMARY: &str = "primary";

type FloatGauge = Gauge<f64, AtomicU64>;

/// The families filled at scrape time.
#[derive(Debug, Clone, Default)]
pub struct ScrapedMetrics {
    pool_max: Family<PoolLabels, Gauge>,
    pool_open: Family<PoolLabels, Gauge>,
    pool_idle: Family<PoolLabels, Gauge>,
    pool_waiting: Family<PoolLabels, Gauge>,
    pool_shared: Family<PoolLabels, Gauge>,
    pool_timeouts: Family<PoolLabels, Counter>,
    pool_created: Family<PoolLabels, Counter>,
    pool_closed_broken: Family<PoolLabels, Counter>,
    pool_recycled: Family<PoolLabels, Counter>,
    pool_wait_seconds: Family<PoolLabels, Counter<f64, AtomicU64>>,
    jobs: Family<JobLabels, Gauge>,
    oldest_pending: FloatGauge,
    queue_up: Gauge,
    phase: Family<PhaseLabels, Gauge>,
    migrations_applied: Gauge,
    migrations_known: Gauge,
    schema_version: Family<VersionLabels, Gauge>,
    /// The pools' running totals at the previous scrape, to add only what happened since
    /// (a pool replaced by a new one starts its totals at zero again).
    last_totals: Arc<Mutex<HashMap<String, PoolFigures>>>,
    replica_lag: Family<ReplicaLabels, FloatGauge>,
    replica_usable: Family<ReplicaLabels, Gauge>,
}

impl ScrapedMetrics {
    /// Registers the families in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        let pools = [
            (
                "deploystack_db_pool_max_connections",
                "POSTGRES_POOL_MAX of the pool",
                &m.pool_max,
            ),
            (
                "deploystack_db_pool_connections",
                "Connections open in the pool",
                &m.pool_open,
            ),
            (
                "deploystack_db_pool_idle_connections",
                "Idle connections in the pool",
                &m.pool_idle,
            ),
            (
                "deploystack_db_pool_waiting",
                "Callers waiting for a connection",
                &m.pool_waiting,
            ),
            (
                "deploystack_db_pool_shared_connections",
                "Connections open beside the pool for single statements of many callers at once",
                &m.pool_shared,
            ),
        ];
        for (name, help, family) in pools {
            registry.register(name, help, family.clone());
        }
        // bb8 keeps the running totals; each scrape advances these counters to them.
        let totals = [
            (
                "deploystack_db_pool_timeouts",
                "Checkouts that timed out waiting for a connection",
                &m.pool_timeouts,
            ),
            (
                "deploystack_db_pool_connections_created",
                "Connections opened",
                &m.pool_created,
            ),
            (
                "deploystack_db_pool_connections_broken",
                "Connections closed because they broke",
                &m.pool_closed_broken,
            ),
            (
                "deploystack_db_pool_connections_recycled",
                "Connections closed because they reached their lifetime (POSTGRES_MAX_LIFETIME_MS)",
                &m.pool_recycled,
            ),
        ];
        for (name, help, family) in totals {
            registry.register(name, help, family.clone());
        }
        registry.register(
            "deploystack_db_pool_wait_seconds",
            "Time callers spent waiting for a connection",
            m.pool_wait_seconds.clone(),
        );
        registry.register(
            "deploystack_db_replica_lag_seconds",
            "Replication lag of each read replica at its last check (absent when unknown)",
            m.replica_lag.clone(),
        );
        registry.register(
            "deploystack_db_replica_usable",
            "1 when the read replica serves reads, 0 when it is skipped (down, lagging, not a standby)",
            m.replica_usable.clone(),
        );
        registry.register(
            "deploystack_jobs",
            "Pending and processing jobs, by status and type",
            m.jobs.clone(),
        );
        registry.register(
            "deploystack_jobs_oldest_pending_age_seconds",
            "How long the oldest due pending job has waited (0 when none waits)",
            m.oldest_pending.clone(),
        );
        registry.register(
            "deploystack_jobs_figures_up",
            "1 when this scrape could read the job queue and schema figures, else 0",
            m.queue_up.clone(),
        );
        registry.register(
            "deploystack_setup_phase",
            "1 for the lifecycle phase this process is in, 0 for the others",
            m.phase.clone(),
        );
        registry.register(
            "deploystack_schema_migrations_applied",
            "Core migrations recorded as applied in the database",
            m.migrations_applied.clone(),
        );
        registry.register(
            "deploystack_schema_migrations_known",
            "Core migrations embedded in this build",
            m.migrations_known.clone(),
        );
        registry.register(
            "deploystack_schema_version",
            "The newest applied core migration (value always 1)",
            m.schema_version.clone(),
        );
        m
    }

    /// Reads everything anew.
    pub async fn refresh(&self, phase: Phase, db: &Database, queue: &JobQueue) {
        for p in Phase::ALL {
            self.phase
                .get_or_create(&PhaseLabels { phase: p.name() })
                .set(i64::from(p == phase));
        }
        self.migrations_known.set(known_migrations());
        self.clear_pools();
        if let Some(figures) = db.pool_figures() {
            self.set_pool(PRIMARY, figures);
        }
        for replica in db.replica_reports() {
            self.set_pool(&replica.name, replica.pool);
            let labels = ReplicaLabels {
                replica: replica.name,
            };
            self.replica_usable
                .get_or_create(&labels)
                .set(i64::from(replica.state == ReplicaState::Usable));
            if let Some(lag) = replica.lag {
                self.replica_lag
                    .get_or_create(&labels)
                    .set(lag.as_secs_f64());
            }
        }
        let read = tokio::time::timeout(DATABASE_DEADLINE, async {
            let depth = queue.depth().await.ok()?;
            let schema = schema(db).await?;
            Some((depth, schema))
        })
        .await
        .ok()
        .flatten();
        self.jobs.clear();
        self.schema_version.clear();
        let Some((depth, (applied, newest))) = read else {
            self.queue_up.set(0);
            self.oldest_pending.set(0.0);
            self.migrations_applied.set(0);
            return;
        };
        self.queue_up.set(1);
        for count in depth.counts {
            self.jobs
                .get_or_create(&JobLabels {
                    status: count.status,
                    r#type: count.job_type,
                })
                .set(count.count);
        }
        self.oldest_pending
            .set(depth.oldest_pending_age_s.unwrap_or(0.0).max(0.0));
        self.migrations_applied.set(applied);
        if let Some(version) = newest {
            self.schema_version
                .get_or_create(&VersionLabels { version })
                .set(1);
        }
    }

    fn set_pool(&self, pool: &str, f: PoolFigures) {
        let labels = PoolLabels {
            pool: pool.to_owned(),
        };
        self.pool_max.get_or_create(&labels).set(i64::from(f.max));
        self.pool_open.get_or_create(&labels).set(i64::from(f.open));
        self.pool_idle.get_or_create(&labels).set(i64::from(f.idle));
        self.pool_shared
            .get_or_create(&labels)
            .set(i64::from(f.shared));
        self.pool_waiting
            .get_or_create(&labels)
            .set(i64::try_from(f.waiting).unwrap_or(i64::MAX));
        let mut last = self
            .last_totals
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let before = last.insert(pool.to_owned(), f);
        // A total below the last one means a new pool: all of it happened since.
        let since = |now: u64, then: Option<u64>| match then {
            Some(then) if then <= now => now - then,
            _ => now,
        };
        let counters = [
            (&self.pool_timeouts, f.timeouts, before.map(|b| b.timeouts)),
            (&self.pool_created, f.created, before.map(|b| b.created)),
            (
                &self.pool_closed_broken,
                f.closed_broken,
                before.map(|b| b.closed_broken),
            ),
            (&self.pool_recycled, f.recycled, before.map(|b| b.recycled)),
        ];
        for (family, now, then) in counters {
            family.get_or_create(&labels).inc_by(since(now, then));
        }
        let waited = match before.map(|b| b.wait_seconds) {
            Some(then) if then <= f.wait_seconds => f.wait_seconds - then,
            _ => f.wait_seconds,
        };
        self.pool_wait_seconds.get_or_create(&labels).inc_by(waited);
    }

    fn clear_pools(&self) {
        for family in [
            &self.pool_max,
            &self.pool_open,
            &self.pool_idle,
            &self.pool_waiting,
            &self.pool_shared,
        ] {
            family.clear();
        }
        self.replica_lag.clear();
        self.replica_usable.clear();
    }
}

fn known_migrations() -> i64 {
    use diesel::migration::MigrationSource;
    use diesel::pg::Pg;

    MigrationSource::<Pg>::migrations(&crate::db::migrations::MIGRATIONS)
        .map_or(0, |m| i64::try_from(m.len()).unwrap_or(i64::MAX))
}

#[derive(QueryableByName)]
struct Applied {
    #[diesel(sql_type = BigInt)]
    applied: i64,
    #[diesel(sql_type = Nullable<Text>)]
    newest: Option<String>,
}

/// How many core migrations are applied and the newest one's version.
async fn schema(db: &Database) -> Option<(i64, Option<String>)> {
    use diesel_async::RunQueryDsl;

    let mut conn = db.conn().await.ok()?;
    let row = diesel::sql_query(
        "SELECT count(*) AS applied, max(version) AS newest FROM __diesel_schema_migrations",
    )
    .get_result::<Applied>(&mut conn)
    .await
    .ok()?;
    Some((row.applied, row.newest))
}
