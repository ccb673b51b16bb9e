//! A channel and its members: a short lock over the member list, and a copy-on-write
//! snapshot of the member addresses that fan-out reads without locking.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::config::ChannelSpec;

/// Index of a channel in [`State::channels`](super::State::channels).
pub type ChannelId = u32;

/// A configured channel and its members.
#[derive(Debug)]
pub struct Channel {
    /// The title as configured.
    pub title: Box<str>,
    /// The description as configured.
    pub description: Box<str>,
    /// Membership; a `parking_lot` mutex because every critical section is a few
    /// operations on a vector and a map, never I/O, and contention is brief.
    members: Mutex<Members>,
}

/// The members of a channel plus a cached, shareable snapshot of their addresses.
///
/// Fan-out reads the snapshot (`Arc<[SocketAddr]>`): a public message costs one reference
/// count, not a copy of the member list. A join or part drops the snapshot; the next reader
/// rebuilds it once, so a burst of joins pays one copy, not one per join.
#[derive(Debug, Default)]
struct Members {
    addrs: Vec<SocketAddr>,
    /// Position of each address in `addrs`, for O(1) removal by swap.
    pos: HashMap<SocketAddr, usize>,
    snapshot: Option<Arc<[SocketAddr]>>,
}

impl Members {
    fn snapshot(&mut self) -> Arc<[SocketAddr]> {
        self.snapshot
            .get_or_insert_with(|| Arc::from(&self.addrs[..]))
            .clone()
    }
}

impl Channel {
    pub(super) fn new(spec: &ChannelSpec) -> Self {
        Channel {
            title: spec.title.as_str().into(),
            description: spec.description.as_str().into(),
            members: Mutex::new(Members::default()),
        }
    }

    /// The member addresses now, shared.
    pub fn snapshot(&self) -> Arc<[SocketAddr]> {
        self.members.lock().snapshot()
    }

    /// How many members the channel has.
    pub fn len(&self) -> usize {
        self.members.lock().addrs.len()
    }

    /// Whether the channel has no members.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `addr` is a member.
    pub fn contains(&self, addr: SocketAddr) -> bool {
        self.members.lock().pos.contains_key(&addr)
    }

    /// Adds `addr`; returns the members before it joined (to be told).
    /// Returns `None` when `addr` was a member already.
    pub(super) fn add(&self, addr: SocketAddr) -> Option<Arc<[SocketAddr]>> {
        let mut m = self.members.lock();
        if m.pos.contains_key(&addr) {
            return None;
        }
        let before = m.snapshot();
        let at = m.addrs.len();
        m.addrs.push(addr);
        m.pos.insert(addr, at);
        m.snapshot = None;
        Some(before)
    }

    /// Removes `addr`; returns the remaining members (to be told), or `None` if it was not
    /// a member.
    pub(super) fn remove(&self, addr: SocketAddr) -> Option<Arc<[SocketAddr]>> {
        let mut m = self.members.lock();
        let at = m.pos.remove(&addr)?;
        m.addrs.swap_remove(at);
        if let Some(&moved) = m.addrs.get(at) {
            m.pos.insert(moved, at);
        }
        m.snapshot = None;
        Some(m.snapshot())
    }

    /// Puts `new` in the place of member `old` (a session that moved address).
    pub(super) fn replace(&self, old: SocketAddr, new: SocketAddr) {
        let mut m = self.members.lock();
        if let Some(at) = m.pos.remove(&old) {
            m.addrs[at] = new;
            m.pos.insert(new, at);
            m.snapshot = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn members_snapshot_follows_adds_and_removes() {
        let ch = Channel::new(&crate::config::classic_channels()[0]);
        assert!(ch.add(addr(1)).unwrap().is_empty());
        let before = ch.add(addr(2)).unwrap();
        assert_eq!((&before[..], ch.len()), (&[addr(1)][..], 2));
        assert!(ch.add(addr(2)).is_none());
        ch.add(addr(3)).unwrap();
        let rest = ch.remove(addr(1)).unwrap();
        let mut rest = rest.to_vec();
        rest.sort();
        assert_eq!(rest, vec![addr(2), addr(3)]);
        assert!(ch.remove(addr(1)).is_none());
        assert!(ch.remove(addr(3)).is_some());
        assert_eq!(&ch.snapshot()[..], &[addr(2)]);
        ch.replace(addr(2), addr(9));
        assert!(ch.contains(addr(9)) && !ch.contains(addr(2)));
    }
}
