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
//!
//! # New keys
//! Every member told the key (sent `MCAST_GROUP`) can tag CHANNEL_DATA as the server does.
//! So when one of them stops being a member that hears the group (it parts, is kicked or
//! banned, logs off or times out, or drops the `multicast` cap), the key is *due* for a
//! change, and the next rotation ([`ChannelGroup::leave`], [`ChannelGroup::tick`]) makes a
//! new random key that seals every sequence from the next one on, and gives an
//! [`Announcement`]: `MCAST_GROUP` with the new key and that first sequence, for every member
//! still told. The old key then tags nothing new; a client takes it only below that
//! sequence, for a few seconds (`PROTOCOL.md`, part 4).
//!
//! Nobody honest loses an event on the way: the rotation puts every member told back to
//! pending, so from then on each fan-out reaches it by unicast too, until it confirms under
//! the new key (the client shows each event once). What was routed to the group alone
//! before is sealed under the old key (below the first sequence) or under the new one (a
//! client that hears it before `MCAST_GROUP` holds it for a moment, then checks it).
//!
//! Rotations are bounded: at most one per channel per [`REKEY_EVERY`] for members that
//! leave of their own accord. The first departure after a quiet second re-keys at once,
//! inside the handler that saw it; departures within the second after it are batched into
//! one rotation when the second is over, by the prober thread (which holds the clock: the
//! handler reads none). A join/part flood thus costs at most one `MCAST_GROUP` a second
//! per member told, per channel, and a member that parts may go on tagging for at most
//! that second. A member *removed* (kicked or banned) re-keys at once, always: that is
//! the departure the key must not outlive, and only a channel operator causes it (at the
//! rate its requests are limited to).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use hmac::Mac;
use parking_lot::{Mutex, RwLock};
use rand::RngCore;

use crate::state::{ChannelId, Member};
use proto::channel_data;
use proto::channel_data::{tag_with, ChannelMac, KEY_LEN};
use proto::Event;

/// How long a member stays pending after `MCAST_GROUP` without confirming: meanwhile its
/// group is kept active (so it has something to hear) and probed often. A client behind a
/// router that drops multicast never confirms; after this its group may fall quiet.
pub(crate) const PENDING_FOR: Duration = Duration::from_secs(15);
/// A channel's key changes at most once in this long (see the module docs: new keys).
pub const REKEY_EVERY: Duration = Duration::from_secs(1);

/// The key that tags a channel's CHANNEL_DATA, and the sequence it seals.
struct Keying {
    /// The key, base64, as MCAST_GROUP carries it.
    key_b64: Arc<str>,
    /// HMAC-SHA256 keyed once with the channel key; cloned for each tag (cheaper than
    /// keying again).
    mac: ChannelMac,
    /// The last sequence number used (0: none yet).
    seq: u64,
    /// Keys this group has had, this one included (1 at start).
    generation: u64,
}

impl Keying {
    fn new(key: [u8; KEY_LEN]) -> Self {
        Keying {
            key_b64: base64::engine::general_purpose::STANDARD.encode(key).into(),
            mac: ChannelMac::new_from_slice(&key).expect("HMAC takes a key of any length"),
            seq: 0,
            generation: 1,
        }
    }
}

/// One channel's group: address, key, sequence and listeners.
pub struct ChannelGroup {
    /// The channel's title, for MCAST_GROUP and MCAST_PROBE.
    pub title: Box<str>,
    /// Group address and port.
    pub addr: SocketAddr,
    /// Key and sequence under one lock, so that a new key takes over at a sequence number
    /// every CHANNEL_DATA agrees with. A `parking_lot` mutex: taken once per CHANNEL_DATA
    /// by the one sender sealing the channel, and by a rotation, for a few instructions.
    keying: Mutex<Keying>,
    /// Listeners; a `parking_lot` mutex because every critical section is a few set
    /// operations (or one filtered copy of a member list after a change), never I/O.
    /// Taken before `keying` when both are (a rotation), never the other way round.
    members: Mutex<Listeners>,
}

