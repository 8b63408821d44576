//! The in-process cache of stored settings. It is only used while this process listens for
//! changes made by other processes: when the listening connection is down, every read goes to
//! the database, so a stale value is never served.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures_util::StreamExt;
use tracing::{debug, error, warn};

use super::crypto::SettingsCipher;
use super::notify::{CHANNEL, KEY_ROTATED};
use crate::db::PgConnector;
use crate::lifecycle::Backoff;

/// A stored row as the cache keeps it (values stay encrypted in memory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSetting {
    /// Stored text (ciphertext when encrypted).
    pub value: String,
    /// Declared type.
    pub kind: String,
    /// Whether `value` is ciphertext.
    pub is_encrypted: bool,
}

/// Key → stored row (`None`: known not to exist).
#[derive(Default)]
pub struct SettingsCache {
    entries: RwLock<HashMap<String, Option<StoredSetting>>>,
    listening: AtomicBool,
    /// Bumped by every invalidation: a row read from the database before an invalidation
    /// must not be cached after it.
    generation: AtomicU64,
    /// Another process rotated the encryption secret: this process's key is stale.
    key_rotated: AtomicBool,
}

impl SettingsCache {
    /// The cached row of `key`, if the cache is usable and holds it.
    pub fn get(&self, key: &str) -> Option<Option<StoredSetting>> {
        if !self.listening.load(Ordering::Acquire) {
            return None;
        }
        self.entries.read().ok()?.get(key).cloned()
    }

    /// The current generation; take it before reading from the database.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Remembers the row of `key` read at `generation`, unless something was invalidated
    /// since (or the cache is off).
    pub fn put(&self, key: &str, row: Option<StoredSetting>, generation: u64) {
        if !self.listening.load(Ordering::Acquire) {
            return;
        }
        if let Ok(mut entries) = self.entries.write() {
            if self.generation.load(Ordering::Acquire) == generation {
                entries.insert(key.to_owned(), row);
            }
        }
    }

    /// Forgets `key`, or everything when `key` is empty.
    pub fn invalidate(&self, key: &str) {
        if let Ok(mut entries) = self.entries.write() {
            self.generation.fetch_add(1, Ordering::AcqRel);
            if key.is_empty() {
                entries.clear();
            } else {
                entries.remove(key);
            }
        }
    }

    fn set_listening(&self, on: bool) {
        self.listening.store(on, Ordering::Release);
        self.invalidate("");
    }

    /// Another process re-encrypted every value with a new secret: drop everything and
    /// refuse to decrypt with the old key from now on.
    pub(crate) fn mark_key_rotated(&self) {
        if !self.key_rotated.swap(true, Ordering::AcqRel) {
            error!("{}", super::error::ROTATED_NOTICE);
        }
        self.invalidate("");
    }

    /// Whether another process rotated the encryption secret since this one started.
    pub fn key_rotated(&self) -> bool {
        self.key_rotated.load(Ordering::Acquire)
    }

    /// Whether reads may be served from memory.
    pub fn is_listening(&self) -> bool {
        self.listening.load(Ordering::Acquire)
    }

    /// Keeps a dedicated connection that LISTENs for changes; reconnects with backoff and
    /// switches the cache off while disconnected. Ends when the cache is dropped.
    ///
    /// A notice that the encryption secret was rotated is believed only once the database
    /// confirms it (the key check no longer matches `cipher`): anyone who can connect may
    /// send a notification, a plugin's SQL included.
    pub fn spawn_listener(
        self: &Arc<Self>,
        connector: PgConnector,
        cipher: Arc<SettingsCipher>,
    ) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
            loop {
                if weak.strong_count() == 0 {
                    return;
                }
                match connector.connect_listening(CHANNEL).await {
                    Ok(mut conn) => {
                        backoff.reset();
                        let Some(cache) = weak.upgrade() else { return };
                        cache.set_listening(true);
                        drop(cache);
                        debug!("listening for settings changes");
                        let mut stream = std::pin::pin!(conn.notifications_stream());
                        while let Some(message) = stream.next().await {
                            let Some(cache) = weak.upgrade() else { return };
                            match message {
                                Ok(n) if n.payload == KEY_ROTATED => {
                                    if rotation_confirmed(&connector, &cipher).await {
                                        cache.mark_key_rotated();
                                    } else {
                                        warn!("ignored a notice of a secret rotation that the database does not confirm");
                                    }
                                }
                                Ok(n) => cache.invalidate(&n.payload),
                                Err(e) => {
                                    warn!(error = %e, "settings change listener lost its connection");
                                    break;
                                }
                            }
                        }
                        if let Some(cache) = weak.upgrade() {
                            cache.set_listening(false);
                        }
                    }
                    Err(e) => debug!(error = %e, "settings change listener cannot listen yet"),
                }
                tokio::time::sleep(backoff.next_delay()).await;
            }
        })
    }
}

/// Whether the database's key check no longer belongs to `cipher` (asked on a session of its
/// own); `false` when it cannot be asked.
async fn rotation_confirmed(connector: &PgConnector, cipher: &SettingsCipher) -> bool {
    match connector.connect().await {
        Ok(mut conn) => matches!(
            super::key_check::belongs_to(&mut conn, cipher).await,
            Ok(false)
        ),
        Err(_) => false,
    }
}
