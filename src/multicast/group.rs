//! One channel's multicast group and who hears the channel on it, and the table of groups
//! of a server ([`Groups`]), kept apart from the channel itself so the channel list can
//! change shape without touching it.
//!
//! # Who gets what
//! A member of a channel is in one of three states here: not known (a classic client, or
//! one without the `multicast` cap: unicast), *pending* (sent `MCAST_GROUP`, not yet
//! confirmed: still unicast) or *confirmed* (`MCAST_JOINED`: the channel's events reach
//! it only through the group). A fan-out for the channel goes by unicast to the members
//! that are not confirmed ([`ChannelGroup::route`], a filtered copy of the member snapshot,
//! cached until membership changes) and once to the group while the group is *active*:
//! somebody is confirmed or pending. A group nobody listens to gets nothing, so a channel
//! of classic clients costs the network nothing extra.
//!
//! # Order
//! The sequence number is taken when the datagram is sealed ([`ChannelGroup::seal`]), by
//! the one sender thread that handles the channel's fan-outs (`server::send`), so sequences
//! go out in the order they were given and a client's "above the last one" rule never
//! drops a datagram that was merely overtaken.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use hmac::Mac;
use parking_lot::{Mutex, RwLock};
use rand::RngCore;

use crate::state::{ChannelId, Member};
use proto::channel_data;
use proto::channel_data::{tag_with, ChannelMac, KEY_LEN};

/// How long a member stays pending after `MCAST_GROUP` without confirming: meanwhile its
/// group is kept active (so it has something to hear) and probed often. A client behind a
/// router that drops multicast never confirms; after this its group may fall quiet.
pub(crate) const PENDING_FOR: Duration = Duration::from_secs(15);

/// One channel's group: address, key, sequence and listeners.
pub struct ChannelGroup {
    /// The channel's title, for MCAST_GROUP and MCAST_PROBE.
    pub title: Box<str>,
    /// Group address and port.
    pub addr: SocketAddr,
    /// The key, base64, as MCAST_GROUP carries it.
    pub key_b64: Box<str>,
    /// HMAC-SHA256 keyed once with the channel key; cloned for each tag (cheaper than
    /// keying again).
    mac: ChannelMac,
    /// The last sequence number used (0: none yet).
    seq: AtomicU64,
    /// Listeners; a `parking_lot` mutex because every critical section is a few set
    /// operations (or one filtered copy of a member list after a change), never I/O.
    members: Mutex<Listeners>,
}

impl std::fmt::Debug for ChannelGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelGroup")
            .field("title", &self.title)
            .field("addr", &self.addr)
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

/// A member snapshot and its unicast part.
type Routed = (Arc<[Member]>, Arc<[Member]>);

#[derive(Debug, Default)]
struct Listeners {
    confirmed: HashSet<SocketAddr>,
    /// When each pending member was sent MCAST_GROUP.
    pending: HashMap<SocketAddr, Instant>,
    /// The last member snapshot routed and its unicast part (the members not confirmed),
    /// so a public message to a big channel costs one reference count, not a filtered copy.
    cache: Option<Routed>,
}

impl Listeners {
    fn active(&self) -> bool {
        !self.confirmed.is_empty() || !self.pending.is_empty()
    }
}

/// How many members are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListenerCounts {
    /// Confirmed: hear the channel on the group only.
    pub confirmed: usize,
    /// Sent MCAST_GROUP, not confirmed yet.
    pub pending: usize,
}

impl ChannelGroup {
    /// A group for `title` at `addr` with `key`.
    pub fn new(title: &str, addr: SocketAddr, key: [u8; KEY_LEN]) -> Self {
        ChannelGroup {
            title: title.into(),
            addr,
            key_b64: base64::engine::general_purpose::STANDARD.encode(key).into(),
            mac: ChannelMac::new_from_slice(&key).expect("HMAC takes a key of any length"),
            seq: AtomicU64::new(0),
            members: Mutex::new(Listeners::default()),
        }
    }

