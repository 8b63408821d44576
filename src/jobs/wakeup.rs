//! The wake-up listener: a dedicated connection LISTENing on [`CHANNEL`], reconnecting with
//! backoff. Each notification (and each reconnection, which may have missed some) wakes
//! the claimer; the poll interval covers the time the listener is down.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::db::PgConnector;
use crate::jobs::CHANNEL;
use crate::lifecycle::Backoff;

/// Runs until `stop`, calling `wake.notify_one()` for every notification.
pub(crate) async fn listen(connector: PgConnector, wake: Arc<Notify>, stop: CancellationToken) {
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
    while !stop.is_cancelled() {
        let connected = tokio::select! {
            c = connector.connect_listening(CHANNEL) => c,
            () = stop.cancelled() => return,
        };
        match connected {
            Ok(mut conn) => {
                backoff.reset();
                debug!("listening for due jobs");
                // Jobs enqueued while nobody listened.
                wake.notify_one();
                let mut stream = std::pin::pin!(conn.notifications_stream());
                loop {
                    tokio::select! {
                        message = stream.next() => match message {
                            Some(Ok(_)) => wake.notify_one(),
                            Some(Err(e)) => {
                                warn!(error = %e, "job wake-up listener lost its connection; polling meanwhile");
                                break;
                            }
                            None => break,
                        },
                        () = stop.cancelled() => return,
                    }
                }
            }
            Err(e) => debug!(error = %e, "job wake-up listener cannot listen yet"),
        }
        tokio::select! {
            () = tokio::time::sleep(backoff.next_delay()) => {}
            () = stop.cancelled() => return,
        }
    }
}
