//! Multicast channels and discovery (part 4 of the protocol): `MCAST_GROUP` after a join,
//! `MCAST_JOINED` and `MCAST_LEFT`, the split of a channel's fan-outs between unicast and
//! the group, and `DISCOVER`, answered with `SERVER_HERE`.
//!
//! Which members hear a channel on its group, and why a group with nobody listening gets
//! nothing, is in [`crate::multicast::group`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use super::{Handler, Outbox};
use crate::state::{ChannelId, Member};
use proto::Event;

/// What a server says about itself in `SERVER_HERE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    /// Its name (the cluster's server id, or the host name).
    pub name: String,
    /// The chat port to log in on.
    pub port: u16,
}

impl Handler {
    /// Fans `event` of channel `id` out to `dests` (members of the channel): by unicast to
    /// those that have not confirmed the channel's group, and once to the group if anybody
    /// listens there.
    pub(super) fn channel_fanout(
        &self,
        id: ChannelId,
        dests: Arc<[Member]>,
        event: &Event<'_>,
        out: &mut Outbox,
    ) {
        let group = if self.config.multicast {
            self.groups.get(id)
        } else {
            None
        };
        match group {
            Some(g) => {
                let (unicast, active) = g.route(&dests);
                out.channel_fanout(unicast, event, id, active.then_some(g));
            }
            None => out.fanout(dests, event, id),
        }
    }

    /// After the JOIN_ACK for channel `id`: a client with the `multicast` cap is told the
    /// channel's group, and the group gets a probe for it to hear. It stays on unicast until
    /// it confirms.
    pub(super) fn offer_group(
        &self,
        now: Instant,
        to: SocketAddr,
        id: ChannelId,
        out: &mut Outbox,
    ) {
        if !self.config.multicast || !self.state.caps_of(to).multicast {
            return;
        }
        let Some(g) = self.groups.get(id) else {
            return;
        };
        g.offer(to, now);
        out.send(
            to,
            &Event::McastGroup {
                title: &g.title,
                group: &g.addr.ip().to_string(),
                port: g.addr.port(),
                key: &g.key_b64,
            },
        );
        let probe = Event::McastProbe { title: &g.title }.to_bytes();
        out.fanouts.push(crate::outbox::Fanout {
            payload: probe.into(),
            members: Arc::from([]),
            key: id,
            group: Some(g),
        });
    }

    /// Offers the groups of every channel the user at `addr` is in (the `multicast` cap was
    /// just granted to a user already in channels).
    pub(super) fn offer_groups(&self, now: Instant, addr: SocketAddr, out: &mut Outbox) {
        let Some((_, channels)) = self.state.nick_and_channels(addr) else {
            return;
        };
        for id in channels {
            self.offer_group(now, addr, id, out);
        }
    }

    /// Puts the user at `addr` back on unicast in `channels` (it parted, logged off, lost
    /// the cap or started a new login).
    pub(super) fn leave_groups(&self, addr: SocketAddr, channels: &[ChannelId]) {
        if !self.config.multicast {
            return;
        }
        for &id in channels {
            if let Some(g) = self.groups.get(id) {
                g.release(addr);
            }
        }
    }

    /// The user at `old` is at `new` now: so are its group memberships.
    pub(super) fn move_groups(&self, old: SocketAddr, new: SocketAddr) {
        if !self.config.multicast {
            return;
        }
        if let Some((_, channels)) = self.state.nick_and_channels(new) {
            for id in channels {
                if let Some(g) = self.groups.get(id) {
                    g.replace(old, new);
                }
            }
        }
    }

    /// `MCAST_JOINED title`: the client hears the channel's group, so from now on the
    /// channel's events reach it only there. Ignored unless it is a member with the cap
    /// and the channel has a group. No answer.
    pub(super) fn mcast_joined(&self, from: SocketAddr, title: &str) {
        if !self.config.multicast {
            return;
        }
        let Some(id) = self.state.channel_id(title) else {
            return;
        };
        let Some(user) = self.state.user(from) else {
            return;
        };
        if !user.caps.multicast || !user.channels.contains(&id) {
            return;
        }
        if let Some(g) = self.groups.get(id) {
            g.confirm(from);
        }
    }

    /// `MCAST_LEFT title`: the client no longer hears the group; back to unicast. No answer.
    pub(super) fn mcast_left(&self, from: SocketAddr, title: &str) {
        if let Some(id) = self.state.channel_id(title) {
            self.leave_groups(from, &[id]);
        }
    }

    /// `DISCOVER`: `SERVER_HERE port name users`, cut to at most `request_len` bytes (the
    /// name is shortened) so the answer is never larger than the question. How often a
    /// source is answered is the worker's to limit (`server::limit`).
    pub(super) fn discover(&self, from: SocketAddr, request_len: usize, out: &mut Outbox) {
        let Some(d) = &self.discovery else {
            return;
        };
        let users = self.state.user_count() as u64;
        let fixed = Event::ServerHere {
            port: d.port,
            name: "",
            users,
        }
        .to_bytes()
        .len();
        let room = request_len.saturating_sub(fixed);
        let mut end = d.name.len().min(room);
        while !d.name.is_char_boundary(end) {
            end -= 1;
        }
        if request_len < fixed {
            return;
        }
        out.send(
            from,
            &Event::ServerHere {
                port: d.port,
                name: &d.name[..end],
                users,
            },
        );
    }
}

#[cfg(test)]
#[path = "multicast_tests.rs"]
mod tests;
