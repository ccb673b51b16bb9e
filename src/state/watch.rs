//! Hot-list watchers: nickname key → the addresses whose hot list holds it, so a login or a
//! log-off tells its watchers without a walk over users.

use std::net::SocketAddr;

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;

/// The watchers of each nickname key.
#[derive(Debug, Default)]
pub(super) struct Watchers {
    map: DashMap<Box<str>, Vec<SocketAddr>>,
}

impl Watchers {
    pub(super) fn add(&self, key: &str, watcher: SocketAddr) {
        let mut list = self.map.entry(key.into()).or_default();
        if !list.contains(&watcher) {
            list.push(watcher);
        }
    }

    pub(super) fn remove(&self, key: &str, watcher: SocketAddr) {
        if let Entry::Occupied(mut e) = self.map.entry(key.into()) {
            e.get_mut().retain(|w| *w != watcher);
            if e.get().is_empty() {
                e.remove();
            }
        }
    }

    /// The watcher at `old` watches from `new` now (its user moved).
    pub(super) fn replace(&self, key: &str, old: SocketAddr, new: SocketAddr) {
        if let Some(mut list) = self.map.get_mut(key) {
            for a in list.iter_mut().filter(|a| **a == old) {
                *a = new;
            }
        }
    }

    /// Those watching `key`.
    pub(super) fn of(&self, key: &str) -> Vec<SocketAddr> {
        self.map.get(key).map(|w| w.clone()).unwrap_or_default()
    }
}
