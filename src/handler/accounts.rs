//! Accounts: `REGISTER_REQ`, `REGISTER_UPLOAD` and `UNREGISTER_REQ`. A write is an effect;
//! `ACCOUNT_ACK` goes out only when the store says the change is durable.
//!
//! `REGISTER_RESP` carries a cookie (`accounts::tokens`) bound to the address, the
//! nickname and the time; `REGISTER_UPLOAD` must bring it back, so an upload from a forged
//! source address, or one replayed later or for another nickname, is dropped. New
//! accounts are limited per address and network prefix (`accounts::limits`), and a
//! nickname that looks like a registered one can't be registered.

use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

use super::audit::Audit;
use super::{unix_ms, Handler, JobWait, Outbox, MAX_WAITING};
use crate::accounts::tokens::Purpose;
use crate::accounts::Account;
use crate::accounts::Service;
use crate::outbox::{Effect, Ticket};
use crate::state::{nick_key, Route};
use proto::{errors, Event};

impl Handler {
    /// May the user at `from` change the account of its nickname? Guests may create one;
    /// only a password session may change or delete an existing one.
    fn account_owner(
        &self,
        from: SocketAddr,
        session: Option<u64>,
        out: &mut Outbox,
    ) -> Option<Box<str>> {
        if !self.accounts.enabled() {
            out.error(from, errors::ACCOUNTS_OFF);
            return None;
        }
        let nick = self.state.nick_of(from)?;
        if self.accounts.is_registered(&nick) && session.is_none() {
            out.error(from, errors::NEEDS_PASSWORD_LOGIN);
            return None;
        }
        if !self.accounts.is_registered(&nick) && self.accounts.looks_registered(&nick) {
            Audit::count(&self.audit.registrations_refused);
            out.error(from, errors::NICK_CONFUSABLE);
            return None;
        }
        Some(nick)
    }

    /// The route of the worker that owns the user at `from` in `session`.
    fn route_of(from: SocketAddr, session: Option<u64>) -> Route {
        match session {
            Some(id) => Route::Session(id),
            None => Route::Addr(from),
        }
    }

    pub(super) fn register_start(
        &self,
        wall: SystemTime,
        from: SocketAddr,
        message: &str,
        session: Option<u64>,
        out: &mut Outbox,
    ) {
        let Some(nick) = self.account_owner(from, session, out) else {
            return;
        };
        match self.accounts.registration_response(&nick, message) {
            Ok(message) => {
                let cookie = self.accounts.issue_token(
                    Purpose::Register,
                    from,
                    &nick_key(&nick),
                    unix_ms(wall) / 1000,
                );
                let payload = format!("{message} {cookie}");
                out.send(from, &Event::RegisterResp { message: &payload })
            }
            Err(_) => out.error(from, errors::BAD_AUTH_MESSAGE),
        }
    }

    pub(super) fn register_finish(
        &self,
        now: Instant,
        wall: SystemTime,
        from: SocketAddr,
        message: &str,
        session: Option<u64>,
        out: &mut Outbox,
    ) {
        let Some(nick) = self.account_owner(from, session, out) else {
            return;
        };
        let (upload, cookie) = message.split_once(' ').unwrap_or((message, ""));
        if !self.accounts.check_token(
            Purpose::Register,
            from,
            &nick_key(&nick),
            cookie,
            unix_ms(wall) / 1000,
        ) {
            // Not an answer to our REGISTER_RESP to this address for this nickname, lately:
            // forged, replayed, or very late. Dropped without a word to the address, which
            // may be a victim's.
            Audit::count(&self.audit.cookies_rejected);
            tracing::info!(%from, nick = %nick, "registration upload without a valid cookie dropped");
            return;
        }
        let Ok(record) = Service::registration_record(upload) else {
            return out.error(from, errors::BAD_AUTH_MESSAGE);
        };
        if self.waits.jobs.len() >= MAX_WAITING {
            return out.error(from, errors::STORAGE_FAILED);
        }
        let what = if self.accounts.is_registered(&nick) {
            "changed"
        } else {
            if !self.accounts.registration_allowed(from, now) {
                Audit::count(&self.audit.registrations_refused);
                tracing::info!(%from, nick = %nick, "registration refused: too many from this address or network");
                return out.error(from, errors::TOO_MANY_REGISTRATIONS);
            }
            "registered"
        };
        let watch = self
            .state
            .watching(from)
            .iter()
            .map(|w| w.to_string())
            .collect();
        let ticket = self.ticket(from, Self::route_of(from, session));
        self.waits.jobs.insert(
            ticket.serial,
            JobWait::Store {
                addr: from,
                key: nick_key(&nick),
                nick: nick.to_string(),
                what,
                since: now,
            },
        );
        out.effect(Effect::StoreAccount {
            ticket,
            account: Account {
                nick: nick.to_string(),
                record,
                watch,
                created: (unix_ms(wall) / 1000) as i64,
            },
        });
    }

    pub(super) fn unregister(
        &self,
        now: Instant,
        from: SocketAddr,
        session: Option<u64>,
        out: &mut Outbox,
    ) {
        let Some(nick) = self.state.nick_of(from) else {
            return;
        };
        if session.is_none() || !self.accounts.is_registered(&nick) {
            return out.error(from, errors::NEEDS_PASSWORD_LOGIN);
        }
        if self.waits.jobs.len() >= MAX_WAITING {
            return out.error(from, errors::STORAGE_FAILED);
        }
        let key = nick_key(&nick);
        let ticket = self.ticket(from, Self::route_of(from, session));
        self.waits.jobs.insert(
            ticket.serial,
            JobWait::Store {
                addr: from,
                key: key.clone(),
                nick: nick.to_string(),
                what: "unregistered",
                since: now,
            },
        );
        out.effect(Effect::DeleteAccount { ticket, key });
    }

    /// An account write or delete finished: record what is registered now and tell the
    /// user, if it is still there.
    pub(super) fn stored(&self, ticket: Ticket, ok: bool, out: &mut Outbox) {
        let Some((
            _,
            JobWait::Store {
                addr,
                key,
                nick,
                what,
                ..
            },
        )) = self.waits.jobs.remove(&ticket.serial)
        else {
            return;
        };
        if ok {
            self.accounts.set_registered(&key, what != "unregistered");
            if what == "registered" {
                Audit::count(&self.audit.registrations);
            }
            tracing::info!(%addr, nick = %nick, what, "account change stored");
        }
        if self.state.nick_of(addr).is_none_or(|n| nick_key(&n) != key) {
            return; // logged off or renamed meanwhile: nobody to tell
        }
        if ok {
            out.send(addr, &Event::AccountAck { what, nick: &nick });
        } else {
            out.error(addr, errors::STORAGE_FAILED);
        }
    }
}
