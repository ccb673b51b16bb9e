//! Logging in and off: classic `LOGIN_REQ`, `LOGOFF`, in cluster mode the wait for the
//! nickname's lease, which completes the login when the answer comes back, and what every
//! login ends with (the acknowledgement, the watchers, the hot list, the mail kept).

use std::net::SocketAddr;

use super::ctx::{Ctx, LeaseWait, Req};
use super::limits::MAX_WAITING;
use super::refusal::Refusal;
use super::{channels, history, hotlist, multicast, rights, view};
use crate::outbox::{Effect, LeaseAnswer, Ticket};
use crate::state::Route;
use proto::auth::SessionKeys;
use proto::{valid_nick, Event};

/// `LOGIN_REQ nick`: a guest login (a new login from an address logs its user off
/// first).
pub(crate) fn login(cx: &mut Ctx<'_>, rq: &Req, nick: &str) {
    let (sh, from) = (cx.sh, rq.from);
    if let Some(held) = sh.state.nick_of(from) {
        if *held == *nick {
            // The first LOGIN_ACK may have been lost: answer again.
            return cx.out.send(from, &Event::LoginAck { nick });
        }
        logoff(cx, from);
    }
    if !valid_nick(nick) {
        return cx.refuse(from, Refusal::InvalidNick);
    }
    if sh.accounts.is_registered(nick) {
        return cx.refuse(from, Refusal::NickRegistered);
    }
    if sh.accounts.looks_registered(nick) {
        return cx.refuse(from, Refusal::NickConfusable);
    }
    if rights::reserved(sh, &cx.live(), nick) {
        return cx.refuse(from, Refusal::NickReserved);
    }
    if sh.config.cluster {
        return reserve_and_claim(cx, rq, nick, None);
    }
    match sh.state.claim(from, nick, rq.now) {
        Ok(()) => logged_in(cx, rq, nick),
        Err(e) => cx.refuse(from, e.into()),
    }
}

/// Cluster mode: reserves `nick` here and asks for its lease; the login completes in
/// [`lease_answered`]. `session` is set for a password login.
pub(crate) fn reserve_and_claim(
    cx: &mut Ctx<'_>,
    rq: &Req,
    nick: &str,
    session: Option<(SessionKeys, Vec<String>)>,
) {
    let (sh, from) = (cx.sh, rq.from);
    let leases = &sh.waits.leases;
    if let Some(w) = leases.get(&from) {
        if w.nick == nick && w.session.is_none() && session.is_none() {
            // A retry while the lease is asked for: the answer will come.
            return;
        }
    }
    if let Some((_, old)) = leases.remove(&from) {
        sh.state.unreserve(from, &old.nick);
    }
    if leases.len() >= MAX_WAITING {
        return cx.refuse(from, Refusal::ServerFull);
    }
    let reserved = if session.is_some() {
        sh.state.reserve_protected(from, nick)
    } else {
        sh.state.reserve(from, nick)
    };
    if let Err(e) = reserved {
        return cx.refuse(from, e.into());
    }
    let ticket = cx.ticket(from, Route::Addr(from));
    leases.insert(
        from,
        LeaseWait {
            serial: ticket.serial,
            nick: nick.to_owned(),
            since: rq.now,
            session,
        },
    );
    cx.out.effect(Effect::ClaimLease {
        ticket,
        nick: nick.to_owned(),
    });
}

/// The answer to a lease claim: completes or refuses the login that waited for it
/// (`rq.from` is the ticket's address).
pub(crate) fn lease_answered(cx: &mut Ctx<'_>, rq: &Req, ticket: Ticket, answer: LeaseAnswer) {
    let (sh, from) = (cx.sh, rq.from);
    let Some((_, wait)) = sh
        .waits
        .leases
        .remove_if(&from, |_, w| w.serial == ticket.serial)
    else {
        return;
    };
    let taken = match answer {
        LeaseAnswer::Granted => false,
        LeaseAnswer::Refused => true,
        // Redis unreachable: the last known view of the others decides.
        LeaseAnswer::Unavailable => sh.state.remote().get(&wait.nick).is_some(),
    };
    if taken {
        sh.state.unreserve(from, &wait.nick);
        return cx.refuse(from, Refusal::NickInUse);
    }
    sh.state.admit(from, &wait.nick, rq.now, None);
    match wait.session {
        None => logged_in(cx, rq, &wait.nick),
        Some((keys, watch)) => {
            if !sh.state.open_session(from, keys) {
                // Two logins derived the same session id: astronomically unlikely, and
                // refused rather than merged.
                logoff(cx, from);
                return cx.refuse(from, Refusal::LoginFailed);
            }
            protected_login_done(cx, rq, &wait.nick, false, &watch);
        }
    }
}

/// A new user at `rq.from` exists: acknowledge, tell its watchers and the cluster.
pub(crate) fn logged_in(cx: &mut Ctx<'_>, rq: &Req, nick: &str) {
    cx.out.send(rq.from, &Event::LoginAck { nick });
    for watcher in cx.sh.state.watchers_of(nick) {
        cx.out.send(watcher, &Event::UserOnline { nick });
    }
    view::publish_user(cx, rq);
    // A password login: private messages kept while it was away (part 5).
    history::fetch_mail(cx, rq.now, rq.from, nick);
}

/// The protected user at `rq.from` exists: acknowledge, tell watchers and the cluster
/// (unless it was already on as a guest: an `upgrade`), restore the hot list kept with
/// the account.
pub(crate) fn protected_login_done(
    cx: &mut Ctx<'_>,
    rq: &Req,
    nick: &str,
    upgrade: bool,
    watch: &[String],
) {
    if upgrade {
        cx.out.send(rq.from, &Event::LoginAck { nick });
        view::publish_user(cx, rq);
    } else {
        logged_in(cx, rq, nick);
    }
    if !watch.is_empty() {
        // Restore the hot list kept with the account (answers USER_ONLINE as WATCH does).
        hotlist::watch(cx, rq.from, &watch.join(" "));
    }
}

/// `LOGOFF` (and the idle sweep, a kill, a new login from the address): the user at
/// `from` leaves its channels, its watchers are told, its lease is released.
pub(crate) fn logoff(cx: &mut Ctx<'_>, from: SocketAddr) {
    let sh = cx.sh;
    let Some(gone) = sh.state.depart(from) else {
        return;
    };
    let nick = &gone.user.nick;
    multicast::leave_groups(cx, from, &gone.user.channels);
    for (id, rest) in &gone.parts {
        let Some(ch) = sh.state.channel(*id) else {
            continue;
        };
        let event = Event::UserParts {
            title: &ch.title,
            nick,
        };
        multicast::fanout(cx, *id, rest.clone(), &event);
    }
    for watcher in sh.state.watchers_of(nick) {
        cx.out.send(watcher, &Event::UserOffline { nick });
    }
    if sh.config.cluster {
        // One effect for both, so the others hear of the departure only once the name
        // is free in Redis (they may let someone take it at once).
        cx.out.effect(Effect::ReleaseLease {
            nick: nick.to_string(),
        });
    }
    for (id, _) in &gone.parts {
        channels::left_channel(cx, *id);
    }
}
