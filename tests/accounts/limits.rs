//! Failed sign-ins are limited per account and per client address, answered 429 with
//! `Retry-After` before any password is checked; the hashing itself is bounded.

use serde_json::json;

use crate::support::Site;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_failures_lock_the_account_for_the_rest_of_the_minute() {
    let site = Site::new().await;
    site.register("ann").await;
    for _ in 0..10 {
        assert_eq!(site.login("ann", "wrong-password").await.status, 400);
    }
    // Even the right password now waits; the answer says how long.
    let reply = site.login("ANN", "password-ann").await;
    assert_eq!(reply.status, 429, "{}", reply.body);
    let retry: u64 = reply
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(
        reply.body,
        json!({"success": false, "error": format!("Too many failed login attempts. Try again in {retry} seconds.")})
    );
    // Another account from the same address is not locked by ann's failures.
    site.register("bob").await;
    assert_eq!(site.login("bob", "password-bob").await.status, 200);
    site.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_failures_from_one_address_lock_that_address() {
    let site = Site::new().await;
    site.register("ann").await;
    for n in 0..30 {
        let reply = site
            .login(&format!("guess-{n}@example.com"), "wrong-password")
            .await;
        assert_eq!(reply.status, 400, "{n}: {}", reply.body);
    }
    let reply = site.login("ann", "password-ann").await;
    assert_eq!(reply.status, 429, "{}", reply.body);
    site.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_concurrent_guesses_gets_no_more_than_the_limit_checked() {
    let site = Site::new().await;
    site.register("ann").await;
    // All sent at once: each guess is counted before its password is checked, so those in
    // flight see each other.
    let guesses = (0..25).map(|_| site.login("ann", "wrong-password"));
    let replies = futures_util::future::join_all(guesses).await;
    let checked = replies.iter().filter(|r| r.status == 400).count();
    let refused = replies.iter().filter(|r| r.status == 429).count();
    assert_eq!(checked + refused, 25, "only 400 and 429");
    assert!(checked <= 10, "{checked} guesses checked");
    assert_eq!(site.login("ann", "password-ann").await.status, 429);
    site.server.stop().await;
}
