//! A channel and its members: a short lock over the member list, and a copy-on-write
//! snapshot of the members ([`Member`]: address, batch size, sender lane) that fan-out
//! reads without locking.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

use crate::config::ChannelSpec;

/// Index of a channel in [`State::channels`](super::State::channels).
pub type ChannelId = u32;

/// A member as fan-out needs it: where to send, how (one event per datagram, or batches
/// of at most `batch` bytes), and which sender writes to it.
///
/// Fan-outs carry these in a shared snapshot, so whatever a sender needs per member is
/// here, computed once at join time (or when the member's caps change), never per message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// The member's address.
    pub addr: SocketAddr,
    /// The largest BATCH datagram it takes, in bytes; 0 for a classic client (one event
    /// per datagram, exactly as part 1 of the protocol).
    pub batch: u16,
    /// A stable hash of the address: the sender that writes to this member is
    /// `lane % senders`, for every fan-out of every channel, so that one sender queue
    /// holds all of a member's events in order (`server::send`'s module docs).
    pub lane: u16,
}

impl Member {
    /// The member at `addr` taking batches of `batch` bytes (0: classic).
    pub fn new(addr: SocketAddr, batch: u16) -> Self {
        Member {
            addr,
            batch,
            lane: lane_of(addr),
        }
    }
}

/// The lane of an address: a keyed hash, fixed for the life of the process (a member must
/// stay on one sender) and keyed so that a peer can't steer many members onto one sender
/// cheaply.
pub fn lane_of(addr: SocketAddr) -> u16 {
    static KEYS: OnceLock<std::collections::hash_map::RandomState> = OnceLock::new();
    // Fold the 64-bit hash so every bit counts.
    let h = KEYS.get_or_init(Default::default).hash_one(addr);
    (h ^ (h >> 16) ^ (h >> 32) ^ (h >> 48)) as u16
}

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

/// The members of a channel plus a cached, shareable snapshot of them.
///
/// Fan-out reads the snapshot (`Arc<[Member]>`): a public message costs one reference
/// count, not a copy of the member list. A join, a part or a change of a member's batch
/// size drops the snapshot; the next reader rebuilds it once, so a burst of joins pays one
/// copy per fan-out it owes, not one per reader.
#[derive(Debug, Default)]
struct Members {
    list: Vec<Member>,
    /// Position of each address in `list`, for O(1) removal by swap.
    pos: HashMap<SocketAddr, usize>,
    snapshot: Option<Arc<[Member]>>,
}

impl Members {
    fn snapshot(&mut self) -> Arc<[Member]> {
        self.snapshot
            .get_or_insert_with(|| Arc::from(&self.list[..]))
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

    /// The members now, shared.
    pub fn snapshot(&self) -> Arc<[Member]> {
        self.members.lock().snapshot()
    }

    /// How many members the channel has.
    pub fn len(&self) -> usize {
        self.members.lock().list.len()
    }

    /// Whether the channel has no members.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `addr` is a member.
    pub fn contains(&self, addr: SocketAddr) -> bool {
        self.members.lock().pos.contains_key(&addr)
    }

    /// Adds `addr`, taking batches of `batch` bytes (0: classic); returns the members
    /// before it joined (to be told). Returns `None` when `addr` was a member already.
    pub(super) fn add(&self, addr: SocketAddr, batch: u16) -> Option<Arc<[Member]>> {
        let mut m = self.members.lock();
        if m.pos.contains_key(&addr) {
            return None;
        }
        let before = m.snapshot();
        let at = m.list.len();
        m.list.push(Member::new(addr, batch));
        m.pos.insert(addr, at);
        m.snapshot = None;
        Some(before)
    }

    /// Removes `addr`; returns the remaining members (to be told), or `None` if it was not
    /// a member.
    pub(super) fn remove(&self, addr: SocketAddr) -> Option<Arc<[Member]>> {
        let mut m = self.members.lock();
        let at = m.pos.remove(&addr)?;
        m.list.swap_remove(at);
        if let Some(moved) = m.list.get(at).map(|x| x.addr) {
            m.pos.insert(moved, at);
        }
        m.snapshot = None;
        Some(m.snapshot())
    }

    /// Puts `new` in the place of member `old` (a session that moved address), keeping its
    /// batch size.
    pub(super) fn replace(&self, old: SocketAddr, new: SocketAddr) {
        let mut m = self.members.lock();
        if let Some(at) = m.pos.remove(&old) {
            let batch = m.list[at].batch;
            m.list[at] = Member::new(new, batch);
            m.pos.insert(new, at);
            m.snapshot = None;
        }
    }

    /// Sets the batch size of member `addr` (its caps changed); nothing if it is not a
    /// member or the size is the same.
    pub(super) fn set_batch(&self, addr: SocketAddr, batch: u16) {
        let mut m = self.members.lock();
        if let Some(&at) = m.pos.get(&addr) {
            if m.list[at].batch != batch {
                m.list[at].batch = batch;
                m.snapshot = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn addrs(s: &[Member]) -> Vec<SocketAddr> {
        s.iter().map(|m| m.addr).collect()
    }

    #[test]
    fn members_snapshot_follows_adds_and_removes() {
        let ch = Channel::new(&crate::config::classic_channels()[0]);
        assert!(ch.add(addr(1), 0).unwrap().is_empty());
        let before = ch.add(addr(2), 0).unwrap();
        assert_eq!((addrs(&before), ch.len()), (vec![addr(1)], 2));
        assert!(ch.add(addr(2), 0).is_none());
        ch.add(addr(3), 0).unwrap();
        let rest = ch.remove(addr(1)).unwrap();
        let mut rest = addrs(&rest);
        rest.sort();
        assert_eq!(rest, vec![addr(2), addr(3)]);
        assert!(ch.remove(addr(1)).is_none());
        assert!(ch.remove(addr(3)).is_some());
        assert_eq!(addrs(&ch.snapshot()), vec![addr(2)]);
        ch.replace(addr(2), addr(9));
        assert!(ch.contains(addr(9)) && !ch.contains(addr(2)));
    }

    #[test]
    fn batch_sizes_ride_in_the_snapshot_and_survive_a_move() {
        let ch = Channel::new(&crate::config::classic_channels()[0]);
        ch.add(addr(1), 1200);
        ch.add(addr(2), 0);
        let s = ch.snapshot();
        assert_eq!((s[0].batch, s[1].batch), (1200, 0));
        assert_eq!(s[0].lane, lane_of(addr(1)));
        // The same size again changes nothing: the snapshot is still shared.
        ch.set_batch(addr(1), 1200);
        assert!(Arc::ptr_eq(&s, &ch.snapshot()));
        ch.set_batch(addr(2), 4000);
        let t = ch.snapshot();
        assert!(!Arc::ptr_eq(&s, &t));
        assert_eq!(t[1].batch, 4000);
        ch.replace(addr(2), addr(7));
        let u = ch.snapshot();
        assert_eq!(u[1], Member::new(addr(7), 4000));
    }
}
