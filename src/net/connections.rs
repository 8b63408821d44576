//! Caps on open connections: in total (past it, accepting waits, so new clients queue in
//! the kernel instead of taking descriptors the process needs), and per client address
//! (past it, a new connection is closed at once, so one host cannot take every slot).
//! Trusted proxies are exempt from the per-address cap: their connections carry many
//! clients.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::client::address_key;
use super::TrustedProxies;

/// The open connections and their caps.
pub struct ConnectionCaps {
    total: Arc<Semaphore>,
    per_address: usize,
    open: Mutex<HashMap<String, usize>>,
    trusted: TrustedProxies,
}

/// One open connection's place, given back when dropped.
pub struct Slot {
    caps: Arc<ConnectionCaps>,
    address: Option<String>,
    _total: OwnedSemaphorePermit,
}

impl ConnectionCaps {
    /// At most `total` connections, `per_address` of one address (proxies in `trusted`
    /// excepted).
    pub fn new(total: usize, per_address: usize, trusted: TrustedProxies) -> Arc<Self> {
        Arc::new(Self {
            total: Arc::new(Semaphore::new(total.max(1))),
            per_address,
            open: Mutex::new(HashMap::new()),
            trusted,
        })
    }

    /// Waits until a connection may be accepted: one of the total slots.
    pub async fn room(self: &Arc<Self>) -> OwnedSemaphorePermit {
        // The semaphore is never closed: acquiring cannot fail.
        loop {
            if let Ok(permit) = self.total.clone().acquire_owned().await {
                return permit;
            }
        }
    }

    /// The slot of a connection from `peer` holding `permit`, or `None` when `peer` already
    /// has its share open.
    pub fn admit(self: &Arc<Self>, peer: IpAddr, permit: OwnedSemaphorePermit) -> Option<Slot> {
        let address = (!self.trusted.contains(peer)).then(|| address_key(peer));
        if let Some(key) = &address {
            let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
            let count = open.entry(key.clone()).or_insert(0);
            if *count >= self.per_address {
                return None;
            }
            *count += 1;
        }
        Some(Slot {
            caps: self.clone(),
            address,
            _total: permit,
        })
    }

    /// Connections open from `peer`'s address (tests).
    pub fn open_from(&self, peer: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.get(&address_key(peer)).copied().unwrap_or(0)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let Some(key) = self.address.take() else {
            return;
        };
        let mut open = self
            .caps
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&key) {
            *count -= 1;
            if *count == 0 {
                open.remove(&key);
            }
        }
    }
}

/// Raises the soft descriptor limit to the hard one (as Go's runtime does): the default
/// soft limit (often 1024) would cap a server at a few hundred clients.
pub fn raise_descriptor_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_address_gets_its_share_and_proxies_are_exempt() {
        let caps = ConnectionCaps::new(10, 2, TrustedProxies::parse("10.0.0.1").expect("ok"));
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let first = caps.admit(a, caps.room().await).expect("first");
        let second = caps.admit(a, caps.room().await).expect("second");
        assert!(caps.admit(a, caps.room().await).is_none(), "a third");
        assert_eq!(caps.open_from(a), 2);
        drop(first);
        assert_eq!(caps.open_from(a), 1);
        let third = caps
            .admit(a, caps.room().await)
            .expect("a place was given back");
        let proxy: IpAddr = "10.0.0.1".parse().expect("ip");
        let proxied: Vec<Slot> = (0..5)
            .map(|_| caps.admit(proxy, caps.total.clone().try_acquire_owned().expect("room")))
            .collect::<Option<_>>()
            .expect("a trusted proxy has no per-address cap");
        // 2 + 5 of 10 taken; 3 left.
        assert_eq!(caps.total.available_permits(), 3);
        drop((second, third, proxied));
        assert_eq!(caps.total.available_permits(), 10);
        assert_eq!(caps.open_from(a), 0);
    }

    #[tokio::test]
    async fn a_full_server_makes_accepting_wait() {
        let caps = ConnectionCaps::new(1, 5, TrustedProxies::default());
        let held = caps.room().await;
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(50), caps.room());
        assert!(waiting.await.is_err(), "no room while the one slot is held");
        drop(held);
        let _again = caps.room().await;
    }
}
