//! The case-insensitive nickname index: nickname key → address, with a sorted copy so that
//! WHO reads a prefix as one range, and the count of users and reserved nicknames checked
//! against `--max-users` (with the share kept for password logins).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::ops::Bound;
use std::sync::atomic::{AtomicUsize, Ordering};

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use parking_lot::RwLock;

/// The key of a nickname: nicknames are unique, and looked up, without regard to case
/// (a PRECIS fold, `proto::nick`).
pub fn nick_key(nick: &str) -> String {
    proto::nick::key(nick)
}

/// Why a nickname could not be claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimError {
    /// Another address holds it.
    InUse,
    /// The server holds its maximum number of users.
    Full,
}

/// The nickname index and the user count.
#[derive(Debug)]
pub(super) struct Nicks {
    /// Nickname key → address: the uniqueness check. Holds reserved nicknames too (a
    /// cluster login waiting for its lease), which have no user record yet.
    index: DashMap<Box<str>, SocketAddr>,
    /// A sorted copy of `index`, so that WHO reads a prefix as one range instead of
    /// walking every user. Written after `index`, never under its guard.
    sorted: RwLock<BTreeMap<Box<str>, SocketAddr>>,
    /// Users and reserved nicknames, kept apart from the maps' lengths (which lock every
    /// shard) so that the `--max-users` check is one atomic operation.
    count: AtomicUsize,
    /// The `--max-users` cap (an atomic: a configuration reload may change it).
    max: AtomicUsize,
    /// Of `max`, how many only password logins may fill (guests stop short of it).
    reserve: AtomicUsize,
}

impl Nicks {
    pub(super) fn new(max_users: usize) -> Self {
        Nicks {
            index: DashMap::new(),
            sorted: RwLock::new(BTreeMap::new()),
            count: AtomicUsize::new(0),
            max: AtomicUsize::new(max_users),
            reserve: AtomicUsize::new(0),
        }
    }

    pub(super) fn set_max(&self, max: usize) {
        self.max.store(max, Ordering::Relaxed);
    }

    pub(super) fn reserve_for_accounts(&self, n: usize) {
        self.reserve
            .store(n.min(self.max.load(Ordering::Relaxed)), Ordering::Relaxed);
    }

    /// Users and reserved nicknames.
    pub(super) fn count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// Holds `nick` for `addr`, within the places guests may take, or with `protected`
    /// within all of them.
    pub(super) fn claim(
        &self,
        addr: SocketAddr,
        nick: &str,
        protected: bool,
    ) -> Result<(), ClaimError> {
        let mut cap = self.max.load(Ordering::Relaxed);
        if !protected {
            cap = cap.saturating_sub(self.reserve.load(Ordering::Relaxed));
        }
        let key: Box<str> = nick_key(nick).into();
        if self
            .count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < cap).then_some(n + 1)
            })
            .is_err()
        {
            return Err(ClaimError::Full);
        }
        match self.index.entry(key.clone()) {
            Entry::Occupied(_) => {
                self.count.fetch_sub(1, Ordering::AcqRel);
                return Err(ClaimError::InUse);
            }
            Entry::Vacant(v) => {
                v.insert(addr);
            }
        }
        self.sorted.write().insert(key, addr);
        Ok(())
    }

    /// Lets go of `nick` if `addr` holds it; returns whether it did.
    pub(super) fn release(&self, addr: SocketAddr, nick: &str) -> bool {
        let key = nick_key(nick);
        let held = self
            .index
            .remove_if(key.as_str(), |_, holder| *holder == addr)
            .is_some();
        if held {
            self.sorted.write().remove(key.as_str());
        }
        held
    }

    /// One user or reservation fewer.
    pub(super) fn uncount(&self) {
        self.count.fetch_sub(1, Ordering::AcqRel);
    }

    /// `nick` is held by `addr` now (its user moved there).
    pub(super) fn rebind(&self, nick: &str, addr: SocketAddr) {
        let key: Box<str> = nick_key(nick).into();
        self.index.insert(key.clone(), addr);
        self.sorted.write().insert(key, addr);
    }

    /// The address holding `nick` (any case).
    pub(super) fn holder(&self, nick: &str) -> Option<SocketAddr> {
        self.index.get(nick_key(nick).as_str()).map(|e| *e)
    }

    /// The addresses of up to `limit` nickname keys that start with `prefix`, by key.
    pub(super) fn with_prefix(&self, prefix: &str, limit: usize) -> Vec<SocketAddr> {
        self.sorted
            .read()
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .take(limit)
            .map(|(_, a)| *a)
            .collect()
    }

    /// Checks the count and the sorted copy against the index.
    pub(super) fn check(&self, users: usize) -> Result<(), String> {
        if self.index.len() != self.count() || users > self.count() {
            return Err("user count disagrees with the maps".into());
        }
        let sorted: Vec<(Box<str>, SocketAddr)> = self
            .sorted
            .read()
            .iter()
            .map(|(k, a)| (k.clone(), *a))
            .collect();
        if sorted.len() != self.index.len()
            || sorted
                .iter()
                .any(|(k, a)| self.index.get(k).map(|e| *e) != Some(*a))
        {
            return Err("the sorted nickname index disagrees with the nickname map".into());
        }
        Ok(())
    }
}
