//! The lease keeper of the worker runtime: every third of the lease it renews the leases of
//! the runs listed in this process (on a reserved connection), cancels the runs whose lease
//! was taken back anyway, and takes back expired leases from any worker.

use std::collections::HashMap;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::jobs::lease;
use crate::jobs::runtime::Shared;

/// Every third of the lease: renews the leases of runs listed here, cancels the runs that
/// lost theirs, and takes back expired ones from any worker.
pub(super) async fn run(shared: Arc<Shared>, stop: CancellationToken) {
    let lease_ms = shared.settings.lease.as_secs_f64() * 1000.0;
    let mut tick = tokio::time::interval(shared.settings.lease / 3);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        let (ids, attempts) = shared.held();
        let mut conn = match shared.upkeep_conn().await {
            Ok(conn) => conn,
            Err(e) if ids.is_empty() => {
                // Only the reaping waits; the pool has said why it cannot connect.
                debug!(error = %e, "cannot take back expired job leases: no connection");
                continue;
            }
            Err(e) => {
                // Three missed ticks and the leases of this worker's running jobs expire.
                warn!(error = %e, "cannot renew job leases: no connection");
                continue;
            }
        };
        if !ids.is_empty() {
            match lease::renew(&mut conn, &shared.worker, &ids, &attempts, lease_ms).await {
                Ok(lost) if !lost.is_empty() => {
                    let asked: HashMap<&str, i32> = ids
                        .iter()
                        .map(String::as_str)
                        .zip(attempts.iter().copied())
                        .collect();
                    let cancelled = shared.cancel_lost(&lost, &asked);
                    if cancelled > 0 {
                        warn!(
                            runs = cancelled,
                            "job leases were taken back while their runs went on (this process \
                             stalled past the lease): runs cancelled"
                        );
                    }
                }
                Ok(_) => {}
                Err(e) => warn!(error = %e, "cannot renew job leases"),
            }
        }
        match lease::reap(&mut conn).await {
            Ok((0, 0)) => {}
            Ok((requeued, failed)) => {
                warn!(
                    requeued,
                    failed, "took back jobs whose worker stopped (lease expired)"
                );
                if requeued > 0 {
                    shared.wake.notify_one();
                }
            }
            Err(e) => debug!(error = %e, "cannot look for expired job leases"),
        }
    }
}
