//! Multicast channels and discovery (part 4 of the protocol): `MCAST_GROUP` after a join,
//! `MCAST_JOINED` and `MCAST_LEFT`, the split of a channel's fan-outs between unicast and
//! the group, and `DISCOVER`, answered with `SERVER_HERE`.
//!
//! Which members hear a channel on its group, and why a group with nobody listening gets
//! nothing, is in [`crate::multicast::group`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use super::ctx::{Ctx, Shared};
use crate::multicast::ChannelGroup;
use crate::outbox::Fanout;
use crate::state::{ChannelId, Member};
use proto::Event;

/// Fans `event` of channel `id` out to `dests` (members of the channel): by unicast to
/// those that have not confirmed the channel's group, and once to the group if anybody
/// listens there.
pub(crate) fn fanout(cx: &mut Ctx<'_>, id: ChannelId, dests: Arc<[Member]>, event: &Event<'_>) {
    let group = if cx.sh.config.multicast {
        cx.sh.groups.get(id)
    } else {
        None
    };
    match group {
        Some(g) => {
            let (unicast, active) = g.route(&dests);
            cx.out
                .channel_fanout(unicast, event, id, active.then_some(g));
        }
        None => cx.out.fanout(dests, event, id),
    }
}

/// After the JOIN_ACK for channel `id`: a client with the `multicast` cap is told the
/// channel's group, and the group gets a probe for it to hear. It stays on unicast until
/// it confirms.
pub(crate) fn offer_group(cx: &mut Ctx<'_>, now: Instant, to: SocketAddr, id: ChannelId) {
    let sh = cx.sh;
    if !sh.config.multicast || !sh.state.caps_of(to).multicast {
        return;
    }
    let Some(g) = sh.groups.get(id) else {
        return;
    };
    g.offer(to, now);
    g.told(|e| cx.out.send(to, e));
    probe(cx, id, g);
}

/// A probe on channel `id`'s group, for members waiting to confirm.
fn probe(cx: &mut Ctx<'_>, id: ChannelId, g: Arc<ChannelGroup>) {
    let probe = Event::McastProbe { title: &g.title }.to_bytes();
    cx.out.fanouts.push(Fanout {
        payload: probe.into(),
        members: Arc::from([]),
        key: id,
        group: Some(g),
    });
}

/// Offers the groups of every channel the user at `addr` is in (the `multicast` cap was
/// just granted to a user already in channels).
pub(crate) fn offer_groups(cx: &mut Ctx<'_>, now: Instant, addr: SocketAddr) {
    let Some((_, channels)) = cx.sh.state.nick_and_channels(addr) else {
        return;
    };
    for id in channels {
        offer_group(cx, now, addr, id);
    }
}

/// Puts the user at `addr` back on unicast in `channels`, or out (it parted, logged off,
/// lost the cap or started a new login): it no longer gets the channels' keys, and since
/// it knew them they change (`multicast::group`, new keys): at once, announced to the
/// members left, or within a second, by the prober.
pub(crate) fn leave_groups(cx: &mut Ctx<'_>, addr: SocketAddr, channels: &[ChannelId]) {
    for &id in channels {
        leave_group(cx, addr, id, false);
    }
}

/// The user at `addr` was removed from channel `id` (kicked or banned): as
/// [`leave_groups`], but the key changes at once, whatever the rate of rotations.
pub(crate) fn removed_from_group(cx: &mut Ctx<'_>, addr: SocketAddr, id: ChannelId) {
    leave_group(cx, addr, id, true);
}

fn leave_group(cx: &mut Ctx<'_>, addr: SocketAddr, id: ChannelId, at_once: bool) {
    let sh = cx.sh;
    if !sh.config.multicast {
        return;
    }
    let Some(g) = sh.groups.get(id) else {
        return;
    };
    let Some(a) = g.leave(addr, at_once) else {
        return;
    };
    tracing::debug!(channel = %g.title, generation = g.generation(), "new channel key");
    if a.members.is_empty() {
        // Nobody left to tell, nobody to confirm on a probe.
        return;
    }
    cx.out.fanouts.push(Fanout::announcement(id, a));
    probe(cx, id, g);
}

/// The user at `old` is at `new` now: so are its group memberships.
pub(crate) fn move_groups(sh: &Shared, old: SocketAddr, new: SocketAddr) {
    if !sh.config.multicast {
        return;
    }
    if let Some((_, channels)) = sh.state.nick_and_channels(new) {
        for id in channels {
            if let Some(g) = sh.groups.get(id) {
                g.replace(old, new);
            }
        }
    }
}

/// `MCAST_JOINED title`: the client hears the channel's group, so from now on the
/// channel's events reach it only there. Ignored unless it is a member with the cap
/// and the channel has a group. No answer.
pub(crate) fn joined(sh: &Shared, from: SocketAddr, title: &str) {
    if !sh.config.multicast {
        return;
    }
    let Some(id) = sh.state.channel_id(title) else {
        return;
    };
    let Some(user) = sh.state.user(from) else {
        return;
    };
    if !user.caps.multicast || !user.channels.contains(&id) {
        return;
    }
    if let Some(g) = sh.groups.get(id) {
        g.confirm(from);
    }
}

/// `MCAST_LEFT title`: the client no longer hears the group; back to unicast, still told
/// the channel's keys. No answer.
pub(crate) fn left(sh: &Shared, from: SocketAddr, title: &str) {
    if !sh.config.multicast {
        return;
    }
    if let Some(g) = sh.state.channel_id(title).and_then(|id| sh.groups.get(id)) {
        g.release(from);
    }
}

/// `DISCOVER`: `SERVER_HERE port name users`, cut to at most `request_len` bytes (the
/// name is shortened) so the answer is never larger than the question. How often a
/// source is answered is the worker's to limit (`server::limit`).
pub(crate) fn discover(cx: &mut Ctx<'_>, from: SocketAddr, request_len: usize) {
    let Some(d) = &cx.sh.discovery else {
        return;
    };
    let users = cx.sh.state.user_count() as u64;
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
    cx.out.send(
        from,
        &Event::ServerHere {
            port: d.port,
            name: &d.name[..end],
            users,
        },
    );
}

#[cfg(test)]
#[path = "multicast_tests.rs"]
mod tests;
