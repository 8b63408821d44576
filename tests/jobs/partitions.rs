//! The partitioned log tables: the migration kept their rows and made daily partitions
//! ahead; the upkeep job creates further ones (moving early rows out of the default
//! partition), and retention drops whole partitions, through the upkeep and through the
//! activity metrics cleanup.

use std::time::Duration;

use deploystack_backend::jobs::{handlers, EnqueueOptions, JobRecord, Workers};
use serde_json::{json, Value};

use crate::support::{fast, QueueDb};

const PARENTS: &str = "
INSERT INTO users (id, username, email, auth_type) VALUES ('u1', 'u1', 'u1@example.com', 'email_signup');
INSERT INTO teams (id, name, slug, owner_id) VALUES ('t1', 't1', 't1', 'u1');
INSERT INTO satellites (id, name, satellite_type, api_key_hash, created_by)
    VALUES ('sg', 'g', 'global', 'h', 'u1');
";

/// Daily partitions of `table`, as `pYYYYMMDD` day offsets from today (UTC), sorted.
async fn partition_days(q: &QueueDb, table: &str) -> Vec<i32> {
    q.db.query(&format!(
        "SELECT (to_date(right(c.relname, 8), 'YYYYMMDD') - (now() AT TIME ZONE 'UTC')::date)::int \
         FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         WHERE i.inhparent = 'public.{table}'::regclass AND c.relname ~ '_p[0-9]{{8}}$' \
         ORDER BY 1"
    ))
    .await
    .iter()
    .map(|r| r.get(0))
    .collect()
}

async fn count(q: &QueueDb, sql: &str) -> i64 {
    q.db.query(sql).await[0].get(0)
}

async fn run(q: &QueueDb, job_type: &str, payload: Value) -> JobRecord {
    let id = q
        .queue
        .enqueue(job_type, payload, EnqueueOptions::default())
        .await
        .expect("enqueue");
    q.wait_status(&id, "completed", Duration::from_secs(30))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_come_ahead_and_retention_drops_whole_days() {
    let q = QueueDb::new().await;
    q.db.execute(PARENTS).await;
    let week: Vec<i32> = (-1..=7).collect();
    for table in handlers::PARTITIONED_TABLES {
        assert_eq!(
            partition_days(&q, table).await,
            week,
            "{table} after the migration"
        );
        let kind: Vec<tokio_postgres::Row> =
            q.db.query(&format!(
                "SELECT relkind::text FROM pg_class WHERE oid = 'public.{table}'::regclass"
            ))
            .await;
        assert_eq!(kind[0].get::<_, String>(0), "p", "{table} is partitioned");
    }

    // Heartbeats on each of the last six days (noon UTC) and 12 days ahead: the days without
    // a partition land in the default one.
    q.db.execute(
        "INSERT INTO satellite_heartbeats (id, satellite_id, status, system_metrics, timestamp)
         SELECT 'h' || d || '-' || n, 'sg', 'ok', '{}'::jsonb,
                ((now() AT TIME ZONE 'UTC')::date + d + time '12:00') AT TIME ZONE 'UTC'
         FROM generate_series(-6, -1) d, generate_series(1, 10) n
         UNION ALL
         SELECT 'future-' || n, 'sg', 'ok', '{}'::jsonb,
                ((now() AT TIME ZONE 'UTC')::date + 12 + time '12:00') AT TIME ZONE 'UTC'
         FROM generate_series(1, 4) n",
    )
    .await;
    let in_default = "SELECT count(*) FROM log_partitions.satellite_heartbeats_default";
    assert_eq!(count(&q, in_default).await, 54);
    // A deployment running for a week has had partitions for each of those days.
    q.db.execute(
        "SELECT partition_ensure('satellite_heartbeats', (now() AT TIME ZONE 'UTC')::date + d)
         FROM generate_series(-6, -2) d",
    )
    .await;
    assert_eq!(
        count(&q, in_default).await,
        4,
        "the past days moved into their partitions"
    );

    let workers = Workers::start(
        q.database.clone(),
        Some(q.connector.clone()),
        handlers::registry(&q.database),
        fast(2),
    );
    let job = run(
        &q,
        "maintain_log_partitions",
        json!({"aheadDays": 14, "retentionDays": {"satellite_heartbeats": 3}}),
    )
    .await;
    // 5 tables × 7 new days (8 to 14 ahead); heartbeats' days -6 to -4 end by the cutoff.
    assert_eq!(
        job.result,
        Some(json!({"createdPartitions": 35, "droppedRows": {"satellite_heartbeats": 30}}))
    );
    let days = partition_days(&q, "satellite_heartbeats").await;
    assert_eq!(days, (-3..=14).collect::<Vec<i32>>());
    assert_eq!(
        count(&q, in_default).await,
        0,
        "the rows 12 days ahead moved too"
    );
    assert_eq!(
        count(&q, "SELECT count(*) FROM satellite_heartbeats").await,
        34
    );
    assert_eq!(
        count(
            &q,
            "SELECT count(*) FROM satellite_heartbeats WHERE id LIKE 'h-4-%' OR id LIKE 'h-6-%'"
        )
        .await,
        0
    );
    // Queries through the parent see every partition; the primary key still holds.
    let duplicate =
        q.db.try_execute(
            "INSERT INTO satellite_heartbeats (id, satellite_id, status, system_metrics, timestamp)
             SELECT id, satellite_id, status, system_metrics, timestamp
             FROM satellite_heartbeats WHERE id = 'h-1-1'",
        )
        .await;
    assert!(
        duplicate.is_err(),
        "the same id at the same time is refused"
    );

    // Activity metrics: the cleanup drops whole days past its retention, the rest by row.
    q.db.execute(
        "INSERT INTO mcp_client_activity_metrics
             (id, user_id, team_id, satellite_id, auth_identifier, bucket_timestamp, bucket_interval)
         SELECT 'm' || d || '-' || n, 'u1', 't1', 'sg', 'a' || d || '-' || n,
                ((now() AT TIME ZONE 'UTC')::date + d + time '12:00') AT TIME ZONE 'UTC', '15m'
         FROM generate_series(-6, 0) d, generate_series(1, 5) n;
         SELECT partition_ensure('mcp_client_activity_metrics', (now() AT TIME ZONE 'UTC')::date + d)
         FROM generate_series(-6, -2) d;",
    )
    .await;
    let job = run(
        &q,
        "cleanup_mcp_client_activity_metrics",
        json!({"retentionDays": 3}),
    )
    .await;
    workers.shutdown().await;
    // Days -6 to -4 dropped with their partitions; day -3 (noon) may or may not be past
    // the cutoff depending on the hour: it goes row by row.
    let days = partition_days(&q, "mcp_client_activity_metrics").await;
    assert_eq!(days.first(), Some(&-3), "{days:?}");
    let left = count(&q, "SELECT count(*) FROM mcp_client_activity_metrics").await;
    let deleted = job.result.as_ref().and_then(|r| r["deletedCount"].as_i64());
    assert_eq!(deleted.map(|d| d + left), Some(35), "{:?}", job.result);
    assert!(left >= 15, "the last three days stay: {left}");
}
