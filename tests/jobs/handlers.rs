//! The built-in jobs on seeded rows, run by the workers with their scheduled payloads.

use std::time::Duration;

use deploystack_backend::jobs::{handlers, EnqueueOptions, Workers};
use serde_json::json;

use crate::support::{fast, QueueDb};

const SEED: &str = "
INSERT INTO users (id, username, email, auth_type) VALUES ('u1', 'u1', 'u1@example.com', 'email_signup');
INSERT INTO auth_sessions (id, user_id, expires_at) VALUES
    ('s-expired', 'u1', now() - interval '1 second'), ('s-live', 'u1', now() + interval '1 day');
INSERT INTO auth_throttle (key, window_start, window_ms, hits) VALUES
    ('address:old', now() - interval '2 hours', 60000, 30), ('address:new', now(), 60000, 3);
INSERT INTO teams (id, name, slug, owner_id) VALUES ('t1', 't1', 't1', 'u1');
INSERT INTO mcp_servers (id, name, slug, description, language, runtime, created_by)
    VALUES ('m1', 'm', 'm', 'd', 'typescript', 'node', 'u1');
INSERT INTO mcp_server_installations (id, team_id, server_id, created_by, installation_name)
    VALUES ('i1', 't1', 'm1', 'u1', 'a'), ('i2', 't1', 'm1', 'u1', 'b');
INSERT INTO satellites (id, name, satellite_type, api_key_hash, created_by)
    VALUES ('sg', 'g', 'global', 'h', 'u1');
INSERT INTO satellites (id, name, satellite_type, team_id, api_key_hash, created_by)
    VALUES ('st', 't', 'team', 't1', 'h', 'u1');
INSERT INTO satellite_heartbeats (id, satellite_id, status, system_metrics, timestamp)
    SELECT 'hg' || g, 'sg', 'ok', '{}', now() - g * interval '1 second' FROM generate_series(1, 1010) g;
INSERT INTO satellite_heartbeats (id, satellite_id, status, system_metrics, timestamp)
    SELECT 'ht' || g, 'st', 'ok', '{}', now() - g * interval '1 second' FROM generate_series(1, 510) g;
INSERT INTO mcp_server_logs (id, installation_id, team_id, log_level, message, created_at)
    SELECT 'l1-' || g, 'i1', 't1', 'info', 'line', now() - g * interval '1 second' FROM generate_series(1, 130) g;
INSERT INTO mcp_server_logs (id, installation_id, team_id, log_level, message, created_at)
    SELECT 'l2-' || g, 'i2', 't1', 'info', 'line', now() - g * interval '1 second' FROM generate_series(1, 50) g;
INSERT INTO mcp_request_logs (id, installation_id, team_id, tool_name, response_time_ms, success, created_at)
    SELECT 'r1-' || g, 'i1', 't1', 'tool', 5, true, now() - g * interval '1 second' FROM generate_series(1, 105) g;
INSERT INTO mcp_client_activity_metrics (id, user_id, team_id, satellite_id, auth_identifier, bucket_timestamp, bucket_interval)
    SELECT 'old' || g, 'u1', 't1', 'sg', 'a' || g, now() - interval '4 days' - g * interval '1 minute', '15m'
    FROM generate_series(1, 5) g;
INSERT INTO mcp_client_activity_metrics (id, user_id, team_id, satellite_id, auth_identifier, bucket_timestamp, bucket_interval)
    SELECT 'new' || g, 'u1', 't1', 'sg', 'a' || g, now() - interval '2 days', '15m' FROM generate_series(1, 3) g;
INSERT INTO oauth_pending_flows (id, team_id, server_id, created_by, oauth_state, oauth_code_verifier,
    oauth_client_id, oauth_token_endpoint, oauth_token_endpoint_auth_method, installation_name, expires_at)
    SELECT 'f' || g, 't1', 'm1', 'u1', 's' || g, 'v', 'c', 'https://example.com/token', 'none', 'x',
      now() + (g - 3) * interval '1 minute' FROM generate_series(1, 4) g;