impl std::fmt::Debug for ChannelGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelGroup")
            .field("title", &self.title)
            .field("addr", &self.addr)
            .field("seq", &self.last_seq())
            .finish_non_exhaustive()
    }
}

/// A member snapshot and its unicast part.
type Routed = (Arc<[Member]>, Arc<[Member]>);

#[derive(Debug, Default)]
struct Listeners {
    confirmed: HashSet<SocketAddr>,
    /// When each pending member was sent MCAST_GROUP; `None`: put back to pending by a
    /// rotation in the handler (which reads no clock), stamped at the prober's next look.
    pending: HashMap<SocketAddr, Option<Instant>>,
    /// Every member that was sent the key and still is a member with the cap: whoever a
    /// new key is announced to, and whose departure makes the key due for a change.
    told: HashSet<SocketAddr>,
    /// The last member snapshot routed and its unicast part (the members not confirmed),
    /// so a public message to a big channel costs one reference count, not a filtered copy.
    cache: Option<Routed>,
    rekey: Rekey,
}

/// Where a group is in its rotations (module docs: new keys).
#[derive(Debug, Default)]
struct Rekey {
    /// A member told the key left since the last rotation.
    due: bool,
    /// A rotation happened less than [`REKEY_EVERY`] ago, or the prober has not seen it.
    recent: bool,
    /// When the prober first saw that recent rotation.
    since: Option<Instant>,
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

/// A new key to tell: the `MCAST_GROUP` datagram, and the members to send it to (by
/// unicast, each sealed for it if it is protected).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    /// `MCAST_GROUP title group port key from`.
    pub payload: Vec<u8>,
    /// Every member told the old key that still is one.
    pub members: Vec<SocketAddr>,
}

impl ChannelGroup {
    /// A group for `title` at `addr` with `key`.
    pub fn new(title: &str, addr: SocketAddr, key: [u8; KEY_LEN]) -> Self {
        ChannelGroup {
            title: title.into(),
            addr,
            keying: Mutex::new(Keying::new(key)),
            members: Mutex::new(Listeners::default()),
        }
    }

    /// A group with a fresh random key.
    pub fn with_random_key(title: &str, addr: SocketAddr) -> Self {
        Self::new(title, addr, random_key())
    }

    /// The CHANNEL_DATA datagram carrying `inner` (one event datagram or one BATCH), with
    /// the next sequence number, under the key of the moment. Call it from the one thread
    /// that sends the channel's group traffic (module docs: order).
    pub fn seal(&self, inner: &[u8]) -> Vec<u8> {
        let mut k = self.keying.lock();
        k.seq += 1;
        channel_data::encode(k.seq, inner, |signed| tag_with(&k.mac, signed))
    }

    /// The last sequence number used.
    pub fn last_seq(&self) -> u64 {
        self.keying.lock().seq
    }

    /// How many keys the group has had (1 until the first rotation).
    pub fn generation(&self) -> u64 {
        self.keying.lock().generation
    }

