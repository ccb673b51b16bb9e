//! Channels: `JOIN_REQ`, `PART_REQ`, `LIST_CHANNELS` and `LIST_USERS`, and the end of a
//! temporary channel nobody is in any more.

use super::ctx::{Ctx, Req};
use super::refusal::Refusal;
use super::view::{self, ChannelView};
use super::{multicast, rights};
use crate::cluster::CommunityEvent;
use crate::state::{Channel, ChannelId, JoinError, Joined};
use proto::Event;

/// `JOIN_REQ`: the channel becomes the user's current one (bans, invitations, the member
/// limit and the ranks that pass them, part 5, checked first); its members are told of a
/// new one.
pub(crate) fn join(cx: &mut Ctx<'_>, rq: &Req, title: &str) {
    let (sh, from) = (cx.sh, rq.from);
    let Some(ch) = sh.state.channel_by_title(title) else {
        return cx.refuse(from, Refusal::NoChannel(title));
    };
    let id = ch.id;
    let Some(nick) = sh.state.nick_of(from) else {
        return;
    };
    let Some(admit) = rights::may_join(cx, rq, &nick, &ch) else {
        return;
    };
    let max = cx.live().max_channels_per_user;
    let joined = match sh
        .state
        .join_with(from, id, max, admit.roles, admit.past_limit)
    {
        Ok(joined) => joined,
        Err(JoinError::TooMany) => return cx.refuse(from, Refusal::TooManyChannels),
        Err(JoinError::Full) => return cx.refuse(from, Refusal::ChannelFull(&ch.title)),
        Err(JoinError::Gone) => return cx.refuse(from, Refusal::NoChannel(title)),
        Err(JoinError::NoUser) => return,
    };
    if let Joined::New(before) = joined {
        let event = Event::UserJoins {
            title: &ch.title,
            nick: &nick,
        };
        multicast::fanout(cx, id, before, &event);
    }
    view::publish_user(cx, rq);
    cx.out
        .send(from, &Event::JoinAck(ChannelView::of(sh, ch).info()));
    multicast::offer_group(cx, rq.now, from, id);
}

/// `PART_REQ`: leaves the channel named (the current one if none is), and the next
/// becomes current.
pub(crate) fn part(cx: &mut Ctx<'_>, rq: &Req, title: &str) {
    let (sh, from) = (cx.sh, rq.from);
    let Some((nick, channels)) = sh.state.nick_and_channels(from) else {
        return;
    };
    let id = if title.is_empty() {
        match channels.first() {
            Some(&id) => id,
            None => return cx.refuse(from, Refusal::NoCurrentChannel),
        }
    } else {
        match sh.state.channel_id(title) {
            Some(id) => id,
            None => return cx.refuse(from, Refusal::NoChannel(title)),
        }
    };
    let Some(parted) = sh.state.part(from, id) else {
        return; // not a member: no answer
    };
    multicast::leave_groups(cx, from, &[id]);
    let Some(view) = ChannelView::by_id(sh, id) else {
        return;
    };
    let event = Event::UserParts {
        title: &view.ch.title,
        nick: &nick,
    };
    multicast::fanout(cx, id, parted.rest, &event);
    view::publish_user(cx, rq);
    cx.out.send(from, &Event::PartAck(view.info()));
    if parted.was_current {
        current_changed(cx, rq, parted.new_current);
    }
    left_channel(cx, id);
}

/// Tells the user at `rq.from`, whose current channel it just left, of the next one.
pub(crate) fn current_changed(cx: &mut Ctx<'_>, rq: &Req, current: Option<ChannelId>) {
    if let Some(v) = current.and_then(|id| ChannelView::by_id(cx.sh, id)) {
        cx.out.send(rq.from, &Event::JoinAck(v.info()));
    }
}

/// `LIST_CHANNELS`: one CHANNEL_ITEM per channel.
pub(crate) fn list_channels(cx: &mut Ctx<'_>, rq: &Req) {
    for ch in cx.sh.state.channels() {
        let item = ChannelView::of(cx.sh, ch);
        cx.out.send(rq.from, &Event::ChannelItem(item.info()));
    }
}

/// `LIST_USERS`: one USER_ITEM per member of the current channel, here and, in a
/// cluster, on the other servers.
pub(crate) fn list_users(cx: &mut Ctx<'_>, rq: &Req) {
    let sh = cx.sh;
    let Some(id) = sh.state.current_channel(rq.from) else {
        return cx.refuse(rq.from, Refusal::NoCurrentChannel);
    };
    for user in sh.state.members_of(id) {
        view::user_item(cx, rq, &user);
    }
    if sh.config.cluster {
        for user in sh.state.remote().members(id) {
            if sh.state.address_of(&user.nick).is_none() {
                view::remote_item(cx, rq, &user);
            }
        }
    }
}

/// After channel `id` lost a member here: a temporary channel nobody is in any more
/// is destroyed (and, in a cluster, the others are told).
pub(crate) fn left_channel(cx: &mut Ctx<'_>, id: ChannelId) {
    if let Some(ch) = cx.sh.state.destroy_if_empty(id) {
        gone(cx, &ch);
    }
}

/// Tells the other servers that `ch` is gone here (or no longer registered).
pub(crate) fn gone(cx: &mut Ctx<'_>, ch: &Channel) {
    cx.publish_community(CommunityEvent::Gone {
        title: ch.title.to_string(),
    });
}
