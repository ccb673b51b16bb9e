//! Moderation by channel operators (part 5): `CHAN_TOPIC`, `CHAN_KICK`, `CHAN_BAN`,
//! `CHAN_UNBAN` and `CHAN_INVITE`, and the removal of a member, which the worker owning it
//! carries out. `CHAN_MODE` is in [`super::modes`].
//!
//! Every request is checked against the actor's rights on this server
//! ([`Handler::may_moderate`]); one without them gets an ERROR and changes nothing. What
//! changes is stored for registered and configured channels, told to the other servers
//! of a cluster, shown to part-5 members as `CHAN_NOTICE`, and written to the audit log.

use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

use super::created::{stored, valid_description};
use super::{unix_ms, Handler, Outbox};
use crate::cluster::CommunityEvent;
use crate::outbox::community::Order;
use crate::outbox::CommunityEffect;
use crate::state::community::{Ban, Mask};
use crate::state::{nick_key, Channel, ChannelId, Kind};
use proto::{valid_nick, Event};

/// The longest ban, in seconds (ten years); 0 means until lifted.
pub const MAX_BAN_SECONDS: u64 = 315_360_000;

/// The length of a ban as typed (`0`: until lifted), or `None` after telling `from` what
/// is wrong with it; channel bans and address bans take the same form.
pub(super) fn ban_seconds(seconds: &str, from: SocketAddr, out: &mut Outbox) -> Option<u64> {
    let secs = seconds
        .parse::<u64>()
        .ok()
        .filter(|s| *s <= MAX_BAN_SECONDS);
    if secs.is_none() {
        out.error(
            from,
            &format!("invalid ban time; give seconds up to {MAX_BAN_SECONDS}, 0 for until lifted"),
        );
    }
    secs
}

impl Handler {
    pub(super) fn topic(
        &self,
        wall: SystemTime,
        from: SocketAddr,
        nick: &str,
        title: &str,
        text: &str,
        out: &mut Outbox,
    ) {
        let Some(ch) = self.state.channel_by_title(title) else {
            return out.error(from, &format!("no channel named {title}"));
        };
        if ch.with_meta(|m| m.topic_locked) {
            if !self.may_moderate(from, &ch) {
                return out.error(from, &format!("you are not an operator of {}", ch.title));
            }
        } else if !ch.contains(from) && !self.may_moderate(from, &ch) {
            return out.error(from, &format!("you are not in {}", ch.title));
        }
        if !valid_description(text) {
            return out.error(from, "invalid topic");
        }
        ch.with_meta(|m| m.description = text.into());
        self.channel_changed(wall, &ch, nick, "topic", text, from, out);
    }

