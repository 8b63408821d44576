//! The job queue pages: upstream's list contract and messages, search, one job and one
//! batch, the figures, and batch cancel and retry.

use serde_json::json;

use crate::Admin;

/// 120 jobs of two types (`alpha` every third one), one batch of 4 (2 failed, 1 completed,
/// 1 pending), all due tomorrow (the server's workers leave them alone).
async fn seed(admin: &Admin) {
    admin
        .site
        .sql(
            "INSERT INTO queue_job_batches (id, type, total_jobs, completed_jobs, failed_jobs, status) \
               VALUES ('b1', 'sync', 4, 1, 2, 'processing'); \
             INSERT INTO queue_jobs (id, type, payload, status, created_at, batch_id, error, scheduled_for) \
             SELECT 'j' || lpad(n::text, 4, '0'), CASE WHEN n % 3 = 0 THEN 'alpha' ELSE 'beta' END, \
                    jsonb_build_object('n', n), \
                    CASE WHEN n <= 2 THEN 'failed' WHEN n = 3 THEN 'completed' ELSE 'pending' END, \
                    now() - (200 - n) * interval '1 minute', \
                    CASE WHEN n <= 4 THEN 'b1' END, \
                    CASE WHEN n <= 2 THEN 'boom' END, now() + interval '1 day' \
               FROM generate_series(1, 120) n",
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_newest_first_with_upstreams_pagination_and_messages() {
    let admin = Admin::new().await;
    seed(&admin).await;
    let site = &admin.site;
    let session = Some(admin.admin.as_str());
    let page = site.get("/api/admin/jobs", session).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let jobs = page.body["data"]["jobs"].as_array().expect("jobs");
    assert_eq!(jobs.len(), 50);
    assert_eq!(jobs[0]["id"], "j0120");
    assert_eq!(jobs[0]["payload"], json!({"n": 120}));
    assert_eq!(
        page.body["data"]["pagination"],
        json!({"total": 120, "limit": 50, "offset": 0, "has_more": true, "total_exact": true, "next_before": "j0071"})
    );
    let last = site
        .get("/api/admin/jobs?limit=50&offset=100", session)
        .await;
    assert_eq!(last.body["data"]["jobs"].as_array().map(Vec::len), Some(20));
    assert_eq!(last.body["data"]["pagination"]["has_more"], false);
    // `before` pages on from a page's last id.
    let next = site
        .get("/api/admin/jobs?limit=10&before=j0071", session)
        .await;
    assert_eq!(next.body["data"]["jobs"][0]["id"], "j0070");
    let alpha = site
        .get(
            "/api/admin/jobs?type=alpha&status=pending&limit=100",
            session,
        )
        .await;
    assert_eq!(alpha.body["data"]["pagination"]["total"], 39);
    for (query, message) in [
        ("limit=0", "Limit must be between 1 and 100"),
        ("limit=101", "Limit must be between 1 and 100"),
        ("limit=ten", "Limit must be between 1 and 100"),
        ("offset=-1", "Offset must be non-negative"),
        (
            "status=done",
            "Status must be pending, processing, completed or failed",
        ),
    ] {
        let reply = site.get(&format!("/api/admin/jobs?{query}"), session).await;
        assert_eq!(
            (reply.status, &reply.body),
            (400, &json!({"success": false, "error": message})),
            "{query}"
        );
    }
    admin.site.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_one_job_one_batch_and_the_figures() {
    let admin = Admin::new().await;
    seed(&admin).await;
    let site = &admin.site;
    let session = Some(admin.admin.as_str());
    let found = site.get("/api/admin/jobs/search?id=011", session).await;
    let ids: Vec<&str> = found.body["data"]["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| j["id"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        ids,
        [
            "j0119", "j0118", "j0117", "j0116", "j0115", "j0114", "j0113", "j0112", "j0111",
            "j0110", "j0011"
        ]
    );
    let bad = site
        .get("/api/admin/jobs/search?created_after=yesterday", session)
        .await;
    assert_eq!(bad.status, 400);
    let cutoff = site.rows("SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') FROM queue_jobs WHERE id = 'j0110'").await[0].get::<_, String>(0);
    let window = site
        .get(
            &format!("/api/admin/jobs/search?type=alpha&created_after={cutoff}"),
            session,
        )
        .await;
    let ids: Vec<&str> = window.body["data"]["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| j["id"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(ids, ["j0120", "j0117", "j0114", "j0111"]);

    // Upstream's keys: `job`, `batch` (camelCase) with `recentJobs`, `stats`, `types`.
    let job = site.get("/api/admin/jobs/j0001", session).await;
    assert_eq!(job.body["job"]["error"], "boom");
    let missing = site.get("/api/admin/jobs/nope", session).await;
    assert_eq!(
        (missing.status, &missing.body),
        (404, &json!({"success": false, "error": "Job not found"}))
    );
    let batch = site.get("/api/admin/jobs/batches/b1", session).await;
    assert_eq!(batch.body["batch"]["progress"], 0.75);
    for key in [
        "totalJobs",
        "completedJobs",
        "failedJobs",
        "createdAt",
        "estimatedCompletion",
    ] {
        assert!(
            batch.body["batch"].get(key).is_some(),
            "{key}: {}",
            batch.body
        );
    }
    assert!(batch.body["recentJobs"]
        .as_array()
        .is_some_and(|j| !j.is_empty() && j.len() <= 10));
    let missing = site.get("/api/admin/jobs/batches/nope", session).await;
    assert_eq!(
        (missing.status, &missing.body),
        (404, &json!({"success": false, "error": "Batch not found"}))
    );

    let stats = site.get("/api/admin/jobs/stats", session).await;
    assert_eq!(stats.body["stats"]["total"], 120);
    for (status, n) in [
        ("pending", 117),
        ("processing", 0),
        ("completed", 1),
        ("failed", 2),
    ] {
        assert_eq!(stats.body["stats"][status], n, "{status}");
    }
    assert!(stats.body["stats"]["totalToday"].as_i64().is_some());
    assert!(stats.body["stats"]["averageDuration"].as_f64().is_some());
    let types = site.get("/api/admin/jobs/types", session).await;
    assert_eq!(types.body["success"], true);
    assert_eq!(
        types.body["count"],
        types.body["types"].as_array().map_or(0, Vec::len)
    );

    let retried = site
        .post("/api/admin/jobs/batches/b1/retry", json!({}), session)
        .await;
    assert_eq!(retried.body["data"]["affected"], 2, "{}", retried.body);
    let cancelled = site
        .post("/api/admin/jobs/batches/b1/cancel", json!({}), session)
        .await;
    assert_eq!(
        cancelled.body["message"], "Cancelled 3 pending jobs",
        "{}",
        cancelled.body
    );
    let failed: i64 = site.rows("SELECT count(*) FROM queue_jobs WHERE batch_id = 'b1' AND error = 'Cancelled by administrator'").await[0].get(0);
    assert_eq!(failed, 3);
    let missing = site
        .post("/api/admin/jobs/batches/nope/cancel", json!({}), session)
        .await;
    assert_eq!(missing.status, 404);
    admin.site.server.stop().await;
}
