//! Periodic jobs: upstream's schedules, and one job per slot however many replicas run the
//! scheduler.

use std::time::Duration;

use deploystack_backend::jobs::handlers;
use deploystack_backend::jobs::schedule::{self, ParsedSchedule, Schedule};
use deploystack_backend::jobs::JobQueue;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::support::QueueDb;

#[test]
fn upstreams_schedules_and_payloads() {
    let schedules = handlers::schedules();
    let find = |t: &str| {
        schedules
            .iter()
            .find(|s| s.job_type == t)
            .unwrap_or_else(|| panic!("no schedule for {t}"))
    };
    assert_eq!(find("cleanup_old_jobs").cron, "0 */6 * * *");
    assert_eq!(
        find("cleanup_old_jobs").payload,
        json!({"olderThanDays": 14})
    );
    assert_eq!(
        find("cleanup_mcp_client_activity_metrics").cron,
        "*/30 * * * *"
    );
    assert_eq!(
        find("cleanup_mcp_client_activity_metrics").payload,
        json!({})
    );
    assert_eq!(find("cleanup_satellite_heartbeats").cron, "*/3 * * * *");
    assert_eq!(
        find("cleanup_satellite_heartbeats").payload,
        json!({"globalSatelliteLimit": 1000, "teamSatelliteLimit": 500})
    );
    assert_eq!(find("cleanup_mcp_server_logs").cron, "*/10 * * * *");
    assert_eq!(
        find("cleanup_mcp_server_logs").payload,
        json!({"maxLogsPerInstallation": 100})
    );
    assert_eq!(
        find("cleanup_expired_oauth_pending_flows").cron,
        "*/3 * * * *"
    );
    for s in &schedules {
        let parsed = ParsedSchedule::new(s.clone()).expect("parses");
        let now = chrono::Utc::now();
        assert!(parsed.next_after(now).expect("next") > now);
    }
    // Every scheduled type has a handler; none of the reserved ones is scheduled.
    let db = deploystack_backend::db::Database::new();
    let registered = handlers::registry(&db).types();
    for s in &schedules {
        assert!(registered.contains(&s.job_type), "{}", s.job_type);
        assert!(!handlers::RESERVED_TYPES.contains(&s.job_type));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_schedulers_enqueue_each_slot_once() {
    let q = QueueDb::new().await;
    let every_second = || {
        vec![ParsedSchedule::new(Schedule {
            job_type: "test_tick",
            cron: "* * * * * *",
            payload: json!({}),
        })
        .expect("pattern")]
    };
    let stop = CancellationToken::new();
    let a = tokio::spawn(schedule::run(
        JobQueue::new(q.database.clone()),
        every_second(),
        stop.clone(),
    ));
    let b = tokio::spawn(schedule::run(
        JobQueue::new(q.database.clone()),
        every_second(),
        stop.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    stop.cancel();
    let _ = (a.await, b.await);
    let rows =
        q.db.query(
            "SELECT key, count(*) AS n, min(scheduled_for) = max(scheduled_for) FROM queue_jobs \
             WHERE type = 'test_tick' GROUP BY key ORDER BY key",
        )
        .await;
    assert!(rows.len() >= 3, "slots enqueued: {}", rows.len());
    for row in &rows {
        let key: String = row.get(0);
        assert!(key.starts_with("schedule:test_tick:"), "{key}");
        assert_eq!(row.get::<_, i64>(1), 1);
    }
}

#[tokio::test]
async fn racing_replicas_get_the_same_job_for_a_slot() {
    let q = QueueDb::new().await;
    let parsed = ParsedSchedule::new(handlers::schedules().remove(0)).expect("pattern");
    let slot = parsed.next_after(chrono::Utc::now()).expect("slot");
    let other = JobQueue::new(q.database.clone());
    let (one, two) = tokio::join!(
        parsed.enqueue_slot(&q.queue, slot),
        parsed.enqueue_slot(&other, slot)
    );
    assert_eq!(one.expect("one"), two.expect("two"));
    assert_eq!(q.count("pending").await, 1);
}