    /// Hands `f` the `MCAST_GROUP` that tells a member the group: the key of the moment,
    /// which seals every sequence from the next one on.
    pub fn told<R>(&self, f: impl FnOnce(&Event<'_>) -> R) -> R {
        let (key, from) = {
            let k = self.keying.lock();
            (k.key_b64.clone(), k.seq + 1)
        };
        self.with_event(&key, from, f)
    }

    fn with_event<R>(&self, key: &str, from: u64, f: impl FnOnce(&Event<'_>) -> R) -> R {
        f(&Event::McastGroup {
            title: &self.title,
            group: &self.addr.ip().to_string(),
            port: self.addr.port(),
            key,
            from,
        })
    }

    /// Whether `tag` is right for `signed` under this group's key (for tests).
    #[cfg(test)]
    fn verify(&self, signed: &[u8], tag: &[u8]) -> bool {
        let mut mac = self.keying.lock().mac.clone();
        mac.update(signed);
        mac.verify_truncated_left(tag).is_ok()
    }

    /// `addr` was sent MCAST_GROUP at `now`: pending unless already confirmed. Returns
    /// whether it is pending now.
    pub fn offer(&self, addr: SocketAddr, now: Instant) -> bool {
        let mut m = self.members.lock();
        m.told.insert(addr);
        if m.confirmed.contains(&addr) {
            return false;
        }
        m.pending.insert(addr, Some(now));
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

    /// `addr` no longer hears the group (MCAST_LEFT): back to unicast, still a member that
    /// knows the key. Returns whether it was confirmed.
    pub fn release(&self, addr: SocketAddr) -> bool {
        let mut m = self.members.lock();
        m.pending.remove(&addr);
        let was = m.confirmed.remove(&addr);
        if was {
            m.cache = None;
        }
        was
    }

    /// `addr` left the channel, or is no longer to be told its keys (it dropped the cap, or
    /// logged in anew): back to unicast or out. If it knew the key, the key is due for a
    /// change, made at once if `at_once` (it was removed: kicked or banned) or the last one
    /// was at least [`REKEY_EVERY`] ago: the announcement to send then is returned (module
    /// docs: new keys).
    pub fn leave(&self, addr: SocketAddr, at_once: bool) -> Option<Announcement> {
        let mut m = self.members.lock();
        m.pending.remove(&addr);
        if m.confirmed.remove(&addr) {
            m.cache = None;
        }
        if !m.told.remove(&addr) {
            return None;
        }
        m.rekey.due = true;
        if m.rekey.recent && !at_once {
            return None;
        }
        Some(self.rotate(&mut m, None))
    }

    /// The prober's look at the group at `now`: a rotation batched since the last one is
    /// made once [`REKEY_EVERY`] has passed; returns its announcement.
    pub fn tick(&self, now: Instant) -> Option<Announcement> {
        let mut m = self.members.lock();
        if !m.rekey.recent {
            return None;
        }
        let since = *m.rekey.since.get_or_insert(now);
        if now.saturating_duration_since(since) < REKEY_EVERY {
            return None;
        }
        if !m.rekey.due {
            m.rekey.recent = false;
            m.rekey.since = None;
            return None;
        }
        Some(self.rotate(&mut m, Some(now)))
    }

    /// Whether a departure since the last rotation waits for the next one.
    pub fn rekey_due(&self) -> bool {
        self.members.lock().rekey.due
    }

    /// A new key from the next sequence on, every member told put back to pending (stamped
    /// `now`, or by the prober), and the announcement of it.
    fn rotate(&self, m: &mut Listeners, now: Option<Instant>) -> Announcement {
        m.rekey = Rekey {
            due: false,
            recent: true,
            since: now,
        };
        let members: Vec<SocketAddr> = m.told.iter().copied().collect();
        for &addr in &members {
            m.pending.insert(addr, now);
        }
        if !m.confirmed.is_empty() {
            m.confirmed.clear();
            m.cache = None;
        }
        let (key, from) = {
            let mut k = self.keying.lock();
            *k = Keying {
                generation: k.generation + 1,
                seq: k.seq,
                ..Keying::new(random_key())
            };
            (k.key_b64.clone(), k.seq + 1)
        };
        Announcement {
            payload: self.with_event(&key, from, |e| e.to_bytes()),
            members,
        }
    }

    /// The member at `old` is at `new` now (a protected session that moved).
    pub fn replace(&self, old: SocketAddr, new: SocketAddr) {
        let mut m = self.members.lock();
        if let Some(t) = m.pending.remove(&old) {
            m.pending.insert(new, t);
        }
        if m.told.remove(&old) {
            m.told.insert(new);
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

    /// Forgets members pending since before `now - PENDING_FOR` (stamping those a rotation
    /// put back to pending with `now`); returns whether some pending members are left (they
    /// get probed often).
    pub fn expire_pending(&self, now: Instant) -> bool {
        let mut m = self.members.lock();
        m.pending.retain(|_, since| {
            let t = *since.get_or_insert(now);
            now.saturating_duration_since(t) < PENDING_FOR
        });
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

/// 32 random bytes from the operating system.
fn random_key() -> [u8; KEY_LEN] {
    let mut key = [0u8; KEY_LEN];
    rand::rngs::OsRng.fill_bytes(&mut key);
    key
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

    /// The key and first sequence an announcement names.
    fn announced(a: &Announcement) -> (String, u64) {
        match proto::Event::decode(&a.payload) {
            Ok(proto::Event::McastGroup { key, from, .. }) => (key.to_string(), from),
            other => panic!("not MCAST_GROUP: {other:?}"),
        }
    }

    #[test]
    fn a_member_told_the_key_leaving_changes_it_from_the_next_sequence() {
        let g = group();
        let t0 = Instant::now();
        let inner = proto::Event::McastProbe { title: "Pets" }.to_bytes();
        g.offer(addr(1), t0);
        g.offer(addr(2), t0);
        g.confirm(addr(1));
        let before = g.seal(&inner);
        // Somebody never told the key (a classic member) leaving changes nothing.
        assert_eq!(g.leave(addr(9), false), None);
        let a = g.leave(addr(2), false).expect("rotated at once");
        assert_eq!(a.members, vec![addr(1)], "told to whoever is left");
        let (key, from) = announced(&a);
        assert_eq!((from, g.generation()), (2, 2));
        let after = g.seal(&inner);
        let (pb, pa) = (
            channel_data::parse(&before).unwrap(),
            channel_data::parse(&after).unwrap(),
        );
        assert_eq!(pa.seq, from);
        let key = base64::engine::general_purpose::STANDARD
            .decode(key)
            .unwrap();
        let new = channel_data::mac(&key);
        assert!(channel_data::verify(&new, &pa) && !channel_data::verify(&new, &pb));
        assert!(!g.verify(pb.signed, pb.tag), "the old key tags nothing now");
        // The members left go back to pending (unicast too) until they confirm again.
        assert_eq!(
            g.counts(),
            ListenerCounts {
                confirmed: 0,
                pending: 1
            }
        );
        assert!(g.expire_pending(t0), "stamped by the prober's look");
        assert!(
            g.told(|e| e.to_bytes()).ends_with(b" 3"),
            "MCAST_GROUP names the next"
        );
    }

    #[test]
    fn departures_within_a_second_make_one_rotation_when_it_is_over() {
        let g = group();
        let t0 = Instant::now();
        for p in 1..=50 {
            g.offer(addr(p), t0);
        }
        assert!(g.leave(addr(1), false).is_some());
        for p in 2..=40 {
            assert_eq!(g.leave(addr(p), false), None, "batched");
        }
        assert!(g.rekey_due());
        // A member removed (kicked, banned) re-keys at once, batched or not.
        let a = g.leave(addr(45), true).expect("a removal is never batched");
        assert_eq!(
            (a.members.len(), g.generation(), g.rekey_due()),
            (9, 3, false)
        );
        assert!(
            g.leave(addr(2), false).is_none(),
            "told no more: nothing due"
        );
        assert!(g.leave(addr(44), false).is_none(), "batched again");
        // The prober stamps the rotation it did not see happen, then waits it out.
        assert_eq!(g.tick(t0), None);
        assert_eq!(g.tick(t0 + REKEY_EVERY / 2), None);
        let a = g.tick(t0 + REKEY_EVERY).expect("the batched rotation");
        assert_eq!(a.members.len(), 8);
        assert_eq!((g.generation(), g.rekey_due()), (4, false));
        // Within the next second: batched again; a quiet second after: at once.
        assert_eq!(g.leave(addr(41), false), None);
        assert!(g.tick(t0 + REKEY_EVERY * 2).is_some());
        assert_eq!(g.tick(t0 + REKEY_EVERY * 3), None, "nothing due");
        assert!(
            g.leave(addr(42), false).is_some(),
            "a quiet second: at once"
        );
        assert_eq!(g.generation(), 6);
        // Moved members keep being told.
        g.replace(addr(43), addr(99));
        assert_eq!(g.tick(t0 + REKEY_EVERY * 5), None);
        assert_eq!(g.tick(t0 + REKEY_EVERY * 6), None, "nothing was due");
        assert_eq!(g.leave(addr(99), false).map(|a| a.members.len()), Some(5));
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
