//! Moderation by channel operators (part 5): `CHAN_TOPIC`, `CHAN_KICK`, `CHAN_BAN`,
//! `CHAN_UNBAN` and `CHAN_INVITE`, and the removal of a member, which the worker owning it
//! carries out. `CHAN_MODE` is in [`super::modes`].
//!
//! Every request is checked against the actor's rights on this server
//! ([`rights::may_moderate`]), and a kick or a ban by name against the target's rank
//! ([`rights::outranks`]: nobody acts on someone of its own rank or above); one without
//! them is refused and changes nothing. What
//! changes is stored for registered and configured channels, told to the other servers
//! of a cluster, shown to part-5 members as `CHAN_NOTICE`, and written to the audit log.

use super::created::{stored, valid_description};
use super::ctx::{unix_ms, Actor, Ctx, Req};
use super::limits::MAX_BAN_SECONDS;
use super::refusal::Refusal;
use super::view::{self, ChannelView};
use super::{channels, multicast, rights};
use crate::cluster::CommunityEvent;
use crate::outbox::community::Order;
use crate::outbox::CommunityEffect;
use crate::state::community::{Ban, Mask};
use crate::state::{nick_key, Channel, ChannelId, Kind};
use proto::{valid_nick, Event};

/// How long a ban lasts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BanTime {
    /// As typed: seconds, `0` until lifted.
    pub(crate) secs: u64,
    /// When it ends, in milliseconds since the Unix epoch; `0` never.
    pub(crate) until_ms: u64,
}

/// The length of a ban `a` typed, or `None` after refusing it; channel bans and address
/// bans take the same form.
pub(crate) fn ban_time(cx: &mut Ctx<'_>, a: &Actor<'_>, seconds: &str) -> Option<BanTime> {
    let Some(secs) = seconds.parse().ok().filter(|s| *s <= MAX_BAN_SECONDS) else {
        cx.refuse(a.rq.from, Refusal::InvalidBanTime);
        return None;
    };
    let until_ms = match secs {
        0 => 0,
        _ => unix_ms(a.rq.wall) + secs * 1000,
    };
    Some(BanTime { secs, until_ms })
}

/// `CHAN_TOPIC title text`: members may, unless the topic is locked (then operators).
pub(crate) fn topic(cx: &mut Ctx<'_>, a: &Actor<'_>, title: &str, text: &str) {
    let (sh, from) = (cx.sh, a.rq.from);
    let Some(ch) = sh.state.channel_by_title(title) else {
        return cx.refuse(from, Refusal::NoChannel(title));
    };
    if ch.with_meta(|m| m.topic_locked) {
        if !rights::may_moderate(sh, from, &ch) {
            return cx.refuse(from, Refusal::NotOperatorOf(&ch.title));
        }
    } else if !ch.contains(from) && !rights::may_moderate(sh, from, &ch) {
        return cx.refuse(from, Refusal::NotIn(&ch.title));
    }
    if !valid_description(text) {
        return cx.refuse(from, Refusal::InvalidTopic);
    }
    ch.with_meta(|m| m.description = text.into());
    changed(cx, a, &ch, "topic", text);
}

/// After `a` changed the topic or modes of `ch`: store, tell the cluster and the
/// members, audit.
pub(crate) fn changed(cx: &mut Ctx<'_>, a: &Actor<'_>, ch: &Channel, action: &str, args: &str) {
    if let Some(record) = stored(ch, unix_ms(a.rq.wall)) {
        cx.community(CommunityEffect::SaveChannel(record));
    }
    view::notice_of(cx, a, ch, action, args);
    let event = ch.with_meta(|m| CommunityEvent::Changed {
        title: ch.title.to_string(),
        description: m.description.to_string(),
        invite_only: m.invite_only,
        moderated: m.moderated,
        topic_locked: m.topic_locked,
        limit: m.limit,
        actor: a.nick.to_owned(),
        notice: format!("{action} {args}").trim_end().to_owned(),
    });
    cx.publish_community(event);
    cx.log(a, action, &ch.title, args);
}

/// `CHAN_KICK title nick reason`.
pub(crate) fn kick(cx: &mut Ctx<'_>, a: &Actor<'_>, title: &str, target: &str, reason: &str) {
    let from = a.rq.from;
    let Some(ch) = rights::moderated_channel(cx, from, title) else {
        return;
    };
    if target.is_empty() {
        return cx.refuse(from, Refusal::NoNickGiven);
    }
    let target_rank = rights::rank_of_nick(cx.sh, &ch, target);
    if !rights::outranks(cx, from, &ch, target, target_rank) {
        return;
    }
    let reason = if reason.is_empty() {
        "no reason given"
    } else {
        reason
    };
    if !remove_member(cx, a, &ch, target, reason) {
        return cx.refuse(from, Refusal::NotMember(target, &ch.title));
    }
    let args = format!("{target} {reason}");
    if !ch.contains(from) || cx.sh.state.address_of(target).is_none() {
        // Members hear of it from the removal; the actor needs its own answer.
        cx.out.send(
            from,
            &Event::ChanNotice {
                title: &ch.title,
                actor: a.nick,
                action: "kick",
                args: &args,
            },
        );
    }
    cx.log(a, "kick", &ch.title, &args);
}