INSERT INTO oauth_access_tokens (id, user_id, team_id, client_id, scope, token_hash, expires_at)
    VALUES ('a1', 'u1', 't1', 'c', 's', 'h1', now() - interval '1 minute'),
           ('a2', 'u1', 't1', 'c', 's', 'h2', now() - interval '1 day'),
           ('a3', 'u1', 't1', 'c', 's', 'h3', now() + interval '1 hour');
INSERT INTO queue_job_batches (id, type, total_jobs, status, created_at)
    VALUES ('b-old', 'x', 1, 'completed', now() - interval '20 days'),
           ('b-live', 'x', 2, 'processing', now() - interval '20 days');
INSERT INTO queue_jobs (id, type, payload, status, created_at, updated_at, completed_at, batch_id,
    locked_by, locked_until)
    VALUES ('j-done', 'x', '{}', 'completed', now() - interval '20 days', now() - interval '20 days', now() - interval '20 days', 'b-old', NULL, NULL),
           ('j-failed', 'x', '{}', 'failed', now() - interval '20 days', now() - interval '20 days', now() - interval '20 days', 'b-live', NULL, NULL),
           ('j-pending', 'x', '{}', 'pending', now() - interval '20 days', now() - interval '20 days', NULL, 'b-live', NULL, NULL),
           ('j-running', 'x', '{}', 'processing', now() - interval '20 days', now() - interval '20 days', NULL, NULL, 'w', now() + interval '1 day'),
           ('j-recent', 'x', '{}', 'completed', now() - interval '2 days', now() - interval '2 days', now() - interval '2 days', NULL, NULL, NULL);
UPDATE queue_jobs SET scheduled_for = now() + interval '1 day' WHERE id = 'j-pending';
";