    /// A group with a fresh random key.
    pub fn with_random_key(title: &str, addr: SocketAddr) -> Self {
        let mut key = [0u8; KEY_LEN];
        rand::rngs::OsRng.fill_bytes(&mut key);
        Self::new(title, addr, key)
    }

    /// The CHANNEL_DATA datagram carrying `inner` (one event datagram or one BATCH), with
    /// the next sequence number. Call it from the one thread that sends the channel's
    /// group traffic (module docs: order).
    pub fn seal(&self, inner: &[u8]) -> Vec<u8> {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        channel_data::encode(seq, inner, |signed| tag_with(&self.mac, signed))
    }

    /// The last sequence number used.
    pub fn last_seq(&self) -> u64 {
        self.seq.load(Ordering::Relaxed)
    }

    /// Whether `tag` is right for `signed` under this group's key (for tests).
    #[cfg(test)]
    fn verify(&self, signed: &[u8], tag: &[u8]) -> bool {
        let mut mac = self.mac.clone();
        mac.update(signed);
        mac.verify_truncated_left(tag).is_ok()
    }

    /// `addr` was sent MCAST_GROUP at `now`: pending unless already confirmed. Returns
    /// whether it is pending now.
    pub fn offer(&self, addr: SocketAddr, now: Instant) -> bool {
        let mut m = self.members.lock();
        if m.confirmed.contains(&addr) {
            return false;
        }
        m.pending.insert(addr, now);
        true
    }

    /// `addr` hears the group (MCAST_JOINED): from now on it gets the channel's events
    /// only there. Returns whether that is news.
    pub fn confirm(&self, addr: SocketAddr) -> bool {
        let mut m = self.members.lock();
        m.pending.remove(&addr);
        let new = m.confirmed.insert(addr);
        if new {
            m.cache = None;
        }
        new
    }

    /// `addr` no longer hears the group, or left the channel: back to unicast (or out).
    /// Returns whether it was confirmed.
    pub fn release(&self, addr: SocketAddr) -> bool {
        let mut m = self.members.lock();
        m.pending.remove(&addr);
        let was = m.confirmed.remove(&addr);
        if was {
            m.cache = None;
        }
        was
    }

    /// The member at `old` is at `new` now (a protected session that moved).
    pub fn replace(&self, old: SocketAddr, new: SocketAddr) {
        let mut m = self.members.lock();
        if let Some(t) = m.pending.remove(&old) {
            m.pending.insert(new, t);
        }
        if m.confirmed.remove(&old) {
            m.confirmed.insert(new);
            m.cache = None;
        }
    }

    /// Whether `addr` is confirmed.
    pub fn is_confirmed(&self, addr: SocketAddr) -> bool {
        self.members.lock().confirmed.contains(&addr)
    }

    /// Splits a fan-out to `dests` (members of the channel): the members to reach by
    /// unicast, and whether the group gets the event too.
    pub fn route(&self, dests: &Arc<[Member]>) -> (Arc<[Member]>, bool) {
        let mut m = self.members.lock();
        let active = m.active();
        if m.confirmed.is_empty() {
            return (dests.clone(), active);
        }
        if let Some((source, unicast)) = &m.cache {
            if Arc::ptr_eq(source, dests) {
                return (unicast.clone(), active);
            }
        }
        let unicast: Arc<[Member]> = dests
            .iter()
            .filter(|d| !m.confirmed.contains(&d.addr))
            .copied()
            .collect();
        m.cache = Some((dests.clone(), unicast.clone()));
        (unicast, active)
    }

    /// Whether anybody listens (confirmed or pending).
    pub fn active(&self) -> bool {
        self.members.lock().active()
    }

    /// Forgets members pending since before `now - PENDING_FOR`; returns whether some
    /// pending members are left (they get probed often).
    pub fn expire_pending(&self, now: Instant) -> bool {
        let mut m = self.members.lock();
        m.pending
            .retain(|_, since| now.saturating_duration_since(*since) < PENDING_FOR);
        !m.pending.is_empty()
    }

    /// How many members are in each state.
    pub fn counts(&self) -> ListenerCounts {
        let m = self.members.lock();
        ListenerCounts {
            confirmed: m.confirmed.len(),
            pending: m.pending.len(),
        }
    }
}

