//! How each multicast channel's events reach the client (part 4): its group and keys, the
//! [`Path`] it is on, the [`Pairing`] of events that arrive both ways while it switches,
//! the datagrams [`Held`] for a key on its way, and the [`Drops`] counters. The decisions
//! are `mcast.rs`'s.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use proto::channel_data::{mac, verify, ChannelData, ChannelMac, KEY_LEN};

/// How long an event seen on one path waits for its twin from the other.
pub(super) const PAIR_FOR: Duration = Duration::from_secs(3);
/// Events remembered per path and channel at most.
const PAIR_MAX: usize = 256;
/// How far above the last sequence taken on a channel a CHANNEL_DATA may be at once
/// ([`Channel::too_far`]): genuine gaps are lost datagrams, and a channel that hears
/// nothing valid for `LOST_AFTER` (7 s) goes back to unicast first; 65,536 is more than a
/// group sends in 7 s at 9,000 CHANNEL_DATA a second.
pub(super) const MAX_SEQ_JUMP: u64 = 1 << 16;
/// What the bound grows by for each second since the last sequence taken: more than a
/// server sends on one channel's group (9,000 CHANNEL_DATA a second measured at most).
pub(super) const SEQ_RATE: u64 = 1 << 14;
/// How long a channel's previous key is still taken after a new one was announced (for
/// sequences below the new key's first only): CHANNEL_DATA sealed just before the change
/// may arrive after its announcement.
pub(super) const OLD_KEY_FOR: Duration = Duration::from_secs(3);
/// How long a group datagram that no key of ours verifies is held, in case the key that
/// tags it is on its way (a CHANNEL_DATA under a new key can overtake its announcement).
pub(super) const HOLD_FOR: Duration = Duration::from_secs(2);
/// Datagrams held at most, all groups together.
const HOLD_MAX: usize = 64;
/// Bytes held at most, all groups together.
const HOLD_BYTES: usize = 256 * 1024;

/// How a channel's events reach us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Path {
    /// Told the group; nothing valid heard on it yet: unicast.
    Waiting,
    /// Heard the group and sent MCAST_JOINED: the group.
    Confirmed,
    /// Heard nothing on the group for a while and sent MCAST_LEFT: unicast.
    Lost,
}

/// Remembers recent events of one channel on each path (see `mcast.rs`).
#[derive(Debug, Default)]
pub(super) struct Pairing {
    unicast: VecDeque<(Box<[u8]>, Instant)>,
    group: VecDeque<(Box<[u8]>, Instant)>,
}

impl Pairing {
    /// An event arrived on the group (`from_group`) or by unicast: whether to show it.
    pub(super) fn arrive(&mut self, event: &[u8], from_group: bool, now: Instant) -> bool {
        for q in [&mut self.unicast, &mut self.group] {
            while q
                .front()
                .is_some_and(|(_, t)| now.saturating_duration_since(*t) > PAIR_FOR)
            {
                q.pop_front();
            }
        }
        let (twins, mine) = if from_group {
            (&mut self.unicast, &mut self.group)
        } else {
            (&mut self.group, &mut self.unicast)
        };
        if let Some(i) = twins.iter().position(|(e, _)| **e == *event) {
            twins.remove(i);
            return false;
        }
        if mine.len() == PAIR_MAX {
            mine.pop_front();
        }
        mine.push_back((event.into(), now));
        true
    }
}

/// A channel we were told the group of.
pub(super) struct Channel {
    pub(super) title: String,
    pub(super) group: SocketAddr,
    pub(super) key: [u8; KEY_LEN],
    pub(super) mac: ChannelMac,
    /// The first sequence number the key seals for us (MCAST_GROUP's `from`).
    pub(super) key_from: u64,
    /// The key before the last change, good below `key_from` for a moment.
    pub(super) old: Option<OldKey>,
    pub(super) last_seq: u64,
    /// When `last_seq` was last set (a datagram taken, or the key told): how far the next
    /// sequence may be ahead grows with the time since ([`Channel::too_far`]).
    pub(super) seq_at: Instant,
    pub(super) path: Path,
    pub(super) last_heard: Option<Instant>,
    pub(super) joined_sent: Option<Instant>,
    pub(super) by_group: u64,
    pub(super) by_unicast: u64,
    pub(super) pairing: Pairing,
}

/// A channel's previous key, after the server changed it (a member left).
pub(super) struct OldKey {
    pub(super) mac: ChannelMac,
    /// Sequences from this one on are the new key's.
    pub(super) below: u64,
    /// Not taken any more from this moment.
    pub(super) until: Instant,
}

/// Which of a channel's keys tags a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Key {
    Current,
    Old,
}

impl Channel {
    /// A channel just told its group, whose key seals from sequence `from`: waiting to
    /// hear it.
    pub(super) fn new(
        title: &str,
        group: SocketAddr,
        key: [u8; KEY_LEN],
        from: u64,
        now: Instant,
    ) -> Channel {
        Channel {
            title: title.to_string(),
            group,
            key,
            mac: mac(&key),
            key_from: from,
            old: None,
            last_seq: from.saturating_sub(1),
            seq_at: now,
            path: Path::Waiting,
            last_heard: None,
            joined_sent: None,
            by_group: 0,
            by_unicast: 0,
            pairing: Pairing::default(),
        }
    }