async fn count(q: &QueueDb, sql: &str) -> i64 {
    q.db.query(sql).await[0].get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_built_in_job_cleans_what_it_should_and_nothing_else() {
    let q = QueueDb::new().await;
    q.db.execute(SEED).await;
    let workers = Workers::start(
        q.database.clone(),
        Some(q.connector.clone()),
        handlers::registry(&q.database),
        fast(2),
    );
    let mut results = serde_json::Map::new();
    for schedule in handlers::schedules() {
        let id = q
            .queue
            .enqueue(
                schedule.job_type,
                schedule.payload.clone(),
                EnqueueOptions::default(),
            )
            .await
            .expect("enqueue");
        let job = q
            .wait_status(&id, "completed", Duration::from_secs(30))
            .await;
        results.insert(schedule.job_type.into(), job.result.unwrap_or_default());
    }
    workers.shutdown().await;

    assert_eq!(
        count(
            &q,
            "SELECT count(*) FROM satellite_heartbeats WHERE satellite_id = 'sg'"
        )
        .await,
        1000
    );
    assert_eq!(
        count(
            &q,
            "SELECT count(*) FROM satellite_heartbeats WHERE satellite_id = 'st'"
        )
        .await,
        500
    );
    // The newest are kept.
    assert_eq!(
        count(
            &q,
            "SELECT count(*) FROM satellite_heartbeats WHERE id IN ('hg1', 'hg1000', 'ht500')"
        )
        .await,
        3
    );
    assert_eq!(
        results["cleanup_satellite_heartbeats"],
        json!({"totalDeleted": 20})
    );

    assert_eq!(
        count(
            &q,
            "SELECT count(*) FROM mcp_server_logs WHERE installation_id = 'i1'"
        )
        .await,
        100
    );
    assert_eq!(
        count(
            &q,
            "SELECT count(*) FROM mcp_server_logs WHERE installation_id = 'i2'"
        )
        .await,
        50
    );
    assert_eq!(
        count(&q, "SELECT count(*) FROM mcp_request_logs").await,
        100
    );
    assert_eq!(
        count(&q, "SELECT count(*) FROM mcp_server_logs WHERE id = 'l1-1'").await,
        1
    );
    assert_eq!(
        results["cleanup_mcp_server_logs"],
        json!({"deletedServerLogs": 30, "deletedRequestLogs": 5})
    );

    assert_eq!(
        count(
            &q,
            "SELECT count(*) FROM mcp_client_activity_metrics WHERE id LIKE 'old%'"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &q,
            "SELECT count(*) FROM mcp_client_activity_metrics WHERE id LIKE 'new%'"
        )
        .await,
        3
    );
    assert_eq!(
        results["cleanup_mcp_client_activity_metrics"],
        json!({"deletedCount": 5, "retentionDays": 3})
    );

    // Flows f1, f2 expired (f3 expires now, at the minute); f4 lives on.
    assert_eq!(
        count(
            &q,
            "SELECT count(*) FROM oauth_pending_flows WHERE id IN ('f1', 'f2')"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &q,
            "SELECT count(*) FROM oauth_pending_flows WHERE id = 'f4'"
        )
        .await,
        1
    );

    assert_eq!(
        count(&q, "SELECT count(*) FROM oauth_access_tokens").await,
        1
    );
    assert_eq!(
        count(
            &q,
            "SELECT count(*) FROM oauth_access_tokens WHERE id = 'a3'"
        )
        .await,
        1
    );
    assert_eq!(
        results["cleanup_expired_oauth_tokens"],
        json!({"revokedCount": 2})
    );

    // Expired sessions go, live ones stay.
    let sessions: Vec<String> =
        q.db.query("SELECT id FROM auth_sessions ORDER BY id")
            .await
            .iter()
            .map(|r| r.get(0))
            .collect();
    assert_eq!(sessions, ["s-live"]);
    assert_eq!(
        results["cleanup_expired_sessions"],
        json!({"deletedCount": 1, "deletedCounters": 1})
    );
    let counters: Vec<String> =
        q.db.query("SELECT key FROM auth_throttle")
            .await
            .iter()
            .map(|r| r.get(0))
            .collect();
    assert_eq!(counters, ["address:new"], "only long-ended windows go");

    // Old finished jobs go; old pending and processing ones never do, nor recent ones.
    let left: Vec<String> =
        q.db.query("SELECT id FROM queue_jobs WHERE type = 'x' ORDER BY id")
            .await
            .iter()
            .map(|r| r.get(0))
            .collect();
    assert_eq!(left, ["j-pending", "j-recent", "j-running"]);
    // The batch left empty goes; the one still holding a pending job stays.
    let batches: Vec<String> =
        q.db.query("SELECT id FROM queue_job_batches ORDER BY id")
            .await
            .iter()
            .map(|r| r.get(0))
            .collect();
    assert_eq!(batches, ["b-live"]);
    assert_eq!(
        results["cleanup_old_jobs"],
        json!({"deletedJobs": 2, "deletedBatches": 1, "olderThanDays": 14})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_built_in_payload_fails_without_retry() {
    let q = QueueDb::new().await;
    let workers = Workers::start(
        q.database.clone(),
        Some(q.connector.clone()),
        handlers::registry(&q.database),
        fast(2),
    );
    let negative = q
        .queue
        .enqueue(
            "cleanup_old_jobs",
            json!({"olderThanDays": -1}),
            EnqueueOptions::default(),
        )
        .await
        .expect("enqueue");
    let wrong_type = q
        .queue
        .enqueue(
            "cleanup_mcp_server_logs",
            json!({"maxLogsPerInstallation": "many"}),
            EnqueueOptions::default(),
        )
        .await
        .expect("enqueue");
    let job = q
        .wait_status(&negative, "failed", Duration::from_secs(20))
        .await;
    assert_eq!(job.attempts, 1);
    assert!(job.error.unwrap_or_default().contains("olderThanDays"));
    let job = q
        .wait_status(&wrong_type, "failed", Duration::from_secs(20))
        .await;
    assert_eq!(job.attempts, 1);
    assert!(job
        .error
        .unwrap_or_default()
        .starts_with("Invalid JSON payload"));
    workers.shutdown().await;
}
