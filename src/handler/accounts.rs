//! Accounts: `REGISTER_REQ`, `REGISTER_UPLOAD` and `UNREGISTER_REQ`. A write is an effect;
//! `ACCOUNT_ACK` goes out only when the store says the change is durable.
//!
//! `REGISTER_RESP` carries a cookie (`accounts::tokens`) bound to the address, the
//! nickname and the time; `REGISTER_UPLOAD` must bring it back, so an upload from a forged
//! source address, or one replayed later or for another nickname, is dropped. New
//! accounts are limited per address and network prefix (`accounts::limits`), a nickname
//! that looks like a registered one can't be registered, and neither can one the
//! configuration reserves for a server operator (`rights::reserved`).

use super::audit::Audit;
use super::ctx::{unix_ms, Ctx, JobWait, Req};
use super::limits::MAX_WAITING;
use super::refusal::Refusal;
use super::rights;
use crate::accounts::tokens::Purpose;
use crate::accounts::Account;
use crate::accounts::Service;
use crate::outbox::{CommunityEffect, Effect, Ticket};
use crate::state::{nick_key, Route};
use proto::Event;

/// May the user at `rq.from` change the account of its nickname? Guests may create one;
/// only a password session may change or delete an existing one. Its nickname, or `None`
/// (refused).
fn account_owner(cx: &mut Ctx<'_>, rq: &Req) -> Option<Box<str>> {
    let (sh, from) = (cx.sh, rq.from);
    if !sh.accounts.enabled() {
        cx.refuse(from, Refusal::AccountsOff);
        return None;
    }
    let nick = sh.state.nick_of(from)?;
    let registered = sh.accounts.is_registered(&nick);
    if registered && rq.session.is_none() {
        cx.refuse(from, Refusal::NeedsPasswordLogin);
        return None;
    }
    if !registered && sh.accounts.looks_registered(&nick) {
        Audit::count(&sh.audit.registrations_refused);
        cx.refuse(from, Refusal::NickConfusable);
        return None;
    }
    if !registered && rights::reserved(sh, &cx.live(), &nick) {
        // A guest that logged in before a reload listed its nickname as an operator's.
        Audit::count(&sh.audit.registrations_refused);
        cx.refuse(from, Refusal::NickReserved);
        return None;
    }
    Some(nick)
}

/// `REGISTER_REQ message`: the OPAQUE registration response, with a cookie the upload
/// must bring back.
pub(crate) fn register_start(cx: &mut Ctx<'_>, rq: &Req, message: &str) {
    let Some(nick) = account_owner(cx, rq) else {
        return;
    };
    let (accounts, from) = (&cx.sh.accounts, rq.from);
    match accounts.registration_response(&nick, message) {
        Ok(message) => {
            let secs = unix_ms(rq.wall) / 1000;
            let cookie = accounts.issue_token(Purpose::Register, from, &nick_key(&nick), secs);
            let payload = format!("{message} {cookie}");
            cx.out
                .send(from, &Event::RegisterResp { message: &payload })
        }
        Err(_) => cx.refuse(from, Refusal::BadAuthMessage),
    }
}

