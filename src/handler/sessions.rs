//! Password logins and protected sessions: `AUTH_REQ` (the account is read from the store
//! as an effect, then the OPAQUE challenge goes out), `AUTH_FINISH`, and sealed datagrams,
//! with the move of a session to a new address.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime};

use super::{Handler, JobWait, Outbox, MAX_WAITING};
use crate::accounts::{LoggedIn, LoginError, Service};
use crate::auth::{Sealed, SEAL_OVERHEAD};
use crate::outbox::{AccountData, Effect, Ticket};
use crate::protocol::{errors, valid_nick, Event};
use crate::state::{nick_key, ClaimError, Route, SealCheck};

impl Handler {
    pub(super) fn auth_start(
        &self,
        now: Instant,
        from: SocketAddr,
        nick: &str,
        message: &str,
        out: &mut Outbox,
    ) {
        if !valid_nick(nick) {
            return out.error(from, errors::INVALID_NICK);
        }
        let key = nick_key(nick);
        if !self.accounts.is_registered(&key) {
            return out.error(from, errors::NO_ACCOUNT);
        }
        let Some(request) = Service::credential_request(message) else {
            return out.error(from, errors::BAD_AUTH_MESSAGE);
        };
        if !self.accounts.attempt(&key, now) {
            return out.error(from, errors::TOO_MANY_ATTEMPTS);
        }
        if !self.accounts.has_room(now) || self.waits.jobs.len() >= MAX_WAITING {
            return out.error(from, errors::TOO_MANY_ATTEMPTS);
        }
        let ticket = self.ticket(from, Route::Addr(from));
        self.waits.jobs.insert(
            ticket.serial,
            JobWait::Load {
                addr: from,
                request,
                since: now,
            },
        );
        out.effect(Effect::LoadAccount { ticket, key });
    }

    /// The account of an AUTH_REQ was read: answer with the OPAQUE challenge.
    pub(super) fn account_loaded(
        &self,
        now: Instant,
        ticket: Ticket,
        account: Result<Option<AccountData>, ()>,
        out: &mut Outbox,
    ) {
        let Some((_, JobWait::Load { addr, request, .. })) = self.waits.jobs.remove(&ticket.serial)
        else {
            return;
        };
        let account = match account {
            Ok(Some(a)) => a,
            Ok(None) => return out.error(addr, errors::NO_ACCOUNT),
            Err(()) => return out.error(addr, errors::STORAGE_FAILED),
        };
        match self.accounts.login_start(addr, account, &request, now) {
            Ok(message) => out.send(addr, &Event::AuthChallenge { message: &message }),
            Err(LoginError::BadRecord) => {
                tracing::error!(%addr, "stored OPAQUE record does not parse");
                out.error(addr, errors::STORAGE_FAILED)
            }
            Err(_) => out.error(addr, errors::BAD_AUTH_MESSAGE),
        }
    }

    pub(super) fn auth_finish(
        &self,
        now: Instant,
        wall: SystemTime,
        from: SocketAddr,
        message: &str,
        out: &mut Outbox,
    ) {
        let LoggedIn { nick, keys, watch } = match self.accounts.login_finish(from, message, now) {
            Ok(done) => done,
            Err(LoginError::Malformed) => return out.error(from, errors::BAD_AUTH_MESSAGE),
            Err(_) => return out.error(from, errors::LOGIN_FAILED),
        };
        if self.state.has_session(keys.id) {
            return out.error(from, errors::LOGIN_FAILED);
        }
        let held = self.state.user(from);
        let upgrade = match held {
            Some(u) if nick_key(&u.nick) == nick_key(&nick) => {
                // The guest that holds this nickname proves it owns it: same user, now
                // protected, channels kept, shown as registered.
                if let Some(old) = u.session {
                    self.state.end_session(old);
                }
                self.state.respell(from, &nick);
                // A new login starts without caps; the client asks again.
                self.state.set_caps(from, crate::state::Caps::default());
                true
            }
            Some(_) => {
                self.logoff(from, out);
                false
            }
            None => false,
        };
        if !upgrade {
            if self.config.cluster {
                return self.reserve_and_claim(now, from, &nick, Some((keys, watch)), out);
            }
            match self.state.claim(from, &nick, now) {
                Ok(()) => {}
                Err(ClaimError::InUse) => return out.error(from, errors::NICK_IN_USE),
                Err(ClaimError::Full) => return out.error(from, errors::SERVER_FULL),
            }
        }
        self.state.open_session(from, keys);
        self.protected_login_done(now, wall, from, &nick, upgrade, &watch, out);
    }

    /// The protected user at `from` exists: acknowledge, tell watchers and the cluster
    /// (unless it was already on as a guest), restore the hot list kept with the account.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn protected_login_done(
        &self,
        now: Instant,
        wall: SystemTime,
        from: SocketAddr,
        nick: &str,
        upgrade: bool,
        watch: &[String],
        out: &mut Outbox,
    ) {
        if upgrade {
            out.send(from, &Event::LoginAck { nick });
            self.publish_user(now, wall, from, out);
        } else {
            self.logged_in(now, wall, from, nick, out);
        }
        if !watch.is_empty() {
            // Restore the hot list kept with the account (answers USER_ONLINE as WATCH does).
            self.watch(from, &watch.join(" "), out);
        }
    }

    /// Verifies a sealed datagram: known session, right tag, fresh counter. Moves the
    /// session to `from` if it came from elsewhere and nobody is there. Returns the user's
    /// address, the inner datagram and the session, or `None` (counted) to drop it.
    pub(super) fn open_sealed<'a>(
        &self,
        from: SocketAddr,
        datagram: &'a [u8],
    ) -> Option<(SocketAddr, &'a [u8], u64)> {
        let reject = || {
            self.state.auth_rejected.fetch_add(1, Ordering::Relaxed);
            None
        };
        if datagram.len() > self.config.max_datagram + SEAL_OVERHEAD {
            return reject();
        }
        let Ok(sealed) = Sealed::parse(datagram) else {
            return reject();
        };
        let SealCheck::Valid { bound } = self.state.check_sealed(&sealed) else {
            return reject();
        };
        if bound != from {
            // NAT rebinding. Whoever is at the new address stays: a session never pushes
            // another user out.
            if !self.state.move_user(sealed.session, bound, from) {
                return reject();
            }
            tracing::debug!(old = %bound, new = %from, "session moved to a new address");
        }
        Some((from, sealed.inner, sealed.session))
    }
}
