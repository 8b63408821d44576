//! The claim's cost: due jobs are found without reading the jobs scheduled later, whatever
//! their priority (counted in claim index pages read, not in time).

use crate::support::QueueDb;

/// Runs `sql` in a transaction of its own and returns its rows with the number of claim
/// index pages the transaction read (PostgreSQL's own count for it).
async fn with_index_reads(
    q: &QueueDb,
    settings: &str,
    sql: &str,
) -> (Vec<tokio_postgres::Row>, i64) {
    let (mut client, conn) = tokio_postgres::connect(&q.db.url(), tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    let tx = client.transaction().await.expect("begin");
    tx.batch_execute(settings).await.expect("settings");
    let rows = tx.query(sql, &[]).await.expect("query");
    let read: i64 = tx
        .query_one(
            "SELECT pg_stat_get_xact_blocks_fetched('queue_jobs_claim_idx'::regclass)",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    tx.commit().await.expect("commit");
    (rows, read)
}

#[tokio::test]
async fn a_claim_reads_none_of_the_future_jobs_of_higher_priority() {
    let q = QueueDb::new().await;
    // 20,000 retries waiting at priorities 10 and 9, and three due jobs below them.
    q.db.execute(
        "INSERT INTO queue_jobs (id, type, payload, priority, scheduled_for) \
         SELECT 'f' || lpad(g::text, 6, '0'), 'test_behave', '{}', 9 + g % 2, \
           now() + interval '1 hour' FROM generate_series(1, 20000) g; \
         INSERT INTO queue_jobs (id, type, payload, priority, scheduled_for) VALUES \
           ('due-a', 'test_behave', '{}', 5, now() - interval '1 second'), \
           ('due-b', 'test_behave', '{}', 0, now() - interval '2 seconds'), \
           ('due-c', 'test_behave', '{}', 0, now() - interval '1 second'); \
         ANALYZE queue_jobs",
    )
    .await;

    // The counting works: one ordered scan for due jobs (the claim before `job_leases`) reads
    // the index pages of every future job ahead of the due ones (about 140).
    let (scanned, read_by_scan) = with_index_reads(
        &q,
        // The plan the claim pinned: the claim index, read in order.
        "SET LOCAL enable_sort = off; SET LOCAL enable_bitmapscan = off; \
         SET LOCAL enable_seqscan = off",
        "SELECT q.id FROM queue_jobs q WHERE q.status = 'pending' AND q.scheduled_for <= now() \
         ORDER BY q.priority DESC, q.scheduled_for, q.id LIMIT 10",
    )
    .await;
    assert_eq!(scanned.len(), 3);
    assert!(
        read_by_scan >= 100,
        "one scan read {read_by_scan} claim index pages"
    );

    let (claimed, read) = with_index_reads(
        &q,
        "",
        "SELECT id, attempts FROM queue_claim('w:1:1', 10, 30000)",
    )
    .await;
    let ids: Vec<String> = claimed.iter().map(|r| r.get(0)).collect();
    // Best priority first, then oldest first; nothing scheduled later.
    assert_eq!(ids, ["due-a", "due-b", "due-c"]);
    assert!(claimed.iter().all(|r| r.get::<_, i32>(1) == 1));
    // A few pages per priority level in use (19 measured), whatever waits behind them.
    assert!(read < 40, "the claim read {read} claim index pages");
    assert_eq!(q.count("processing").await, 3);
}