/// The groups of a server's channels, by channel; empty without `--multicast`. Channels
/// that said `multicast = false` have none.
///
/// A read-write lock over a map, not a vector indexed by channel id, so that channels
/// made while the server runs can get a group ([`Groups::insert`]); reads (one per
/// fan-out) take the read lock for a map look-up and an `Arc` clone.
#[derive(Debug, Default)]
pub struct Groups {
    by_channel: RwLock<HashMap<ChannelId, Arc<ChannelGroup>>>,
}

impl Groups {
    /// No groups.
    pub fn new() -> Self {
        Self::default()
    }

    /// Gives channel `id` its group.
    pub fn insert(&self, id: ChannelId, group: ChannelGroup) {
        self.by_channel.write().insert(id, Arc::new(group));
    }

    /// The group of channel `id`, if it has one.
    pub fn get(&self, id: ChannelId) -> Option<Arc<ChannelGroup>> {
        self.by_channel.read().get(&id).cloned()
    }

    /// Whether no channel has a group.
    pub fn is_empty(&self) -> bool {
        self.by_channel.read().is_empty()
    }

    /// Every group with its channel, by channel id.
    pub fn all(&self) -> Vec<(ChannelId, Arc<ChannelGroup>)> {
        let mut v: Vec<_> = self
            .by_channel
            .read()
            .iter()
            .map(|(id, g)| (*id, g.clone()))
            .collect();
        v.sort_by_key(|(id, _)| *id);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn group() -> ChannelGroup {
        ChannelGroup::new("Pets", "239.77.0.1:2028".parse().unwrap(), [7; KEY_LEN])
    }

    #[test]
    fn confirmed_members_leave_the_unicast_list_and_come_back() {
        let g = group();
        let dests: Arc<[Member]> = [1, 2, 3].map(|p| Member::new(addr(p), 0)).into();
        assert_eq!(g.route(&dests), (dests.clone(), false));
        assert!(g.offer(addr(2), Instant::now()));
        let (uni, active) = g.route(&dests);
        assert!(
            active && Arc::ptr_eq(&uni, &dests),
            "pending stays on unicast"
        );
        assert!(g.confirm(addr(2)));
        let (uni, active) = g.route(&dests);
        let uni_addrs: Vec<SocketAddr> = uni.iter().map(|m| m.addr).collect();
        assert_eq!((uni_addrs, active), (vec![addr(1), addr(3)], true));
        // The filtered list is cached for the same snapshot.
        assert!(Arc::ptr_eq(&uni, &g.route(&dests).0));
        assert!(
            !g.offer(addr(2), Instant::now()),
            "confirmed is not pending again"
        );
        g.replace(addr(2), addr(9));
        assert!(g.is_confirmed(addr(9)) && !g.is_confirmed(addr(2)));
        assert!(g.release(addr(9)));
        assert_eq!(g.route(&dests), (dests.clone(), false));
    }

    #[test]
    fn pending_members_expire() {
        let g = group();
        let t0 = Instant::now();
        g.offer(addr(1), t0);
        assert!(g.expire_pending(t0 + Duration::from_secs(1)));
        assert!(!g.expire_pending(t0 + PENDING_FOR));
        assert!(!g.active());
    }

    #[test]
    fn sealed_datagrams_count_up_and_verify() {
        let g = group();
        let inner = proto::Event::McastProbe { title: "Pets" }.to_bytes();
        let a = g.seal(&inner);
        let b = g.seal(&inner);
        let (pa, pb) = (
            channel_data::parse(&a).unwrap(),
            channel_data::parse(&b).unwrap(),
        );
        assert_eq!((pa.seq, pb.seq, g.last_seq()), (1, 2, 2));
        assert!(g.verify(pa.signed, pa.tag));
        assert!(!g.verify(pa.signed, pb.tag));
        let other = ChannelGroup::new("Pets", g.addr, [8; KEY_LEN]);
        assert!(!other.verify(pa.signed, pa.tag));
    }
}
