//! What the state machine asks of the threads around it: datagrams to send (replies to one
//! address, fan-outs to many) and [effects](Effect), work that needs I/O (a nickname lease
//! in Redis, an account write, an event for the other servers of a cluster). The threads
//! carry effects out and feed their results back to the handler as [`Done`] inputs.
//!
//! Everything here is plain data: the [`Outbox`] and its [`Fanout`]s here, effects and
//! results in `effect` (with the part-5 ones in [`community`]) and the [`Ticket`] that
//! ties a result to its request in `ticket`. It names only plain types from elsewhere
//! (a member snapshot and a route of `state`, a multicast group, a session's sealer, the
//! stores' records, the cluster's events), none of which knows the outbox, so the
//! handler, the cluster and the server can all use it without depending on each other.

pub(crate) mod community;
mod effect;
mod ticket;

use std::net::SocketAddr;
use std::ops::Range;
use std::sync::Arc;

pub use community::{AuditRecord, CommunityDone, CommunityEffect, Order};
pub use effect::{Done, Effect, LeaseAnswer};
pub use ticket::Ticket;

use crate::multicast::{Announcement, ChannelGroup};
use crate::state::Member;
use proto::auth::Sealer;
use proto::Event;

/// One encoded event for many members: a public message or a channel notice.
///
/// The senders decide how it travels to each member (alone, or in a BATCH with other
/// events waiting for that member); the handler only says what and to whom.
#[derive(Debug, Clone)]
pub struct Fanout {
    /// The event datagram, encoded once.
    pub payload: Arc<[u8]>,
    /// Who gets it by unicast: the channel's shared member snapshot, less the members
    /// that hear the channel on its group.
    pub members: Arc<[Member]>,
    /// Ordering key (the channel): the fan-outs of one key reach every member in one order.
    pub key: u64,
    /// The channel's multicast group, when it gets the event too: one more "member" that
    /// gets it once, sealed in CHANNEL_DATA with the channel's next sequence number by the
    /// sender that handles the key (so sequences leave in order).
    pub group: Option<Arc<ChannelGroup>>,
}

impl Fanout {
    /// The fan-out that tells channel `key`'s members of its new multicast key
    /// (`multicast::group`): `MCAST_GROUP` to each, by unicast (sealed for the protected
    /// ones), one datagram each (as every other answer, never inside a BATCH).
    pub fn announcement(key: u64, a: Announcement) -> Fanout {
        Fanout {
            payload: a.payload.into(),
            members: a.members.into_iter().map(|m| Member::new(m, 0)).collect(),
            key,
            group: None,
        }
    }
}

/// What a single-address reply is, for the policy on replies to strangers
/// (`server::limit`), which must not have to look into the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    /// An answer.
    Answer,
    /// An `ERROR`.
    Error,
}

#[derive(Debug, Clone)]
struct Reply {
    to: SocketAddr,
    range: Range<usize>,
    kind: ReplyKind,
    /// Sealed with this session's sealer whoever is at `to` (a path challenge); `None`:
    /// sealed if `to` is a protected user's address, at send time (`crate::sealing`).
    sealer: Option<Arc<Sealer>>,
}

/// Bytes and ERRORs among some replies to one address.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplySummary {
    /// Datagrams.
    pub count: usize,
    /// Bytes in all.
    pub bytes: usize,
    /// How many are `ERROR`s.
    pub errors: usize,
}

/// What a request makes the server send and do.
///
/// Single-address replies are packed into one reusable buffer (no allocation per reply
/// once warm); fan-outs share their payload and member snapshot.
#[derive(Debug, Default)]
pub struct Outbox {
    bytes: Vec<u8>,
    unicast: Vec<Reply>,
    /// Datagrams for many addresses.
    pub fanouts: Vec<Fanout>,
    /// Work for the threads around the handler, in the order it was asked for.
    pub effects: Vec<Effect>,
}

impl Outbox {
    /// An empty outbox.
    pub fn new() -> Self {
        Self::default()
    }

    fn push(&mut self, to: SocketAddr, event: &Event<'_>, kind: ReplyKind) {
        let start = self.bytes.len();
        event.encode(&mut self.bytes);
        self.unicast.push(Reply {
            to,
            range: start..self.bytes.len(),
            kind,
            sealer: None,
        });
    }

    /// Queues `event` for `to`, sealed for the session of `sealer` whoever is at `to` now
    /// (a path challenge to an address the session may move to).
    pub fn send_sealed(&mut self, to: SocketAddr, sealer: Arc<Sealer>, event: &Event<'_>) {
        self.push(to, event, ReplyKind::Answer);
        if let Some(last) = self.unicast.last_mut() {
            last.sealer = Some(sealer);
        }
    }

    /// Queues `event` for `to`.
    pub fn send(&mut self, to: SocketAddr, event: &Event<'_>) {
        let kind = match event {
            Event::Error { .. } => ReplyKind::Error,
            _ => ReplyKind::Answer,
        };
        self.push(to, event, kind);
    }

