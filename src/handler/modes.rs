//! Channel modes (part 5): `CHAN_MODE` changes one mode (invite-only, moderated, topic
//! lock, member limit) or one member's role (operator, voice), or shows them all; and the
//! lasting operators of registered and configured channels, kept in the store.
//!
//! Rights are checked as for every moderation request ([`rights::may_moderate`]); taking
//! a role (`-o`, `-v`) also against the target's rank ([`rights::outranks`]), so an
//! operator can't strip the founder or a lasting operator, and only a lasting operator or
//! higher makes lasting operators (nobody raises anyone above its own rank).

use std::net::SocketAddr;

use super::ctx::{Actor, Ctx};
use super::limits::MAX_LIMIT;
use super::refusal::Refusal;
use super::rights::{self, account_of, Rank};
use super::{moderation, view};
use crate::cluster::CommunityEvent;
use crate::outbox::CommunityEffect;
use crate::state::{nick_key, role, Channel, Kind};
use proto::{valid_nick, Event};

/// One change of `CHAN_MODE`: `+x` (`on`) or `-x` of the mode or role `letter`.
#[derive(Debug, Clone, Copy)]
struct Change {
    on: bool,
    letter: char,
}

impl Change {
    /// `+o NICK` and the like, as notices and the audit log show a change of role.
    fn of(self, nick: &str) -> String {
        format!("{}{} {nick}", if self.on { '+' } else { '-' }, self.letter)
    }
}

/// `CHAN_MODE title change arg`; without a change, the modes are shown.
pub(crate) fn mode(cx: &mut Ctx<'_>, a: &Actor<'_>, title: &str, change: &str, arg: &str) {
    let from = a.rq.from;
    if change.is_empty() {
        return match cx.sh.state.channel_by_title(title) {
            Some(ch) => show_modes(cx, from, &ch),
            None => cx.refuse(from, Refusal::NoChannel(title)),
        };
    }
    let Some(ch) = rights::moderated_channel(cx, from, title) else {
        return;
    };
    let mut chars = change.chars();
    let (Some(sign @ ('+' | '-')), Some(letter), None) = (chars.next(), chars.next(), chars.next())
    else {
        return cx.refuse(from, Refusal::UnknownMode(change));
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
            None => return cx.refuse(from, Refusal::InvalidLimit),
        },
        'o' | 'v' => return change_role(cx, a, &ch, Change { on, letter }, arg),
        _ => return cx.refuse(from, Refusal::UnknownMode(change)),
    }
    let args = if letter == 'l' && on {
        format!("{change} {arg}")
    } else {
        change.to_owned()
    };
    moderation::changed(cx, a, &ch, "mode", &args);
}

/// `+o`/`-o`/`+v`/`-v NICK`.
fn change_role(cx: &mut Ctx<'_>, a: &Actor<'_>, ch: &Channel, change: Change, target: &str) {
    let (sh, from) = (cx.sh, a.rq.from);
    let Change { on, letter } = change;
    if !valid_nick(target) {
        return cx.refuse(from, Refusal::NoModeNick);
    }
    // Taking a role is an act on the target; giving one is not (it can only raise it).
    if !on && !rights::outranks(cx, from, ch, target, rights::rank_of_nick(sh, ch, target)) {
        return;
    }
    let bit = if letter == 'o' { role::OP } else { role::VOICE };
    let local = sh.state.address_of(target).filter(|a| ch.contains(*a));
    // A registered member's operator status lasts in a registered or configured channel,
    // given by someone who ranks as high as a lasting operator.
    let lasting_channel = letter == 'o' && ch.with_meta(|m| m.kind) != Kind::Temporary;
    let may_last = !on || rights::rank(sh, from, ch) >= Rank::Lasting;
    let account = match local {
        Some(addr) => {
            ch.set_roles(addr, bit, on);
            account_of(sh, addr).filter(|_| lasting_channel && may_last)
        }
        None => {
            let remote = sh
                .state
                .remote()
                .get(target)
                .filter(|r| r.channels.contains(&ch.id));
            let lasting =
                letter == 'o' && !on && ch.with_meta(|m| m.is_op_account(&nick_key(target)));
            if remote.is_none() && !lasting {
                return cx.refuse(from, Refusal::NotMember(target, &ch.title));
            }
            lasting.then(|| nick_key(target))
        }
    };
    if let Some(key) = &account {
        set_lasting_op(cx, ch, key, on);
    }
    let args = change.of(target);
    view::notice_of(cx, a, ch, "mode", &args);
    cx.publish_community(CommunityEvent::Role {
        title: ch.title.to_string(),
        nick: target.to_owned(),
        role: letter,
        on,
        account,
        actor: a.nick.to_owned(),
    });
    cx.log(a, "mode", &ch.title, &args);
}

/// The notice of another server's change of a role: `+o NICK` and the like.
pub(crate) fn role_change(on: bool, letter: char, nick: &str) -> String {
    Change { on, letter }.of(nick)
}

/// Makes the account `key` a lasting operator of `ch` or no longer, and stores that.
pub(crate) fn set_lasting_op(cx: &mut Ctx<'_>, ch: &Channel, key: &str, on: bool) {
    let max = cx.live().max_bans;
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
        cx.community(CommunityEffect::SetOp {
            chan: ch.title.to_lowercase(),
            account: key.to_owned(),
            on,
        });
    }
}

/// `CHAN_MODE title`: the modes, then one `CHAN_ENTRY` for the founder if it is a member
/// here, then one per lasting operator, member operator, voice, ban and invitation.
fn show_modes(cx: &mut Ctx<'_>, from: SocketAddr, ch: &Channel) {
    let sh = cx.sh;
    let state = &sh.state;
    let meta = ch.with_meta(|m| m.clone());
    let founder = meta
        .founder
        .as_deref()
        .and_then(|f| state.address_of(f))
        .filter(|addr| ch.contains(*addr) && rights::rank(sh, *addr, ch) >= Rank::Founder)
        .and_then(|addr| state.nick_of(addr));
    let out = &mut *cx.out;
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
    if let Some(nick) = founder {
        entry("founder", &nick);
    }
    for op in &meta.ops {
        entry("op", &format!("account:{op}"));
    }
    for addr in ch.snapshot().iter().map(|m| m.addr) {
        let r = ch.roles(addr);
        if r == 0 {
            continue;
        }
        if let Some(n) = state.nick_of(addr) {
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
