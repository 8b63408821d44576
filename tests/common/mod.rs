//! Shared test harness: a real PostgreSQL per test binary (run as the `postgres` user when
//! the tests run as root), a fresh database per test, and the backend served on a real port.
#![allow(dead_code)]

pub mod browser;
pub mod certs;
pub mod log_capture;
pub mod pg;
pub mod process;
pub mod replica;
pub mod server;
pub mod workers;

use std::future::Future;
use std::time::{Duration, Instant};

/// Polls `check` until it returns true, failing the test after `limit`.
pub async fn wait_until<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A TCP port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
