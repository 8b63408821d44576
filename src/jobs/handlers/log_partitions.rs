//! `maintain_log_partitions` (ours; upstream has no partitions): creates the daily partitions
//! of the append-heavy tables ahead of time, so rows never pile up in a default partition,
//! and, for tables given a retention, drops whole partitions past it. Runs every hour on
//! every replica; creating a partition that exists is a no-op, so replicas never collide.

use diesel::sql_types::{BigInt, Bool, Date, Text};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::db::Database;
use crate::jobs::job::{Job, JobContext, JobError};

/// The partitioned tables (migration `2026-11-26-000400_partitioned_logs`).
pub const PARTITIONED_TABLES: [&str; 5] = [
    "mcp_request_logs",
    "mcp_server_logs",
    "mcp_client_activity_metrics",
    "satellite_heartbeats",
    "satellite_usage_logs",
];

/// Days of partitions kept ready by default.
pub const DEFAULT_AHEAD_DAYS: i64 = 7;

/// What the upkeep does.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PartitionUpkeep {
    /// Daily partitions created from yesterday to this many days ahead.
    #[serde(default = "default_ahead")]
    pub ahead_days: i64,
    /// Per table, partitions entirely older than this many days are dropped. None by
    /// default: upstream keeps these rows (its count-based cleanups still run), and
    /// `cleanup_mcp_client_activity_metrics` applies its own retention the same way.
    #[serde(default)]
    pub retention_days: BTreeMap<String, i64>,
}

fn default_ahead() -> i64 {
    DEFAULT_AHEAD_DAYS
}

impl Default for PartitionUpkeep {
    fn default() -> Self {
        Self {
            ahead_days: DEFAULT_AHEAD_DAYS,
            retention_days: BTreeMap::new(),
        }
    }
}

/// What the upkeep did.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PartitionUpkeepResult {
    created_partitions: i64,
    dropped_rows: BTreeMap<String, i64>,
}

/// The handler.
pub struct MaintainLogPartitions {
    db: Database,
}

impl MaintainLogPartitions {
    /// On `db`.
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

#[derive(QueryableByName)]
struct Created {
    #[diesel(sql_type = Bool)]
    created: bool,
}

#[derive(QueryableByName)]
struct Dropped {
    #[diesel(sql_type = BigInt)]
    dropped: i64,
}

/// Drops the daily partitions of `table` that end at or before `cutoff`; the rows they held.
pub(crate) async fn drop_partitions_before(
    conn: &mut diesel_async::AsyncPgConnection,
    table: &str,
    cutoff: chrono::NaiveDate,
) -> diesel::QueryResult<i64> {
    Ok(
        diesel::sql_query("SELECT partition_drop_before($1, $2) AS dropped")
            .bind::<Text, _>(table)
            .bind::<Date, _>(cutoff)
            .get_result::<Dropped>(conn)
            .await?
            .dropped,
    )
}

impl Job for MaintainLogPartitions {
    const TYPE: &'static str = "maintain_log_partitions";
    type Payload = PartitionUpkeep;
    type Output = PartitionUpkeepResult;

    async fn run(&self, upkeep: Self::Payload, _ctx: JobContext) -> Result<Self::Output, JobError> {
        if !(1..=366).contains(&upkeep.ahead_days) {
            return Err(JobError::fatal(format!(
                "aheadDays must be between 1 and 366, got {}",
                upkeep.ahead_days
            )));
        }
        for (table, days) in &upkeep.retention_days {
            if !PARTITIONED_TABLES.contains(&table.as_str()) {
                return Err(JobError::fatal(format!(
                    "retentionDays names {table}, which is not partitioned (one of {})",
                    PARTITIONED_TABLES.join(", ")
                )));
            }
            if !(1..=36_500).contains(days) {
                return Err(JobError::fatal(format!(
                    "retentionDays of {table} must be between 1 and 36500, got {days}"
                )));
            }
        }
        let today = chrono::Utc::now().date_naive();
        let mut conn = self.db.conn().await?;
        let mut created_partitions = 0;
        for table in PARTITIONED_TABLES {
            for offset in -1..=upkeep.ahead_days {
                let day = today + chrono::Duration::days(offset);
                let created = diesel::sql_query("SELECT partition_ensure($1, $2) AS created")
                    .bind::<Text, _>(table)
                    .bind::<Date, _>(day)
                    .get_result::<Created>(&mut conn)
                    .await?
                    .created;
                created_partitions += i64::from(created);
            }
        }
        let mut dropped_rows = BTreeMap::new();
        for (table, days) in &upkeep.retention_days {
            let cutoff = today - chrono::Duration::days(*days);
            let dropped = drop_partitions_before(&mut conn, table, cutoff).await?;
            dropped_rows.insert(table.clone(), dropped);
        }
        Ok(PartitionUpkeepResult {
            created_partitions,
            dropped_rows,
        })
    }
}
