//! Part 5 as the other servers of a cluster report it: their created channels, topic and
//! mode changes, roles, bans, invitations, kicks and kills of users held here, address bans
//! and notices. Runs on the cluster thread; a change to a local user's record goes to the
//! worker that owns it as an [`Order`], like a local moderator's.
//!
//! The server that took the action has checked the actor's rights and stored the result
//! (the store is shared in a cluster), so a receiver only applies it to its own copy and
//! tells its own members.

use super::created::{valid_description, valid_title};
use super::ctx::Ctx;
use super::moderation::{add_ban, add_invite, evict_banned, remove_ban, tell_invited};
use super::modes::{role_change, set_lasting_op};
use super::operators::{apply_addr_ban, notice_everyone};
use super::rights::{account_of, remote_may_act, remote_rank, Rank};
use super::view::remote_notice;
use crate::cluster::CommunityEvent;
use crate::config::MAX_TITLE_LEN;
use crate::outbox::community::Order;
use crate::state::community::{Ban, Mask, Net};
use crate::state::{nick_key, role, Kind, Meta};
use proto::valid_nick;

/// Applies a part-5 event of another server.
pub(crate) fn input(cx: &mut Ctx<'_>, event: CommunityEvent) {
    // `None`: the event names what this server does not hold (a channel, a user), or
    // what it would not accept from a client: nothing to do.
    let _: Option<()> = apply(cx, event);
}

fn apply(cx: &mut Ctx<'_>, event: CommunityEvent) -> Option<()> {
    let (sh, live) = (cx.sh, cx.live());
    let channel = |title: &str| sh.state.channel_by_title(title);
    // The handler reads no clock, and the cluster thread passes none: lists are
    // cleared of expired entries by the next local change instead.
    let now_ms = 0;
    match event {
        CommunityEvent::Created {
            title,
            description,
            founder,
            registered,
        } => {
            if !valid_title(&title, MAX_TITLE_LEN)
                || !valid_description(&description)
                || !valid_nick(&founder)
            {
                return None;
            }
            let account = registered.then(|| nick_key(&founder));
            let meta = Meta::created(&description, &founder, account.as_deref());
            if let Err(_exists) = sh.state.create_channel(&title, meta.clone()) {
                // Known already (a placeholder made from a member's record): take the
                // founder's settings.
                channel(&title)?.with_meta(|m| {
                    if m.kind != Kind::Configured && m.founder.as_deref() == Some("-") {
                        *m = meta;
                    }
                });
            }
        }
        CommunityEvent::Changed {
            title,
            description,
            invite_only,
            moderated,
            topic_locked,
            limit,
            actor,
            notice,
        } => {
            let ch = channel(&title)?;
            if !valid_description(&description) {
                return None;
            }
            ch.with_meta(|m| {
                m.description = description.as_str().into();
                m.invite_only = invite_only;
                m.moderated = moderated;
                m.topic_locked = topic_locked;
                m.limit = limit;
            });
            let (action, args) = notice.split_once(' ').unwrap_or((&notice, ""));
            remote_notice(cx, &ch, &actor, action, args);
        }
        CommunityEvent::Gone { title } => {
            let ch = channel(&title)?;
            ch.with_meta(|m| {
                if m.kind == Kind::Registered {
                    m.kind = Kind::Temporary;
                }
            });
            let _ = sh.state.destroy_if_empty(ch.id);
        }
        CommunityEvent::Role {
            title,
            nick,
            role: letter,
            on,
            account,
            actor,
        } => {
            let ch = channel(&title)?;
            let bit = match letter {
                'o' => role::OP,
                'v' => role::VOICE,
                _ => return None,
            };
            if let Some(key) = &account {
                // The server holding the member made it lasting, and stored it.
                ch.with_meta(|m| {
                    m.ops.retain(|o| **o != **key);
                    if on && m.ops.len() < live.max_bans {
                        m.ops.push(key.as_str().into());
                    }
                });
            }
            let addr = sh.state.address_of(&nick).filter(|a| ch.contains(*a))?;
            if !on && !remote_may_act(sh, &ch, &actor, addr) {
                return None;
            }
            ch.set_roles(addr, bit, on);
            remote_notice(cx, &ch, &actor, "mode", &role_change(on, letter, &nick));
            // The member is here: this server decides whether it lasts, given by someone
            // ranked as high as a lasting operator (as far as this server can tell).
            let may_last = !on || remote_rank(sh, &ch, &actor) >= Rank::Lasting;
            if account.is_none()
                && letter == 'o'
                && may_last
                && ch.with_meta(|m| m.kind) != Kind::Temporary
            {
                let key = account_of(sh, addr)?;
                set_lasting_op(cx, &ch, &key, on);
                cx.publish_community(CommunityEvent::Role {
                    title,
                    nick,
                    role: letter,
                    on,
                    account: Some(key),
                    actor,
                });
            }
        }
        CommunityEvent::Ban {
            title,
            ban,
            seconds,
        } => {
            let (ch, parsed) = (channel(&title)?, Ban::from_stored(&ban)?);
            if add_ban(&ch, parsed.clone(), live.max_bans, now_ms) {
                let args = format!("{} {seconds} {}", parsed.mask, ban.reason);
                remote_notice(cx, &ch, &ban.by, "ban", args.trim_end());
                evict_banned(cx, &ch, &parsed);
            }
        }
        CommunityEvent::Unban { title, mask, actor } => {
            let (ch, parsed) = (channel(&title)?, Mask::parse(&mask)?);
            if remove_ban(&ch, &parsed) {
                remote_notice(cx, &ch, &actor, "unban", &mask);
            }
        }
        CommunityEvent::Invite { title, nick, by } => {
            let ch = channel(&title)?;
            if valid_nick(&nick) {
                add_invite(&ch, &nick, live.max_bans);
                tell_invited(cx, &ch, &nick, &by);
            }
        }
        CommunityEvent::Evict {
            title,
            nick,
            by,
            reason,
        } => {
            let ch = channel(&title)?;
            let addr = sh.state.address_of(&nick).filter(|a| ch.contains(*a))?;
            if !remote_may_act(sh, &ch, &by, addr) {
                return None;
            }
            let held = sh.state.nick_of(addr)?;
            let order = Order::Evict {
                nick: held.to_string(),
                id: ch.id,
                by,
                reason,
            };
            cx.relay(addr, order);
        }
        CommunityEvent::Kill { nick, by, reason } => {
            let addr = sh.state.address_of(&nick)?;
            let nick = sh.state.nick_of(addr)?.to_string();
            cx.relay(addr, Order::Disconnect { nick, by, reason });
        }
        CommunityEvent::AddrBan(record) => {
            let _ = apply_addr_ban(cx, &record, now_ms);
        }
        CommunityEvent::AddrUnban { net } => {
            sh.state.addr_bans().remove(Net::parse(&net)?);
        }
        CommunityEvent::Notice { from, text } => {
            if valid_nick(&from) {
                notice_everyone(cx, &from, &text);
            }
        }
    }
    Some(())
}
