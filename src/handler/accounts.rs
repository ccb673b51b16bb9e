//! Accounts: `REGISTER_REQ`, `REGISTER_UPLOAD` and `UNREGISTER_REQ`. A write is an effect;
//! `ACCOUNT_ACK` goes out only when the store says the change is durable.

use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

use super::{unix_ms, Handler, JobWait, Outbox, MAX_WAITING};
use crate::accounts::Service;
use crate::outbox::{AccountData, Effect, Ticket};
use crate::protocol::{errors, Event};
use crate::state::{nick_key, Route};

impl Handler {
    /// May the user at `from` change the account of its nickname? Guests may create one;
    /// only a password session may change or delete an existing one.
    fn account_owner(
        &self,
        from: SocketAddr,
        session: Option<u64>,
        out: &mut Outbox,
    ) -> Option<Box<str>> {
        let nick = self.state.nick_of(from)?;
        if self.accounts.is_registered(&nick) && session.is_none() {
            out.error(from, errors::NEEDS_PASSWORD_LOGIN);
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
        from: SocketAddr,
        message: &str,
        session: Option<u64>,
        out: &mut Outbox,
    ) {
        let Some(nick) = self.account_owner(from, session, out) else {
            return;
        };
        match self.accounts.registration_response(&nick, message) {
            Ok(message) => out.send(from, &Event::RegisterResp { message: &message }),
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
        let Ok(record) = Service::registration_record(message) else {
            return out.error(from, errors::BAD_AUTH_MESSAGE);
        };
        if self.waits.jobs.len() >= MAX_WAITING {
            return out.error(from, errors::STORAGE_FAILED);
        }
        let what = if self.accounts.is_registered(&nick) {
            "changed"
        } else {
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
            account: AccountData {
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
