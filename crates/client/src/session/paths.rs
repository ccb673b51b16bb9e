//! How each multicast channel's events reach the client (part 4): its group and key, the
//! [`Path`] it is on, the [`Pairing`] of events that arrive both ways while it switches,
//! and the [`Drops`] counters. The decisions are `mcast.rs`'s.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use proto::channel_data::{mac, ChannelMac, KEY_LEN};

/// How long an event seen on one path waits for its twin from the other.
pub(super) const PAIR_FOR: Duration = Duration::from_secs(3);
/// Events remembered per path and channel at most.
const PAIR_MAX: usize = 256;

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
    pub(super) last_seq: u64,
    pub(super) path: Path,
    pub(super) last_heard: Option<Instant>,
    pub(super) joined_sent: Option<Instant>,
    pub(super) by_group: u64,
    pub(super) by_unicast: u64,
    pub(super) pairing: Pairing,
}

impl Channel {
    /// A channel just told its group: waiting to hear it.
    pub(super) fn new(title: &str, group: SocketAddr, key: [u8; KEY_LEN]) -> Channel {
        Channel {
            title: title.to_string(),
            group,
            key,
            mac: mac(&key),
            last_seq: 0,
            path: Path::Waiting,
            last_heard: None,
            joined_sent: None,
            by_group: 0,
            by_unicast: 0,
            pairing: Pairing::default(),
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
    /// Counted for the whole run.
    pub(super) drops: Drops,
}