    /// Queues `ERROR message` for `to`.
    pub fn error(&mut self, to: SocketAddr, message: &str) {
        self.push(to, &Event::Error { message }, ReplyKind::Error);
    }

    /// Queues `event` for every member of `members` (nothing if there are none).
    pub fn fanout(&mut self, members: Arc<[Member]>, event: &Event<'_>, key: u64) {
        self.channel_fanout(members, event, key, None);
    }

    /// Queues `event` for every member of `members` and, if given, once for `group`
    /// (nothing if there is neither).
    pub fn channel_fanout(
        &mut self,
        members: Arc<[Member]>,
        event: &Event<'_>,
        key: u64,
        group: Option<Arc<ChannelGroup>>,
    ) {
        if members.is_empty() && group.is_none() {
            return;
        }
        self.fanouts.push(Fanout {
            payload: event.to_bytes().into(),
            members,
            key,
            group,
        });
    }

    /// Asks for `effect`.
    pub fn effect(&mut self, effect: Effect) {
        self.effects.push(effect);
    }

    /// The single-address replies, in order.
    pub fn unicast(&self) -> impl ExactSizeIterator<Item = (SocketAddr, &[u8])> + '_ {
        self.unicast
            .iter()
            .map(|r| (r.to, &self.bytes[r.range.clone()]))
    }

    /// The single-address replies with the sealer each was queued with, in order.
    pub fn unicast_sealed(
        &self,
    ) -> impl ExactSizeIterator<Item = (SocketAddr, &[u8], Option<&Arc<Sealer>>)> + '_ {
        self.unicast
            .iter()
            .map(|r| (r.to, &self.bytes[r.range.clone()], r.sealer.as_ref()))
    }

    /// Number of single-address replies.
    pub fn unicast_len(&self) -> usize {
        self.unicast.len()
    }

    /// The replies to `to` queued since reply number `mark` (a value of
    /// [`unicast_len`](Self::unicast_len) taken earlier).
    pub fn replies_to_since(&self, to: SocketAddr, mark: usize) -> ReplySummary {
        self.unicast[mark.min(self.unicast.len())..]
            .iter()
            .filter(|r| r.to == to)
            .fold(ReplySummary::default(), |s, r| ReplySummary {
                count: s.count + 1,
                bytes: s.bytes + r.range.len(),
                errors: s.errors + usize::from(r.kind == ReplyKind::Error),
            })
    }

    /// Withdraws the single-address replies to `to` queued since reply number `mark`;
    /// returns how many were withdrawn.
    pub fn withdraw_to_since(&mut self, to: SocketAddr, mark: usize) -> usize {
        let before = self.unicast.len();
        let mut i = mark.min(before);
        while i < self.unicast.len() {
            if self.unicast[i].to == to {
                self.unicast.remove(i);
            } else {
                i += 1;
            }
        }
        before - self.unicast.len()
    }

    /// Whether nothing is queued (datagrams or effects).
    pub fn is_empty(&self) -> bool {
        self.unicast.is_empty() && self.fanouts.is_empty() && self.effects.is_empty()
    }

    /// Empties the outbox, keeping its buffers for reuse.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.unicast.clear();
        self.fanouts.clear();
        self.effects.clear();
    }

    /// Every event as (destination, bytes), fan-outs expanded one event per member (as a
    /// classic client gets them; batching is the senders' business): for tests.
    pub fn datagrams(&self) -> Vec<(SocketAddr, Vec<u8>)> {
        let mut out: Vec<_> = self.unicast().map(|(a, b)| (a, b.to_vec())).collect();
        for f in &self.fanouts {
            out.extend(f.members.iter().map(|m| (m.addr, f.payload.to_vec())));
        }
        out
    }

    /// Every event for a multicast group as (group address, the event datagram before it
    /// is sealed in CHANNEL_DATA): for tests.
    #[cfg(test)]
    pub(crate) fn group_events(&self) -> Vec<(SocketAddr, Vec<u8>)> {
        self.fanouts
            .iter()
            .filter_map(|f| f.group.as_ref().map(|g| (g.addr, f.payload.to_vec())))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn replies_are_summarised_and_withdrawn_per_address() {
        let mut out = Outbox::new();
        out.send(addr(1), &Event::LoginAck { nick: "a" });
        let mark = out.unicast_len();
        out.error(addr(2), "please log in");
        out.send(addr(1), &Event::UserOnline { nick: "b" });
        out.send(
            addr(2),
            &Event::Error {
                message: "invalid text",
            },
        );
        let s = out.replies_to_since(addr(2), mark);
        assert_eq!((s.count, s.errors), (2, 2));
        assert_eq!(s.bytes, 2 + 13 + 2 + 12);
        assert_eq!(out.withdraw_to_since(addr(2), mark), 2);
        let left: Vec<u16> = out.unicast().map(|(a, _)| a.port()).collect();
        assert_eq!(left, [1, 1]);
    }
}
