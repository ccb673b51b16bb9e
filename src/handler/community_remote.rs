//! Part 5 as the other servers of a cluster report it: their created channels, topic and
//! mode changes, roles, bans, invitations, kicks and kills of users held here, address bans
//! and notices. Runs on the cluster thread; a change to a local user's record goes to the
//! worker that owns it as an [`Order`], like a local moderator's.
//!
//! The server that took the action has checked the actor's rights and stored the result
//! (the store is shared in a cluster), so a receiver only applies it to its own copy and
//! tells its own members.

use crate::cluster::CommunityEvent;
use crate::outbox::community::Order;
use crate::state::community::Ban;
use crate::state::{nick_key, role, Kind, Meta};
use proto::valid_nick;

use super::created::{valid_description, valid_title};
use super::moderation::{add_ban, add_invite, remove_ban};
use super::{Handler, Outbox};

impl Handler {
    /// Applies a part-5 event of `server`.
    pub(super) fn community_input(&self, _server: &str, event: CommunityEvent, out: &mut Outbox) {
        let live = self.live();
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
                if !valid_title(&title, crate::config::MAX_TITLE_LEN)
                    || !valid_description(&description)
                    || !valid_nick(&founder)
                {
                    return;
                }
                let account = registered.then(|| nick_key(&founder));
                let meta = Meta::created(&description, &founder, account.as_deref());
                if let Err(_exists) = self.state.create_channel(&title, meta.clone()) {
                    // Known already (a placeholder made from a member's record): take the
                    // founder's settings.
                    if let Some(ch) = self.state.channel_by_title(&title) {
                        ch.with_meta(|m| {
                            if m.kind != Kind::Configured && m.founder.as_deref() == Some("-") {
                                *m = meta;
                            }
                        });
                    }
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
                let Some(ch) = self.state.channel_by_title(&title) else {
                    return;
                };
                if !valid_description(&description) {
                    return;
                }
                ch.with_meta(|m| {
                    m.description = description.as_str().into();
                    m.invite_only = invite_only;
                    m.moderated = moderated;
                    m.topic_locked = topic_locked;
                    m.limit = limit;
                });
                let (action, args) = notice.split_once(' ').unwrap_or((&notice, ""));
                self.notice(&ch, &actor, action, args, None, out);
            }
            CommunityEvent::Gone { title } => {
                let Some(ch) = self.state.channel_by_title(&title) else {
                    return;
                };
                ch.with_meta(|m| {
                    if m.kind == Kind::Registered {
                        m.kind = Kind::Temporary;
                    }
                });
                let _ = self.state.destroy_if_empty(ch.id);
            }
            CommunityEvent::Role {
                title,
                nick,
                role: letter,
                on,
                account,
                actor,
            } => {
                let Some(ch) = self.state.channel_by_title(&title) else {
                    return;
                };
                let bit = match letter {
                    'o' => role::OP,
                    'v' => role::VOICE,
                    _ => return,
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
                let Some(addr) = self.state.address_of(&nick).filter(|a| ch.contains(*a)) else {
                    return;
                };
                ch.set_roles(addr, bit, on);
                let change = format!("{}{letter} {nick}", if on { '+' } else { '-' });
                self.notice(&ch, &actor, "mode", &change, None, out);
                if account.is_none() && letter == 'o' && ch.with_meta(|m| m.kind) != Kind::Temporary
                {
                    // The member is here: this server decides whether it lasts.
                    if let Some(key) = self.account_of(addr) {
                        self.set_lasting_op(&ch, &key, on, out);
                        self.publish_community(
                            CommunityEvent::Role {
                                title,
                                nick,
                                role: letter,
                                on,
                                account: Some(key),
                                actor,
                            },
                            out,
                        );
                    }
                }
            }
            CommunityEvent::Ban {
                title,
                ban,
                seconds,
            } => {
                let (Some(ch), Some(parsed)) =
                    (self.state.channel_by_title(&title), Ban::from_stored(&ban))
                else {
                    return;
                };
                if add_ban(&ch, parsed.clone(), live.max_bans, now_ms) {
                    let args = format!("{} {seconds} {}", parsed.mask, ban.reason);
                    self.notice(&ch, &ban.by, "ban", args.trim_end(), None, out);
                    self.evict_banned(&ch, &parsed, out);
                }
            }
            CommunityEvent::Unban { title, mask, actor } => {
                let (Some(ch), Some(parsed)) = (
                    self.state.channel_by_title(&title),
                    crate::state::community::Mask::parse(&mask),
                ) else {
                    return;
                };
                if remove_ban(&ch, &parsed) {
                    self.notice(&ch, &actor, "unban", &mask, None, out);
                }
            }
            CommunityEvent::Invite { title, nick, by } => {
                let Some(ch) = self.state.channel_by_title(&title) else {
                    return;
                };
                if valid_nick(&nick) {
                    add_invite(&ch, &nick, live.max_bans);
                    self.tell_invited(&ch, &nick, &by, out);
                }
            }
            CommunityEvent::Evict {
                title,
                nick,
                by,
                reason,
            } => {
                let Some(ch) = self.state.channel_by_title(&title) else {
                    return;
                };
                let Some(addr) = self.state.address_of(&nick).filter(|a| ch.contains(*a)) else {
                    return;
                };
                if let Some(held) = self.state.nick_of(addr) {
                    let order = Order::Evict {
                        nick: held.to_string(),
                        id: ch.id,
                        by,
                        reason,
                    };
                    self.relay(addr, order, out);
                }
            }
            CommunityEvent::Kill { nick, by, reason } => {
                let Some(addr) = self.state.address_of(&nick) else {
                    return;
                };
                if let Some(held) = self.state.nick_of(addr) {
                    let nick = held.to_string();
                    self.relay(addr, Order::Disconnect { nick, by, reason }, out);
                }
            }
            CommunityEvent::AddrBan(record) => {
                let _ = self.apply_addr_ban(&record, now_ms, out);
            }
            CommunityEvent::AddrUnban { net } => {
                if let Some(n) = crate::state::community::Net::parse(&net) {
                    self.state.addr_bans().remove(n);
                }
            }
            CommunityEvent::Notice { from, text } => {
                if valid_nick(&from) {
                    self.notice_everyone(&from, &text, out);
                }
            }
        }
    }
}