    /// After a change of topic or modes: store, tell the cluster and the members, audit.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn channel_changed(
        &self,
        wall: SystemTime,
        ch: &Channel,
        nick: &str,
        action: &str,
        args: &str,
        from: SocketAddr,
        out: &mut Outbox,
    ) {
        if let Some(record) = stored(ch, unix_ms(wall)) {
            self.community_effect(CommunityEffect::SaveChannel(record), out);
        }
        self.notice(ch, nick, action, args, Some(from), out);
        let event = ch.with_meta(|m| CommunityEvent::Changed {
            title: ch.title.to_string(),
            description: m.description.to_string(),
            invite_only: m.invite_only,
            moderated: m.moderated,
            topic_locked: m.topic_locked,
            limit: m.limit,
            actor: nick.to_owned(),
            notice: format!("{action} {args}").trim_end().to_owned(),
        });
        self.publish_community(event, out);
        self.log_action(wall, nick, action, &ch.title, args, out);
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn kick(
        &self,
        wall: SystemTime,
        from: SocketAddr,
        nick: &str,
        title: &str,
        target: &str,
        reason: &str,
        out: &mut Outbox,
    ) {
        let Some(ch) = self.moderated_channel(from, title, out) else {
            return;
        };
        if target.is_empty() {
            return out.error(from, "no nickname given");
        }
        let reason = if reason.is_empty() {
            "no reason given"
        } else {
            reason
        };
        if !self.remove_member(&ch, target, nick, reason, out) {
            return out.error(from, &format!("{target} is not in {}", ch.title));
        }
        if !ch.contains(from) || self.state.address_of(target).is_none() {
            // Members hear of it from the removal; the actor needs its own answer.
            out.send(
                from,
                &Event::ChanNotice {
                    title: &ch.title,
                    actor: nick,
                    action: "kick",
                    args: &format!("{target} {reason}"),
                },
            );
        }
        self.log_action(
            wall,
            nick,
            "kick",
            &ch.title,
            &format!("{target} {reason}"),
            out,
        );
    }

    /// Removes member `target` from `ch`: a local member through the worker that owns it,
    /// a member on another server through that server. Returns whether it is a member.
    fn remove_member(
        &self,
        ch: &Channel,
        target: &str,
        by: &str,
        reason: &str,
        out: &mut Outbox,
    ) -> bool {
        if let Some(addr) = self.state.address_of(target) {
            if !ch.contains(addr) {
                return false;
            }
            let Some(held) = self.state.nick_of(addr) else {
                return false;
            };
            self.relay(
                addr,
                Order::Evict {
                    nick: held.to_string(),
                    id: ch.id,
                    by: by.to_owned(),
                    reason: reason.to_owned(),
                },
                out,
            );
            return true;
        }
        match self.state.remote().get(target) {
            Some(r) if self.config.cluster && r.channels.contains(&ch.id) => {
                self.publish_community(
                    CommunityEvent::Evict {
                        title: ch.title.to_string(),
                        nick: r.nick.to_string(),
                        by: by.to_owned(),
                        reason: reason.to_owned(),
                    },
                    out,
                );
                true
            }
            _ => false,
        }
    }

    /// Carries out the removal of the local user at `addr` from channel `id` (on the
    /// worker that owns it): it gets `PART_ACK` and, a classic client, `ERROR you were
    /// removed from TITLE by NICK: reason`; the other members get `USER_PARTS` (classic)
    /// or `CHAN_NOTICE ... kick` (part 5).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn evicted(
        &self,
        now: Instant,
        wall: SystemTime,
        addr: SocketAddr,
        id: ChannelId,
        by: &str,
        reason: &str,
        out: &mut Outbox,
    ) {
        let (Some(ch), Some(nick)) = (self.state.channel(id), self.state.nick_of(addr)) else {
            return;
        };
        let Some(parted) = self.state.part(addr, id) else {
            return;
        };
        let args = format!("{nick} {reason}");
        let parts = Event::UserParts {
            title: &ch.title,
            nick: &nick,
        };
        out.fanout(self.members_by_kind(&parted.rest, false), &parts, id);
        let notice = Event::ChanNotice {
            title: &ch.title,
            actor: by,
            action: "kick",
            args: &args,
        };
        out.fanout(self.members_by_kind(&parted.rest, true), &notice, id);
        out.send(addr, &Event::PartAck(self.view_of(ch.clone()).info()));
        if self.state.is_community(addr) {
            out.send(addr, &notice);
        } else {
            out.error(
                addr,
                &format!("you were removed from {} by {by}: {reason}", ch.title),
            );
        }
        if let (true, Some(current)) = (parted.was_current, parted.new_current) {
            if let Some(v) = self.channel_view(current) {
                out.send(addr, &Event::JoinAck(v.info()));
            }
        }
        self.publish_user(now, wall, addr, out);
        self.left_channel(id, out);
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn ban(
        &self,
        wall: SystemTime,
        from: SocketAddr,
        nick: &str,
        title: &str,
        seconds: &str,
        mask: &str,
        reason: &str,
        out: &mut Outbox,
    ) {
        let Some(ch) = self.moderated_channel(from, title, out) else {
            return;
        };
        let Some(secs) = ban_seconds(seconds, from, out) else {
            return;
        };
        let Some(parsed) = Mask::parse(mask) else {
            return out.error(
                from,
                "invalid ban mask; give a nickname pattern or account:NAME",
            );
        };
        let now_ms = unix_ms(wall);
        let ban = Ban {
            mask: parsed,
            until_ms: if secs == 0 { 0 } else { now_ms + secs * 1000 },
            by: nick.into(),
            reason: reason.into(),
        };
        let max = self.live().max_bans;
        if !add_ban(&ch, ban.clone(), max, now_ms) {
            return out.error(from, &format!("too many bans on {}", ch.title));
        }
        let record = ban.to_stored();
        if ch.with_meta(|m| m.kind) != Kind::Temporary {
            self.community_effect(
                CommunityEffect::SaveBan {
                    chan: ch.title.to_lowercase(),
                    ban: record.clone(),
                },
                out,
            );
        }
        let args = format!("{} {secs} {reason}", ban.mask);
        self.notice(&ch, nick, "ban", args.trim_end(), Some(from), out);
        self.publish_community(
            CommunityEvent::Ban {
                title: ch.title.to_string(),
                ban: record,
                seconds: secs,
            },
            out,
        );
        self.evict_banned(&ch, &ban, out);
        self.log_action(wall, nick, "ban", &ch.title, args.trim_end(), out);
    }

    /// Removes the local members of `ch` that `ban` covers (not operators).
    pub(super) fn evict_banned(&self, ch: &Channel, ban: &Ban, out: &mut Outbox) {
        let reason = if ban.reason.is_empty() {
            "banned".to_owned()
        } else {
            format!("banned: {}", ban.reason)
        };
        for addr in ch.snapshot().iter().map(|m| m.addr) {
            let Some(u) = self.state.user(addr) else {
                continue;
            };
            let account = u.session.map(|_| nick_key(&u.nick));
            if ban.mask.matches(&u.nick, account.as_deref()) && !self.may_moderate(addr, ch) {
                let order = Order::Evict {
                    nick: u.nick.to_string(),
                    id: ch.id,
                    by: ban.by.to_string(),
                    reason: reason.clone(),
                };
                self.relay(addr, order, out);
            }
        }
    }

    pub(super) fn unban(
        &self,
        wall: SystemTime,
        from: SocketAddr,
        nick: &str,
        title: &str,
        mask: &str,
        out: &mut Outbox,
    ) {
        let Some(ch) = self.moderated_channel(from, title, out) else {
            return;
        };
        let Some(parsed) = Mask::parse(mask) else {
            return out.error(
                from,
                "invalid ban mask; give a nickname pattern or account:NAME",
            );
        };
        if !remove_ban(&ch, &parsed) {
            return out.error(from, &format!("no ban on {parsed} in {}", ch.title));
        }
        if ch.with_meta(|m| m.kind) != Kind::Temporary {
            self.community_effect(
                CommunityEffect::DeleteBan {
                    chan: ch.title.to_lowercase(),
                    mask: parsed.to_string(),
                },
                out,
            );
        }
        let text = parsed.to_string();
        self.notice(&ch, nick, "unban", &text, Some(from), out);
        self.publish_community(
            CommunityEvent::Unban {
                title: ch.title.to_string(),
                mask: text.clone(),
                actor: nick.to_owned(),
            },
            out,
        );
        self.log_action(wall, nick, "unban", &ch.title, &text, out);
    }

    pub(super) fn invite(
        &self,
        wall: SystemTime,
        from: SocketAddr,
        nick: &str,
        title: &str,
        who: &str,
        out: &mut Outbox,
    ) {
        let Some(ch) = self.moderated_channel(from, title, out) else {
            return;
        };
        if !valid_nick(who) {
            return out.error(from, "invalid nickname");
        }
        add_invite(&ch, who, self.live().max_bans);
        self.tell_invited(&ch, who, nick, out);
        self.publish_community(
            CommunityEvent::Invite {
                title: ch.title.to_string(),
                nick: who.to_owned(),
                by: nick.to_owned(),
            },
            out,
        );
        out.send(
            from,
            &Event::ChanNotice {
                title: &ch.title,
                actor: nick,
                action: "invite",
                args: who,
            },
        );
        self.log_action(wall, nick, "invite", &ch.title, who, out);
    }

    /// Sends `INVITED` to `who` if it is a local part-5 client.
    pub(super) fn tell_invited(&self, ch: &Channel, who: &str, by: &str, out: &mut Outbox) {
        if let Some(addr) = self.state.address_of(who) {
            if self.state.is_community(addr) {
                out.send(
                    addr,
                    &Event::Invited {
                        title: &ch.title,
                        by,
                    },
                );
            }
        }
    }
}

/// Adds (or replaces, for the same mask) a ban; `false` when `max` bans are in force.
pub(super) fn add_ban(ch: &Channel, ban: Ban, max: usize, now_ms: u64) -> bool {
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
pub(super) fn remove_ban(ch: &Channel, mask: &Mask) -> bool {
    ch.with_meta(|m| {
        let before = m.bans.len();
        m.bans.retain(|b| b.mask != *mask);
        m.bans.len() != before
    })
}

/// Records an invitation of `who`, forgetting the oldest beyond `max`.
pub(super) fn add_invite(ch: &Channel, who: &str, max: usize) {
    let key: Box<str> = nick_key(who).into();
    ch.with_meta(|m| {
        m.invites.retain(|i| *i != key);
        m.invites.push(key);
        while m.invites.len() > max.max(1) {
            m.invites.remove(0);
        }
    });
}
