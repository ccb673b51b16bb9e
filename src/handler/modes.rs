//! Channel modes (part 5): `CHAN_MODE` changes one mode (invite-only, moderated, topic
//! lock, member limit) or one member's role (operator, voice), or shows them all; and the
//! lasting operators of registered and configured channels, kept in the store.
//!
//! Rights are checked as for every moderation request ([`Handler::may_moderate`]).

use std::net::SocketAddr;
use std::time::SystemTime;

use super::{Handler, Outbox};
use crate::cluster::CommunityEvent;
use crate::outbox::CommunityEffect;
use crate::state::{nick_key, role, Channel, Kind};
use proto::{valid_nick, Event};

/// The largest member limit (`+l`).
pub const MAX_LIMIT: u32 = 1_000_000;
/// What `CHAN_MODE` accepts.
const MODE_USAGE: &str = "use +i -i +m -m +t -t +l COUNT -l +o NICK -o NICK +v NICK -v NICK";

impl Handler {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn mode(
        &self,
        wall: SystemTime,
        from: SocketAddr,
        nick: &str,
        title: &str,
        change: &str,
        arg: &str,
        out: &mut Outbox,
    ) {
        if change.is_empty() {
            return match self.state.channel_by_title(title) {
                Some(ch) => self.show_modes(from, &ch, out),
                None => out.error(from, &format!("no channel named {title}")),
            };
        }
        let Some(ch) = self.moderated_channel(from, title, out) else {
            return;
        };
        let mut chars = change.chars();
        let (Some(sign @ ('+' | '-')), Some(letter), None) =
            (chars.next(), chars.next(), chars.next())
        else {
            return out.error(from, &format!("unknown mode {change}; {MODE_USAGE}"));
        };
        let on = sign == '+';
        let arg = arg.split(' ').next().unwrap_or("");
        match letter {
            'i' => ch.with_meta(|m| m.invite_only = on),
            'm' => ch.with_meta(|m| m.moderated = on),
            't' => ch.with_meta(|m| m.topic_locked = on),
            'l' if !on => ch.with_meta(|m| m.limit = None),
            'l' => match arg
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
            {
                Some(n) => ch.with_meta(|m| m.limit = Some(n)),
                None => {
                    return out.error(from, &format!("give a member limit from 1 to {MAX_LIMIT}"))
                }
            },
            'o' | 'v' => return self.change_role(wall, from, nick, &ch, letter, on, arg, out),
            _ => return out.error(from, &format!("unknown mode {change}; {MODE_USAGE}")),
        }
        let args = if letter == 'l' && on {
            format!("{change} {arg}")
        } else {
            change.to_owned()
        };
        self.channel_changed(wall, &ch, nick, "mode", &args, from, out);
    }

    /// `+o`/`-o`/`+v`/`-v NICK`.
    #[allow(clippy::too_many_arguments)]
    fn change_role(
        &self,
        wall: SystemTime,
        from: SocketAddr,
        nick: &str,
        ch: &Channel,
        letter: char,
        on: bool,
        target: &str,
        out: &mut Outbox,
    ) {
        if !valid_nick(target) {
            return out.error(from, "give a nickname");
        }
        let bit = if letter == 'o' { role::OP } else { role::VOICE };
        let local = self.state.address_of(target).filter(|a| ch.contains(*a));
        let account = match local {
            Some(addr) => {
                ch.set_roles(addr, bit, on);
                // A registered member's operator status lasts in a registered channel.
                if letter == 'o' {
                    self.account_of(addr)
                        .filter(|_| ch.with_meta(|m| m.kind) != Kind::Temporary)
                } else {
                    None
                }
            }
            None => {
                let remote = self
                    .state
                    .remote()
                    .get(target)
                    .filter(|r| r.channels.contains(&ch.id));
                let lasting =
                    letter == 'o' && !on && ch.with_meta(|m| m.is_op_account(&nick_key(target)));
                if remote.is_none() && !lasting {
                    return out.error(from, &format!("{target} is not in {}", ch.title));
                }
                lasting.then(|| nick_key(target))
            }
        };
        if let Some(key) = &account {
            self.set_lasting_op(ch, key, on, out);
        }
        let change = format!("{}{letter} {target}", if on { '+' } else { '-' });
        self.notice(ch, nick, "mode", &change, Some(from), out);
        self.publish_community(
            CommunityEvent::Role {
                title: ch.title.to_string(),
                nick: target.to_owned(),
                role: letter,
                on,
                account,
                actor: nick.to_owned(),
            },
            out,
        );
        self.log_action(wall, nick, "mode", &ch.title, &change, out);
    }

    /// Makes the account `key` a lasting operator of `ch` or no longer, and stores that.
    pub(super) fn set_lasting_op(&self, ch: &Channel, key: &str, on: bool, out: &mut Outbox) {
        let max = self.live().max_bans;
        let changed = ch.with_meta(|m| {
            let had = m.is_op_account(key);
            if on && !had && m.ops.len() < max {
                m.ops.push(key.into());
                true
            } else if !on && had {
                m.ops.retain(|o| **o != *key);
                true
            } else {
                false
            }
        });
        if changed {
            self.community_effect(
                CommunityEffect::SetOp {
                    chan: ch.title.to_lowercase(),
                    account: key.to_owned(),
                    on,
                },
                out,
            );
        }
    }

    /// `CHAN_MODE title`: the modes, then one `CHAN_ENTRY` per lasting operator, member
    /// operator, voice, ban and invitation.
    fn show_modes(&self, from: SocketAddr, ch: &Channel, out: &mut Outbox) {
        let meta = ch.with_meta(|m| m.clone());
        out.send(
            from,
            &Event::ChanModes {
                title: &ch.title,
                modes: &meta.mode_string(),
                limit: u64::from(meta.limit.unwrap_or(0)),
                founder: meta.founder.as_deref().unwrap_or("-"),
            },
        );
        let mut entry = |kind: &str, text: &str| {
            out.send(
                from,
                &Event::ChanEntry {
                    title: &ch.title,
                    kind,
                    text,
                },
            )
        };
        for op in &meta.ops {
            entry("op", &format!("account:{op}"));
        }
        for addr in ch.snapshot().iter().map(|m| m.addr) {
            let r = ch.roles(addr);
            if r == 0 {
                continue;
            }
            if let Some(n) = self.state.nick_of(addr) {
                if r & role::OP != 0 {
                    entry("op", &n);
                }
                if r & role::VOICE != 0 {
                    entry("voice", &n);
                }
            }
        }
        for b in &meta.bans {
            let text = format!("{} {} {} {}", b.mask, b.until_ms, b.by, b.reason);
            entry("ban", text.trim_end());
        }
        for i in &meta.invites {
            entry("invite", i);
        }
    }
}
