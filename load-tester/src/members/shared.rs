//! What the drivers (rounds of requests, publishers, blasters) and the receiver threads
//! share about the members: their sockets and servers, a status word each, the counters,
//! and the channel groups heard so far.

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;

use proto::session::ClientSession;

use crate::hist::Hists;
use crate::pace::Parked;
use crate::report::GroupCounts;

/// Status bit: LOGIN_ACK received.
pub(crate) const LOGGED_IN: u8 = 1;
/// Status bit: JOIN_ACK received for the channel of the current step.
pub(crate) const JOINED: u8 = 2;
/// Status bit: CAPS_ACK received (the member asked for batches or multicast; what was
/// granted shows in the deliveries and the multicast figures).
pub(crate) const CAPS: u8 = 4;
/// Status bit: heard the current step's channel on its group and sent MCAST_JOINED.
pub(crate) const CONFIRMED: u8 = 8;
/// Status bit: told the current step's channel's group (MCAST_GROUP): its channel has one.
pub(crate) const TOLD: u8 = 16;
/// Status bit: the member's address is proved (PROVED, part 3; a password session is
/// proved by its login; a server without proofs answers `unimplemented`), so the server
/// sends it everything, not the small budget of an address anyone could have forged.
pub(crate) const PROVED: u8 = 32;

/// Counters the receivers update and the drivers read.
#[derive(Default)]
pub(crate) struct Counters {
    /// PUBLIC_MSGs from the server.
    pub(crate) public: AtomicU64,
    /// Datagrams from the server that carried PUBLIC_MSGs (one each, or a BATCH of them).
    pub(crate) public_datagrams: AtomicU64,
    /// PUBLIC_MSGs from the raw blaster.
    pub(crate) raw: AtomicU64,
    /// USER_JOINS and USER_PARTS.
    pub(crate) membership: AtomicU64,
    /// When the last membership notice arrived (`now_ns`).
    pub(crate) last_membership_ns: AtomicU64,
    /// When the last PUBLIC_MSG (server or raw) arrived (`now_ns`).
    pub(crate) last_public_ns: AtomicU64,
    /// ERRORs of any kind.
    pub(crate) errors: AtomicU64,
    /// `ERROR please log in`: the member had been logged off (idle timeout?).
    pub(crate) expired: AtomicU64,
    /// Datagrams that did not decode or carried an unexpected text.
    pub(crate) garbage: AtomicU64,
    /// What the multicast members heard on their groups, read (and started afresh) around a
    /// publishing phase.
    pub(crate) group: GroupCounts<AtomicU64>,
}

impl GroupCounts<AtomicU64> {
    /// The counts since the last call; counting starts afresh.
    pub(crate) fn take(&self) -> GroupCounts<u64> {
        let take = |a: &AtomicU64| a.swap(0, Ordering::Relaxed);
        GroupCounts {
            group_datagrams: take(&self.group_datagrams),
            bad_tag: take(&self.bad_tag),
            old_sequence: take(&self.old_sequence),
            unicast_after_confirm: take(&self.unicast_after_confirm),
            group_errors: take(&self.group_errors),
        }
    }
}

/// A channel's group as MCAST_GROUP told it: for the raw multicast blaster.
#[derive(Debug, Clone)]
pub(crate) struct GroupInfo {
    /// Group address and port.
    pub(crate) addr: SocketAddr,
    /// The channel key.
    pub(crate) key: Vec<u8>,
}

/// The groups MCAST_GROUP named so far, by lower-cased channel title.
pub(crate) type Groups = Mutex<HashMap<String, GroupInfo>>;

/// Everything the drivers and receivers share.
pub(crate) struct Shared {
    /// One socket per member, non-blocking.
    pub(crate) sockets: Vec<UdpSocket>,
    /// Each member's global index (for nicknames and addresses).
    pub(crate) global: Vec<usize>,
    /// The server each member talks to, for everything it sends.
    pub(crate) server: Vec<SocketAddr>,
    /// Status bits per member.
    pub(crate) status: Vec<AtomicU8>,
    /// Messages in flight per member (only publishers have any), for closed-loop publishing.
    pub(crate) in_flight: Vec<AtomicU32>,
    /// The thread to wake when a publisher sees its own message come back.
    pub(crate) publisher_thread: Parked,
    /// Counts.
    pub(crate) counters: Counters,
    /// Tells the receivers to stop.
    pub(crate) stop: AtomicBool,
    /// The batch size the members that ask for batches name.
    pub(crate) batch_size: Option<u16>,
    /// Whether each member asks for batches (`--batch`; every other one with `--mixed`).
    pub(crate) batch: Vec<bool>,
    /// Whether some members ask for batches and some do not.
    pub(crate) mixed: bool,
    /// Bumped to make each receiver hand in its latency histograms and start new ones.
    pub(crate) epoch: AtomicU64,
    /// Histograms handed in, with the epoch they cover.
    pub(crate) handed_in: Mutex<Vec<(u64, Hists)>>,
    /// Whether each member asks for multicast.
    pub(crate) multicast: Vec<bool>,
    /// Channel groups as MCAST_GROUP named them (for the raw multicast blaster).
    pub(crate) groups: Groups,
    /// The raw multicast blaster's thread, woken when raw deliveries are counted (it
    /// runs in closed loop on them).
    pub(crate) raw_thread: Parked,
    /// The protected session of each member that has one (`--protected`): what it sends
    /// is sealed, what it receives opened.
    pub(crate) sessions: Vec<Option<Mutex<ClientSession>>>,
}

impl Shared {
    /// Sends `datagram` from member `i` to its server, sealed if it is protected.
    pub(crate) fn send(&self, i: usize, datagram: &[u8]) -> io::Result<usize> {
        match self.sessions[i].as_ref() {
            Some(s) => {
                let sealed = match s.lock() {
                    Ok(mut s) => s.seal(datagram),
                    Err(_) => return Err(io::Error::other("poisoned session")),
                };
                self.sockets[i].send_to(&sealed, self.server[i])
            }
            None => self.sockets[i].send_to(datagram, self.server[i]),
        }
    }

    /// Whether member `i`'s status has `bit`.
    pub(crate) fn has(&self, i: usize, bit: u8) -> bool {
        self.status[i].load(Ordering::Relaxed) & bit != 0
    }

    /// The caps member `i` asks for (part 4: `batch=BYTES` with `--batch`, `multicast` with
    /// `--multicast`), space-separated; empty if none. One CAPS_REQ names them all, since
    /// each one replaces the caps granted before.
    pub(crate) fn caps(&self, i: usize) -> String {
        let mut words = Vec::new();
        if let (Some(size), true) = (self.batch_size, self.batch[i]) {
            words.push(format!("batch={size}"));
        }
        if self.multicast[i] {
            words.push("multicast".to_string());
        }
        words.join(" ")
    }
}
