//! How many hot-list entries the guests that have not proved their address hold, per
//! network (IPv4 /24, IPv6 /64) and in all. Anyone can log in as a guest with a forged
//! source address and fill a hot list without ever receiving an answer, so what those
//! lists cost (a key in the user record and one in the watcher map, about 300 bytes an
//! entry) must stay bounded however many addresses a forger uses: each entry is taken
//! here before it is added and given back when it goes (unwatched, the guest left, or it
//! proved its address, after which its list counts as a user's).
//!
//! A network's count and the total are taken and given back without a lock held across
//! them: the total is an atomic, a network's count one dashmap entry, and a grant that the
//! network can't cover is returned to the total at once.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;

use crate::accounts::limits::Prefix;

/// The hot-list entries of unproved guests, by network and in all.
#[derive(Debug, Default)]
pub(super) struct WatchQuota {
    /// Entries per network; a network with none has no entry.
    networks: DashMap<Prefix, usize>,
    /// Entries in all.
    total: AtomicUsize,
}

impl WatchQuota {
    /// Takes up to `want` entries for an unproved guest at `addr`, within `per_network`
    /// for its network and `total` in all; returns how many were granted (each to be
    /// given back with [`give_back`](Self::give_back)).
    pub(super) fn take(
        &self,
        addr: SocketAddr,
        want: usize,
        per_network: usize,
        total: usize,
    ) -> usize {
        if want == 0 {
            return 0;
        }
        let mut granted = 0;
        let _ = self
            .total
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |now| {
                granted = want.min(total.saturating_sub(now));
                (granted > 0).then_some(now + granted)
            });
        if granted == 0 {
            return 0;
        }
        let mut held = self.networks.entry(Prefix::of(addr)).or_insert(0);
        let fits = granted.min(per_network.saturating_sub(*held));
        *held += fits;
        let empty = *held == 0;
        drop(held);
        if empty {
            self.networks.remove_if(&Prefix::of(addr), |_, n| *n == 0);
        }
        self.total.fetch_sub(granted - fits, Ordering::Relaxed);
        fits
    }

    /// Gives back `n` entries of an unproved guest at `addr`.
    pub(super) fn give_back(&self, addr: SocketAddr, n: usize) {
        if n == 0 {
            return;
        }
        if let Entry::Occupied(mut e) = self.networks.entry(Prefix::of(addr)) {
            let left = e.get().saturating_sub(n);
            if left == 0 {
                e.remove();
            } else {
                *e.get_mut() = left;
            }
        }
        let _ = self
            .total
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |now| {
                Some(now.saturating_sub(n))
            });
    }

    /// Entries held in all.
    pub(super) fn total(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    /// Entries held by the network of `addr`.
    pub(super) fn of_network(&self, addr: SocketAddr) -> usize {
        self.networks
            .get(&Prefix::of(addr))
            .map_or(0, |n| *n.value())
    }

    /// Networks holding entries.
    pub(super) fn networks(&self) -> usize {
        self.networks.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ip: &str) -> SocketAddr {
        format!("{ip}:1").parse().unwrap()
    }

    #[test]
    fn grants_stop_at_the_network_and_the_total_and_come_back() {
        let q = WatchQuota::default();
        assert_eq!(q.take(at("10.0.0.1"), 5, 8, 12), 5);
        // Same /24: three left of the network's eight.
        assert_eq!(q.take(at("10.0.0.2"), 5, 8, 12), 3);
        assert_eq!((q.of_network(at("10.0.0.9")), q.total()), (8, 8));
        // Another network: four left of the total's twelve.
        assert_eq!(q.take(at("10.0.1.1"), 6, 8, 12), 4);
        assert_eq!(q.take(at("10.0.2.1"), 1, 8, 12), 0);
        assert_eq!(q.networks(), 2, "a network refused holds no entry");
        q.give_back(at("10.0.0.1"), 5);
        assert_eq!((q.of_network(at("10.0.0.1")), q.total()), (3, 7));
        q.give_back(at("10.0.0.2"), 3);
        q.give_back(at("10.0.1.1"), 4);
        assert_eq!((q.networks(), q.total()), (0, 0));
        // IPv6: the /64 counts together.
        assert_eq!(q.take(at("[2001:db8::1]"), 3, 4, 100), 3);
        assert_eq!(q.take(at("[2001:db8::ffff]"), 3, 4, 100), 1);
        assert_eq!(q.take(at("[2001:db8:0:1::1]"), 3, 4, 100), 3);
    }
}
