//! The directory of logged-in users: `WHO_REQ` (by nickname prefix, over the whole
//! cluster) and `WHOIS_REQ`.
//!
//! WHO reads the sorted nickname index of the state (and the sorted view of remote users),
//! so it costs what it returns, not what the server holds.

use super::ctx::{Ctx, Req};
use super::limits::MAX_WHO;
use super::refusal::Refusal;
use super::view;
use crate::state::{nick_key, RemoteUser, User};

/// A user found by WHO, here or on another server.
enum Found {
    Local(User),
    Remote(RemoteUser),
}

/// `WHO_REQ prefix`: the first [`MAX_WHO`] users whose nickname starts so, in order.
pub(crate) fn who(cx: &mut Ctx<'_>, rq: &Req, prefix: &str) {
    let sh = cx.sh;
    let prefix = nick_key(prefix);
    let mut found: Vec<(String, Found)> = sh
        .state
        .who(&prefix, MAX_WHO + 1)
        .into_iter()
        .map(|u| (nick_key(&u.nick), Found::Local(u)))
        .collect();
    if sh.config.cluster {
        for r in sh.state.remote().matching(&prefix, MAX_WHO + 1) {
            let key = nick_key(&r.nick);
            if !found.iter().any(|(k, _)| *k == key) {
                found.push((key, Found::Remote(r)));
            }
        }
        found.sort_by(|a, b| a.0.cmp(&b.0));
    }
    let too_many = found.len() > MAX_WHO;
    found.truncate(MAX_WHO);
    for (_, user) in &found {
        match user {
            Found::Local(u) => view::user_item(cx, rq, u),
            Found::Remote(r) => view::remote_item(cx, rq, r),
        }
    }
    if too_many {
        cx.refuse(rq.from, Refusal::WhoTooMany);
    }
}

/// `WHOIS_REQ nick`: the user of that nickname, here or on another server.
pub(crate) fn whois(cx: &mut Ctx<'_>, rq: &Req, nick: &str) {
    let state = &cx.sh.state;
    match state.address_of(nick).and_then(|a| state.user(a)) {
        Some(user) => view::user_item(cx, rq, &user),
        None => match state.remote().get(nick) {
            Some(r) => view::remote_item(cx, rq, &r),
            None => cx.refuse(rq.from, Refusal::NotLoggedIn(nick)),
        },
    }
}