/// Removes member `target` from `ch` for `a`: a local member through the worker that
/// owns it, a member on another server through that server. Returns whether it is a
/// member.
fn remove_member(
    cx: &mut Ctx<'_>,
    a: &Actor<'_>,
    ch: &Channel,
    target: &str,
    reason: &str,
) -> bool {
    let sh = cx.sh;
    if let Some(addr) = sh.state.address_of(target) {
        if !ch.contains(addr) {
            return false;
        }
        let Some(held) = sh.state.nick_of(addr) else {
            return false;
        };
        let order = Order::Evict {
            nick: held.to_string(),
            id: ch.id,
            by: a.nick.to_owned(),
            reason: reason.to_owned(),
        };
        cx.relay(addr, order);
        return true;
    }
    match sh.state.remote().get(target) {
        Some(r) if sh.config.cluster && r.channels.contains(&ch.id) => {
            cx.publish_community(CommunityEvent::Evict {
                title: ch.title.to_string(),
                nick: r.nick.to_string(),
                by: a.nick.to_owned(),
                reason: reason.to_owned(),
            });
            true
        }
        _ => false,
    }
}

/// Carries out the removal of the local user at `rq.from` from channel `id` (on the
/// worker that owns it): it gets `PART_ACK` and, a classic client, `ERROR you were
/// removed from TITLE by NICK: reason`; the other members get `USER_PARTS` (classic)
/// or `CHAN_NOTICE ... kick` (part 5).
pub(crate) fn evicted(cx: &mut Ctx<'_>, rq: &Req, id: ChannelId, by: &str, reason: &str) {
    let (sh, addr) = (cx.sh, rq.from);
    let (Some(ch), Some(nick)) = (sh.state.channel(id), sh.state.nick_of(addr)) else {
        return;
    };
    let Some(parted) = sh.state.part(addr, id) else {
        return;
    };
    // Out of the channel's group, and the key it knew replaced (`multicast::group`).
    multicast::removed_from_group(cx, addr, id);
    let args = format!("{nick} {reason}");
    let parts = Event::UserParts {
        title: &ch.title,
        nick: &nick,
    };
    cx.out
        .fanout(view::members_by_kind(sh, &parted.rest, false), &parts, id);
    let notice = Event::ChanNotice {
        title: &ch.title,
        actor: by,
        action: "kick",
        args: &args,
    };
    cx.out
        .fanout(view::members_by_kind(sh, &parted.rest, true), &notice, id);
    cx.out.send(
        addr,
        &Event::PartAck(ChannelView::of(sh, ch.clone()).info()),
    );
    if sh.state.is_community(addr) {
        cx.out.send(addr, &notice);
    } else {
        cx.refuse(addr, Refusal::Removed(&ch.title, by, reason));
    }
    if parted.was_current {
        channels::current_changed(cx, rq, parted.new_current);
    }
    view::publish_user(cx, rq);
    channels::left_channel(cx, id);
}

/// `CHAN_BAN title seconds mask reason`: the ban is kept (stored but for a temporary
/// channel) and the local members it covers are removed.
pub(crate) fn ban(
    cx: &mut Ctx<'_>,
    a: &Actor<'_>,
    title: &str,
    seconds: &str,
    mask: &str,
    reason: &str,
) {
    let from = a.rq.from;
    let Some(ch) = rights::moderated_channel(cx, from, title) else {
        return;
    };
    let Some(BanTime { secs, until_ms }) = ban_time(cx, a, seconds) else {
        return;
    };
    let Some(parsed) = Mask::parse(mask) else {
        return cx.refuse(from, Refusal::InvalidBanMask);
    };
    let named = rights::rank_of_mask(cx.sh, &ch, &parsed);
    if !rights::outranks(cx, from, &ch, mask, named) {
        return;
    }
    let ban = Ban {
        mask: parsed,
        until_ms,
        by: a.nick.into(),
        reason: reason.into(),
    };
    if !add_ban(&ch, ban.clone(), cx.live().max_bans, unix_ms(a.rq.wall)) {
        return cx.refuse(from, Refusal::TooManyBans(&ch.title));
    }
    let record = ban.to_stored();
    if ch.with_meta(|m| m.kind) != Kind::Temporary {
        cx.community(CommunityEffect::SaveBan {
            chan: ch.title.to_lowercase(),
            ban: record.clone(),
        });
    }
    let args = format!("{} {secs} {reason}", ban.mask);
    view::notice_of(cx, a, &ch, "ban", args.trim_end());
    cx.publish_community(CommunityEvent::Ban {
        title: ch.title.to_string(),
        ban: record,
        seconds: secs,
    });
    evict_banned(cx, &ch, &ban);
    cx.log(a, "ban", &ch.title, args.trim_end());
}

