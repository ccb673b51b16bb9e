//! How users and channels are shown: the channel as JOIN_ACK, PART_ACK and CHANNEL_ITEM
//! show it (counting the members on other servers), a user as USER_ITEM, the record of a
//! user published to the cluster, and CHAN_NOTICE to a channel's part-5 members.

use std::net::SocketAddr;
use std::sync::Arc;

use super::ctx::{unix_ms, Actor, Ctx, Req, Shared};
use crate::cluster::{ClusterEvent, UserInfo};
use crate::state::{Channel, ChannelId, Member, RemoteUser, User};
use proto::{ChannelInfo, Event};

/// A channel as JOIN_ACK, PART_ACK and CHANNEL_ITEM show it, owned so that it outlives
/// the look-up in the channel table.
pub(crate) struct ChannelView {
    pub(crate) ch: Arc<Channel>,
    description: Arc<str>,
    count: u32,
}

impl ChannelView {
    /// The view of `ch`.
    pub(crate) fn of(sh: &Shared, ch: Arc<Channel>) -> ChannelView {
        let count = (ch.len() + sh.state.remote().count(ch.id)) as u32;
        ChannelView {
            description: ch.description(),
            count,
            ch,
        }
    }

    /// The view of channel `id`; `None` if it was destroyed.
    pub(crate) fn by_id(sh: &Shared, id: ChannelId) -> Option<ChannelView> {
        sh.state.channel(id).map(|ch| ChannelView::of(sh, ch))
    }

    pub(crate) fn info(&self) -> ChannelInfo<'_> {
        ChannelInfo {
            title: &self.ch.title,
            count: self.count,
            description: &self.description,
        }
    }
}

/// The titles of `ids` (those that still exist).
pub(crate) fn titles(sh: &Shared, ids: &[ChannelId]) -> Vec<String> {
    ids.iter()
        .filter_map(|&id| sh.state.channel(id).map(|c| c.title.to_string()))
        .collect()
}

/// Queues USER_ITEM for the local `user` to `to`; `rq.now` counts its seconds online.
pub(crate) fn user_item(cx: &mut Ctx<'_>, rq: &Req, user: &User) {
    let titles = titles(cx.sh, &user.channels).join(" ");
    cx.out.send(
        rq.from,
        &Event::UserItem {
            nick: &user.nick,
            seconds: rq.now.saturating_duration_since(user.login).as_secs(),
            channels: &titles,
        },
    );
}

/// Queues USER_ITEM for the remote `user` to `rq.from`; the wall clock counts its seconds.
pub(crate) fn remote_item(cx: &mut Ctx<'_>, rq: &Req, user: &RemoteUser) {
    let titles = titles(cx.sh, &user.channels).join(" ");
    cx.out.send(
        rq.from,
        &Event::UserItem {
            nick: &user.nick,
            seconds: user.seconds_online(unix_ms(rq.wall)),
            channels: &titles,
        },
    );
}

/// Publishes the whole record of the user at `rq.from` (after a login, join or part).
pub(crate) fn publish_user(cx: &mut Ctx<'_>, rq: &Req) {
    if !cx.sh.config.cluster {
        return;
    }
    if let Some(user) = cx.sh.state.user(rq.from) {
        let online = rq.now.saturating_duration_since(user.login).as_millis() as u64;
        let info = UserInfo {
            nick: user.nick.to_string(),
            login_ms: unix_ms(rq.wall).saturating_sub(online),
            channels: titles(cx.sh, &user.channels),
        };
        cx.publish(ClusterEvent::User(info));
    }
}

/// Of `members`, the part-5 clients (`true`) or the classic ones (`false`).
pub(crate) fn members_by_kind(sh: &Shared, members: &[Member], part5: bool) -> Arc<[Member]> {
    members
        .iter()
        .copied()
        .filter(|m| sh.state.is_community(m.addr) == part5)
        .collect()
}

/// Tells the part-5 members of `ch` (and `also`, if it is not one of them) that `actor`
/// did `action` with `args`.
fn notice(
    cx: &mut Ctx<'_>,
    ch: &Channel,
    [actor, action, args]: [&str; 3],
    also: Option<SocketAddr>,
) {
    let members = ch.snapshot();
    let event = Event::ChanNotice {
        title: &ch.title,
        actor,
        action,
        args,
    };
    cx.out
        .fanout(members_by_kind(cx.sh, &members, true), &event, ch.id);
    if let Some(a) = also.filter(|a| !members.iter().any(|m| m.addr == *a)) {
        cx.out.send(a, &event);
    }
}

/// Tells the part-5 members of `ch`, and `a` if it is not one, that `a` did `action`
/// with `args`.
pub(crate) fn notice_of(cx: &mut Ctx<'_>, a: &Actor<'_>, ch: &Channel, action: &str, args: &str) {
    notice(cx, ch, [a.nick, action, args], Some(a.rq.from));
}

/// Tells the part-5 members of `ch` that `actor`, on another server, did `action` with
/// `args`.
pub(crate) fn remote_notice(cx: &mut Ctx<'_>, ch: &Channel, actor: &str, action: &str, args: &str) {
    notice(cx, ch, [actor, action, args], None);
}
