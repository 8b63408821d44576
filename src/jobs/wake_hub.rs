//! Wake-ups sent by the producer side after its commits. A NOTIFY inside the enqueueing
//! transaction makes PostgreSQL serialize those commits (each holds a database-wide lock
//! through its WAL flush, so concurrent enqueues stop sharing fsyncs). The queue's own
//! enqueues therefore switch the table's trigger off for their statement and report here
//! instead: this process's workers are woken at once, and one NOTIFY (from a transaction
//! of its own, after the commit) stands for every enqueue since the previous one.
//!
//! Inserts made any other way (raw SQL, `enqueue_in` inside a caller's transaction) keep
//! the trigger's notification, sent when that transaction commits.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};
use tracing::debug;

use crate::db::Database;
use crate::jobs::CHANNEL;

/// The setting that switches the notification trigger off for one transaction.
pub(crate) const SUPPRESS_TRIGGER: &str =
    "SELECT set_config('deploystack.jobs_notify', 'off', true)";

pub(crate) struct WakeHub {
    db: Database,
    local: Mutex<Vec<Weak<Notify>>>,
    pending: AtomicBool,
    poke: Arc<Notify>,
    sender: Mutex<Option<JoinHandle<()>>>,
    stop: CancellationToken,
    _stop_on_drop: DropGuard,
}

impl WakeHub {
    pub(crate) fn new(db: Database) -> Self {
        let stop = CancellationToken::new();
        Self {
            db,
            local: Mutex::new(Vec::new()),
            pending: AtomicBool::new(false),
            poke: Arc::new(Notify::new()),
            sender: Mutex::new(None),
            _stop_on_drop: stop.clone().drop_guard(),
            stop,
        }
    }

    /// Workers of this process to wake directly.
    pub(crate) fn attach(&self, wake: &Arc<Notify>) {
        let mut local = self
            .local
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        local.retain(|w| w.strong_count() > 0);
        local.push(Arc::downgrade(wake));
    }

    /// A job that is due now was committed.
    pub(crate) fn due(self: &Arc<Self>) {
        for wake in self
            .local
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter_map(Weak::upgrade)
        {
            wake.notify_one();
        }
        self.pending.store(true, Ordering::SeqCst);
        let mut sender = self
            .sender
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Started on first use, again if the runtime that ran it is gone (tests).
        if sender.as_ref().is_none_or(JoinHandle::is_finished) {
            *sender = Some(tokio::spawn(send_notifications(
                Arc::downgrade(self),
                self.poke.clone(),
                self.stop.clone(),
            )));
        }
        drop(sender);
        self.poke.notify_one();
    }
}

/// One NOTIFY per wave of enqueues: those arriving while one is sent share the next one.
async fn send_notifications(hub: Weak<WakeHub>, poke: Arc<Notify>, stop: CancellationToken) {
    use diesel_async::RunQueryDsl;

    loop {
        tokio::select! {
            () = poke.notified() => {}
            () = stop.cancelled() => return,
        }
        let Some(hub) = hub.upgrade() else { return };
        while hub.pending.swap(false, Ordering::SeqCst) {
            let sent = match hub.db.conn().await {
                Ok(mut conn) => diesel::sql_query(format!("NOTIFY {CHANNEL}"))
                    .execute(&mut conn)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            if let Err(e) = sent {
                // The other processes' poll picks the jobs up.
                debug!(error = %e, "cannot announce due jobs");
            }
        }
    }
}
