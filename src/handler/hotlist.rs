//! The hot list: `WATCH_REQ` and `UNWATCH_REQ`, and keeping a registered user's hot list
//! with its account.

use std::net::SocketAddr;

use super::ctx::Ctx;
use super::limits::MAX_WATCH;
use super::refusal::Refusal;
use crate::outbox::Effect;
use crate::state::nick_key;
use proto::{valid_nick, words, Event};

/// `WATCH_REQ`: the nicknames join the hot list of the user at `from`, which is told at
/// once of those online.
pub(crate) fn watch(cx: &mut Ctx<'_>, from: SocketAddr, nicks: &str) {
    let state = &*cx.sh.state;
    let keys: Vec<String> = words(nicks)
        .filter(|n| valid_nick(n))
        .map(nick_key)
        .collect();
    let (listed, full) = state.watch(from, keys.iter().map(String::as_str), MAX_WATCH);
    save(cx, from);
    for key in listed {
        let held = state
            .address_of(&key)
            .and_then(|a| state.nick_of(a))
            .or_else(|| state.remote().get(&key).map(|r| r.nick));
        if let Some(nick) = held {
            cx.out.send(from, &Event::UserOnline { nick: &nick });
        }
    }
    if full {
        cx.refuse(from, Refusal::HotListFull);
    }
}

/// `UNWATCH_REQ`: the nicknames leave the hot list. No answer.
pub(crate) fn unwatch(cx: &mut Ctx<'_>, from: SocketAddr, nicks: &str) {
    let keys: Vec<String> = words(nicks).map(nick_key).collect();
    cx.sh.state.unwatch(from, keys.iter().map(String::as_str));
    save(cx, from);
}

/// Asks for the hot list of a password-logged-in user to be stored with its account.
fn save(cx: &mut Ctx<'_>, addr: SocketAddr) {
    let Some(user) = cx.sh.state.user(addr) else {
        return;
    };
    if user.session.is_some() && cx.sh.accounts.is_registered(&user.nick) {
        cx.out.effect(Effect::SaveHotList {
            key: nick_key(&user.nick),
            watch: user.watching.iter().map(|w| w.to_string()).collect(),
        });
    }
}
