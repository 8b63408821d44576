//! Who the client is: the TCP peer, unless it is a trusted proxy; then the rightmost
//! forwarded address that is not itself trusted. IPv6 clients are counted by /64.

use futures_util::future::join_all;

use crate::support::Site;
use crate::{behind_proxy, counts, login_from};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_addresses_from_an_untrusted_peer_are_ignored() {
    let site = Site::new().await;
    site.register("ann").await;
    // 30 concurrent bad sign-ins, each claiming another client: all are this peer's.
    let guesses = (0..30).map(|n| {
        let site = &site;
        async move {
            login_from(
                site,
                &format!("198.51.100.{n}"),
                &format!("guess-{n}@example.com"),
                "wrong-password",
            )
            .await
            .status
        }
    });
    let statuses = join_all(guesses).await;
    assert!(statuses.iter().all(|s| *s == 400), "{statuses:?}");
    let reply = login_from(&site, "203.0.113.77", "ann", "password-ann").await;
    assert_eq!(reply.status, 429, "{}", reply.body);
    assert!(
        counts(&site)
            .await
            .iter()
            .any(|(k, n)| k == "address:127.0.0.1" && *n == 31),
        "{:?}",
        counts(&site).await
    );
    assert!(!counts(&site)
        .await
        .iter()
        .any(|(k, _)| k.contains("198.51.100")));
    site.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_each_client_is_counted_apart() {
    let site = behind_proxy().await;
    site.register("ann").await;
    for n in 0..30 {
        let reply = login_from(
            &site,
            "198.51.100.7",
            &format!("g{n}@example.com"),
            "x-wrong-x",
        )
        .await;
        assert_eq!(reply.status, 400, "{n}: {}", reply.body);
    }
    // That client is held; a spoofed entry left of the proxy's own does not free it.
    let held = login_from(&site, "198.51.100.7", "ann", "password-ann").await;
    assert_eq!(held.status, 429);
    let spoofed = login_from(&site, "203.0.113.9, 198.51.100.7", "ann", "password-ann").await;
    assert_eq!(spoofed.status, 429, "{}", spoofed.body);
    // Another client behind the same proxy is not.
    let other = login_from(&site, "198.51.100.8", "ann", "password-ann").await;
    assert_eq!(other.status, 200, "{}", other.body);
    site.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ipv6_client_is_counted_by_its_64() {
    let site = behind_proxy().await;
    site.register("ann").await;
    for n in 1..=30 {
        let from = format!("2001:db8:1:2::{n:x}");
        let reply = login_from(&site, &from, &format!("g{n}@example.com"), "x-wrong-x").await;
        assert_eq!(reply.status, 400, "{from}: {}", reply.body);
    }
    let same_64 = login_from(&site, "2001:db8:1:2:ffff::1", "ann", "password-ann").await;
    assert_eq!(same_64.status, 429, "{}", same_64.body);
    let next_64 = login_from(&site, "[2001:db8:1:3::1]:443", "ann", "password-ann").await;
    assert_eq!(next_64.status, 200, "{}", next_64.body);
    site.server.stop().await;
}
