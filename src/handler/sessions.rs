//! Password logins and protected sessions: `AUTH_REQ` (first a stateless retry token, then
//! the account is read from the store as an effect and the OPAQUE challenge goes out),
//! `AUTH_FINISH`, sealed datagrams, and the validation of a session's new address before
//! the session moves there (`PATH_CHALLENGE`/`PATH_RESPONSE`, as QUIC's RFC 9000 §8.2).

use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

use rand::RngCore;

use super::audit::Audit;
use super::{unix_ms, Handler, JobWait, Outbox, MAX_WAITING};
use crate::accounts::limits::{Prefix, Refusal};
use crate::accounts::tokens::Purpose;
use crate::accounts::Account;
use crate::accounts::{LoggedIn, LoginError, Service};
use crate::outbox::{Effect, Ticket};
use crate::state::{nick_key, ClaimError, Route, SealCheck};
use proto::auth::{Sealed, SEAL_OVERHEAD};
use proto::{errors, valid_nick, Event};

/// Lower-case hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The 8 bytes written as 16 hex digits in `text`, or `None`.
fn unhex8(text: &str) -> Option<[u8; 8]> {
    if text.len() != 16 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 8];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

impl Handler {
    pub(super) fn auth_start(
        &self,
        now: Instant,
        wall: SystemTime,
        from: SocketAddr,
        (nick, message, token): (&str, &str, &str),
        out: &mut Outbox,
    ) {
        if !self.accounts.enabled() {
            return out.error(from, errors::ACCOUNTS_OFF);
        }
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
        let secs = unix_ms(wall) / 1000;
        if !self
            .accounts
            .check_token(Purpose::Retry, from, &key, token, secs)
        {
            // Nothing is kept, counted or read for an address that has not shown it
            // receives there: it gets a token (much shorter than its padded request).
            Audit::count(&self.audit.retries);
            let token = self.accounts.issue_token(Purpose::Retry, from, &key, secs);
            return out.send(from, &Event::AuthRetry { token: &token });
        }
        if let Some(challenge) = self.accounts.pending_challenge(from, &request) {
            // The same request again: a retry after a lost challenge, or a replay. Same
            // answer, nothing else changes.
            return out.send(
                from,
                &Event::AuthChallenge {
                    message: &challenge,
                },
            );
        }
        if let Err(refusal) = self.accounts.login_allowed(&key, from, now) {
            Audit::count(&self.audit.logins_refused);
            if refusal == (Refusal::AccountPrefix { fresh: true }) {
                Audit::count(&self.audit.lockouts);
                tracing::info!(%from, prefix = %Prefix::of(from), account = %key, "account locked for this network after repeated password logins");
            } else {
                tracing::info!(%from, account = %key, ?refusal, "password login refused by the attempt limits");
            }
            return out.error(from, errors::TOO_MANY_ATTEMPTS);
        }
        if !self.accounts.has_room(from, now) || self.waits.jobs.len() >= MAX_WAITING {
            tracing::info!(%from, account = %key, "password login refused: too many under way");
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
        account: Result<Option<Account>, ()>,
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
            Err(LoginError::Failed) => {
                Audit::count(&self.audit.login_failures);
                tracing::info!(%from, "password login failed (wrong password or forged finish)");
                return out.error(from, errors::LOGIN_FAILED);
            }
            Err(_) => return out.error(from, errors::LOGIN_FAILED),
        };
        if self.state.has_session(keys.id) {
            return out.error(from, errors::LOGIN_FAILED);
        }
        Audit::count(&self.audit.logins);
        tracing::info!(%from, nick = %nick, session = keys.id, "password login");
        let held = self.state.user(from);
        let upgrade = match held {
            Some(u) if nick_key(&u.nick) == nick_key(&nick) => {
                // The guest that holds this nickname proves it owns it: same user, now
                // protected, channels kept, shown as registered.
                if let Some(old) = u.session {
                    self.state.end_session(old);
                }
                self.state.respell(from, &nick);
                // A new login starts without caps (so back on unicast in every channel);
                // the client asks again.
                self.state.set_caps(from, crate::state::Caps::default());
                self.leave_groups(from, &u.channels);
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
            match self.state.claim_protected(from, &nick, now) {
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

    /// Opens a sealed datagram: known session, fresh counter, right tag. Returns the user's
    /// address (where the session is bound: a datagram from elsewhere does not move it, but
    /// starts a path challenge to its source), the inner datagram and the session, or
    /// `None` (counted) to drop it.
    pub(super) fn open_sealed(
        &self,
        now: Instant,
        from: SocketAddr,
        datagram: &[u8],
        out: &mut Outbox,
    ) -> Option<(SocketAddr, Vec<u8>, u64)> {
        let reject = || {
            self.state.note_auth_rejected();
            None
        };
        if datagram.len() > self.config.max_datagram + SEAL_OVERHEAD {
            return reject();
        }
        let Ok(sealed) = Sealed::parse(datagram) else {
            return reject();
        };
        let SealCheck::Valid { bound, inner } = self.state.check_sealed(&sealed) else {
            return reject();
        };
        if bound != from {
            self.challenge_path(now, sealed.session, bound, from, out);
        }
        Some((bound, inner, sealed.session))
    }

    /// A genuine datagram of session `id` came from `new`, not from `bound`: maybe NAT
    /// rebinding, maybe a copy replayed from elsewhere by someone on the path. The session
    /// stays where it is until `new` answers a challenge sealed for the session, which
    /// only its holder can open; the challenge is all `new` gets (at most one per
    /// [`CHALLENGE_EVERY`](crate::state::CHALLENGE_EVERY), smaller than the datagram
    /// that caused it).
    fn challenge_path(
        &self,
        now: Instant,
        id: u64,
        bound: SocketAddr,
        new: SocketAddr,
        out: &mut Outbox,
    ) {
        let mut data = [0u8; 8];
        rand::rngs::OsRng.fill_bytes(&mut data);
        if !self.state.challenge_path(id, new, data, now) {
            return;
        }
        let Some(sealer) = self.state.sealer_of(id) else {
            return;
        };
        Audit::count(&self.audit.path_challenges);
        tracing::info!(old = %bound, new = %new, session = id, "path challenge to a protected session's new address");
        out.send_sealed(new, sealer, &Event::PathChallenge { data: &hex(&data) });
    }

    /// PATH_RESPONSE, sealed, from `from` (the datagram's source; the session's user is
    /// at `bound`): if it answers the challenge sent to `from`, the session moves there.
    /// A user already at `from` is never pushed out.
    pub(super) fn path_response(
        &self,
        from: SocketAddr,
        bound: SocketAddr,
        session: Option<u64>,
        data: &str,
        out: &mut Outbox,
    ) {
        let Some(id) = session else {
            return out.error(bound, errors::UNIMPLEMENTED);
        };
        if from == bound {
            return;
        }
        let Some(answer) = unhex8(data) else {
            return;
        };
        if !self.state.path_answered(id, from, &answer) {
            return;
        }
        if self.state.move_user(id, bound, from) {
            self.move_groups(bound, from);
            Audit::count(&self.audit.path_changes);
            tracing::info!(old = %bound, new = %from, session = id, "protected session moved to a validated address");
        } else {
            tracing::info!(old = %bound, new = %from, session = id, "validated address is taken by another user; session stays");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{hex, unhex8};

    #[test]
    fn challenge_data_round_trips_and_junk_is_refused() {
        let d = [0, 1, 0xab, 0xff, 7, 8, 9, 10];
        assert_eq!(unhex8(&hex(&d)), Some(d));
        for junk in [
            "",
            "00",
            "0011223344556677aa",
            "zz11223344556677",
            "é011223344556677",
        ] {
            assert_eq!(unhex8(junk), None, "{junk}");
        }
    }
}
