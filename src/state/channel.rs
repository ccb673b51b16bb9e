//! A channel and its members: a short lock over the member list, and a copy-on-write
//! snapshot of the members ([`Member`]: address, batch size, sender lane) that fan-out
//! reads without locking. Beside the members,
//! behind locks of their own so that fan-out never waits on them: the channel's settings
//! and moderation lists ([`Meta`]) and its recent messages ([`History`]).

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

use super::community::{History, Meta};

/// A channel's id: given once per server run and never reused, so that an id held by a
/// record of a channel since destroyed can't name a channel created later under it.
pub type ChannelId = u64;

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
    /// A guest whose address is not proved (`User::proved`): what it is sent is held to
    /// the budget of an unproved address (`server::budget`), checked only for members
    /// marked so.
    pub unproved: bool,
}

impl Member {
    /// The member at `addr` taking batches of `batch` bytes (0: classic), its address
    /// proved.
    pub fn new(addr: SocketAddr, batch: u16) -> Self {
        Member {
            addr,
            batch,
            lane: lane_of(addr),
            unproved: false,
        }
    }

    /// The same member, its address unproved if `unproved`.
    pub fn unproved(self, unproved: bool) -> Self {
        Member { unproved, ..self }
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

/// Roles a member holds while it is in the channel.
pub mod role {
    /// A channel operator.
    pub const OP: u8 = 1;
    /// Voiced: may speak in a moderated channel.
    pub const VOICE: u8 = 2;
}

/// A channel and its members.
#[derive(Debug)]
pub struct Channel {
    /// Its id in this run of the server.
    pub id: ChannelId,
    /// The title as configured or created.
    pub title: Box<str>,
    /// Membership; a `parking_lot` mutex because every critical section is a few
    /// operations on a vector and a map, never I/O, and contention is brief.
    members: Mutex<Members>,
    /// Description, kind, modes, operators, bans and invites: read on joins and by
    /// moderation, never by fan-out, so they have their own lock.
    meta: Mutex<Meta>,
    /// Recent public messages; appended after each fan-out is queued.
    history: Mutex<History>,
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
    /// Roles of the members that hold any ([`role`]); they end with the membership.
    roles: HashMap<SocketAddr, u8>,
    /// Set once the channel is destroyed: nobody may join it any more.
    closed: bool,
}

impl Members {
    fn snapshot(&mut self) -> Arc<[Member]> {
        self.snapshot
            .get_or_insert_with(|| Arc::from(&self.list[..]))
            .clone()
    }
}

/// What [`Channel::add`] did.
#[derive(Debug, Clone)]
pub(super) enum Added {
    /// Added: the members before it joined (to be told).
    New(Arc<[Member]>),
    /// It was a member already.
    Again,
    /// The channel has `limit` members already.
    Full,
    /// The channel was destroyed.
    Closed,
}

impl Channel {
    pub(super) fn new(id: ChannelId, title: &str, meta: Meta) -> Self {
        Channel {
            id,
            title: title.into(),
            members: Mutex::new(Members::default()),
            meta: Mutex::new(meta),
            history: Mutex::new(History::default()),
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

    /// Whether the channel was destroyed.
    pub fn is_closed(&self) -> bool {
        self.members.lock().closed
    }

    /// The roles of member `addr` ([`role`] bits; 0 for none or not a member).
    pub fn roles(&self, addr: SocketAddr) -> u8 {
        self.members.lock().roles.get(&addr).copied().unwrap_or(0)
    }

    /// Sets or clears `bits` of the roles of member `addr`; returns whether it is a member.
    pub fn set_roles(&self, addr: SocketAddr, bits: u8, on: bool) -> bool {
        let mut m = self.members.lock();
        if !m.pos.contains_key(&addr) {
            return false;
        }
        let r = m.roles.entry(addr).or_insert(0);
        if on {
            *r |= bits;
        } else {
            *r &= !bits;
        }
        if *r == 0 {
            m.roles.remove(&addr);
        }
        true
    }

    /// Runs `f` on the channel's settings and lists, under their lock (which `f` must not
    /// hold across anything else: no other lock, no send).
    pub fn with_meta<T>(&self, f: impl FnOnce(&mut Meta) -> T) -> T {
        f(&mut self.meta.lock())
    }

    /// Runs `f` on the channel's recent messages, under their lock.
    pub fn with_history<T>(&self, f: impl FnOnce(&mut History) -> T) -> T {
        f(&mut self.history.lock())
    }

    /// The description now.
    pub fn description(&self) -> Arc<str> {
        self.meta.lock().description.clone()
    }

    /// Adds `addr` with `roles`, taking batches of `batch` bytes (0: classic), unless the
    /// channel holds `limit` members already or was destroyed.
    pub(super) fn add(&self, member: Member, limit: Option<usize>, roles: u8) -> Added {
        let addr = member.addr;
        let mut m = self.members.lock();
        if m.closed {
            return Added::Closed;
        }
        if m.pos.contains_key(&addr) {
            return Added::Again;
        }
        if limit.is_some_and(|l| m.list.len() >= l) {
            return Added::Full;
        }
        let before = m.snapshot();
        let at = m.list.len();
        m.list.push(member);
        m.pos.insert(addr, at);
        if roles != 0 {
            m.roles.insert(addr, roles);
        }
        m.snapshot = None;
        Added::New(before)
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
        m.roles.remove(&addr);
        m.snapshot = None;
        Some(m.snapshot())
    }

    /// Puts `new` in the place of member `old` (a session that moved address).
    pub(super) fn replace(&self, old: SocketAddr, new: SocketAddr) {
        let mut m = self.members.lock();
        if let Some(at) = m.pos.remove(&old) {
            let was = m.list[at];
            m.list[at] = Member::new(new, was.batch).unproved(was.unproved);
            m.pos.insert(new, at);
            if let Some(r) = m.roles.remove(&old) {
                m.roles.insert(new, r);
            }
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

    /// Marks member `addr` as proved (its guest echoed a proof token); nothing if it is not
    /// a member or was proved already.
    pub(super) fn set_proved(&self, addr: SocketAddr) {
        let mut m = self.members.lock();
        if let Some(&at) = m.pos.get(&addr) {
            if m.list[at].unproved {
                m.list[at].unproved = false;
                m.snapshot = None;
            }
        }
    }

    /// Marks the channel destroyed if it has no members; returns whether it did (or was
    /// already). A join racing with this either got in first (then the channel is not
    /// empty and stays) or finds it closed.
    pub(super) fn close_if_empty(&self) -> bool {
        let mut m = self.members.lock();
        if m.list.is_empty() {
            m.closed = true;
        }
        m.closed
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

    fn channel() -> Channel {
        Channel::new(0, "Pets", Meta::configured("For pets"))
    }

    #[test]
    fn members_snapshot_follows_adds_and_removes() {
        let ch = channel();
        assert!(matches!(ch.add(Member::new(addr(1), 0), None, 0), Added::New(b) if b.is_empty()));
        let Added::New(before) = ch.add(Member::new(addr(2), 0), None, 0) else {
            panic!("not added");
        };
        assert_eq!((addrs(&before), ch.len()), (vec![addr(1)], 2));
        assert!(matches!(
            ch.add(Member::new(addr(2), 0), None, 0),
            Added::Again
        ));
        ch.add(Member::new(addr(3), 0), None, 0);
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
        let ch = channel();
        ch.add(Member::new(addr(1), 1200), None, 0);
        ch.add(Member::new(addr(2), 0), None, 0);
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

    #[test]
    fn roles_end_with_the_membership_and_follow_a_move() {
        let ch = channel();
        ch.add(Member::new(addr(1), 0), None, role::OP);
        assert_eq!(ch.roles(addr(1)), role::OP);
        assert!(ch.set_roles(addr(1), role::VOICE, true));
        ch.replace(addr(1), addr(2));
        assert_eq!(ch.roles(addr(2)), role::OP | role::VOICE);
        assert!(!ch.set_roles(addr(1), role::OP, true), "not a member");
        ch.remove(addr(2));
        ch.add(Member::new(addr(2), 0), None, 0);
        assert_eq!(ch.roles(addr(2)), 0);
    }

    #[test]
    fn a_full_or_closed_channel_takes_nobody() {
        let ch = channel();
        ch.add(Member::new(addr(1), 0), Some(1), 0);
        assert!(matches!(
            ch.add(Member::new(addr(2), 0), Some(1), 0),
            Added::Full
        ));
        assert!(!ch.close_if_empty());
        ch.remove(addr(1));
        assert!(ch.close_if_empty());
        assert!(matches!(
            ch.add(Member::new(addr(2), 0), None, 0),
            Added::Closed
        ));
        assert!(ch.is_closed());
    }
}