    /// The server changed the key (a member left) from sequence `from` on, at `now`: the
    /// old key stays good below it for [`OLD_KEY_FOR`], and the channel waits to hear the
    /// new one (the server sends its events by unicast too until we confirm again). A
    /// sequence at or above `from` taken under the old key was not the server's (it
    /// never seals one): forgotten, so it can't hold back the new key's.
    pub(super) fn rekey(&mut self, key: [u8; KEY_LEN], from: u64, now: Instant) {
        let old = std::mem::replace(&mut self.mac, mac(&key));
        self.old = Some(OldKey {
            mac: old,
            below: from,
            until: now + OLD_KEY_FOR,
        });
        self.key = key;
        self.key_from = from;
        self.last_seq = self.last_seq.min(from.saturating_sub(1));
        self.seq_at = now;
        self.path = Path::Waiting;
    }

    /// Whether `seq`, heard at `now`, is further above the last sequence taken than the
    /// server can have gone since: [`MAX_SEQ_JUMP`] plus [`SEQ_RATE`] a second. One
    /// datagram far ahead (2^62) is then suspect and not taken, so it can't make the
    /// genuine ones that follow look old; a channel heard again after a long time on
    /// unicast (its group went quiet for us while the server went on) is still taken.
    pub(super) fn too_far(&self, seq: u64, now: Instant) -> bool {
        let secs = now.saturating_duration_since(self.seq_at).as_secs();
        let bound = MAX_SEQ_JUMP.saturating_add(SEQ_RATE.saturating_mul(secs));
        seq.saturating_sub(self.last_seq) > bound
    }

    /// `seq` was taken at `now`.
    pub(super) fn took(&mut self, seq: u64, now: Instant) {
        self.last_seq = seq;
        self.seq_at = now;
        self.last_heard = Some(now);
    }

    /// Which key of ours tags `data` at `now`, if one does.
    pub(super) fn key_of(&self, data: &ChannelData<'_>, now: Instant) -> Option<Key> {
        if verify(&self.mac, data) {
            return Some(Key::Current);
        }
        let old = self.old.as_ref().filter(|o| now < o.until)?;
        verify(&old.mac, data).then_some(Key::Old)
    }
}

/// Group datagrams no key of ours verified, kept for [`HOLD_FOR`] in case the key that tags
/// them arrives (then they are checked again); bounded in number and bytes, oldest out
/// first.
#[derive(Debug, Default)]
pub(super) struct Held {
    queue: VecDeque<(SocketAddr, Box<[u8]>, Instant)>,
    bytes: usize,
}

impl Held {
    /// Holds `datagram`, heard on `group` at `now`.
    pub(super) fn hold(&mut self, group: SocketAddr, datagram: &[u8], now: Instant) {
        self.expire(now);
        if datagram.len() > HOLD_BYTES / 4 {
            return;
        }
        while self.queue.len() >= HOLD_MAX || self.bytes + datagram.len() > HOLD_BYTES {
            self.pop();
        }
        self.bytes += datagram.len();
        self.queue.push_back((group, datagram.into(), now));
    }

    /// The datagrams held for `group` (no longer held).
    pub(super) fn take(&mut self, group: SocketAddr, now: Instant) -> Vec<Box<[u8]>> {
        self.expire(now);
        let mut out = Vec::new();
        let mut kept = VecDeque::with_capacity(self.queue.len());
        for (g, d, t) in self.queue.drain(..) {
            if g == group {
                self.bytes -= d.len();
                out.push(d);
            } else {
                kept.push_back((g, d, t));
            }
        }
        self.queue = kept;
        out
    }

    /// Forgets everything.
    pub(super) fn clear(&mut self) {
        self.queue.clear();
        self.bytes = 0;
    }

    fn expire(&mut self, now: Instant) {
        while self
            .queue
            .front()
            .is_some_and(|(_, _, t)| now.saturating_duration_since(*t) > HOLD_FOR)
        {
            self.pop();
        }
    }

    fn pop(&mut self) {
        if let Some((_, d, _)) = self.queue.pop_front() {
            self.bytes -= d.len();
        }
    }
}

/// Group datagrams dropped, by reason (shown by `/status`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Drops {
    /// The tag did not verify under any channel key of the group.
    pub(super) bad_tag: u64,
    /// The sequence was not above the last one accepted.
    pub(super) old_sequence: u64,
    /// The sequence was further than [`Channel::too_far`] allows above the
    /// last one accepted: suspect, not taken (it would make the datagrams that follow look
    /// old).
    pub(super) too_far: u64,
    /// Not a CHANNEL_DATA, its inside did not decode, or an MCAST_GROUP that made no sense.
    pub(super) malformed: u64,
}

/// The session's multicast state.
#[derive(Default)]
pub(super) struct Mcast {
    /// The server granted the cap at the last CAPS_ACK.
    pub(super) granted: bool,
    /// By lower-cased title.
    pub(super) channels: HashMap<String, Channel>,
    /// The groups the shell was asked to listen to (and has not said it can't).
    pub(super) listening: BTreeSet<SocketAddr>,
    /// Groups that could not be joined, and why.
    pub(super) failed: HashMap<SocketAddr, String>,
    /// Datagrams waiting for a key.
    pub(super) held: Held,
    /// Counted for the whole run.
    pub(super) drops: Drops,
}
