//! The lease keeper of the worker runtime: every third of the lease it extends the leases
//! of the jobs running in this process, and takes back expired ones from any worker.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::jobs::lease;
use crate::jobs::runtime::{locked, Shared};

/// Every third of the lease: extends the leases of jobs running here, and takes back
/// expired ones from any worker.
pub(super) async fn run(shared: Arc<Shared>, stop: CancellationToken) {
    let lease_ms = shared.settings.lease.as_secs_f64() * 1000.0;
    let mut tick = tokio::time::interval(shared.settings.lease / 3);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        let ids: Vec<String> = locked(&shared.running).keys().cloned().collect();
        let mut conn = match shared.db.conn().await {
            Ok(conn) => conn,
            Err(e) => {
                // Three missed ticks and the leases of this worker's running jobs expire.
                warn!(error = %e, "cannot extend job leases: no connection");
                continue;
            }
        };
        if !ids.is_empty() {
            if let Err(e) = lease::extend(&mut conn, &shared.worker, &ids, lease_ms).await {
                warn!(error = %e, "cannot extend job leases");
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