/// Removes the local members of `ch` that `ban` covers, but not those ranked operator or
/// above (a founder stripped of its operator role included).
pub(crate) fn evict_banned(cx: &mut Ctx<'_>, ch: &Channel, ban: &Ban) {
    let sh = cx.sh;
    let reason = if ban.reason.is_empty() {
        "banned".to_owned()
    } else {
        format!("banned: {}", ban.reason)
    };
    for addr in ch.snapshot().iter().map(|m| m.addr) {
        let Some(u) = sh.state.user(addr) else {
            continue;
        };
        let account = u.session.map(|_| nick_key(&u.nick));
        if ban.mask.matches(&u.nick, account.as_deref()) && !rights::may_moderate(sh, addr, ch) {
            let order = Order::Evict {
                nick: u.nick.to_string(),
                id: ch.id,
                by: ban.by.to_string(),
                reason: reason.clone(),
            };
            cx.relay(addr, order);
        }
    }
}

/// `CHAN_UNBAN title mask`.
pub(crate) fn unban(cx: &mut Ctx<'_>, a: &Actor<'_>, title: &str, mask: &str) {
    let from = a.rq.from;
    let Some(ch) = rights::moderated_channel(cx, from, title) else {
        return;
    };
    let Some(parsed) = Mask::parse(mask) else {
        return cx.refuse(from, Refusal::InvalidBanMask);
    };
    if !remove_ban(&ch, &parsed) {
        return cx.refuse(from, Refusal::NoBanIn(&parsed, &ch.title));
    }
    let text = parsed.to_string();
    if ch.with_meta(|m| m.kind) != Kind::Temporary {
        cx.community(CommunityEffect::DeleteBan {
            chan: ch.title.to_lowercase(),
            mask: text.clone(),
        });
    }
    view::notice_of(cx, a, &ch, "unban", &text);
    cx.publish_community(CommunityEvent::Unban {
        title: ch.title.to_string(),
        mask: text.clone(),
        actor: a.nick.to_owned(),
    });
    cx.log(a, "unban", &ch.title, &text);
}

/// `CHAN_INVITE title nick`: `nick` may join the invite-only channel once.
pub(crate) fn invite(cx: &mut Ctx<'_>, a: &Actor<'_>, title: &str, who: &str) {
    let from = a.rq.from;
    let Some(ch) = rights::moderated_channel(cx, from, title) else {
        return;
    };
    if !valid_nick(who) {
        return cx.refuse(from, Refusal::InvalidNick);
    }
    add_invite(&ch, who, cx.live().max_bans);
    tell_invited(cx, &ch, who, a.nick);
    cx.publish_community(CommunityEvent::Invite {
        title: ch.title.to_string(),
        nick: who.to_owned(),
        by: a.nick.to_owned(),
    });
    cx.out.send(
        from,
        &Event::ChanNotice {
            title: &ch.title,
            actor: a.nick,
            action: "invite",
            args: who,
        },
    );
    cx.log(a, "invite", &ch.title, who);
}

/// Sends `INVITED` to `who` if it is a local part-5 client.
pub(crate) fn tell_invited(cx: &mut Ctx<'_>, ch: &Channel, who: &str, by: &str) {
    let state = &cx.sh.state;
    if let Some(addr) = state.address_of(who).filter(|a| state.is_community(*a)) {
        cx.out.send(
            addr,
            &Event::Invited {
                title: &ch.title,
                by,
            },
        );
    }
}

/// Adds (or replaces, for the same mask) a ban; `false` when `max` bans are in force.
pub(crate) fn add_ban(ch: &Channel, ban: Ban, max: usize, now_ms: u64) -> bool {
    ch.with_meta(|m| {
        m.bans.retain(|b| b.active(now_ms));
        if let Some(old) = m.bans.iter_mut().find(|b| b.mask == ban.mask) {
            *old = ban;
            return true;
        }
        if m.bans.len() >= max {
            return false;
        }
        m.bans.push(ban);
        true
    })
}

/// Lifts the ban of `mask`; returns whether there was one.
pub(crate) fn remove_ban(ch: &Channel, mask: &Mask) -> bool {
    ch.with_meta(|m| {
        let before = m.bans.len();
        m.bans.retain(|b| b.mask != *mask);
        m.bans.len() != before
    })
}

/// Records an invitation of `who`, forgetting the oldest beyond `max`.
pub(crate) fn add_invite(ch: &Channel, who: &str, max: usize) {
    let key: Box<str> = nick_key(who).into();
    ch.with_meta(|m| {
        m.invites.retain(|i| *i != key);
        m.invites.push(key);
        while m.invites.len() > max.max(1) {
            m.invites.remove(0);
        }
    });
}