/// `REGISTER_UPLOAD message cookie`: the account is written (an effect); `ACCOUNT_ACK`
/// follows in [`stored`].
pub(crate) fn register_finish(cx: &mut Ctx<'_>, rq: &Req, message: &str) {
    let Some(nick) = account_owner(cx, rq) else {
        return;
    };
    let (sh, from) = (cx.sh, rq.from);
    let (upload, cookie) = message.split_once(' ').unwrap_or((message, ""));
    let secs = unix_ms(rq.wall) / 1000;
    if !sh
        .accounts
        .check_token(Purpose::Register, from, &nick_key(&nick), cookie, secs)
    {
        // Not an answer to our REGISTER_RESP to this address for this nickname, lately:
        // forged, replayed, or very late. Dropped without a word to the address, which
        // may be a victim's.
        Audit::count(&sh.audit.cookies_rejected);
        tracing::info!(%from, nick = %nick, "registration upload without a valid cookie dropped");
        return;
    }
    let Ok(record) = Service::registration_record(upload) else {
        return cx.refuse(from, Refusal::BadAuthMessage);
    };
    if sh.waits.jobs.len() >= MAX_WAITING {
        return cx.refuse(from, Refusal::StorageFailed);
    }
    let create = !sh.accounts.is_registered(&nick);
    let what = if !create {
        "changed"
    } else {
        if !sh.accounts.registration_allowed(from, rq.now) {
            Audit::count(&sh.audit.registrations_refused);
            tracing::info!(%from, nick = %nick, "registration refused: too many from this address or network");
            return cx.refuse(from, Refusal::TooManyRegistrations);
        }
        "registered"
    };
    let watch = sh
        .state
        .watching(from)
        .iter()
        .map(|w| w.to_string())
        .collect();
    let ticket = wait_for_store(cx, rq, &nick, what);
    cx.out.effect(Effect::StoreAccount {
        ticket,
        account: Account {
            nick: nick.to_string(),
            record,
            watch,
            created: (unix_ms(rq.wall) / 1000) as i64,
            // Never over the network; an existing account keeps its flag.
            operator: false,
        },
        create,
    });
}

/// `UNREGISTER_REQ`: the account is deleted (an effect), from a password session only.
pub(crate) fn unregister(cx: &mut Ctx<'_>, rq: &Req) {
    let (sh, from) = (cx.sh, rq.from);
    let Some(nick) = sh.state.nick_of(from) else {
        return;
    };
    if rq.session.is_none() || !sh.accounts.is_registered(&nick) {
        return cx.refuse(from, Refusal::NeedsPasswordLogin);
    }
    if sh.waits.jobs.len() >= MAX_WAITING {
        return cx.refuse(from, Refusal::StorageFailed);
    }
    let ticket = wait_for_store(cx, rq, &nick, "unregistered");
    let key = nick_key(&nick);
    cx.out.effect(Effect::DeleteAccount { ticket, key });
}

/// Records that the user at `rq.from` waits for the account of `nick` to be written
/// (`what`: registered, changed or unregistered); the ticket for the write.
fn wait_for_store(cx: &mut Ctx<'_>, rq: &Req, nick: &str, what: &'static str) -> Ticket {
    // The result goes to the worker that owns the user: its session's, or its address's.
    let route = match rq.session {
        Some(id) => Route::Session(id),
        None => Route::Addr(rq.from),
    };
    let ticket = cx.ticket(rq.from, route);
    cx.sh.waits.jobs.insert(
        ticket.serial,
        JobWait::Store {
            addr: rq.from,
            key: nick_key(nick),
            nick: nick.to_owned(),
            what,
            since: rq.now,
        },
    );
    ticket
}

/// An account write or delete finished: record what is registered now and tell the
/// user, if it is still there.
pub(crate) fn stored(cx: &mut Ctx<'_>, ticket: Ticket, ok: bool) {
    let sh = cx.sh;
    let Some((
        _,
        JobWait::Store {
            addr,
            key,
            nick,
            what,
            ..
        },
    )) = sh.waits.jobs.remove(&ticket.serial)
    else {
        return;
    };
    if ok {
        sh.accounts.set_registered(&key, what != "unregistered");
        if what == "registered" {
            Audit::count(&sh.audit.registrations);
        }
        if what != "changed" {
            // Messages kept for the nickname, and the senders it refused, were its former
            // owner's (an account deleted here, or while the server ran elsewhere): not
            // for whoever registers it next.
            cx.community(CommunityEffect::ForgetMailbox { key: key.clone() });
        }
        tracing::info!(%addr, nick = %nick, what, "account change stored");
    }
    if sh.state.nick_of(addr).is_none_or(|n| nick_key(&n) != key) {
        return; // logged off or renamed meanwhile: nobody to tell
    }
    if ok {
        cx.out.send(addr, &Event::AccountAck { what, nick: &nick });
    } else {
        cx.refuse(addr, Refusal::StorageFailed);
    }
}
