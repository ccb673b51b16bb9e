//! Logging in and off: classic `LOGIN_REQ`, `LOGOFF`, and in cluster mode the wait for
//! the nickname's lease, which completes the login when the answer comes back.

use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

use super::{Handler, LeaseWait, Outbox, MAX_WAITING};
use crate::outbox::{Effect, LeaseAnswer, Ticket};
use crate::state::{ClaimError, Route};
use proto::auth::SessionKeys;
use proto::{errors, valid_nick, Event};

impl Handler {
    pub(super) fn login(
        &self,
        now: Instant,
        wall: SystemTime,
        from: SocketAddr,
        nick: &str,
        out: &mut Outbox,
    ) {
        if let Some(held) = self.state.nick_of(from) {
            if *held == *nick {
                // The first LOGIN_ACK may have been lost: answer again.
                return out.send(from, &Event::LoginAck { nick });
            }
            self.logoff(from, out);
        }
        if !valid_nick(nick) {
            return out.error(from, errors::INVALID_NICK);
        }
        if self.accounts.is_registered(nick) {
            return out.error(from, errors::NICK_REGISTERED);
        }
        if self.accounts.looks_registered(nick) {
            return out.error(from, errors::NICK_CONFUSABLE);
        }
        if self.config.cluster {
            return self.reserve_and_claim(now, from, nick, None, out);
        }
        match self.state.claim(from, nick, now) {
            Ok(()) => self.logged_in(now, wall, from, nick, out),
            Err(ClaimError::InUse) => out.error(from, errors::NICK_IN_USE),
            Err(ClaimError::Full) => out.error(from, errors::SERVER_FULL),
        }
    }

    /// Cluster mode: reserves `nick` here and asks for its lease; the login completes in
    /// [`lease_answered`](Self::lease_answered). `session` is set for a password login.
    pub(super) fn reserve_and_claim(
        &self,
        now: Instant,
        from: SocketAddr,
        nick: &str,
        session: Option<(SessionKeys, Vec<String>)>,
        out: &mut Outbox,
    ) {
        if let Some(w) = self.waits.leases.get(&from) {
            if w.nick == nick && w.session.is_none() && session.is_none() {
                // A retry while the lease is asked for: the answer will come.
                return;
            }
        }
        self.give_up_lease_wait(from);
        if self.waits.leases.len() >= MAX_WAITING {
            return out.error(from, errors::SERVER_FULL);
        }
        let reserved = if session.is_some() {
            self.state.reserve_protected(from, nick)
        } else {
            self.state.reserve(from, nick)
        };
        match reserved {
            Ok(()) => {}
            Err(ClaimError::InUse) => return out.error(from, errors::NICK_IN_USE),
            Err(ClaimError::Full) => return out.error(from, errors::SERVER_FULL),
        }
        let ticket = self.ticket(from, Route::Addr(from));
        self.waits.leases.insert(
            from,
            LeaseWait {
                serial: ticket.serial,
                nick: nick.to_owned(),
                since: now,
                session,
            },
        );
        out.effect(Effect::ClaimLease {
            ticket,
            nick: nick.to_owned(),
        });
    }

    /// Drops the lease wait of `from`, if any, and its reservation.
    fn give_up_lease_wait(&self, from: SocketAddr) {
        if let Some((_, old)) = self.waits.leases.remove(&from) {
            self.state.unreserve(from, &old.nick);
        }
    }

    /// The answer to a lease claim: completes or refuses the login that waited for it.
    pub(super) fn lease_answered(
        &self,
        now: Instant,
        wall: SystemTime,
        ticket: Ticket,
        answer: LeaseAnswer,
        out: &mut Outbox,
    ) {
        let from = ticket.addr;
        let wait = match self
            .waits
            .leases
            .remove_if(&from, |_, w| w.serial == ticket.serial)
        {
            Some((_, w)) => w,
            None => return,
        };
        let taken = match answer {
            LeaseAnswer::Granted => false,
            LeaseAnswer::Refused => true,
            // Redis unreachable: the last known view of the others decides.
            LeaseAnswer::Unavailable => self.state.remote().get(&wait.nick).is_some(),
        };
        if taken {
            self.state.unreserve(from, &wait.nick);
            return out.error(from, errors::NICK_IN_USE);
        }
        self.state.admit(from, &wait.nick, now, None);
        match wait.session {
            None => self.logged_in(now, wall, from, &wait.nick, out),
            Some((keys, watch)) => {
                if !self.state.open_session(from, keys) {
                    // Two logins derived the same session id: astronomically unlikely, and
                    // refused rather than merged.
                    self.logoff(from, out);
                    return out.error(from, errors::LOGIN_FAILED);
                }
                self.protected_login_done(now, wall, from, &wait.nick, false, &watch, out);
            }
        }
    }

    /// A new user at `from` exists: acknowledge, tell its watchers and the cluster.
    pub(super) fn logged_in(
        &self,
        now: Instant,
        wall: SystemTime,
        from: SocketAddr,
        nick: &str,
        out: &mut Outbox,
    ) {
        out.send(from, &Event::LoginAck { nick });
        for watcher in self.state.watchers_of(nick) {
            out.send(watcher, &Event::UserOnline { nick });
        }
        self.publish_user(now, wall, from, out);
        // A password login: private messages kept while it was away (part 5).
        self.fetch_mail(now, from, nick, out);
    }

    pub(super) fn logoff(&self, from: SocketAddr, out: &mut Outbox) {
        let Some(gone) = self.state.depart(from) else {
            return;
        };
        let nick = &gone.user.nick;
        self.leave_groups(from, &gone.user.channels);
        for (id, rest) in &gone.parts {
            let Some(ch) = self.state.channel(*id) else {
                continue;
            };
            let event = Event::UserParts {
                title: &ch.title,
                nick,
            };
            self.channel_fanout(*id, rest.clone(), &event, out);
        }
        for watcher in self.state.watchers_of(nick) {
            out.send(watcher, &Event::UserOffline { nick });
        }
        if self.config.cluster {
            // One effect for both, so the others hear of the departure only once the name
            // is free in Redis (they may let someone take it at once).
            out.effect(Effect::ReleaseLease {
                nick: nick.to_string(),
            });
        }
        for (id, _) in &gone.parts {
            self.left_channel(*id, out);
        }
    }
}
