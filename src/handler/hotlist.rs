//! The hot list: `WATCH_REQ` and `UNWATCH_REQ`, and keeping a registered user's hot list
//! with its account.

use std::net::SocketAddr;

use super::audit::Audit;
use super::ctx::Ctx;
use super::limits::MAX_WATCH;
use super::refusal::Refusal;
use crate::outbox::Effect;
use crate::settings::Live;
use crate::state::{nick_key, WatchLimits, WatchStop};
use proto::{valid_nick, words, Event};

/// The hot lists' limits under the live settings.
pub(crate) fn limits(live: &Live) -> WatchLimits {
    WatchLimits {
        max: MAX_WATCH,
        unproved: live.unproved_hot_list,
        per_network: live.unproved_hot_lists_per_network,
        total: live.unproved_hot_lists_total,
    }
}

/// `WATCH_REQ`: the nicknames join the hot list of the user at `from`, which is told at
/// once of those online. A guest that has not proved its address gets a short list, and
/// all such guests of a network, and of the server, share a bounded number of entries:
/// anyone can log in under a forged address and fill one (module `state::quota`).
pub(crate) fn watch(cx: &mut Ctx<'_>, from: SocketAddr, nicks: &str) {
    let state = &*cx.sh.state;
    let keys: Vec<String> = words(nicks)
        .filter(|n| valid_nick(n))
        .map(nick_key)
        .collect();
    let limits = limits(&cx.live());
    let (listed, stop) = state.watch(from, keys.iter().map(String::as_str), limits);
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
    match stop {
        Some(WatchStop::Full) => cx.refuse(from, Refusal::HotListFull),
        Some(WatchStop::Unproved) => {
            Audit::count(&cx.sh.audit.hot_list_refused);
            cx.refuse(from, Refusal::NotProved);
        }
        None => {}
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
