//! Password logins and protected sessions: `AUTH_REQ` (first a stateless retry token, then
//! the account is read from the store as an effect and the OPAQUE challenge goes out),
//! `AUTH_FINISH`, sealed datagrams, and the validation of a session's new address before
//! the session moves there (`PATH_CHALLENGE`/`PATH_RESPONSE`, as QUIC's RFC 9000 §8.2).

use std::net::SocketAddr;
use std::time::Instant;

use rand::RngCore;

use super::audit::Audit;
use super::ctx::{unix_ms, Ctx, JobWait, Req};
use super::limits::MAX_WAITING;
use super::refusal::Refusal;
use super::{login, multicast, rights};
use crate::accounts::limits::{self, Prefix};
use crate::accounts::tokens::Purpose;
use crate::accounts::Account;
use crate::accounts::{LoggedIn, LoginError, Service};
use crate::outbox::{Effect, Ticket};
use crate::state::{nick_key, Caps, Route, SealCheck};
use proto::auth::{Sealed, SEAL_OVERHEAD};
use proto::{valid_nick, Event};

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

/// `AUTH_REQ nick message token`: first a retry token for an address not yet proven,
/// then the account is read (an effect) and the login continues in [`account_loaded`].
pub(crate) fn auth_start(cx: &mut Ctx<'_>, rq: &Req, nick: &str, message: &str, token: &str) {
    let (sh, from, now) = (cx.sh, rq.from, rq.now);
    let accounts = &sh.accounts;
    if !accounts.enabled() {
        return cx.refuse(from, Refusal::AccountsOff);
    }
    if !valid_nick(nick) {
        return cx.refuse(from, Refusal::InvalidNick);
    }
    let key = nick_key(nick);
    if !accounts.is_registered(&key) {
        return cx.refuse(from, Refusal::NoAccount);
    }
    let Some(request) = Service::credential_request(message) else {
        return cx.refuse(from, Refusal::BadAuthMessage);
    };
    let secs = unix_ms(rq.wall) / 1000;
    if !accounts.check_token(Purpose::Retry, from, &key, token, secs) {
        // Nothing is kept, counted or read for an address that has not shown it
        // receives there: it gets a token (much shorter than its padded request).
        Audit::count(&sh.audit.retries);
        let token = accounts.issue_token(Purpose::Retry, from, &key, secs);
        return cx.out.send(from, &Event::AuthRetry { token: &token });
    }
    if let Some(challenge) = accounts.pending_challenge(from, &request) {
        // The same request again: a retry after a lost challenge, or a replay. Same
        // answer, nothing else changes.
        return cx.out.send(
            from,
            &Event::AuthChallenge {
                message: &challenge,
            },
        );
    }
    if let Err(refusal) = accounts.login_allowed(&key, from, now) {
        Audit::count(&sh.audit.logins_refused);
        if refusal == (limits::Refusal::AccountPrefix { fresh: true }) {
            Audit::count(&sh.audit.lockouts);
            tracing::info!(%from, prefix = %Prefix::of(from), account = %key, "account locked for this network after repeated password logins");
        } else {
            tracing::info!(%from, account = %key, ?refusal, "password login refused by the attempt limits");
        }
        return cx.refuse(from, Refusal::TooManyAttempts);
    }
    if !accounts.has_room(from, now) || sh.waits.jobs.len() >= MAX_WAITING {
        tracing::info!(%from, account = %key, "password login refused: too many under way");
        return cx.refuse(from, Refusal::TooManyAttempts);
    }
    let ticket = cx.ticket(from, Route::Addr(from));
    sh.waits.jobs.insert(
        ticket.serial,
        JobWait::Load {
            addr: from,
            request,
            since: now,
        },
    );
    cx.out.effect(Effect::LoadAccount { ticket, key });
}

/// The account of an AUTH_REQ was read: answer with the OPAQUE challenge.
pub(crate) fn account_loaded(
    cx: &mut Ctx<'_>,
    now: Instant,
    ticket: Ticket,
    account: Result<Option<Account>, ()>,
) {
    let sh = cx.sh;
    let Some((_, JobWait::Load { addr, request, .. })) = sh.waits.jobs.remove(&ticket.serial)
    else {
        return;
    };
    let account = match account {
        Ok(Some(a)) => a,
        Ok(None) => return cx.refuse(addr, Refusal::NoAccount),
        Err(()) => return cx.refuse(addr, Refusal::StorageFailed),
    };
    match sh.accounts.login_start(addr, account, &request, now) {
        Ok(message) => cx
            .out
            .send(addr, &Event::AuthChallenge { message: &message }),
        Err(LoginError::BadRecord) => {
            tracing::error!(%addr, "stored OPAQUE record does not parse");
            cx.refuse(addr, Refusal::StorageFailed)
        }
        Err(_) => cx.refuse(addr, Refusal::BadAuthMessage),
    }
}

/// `AUTH_FINISH message`: the password login is proven; the user is admitted (or the
/// guest holding the nickname upgraded) and its protected session opened.
pub(crate) fn auth_finish(cx: &mut Ctx<'_>, rq: &Req, message: &str) {
    let (sh, from, now) = (cx.sh, rq.from, rq.now);
    let LoggedIn { nick, keys, watch } = match sh.accounts.login_finish(from, message, now) {
        Ok(done) => done,
        Err(LoginError::Malformed) => return cx.refuse(from, Refusal::BadAuthMessage),
        Err(LoginError::Failed) => {
            Audit::count(&sh.audit.login_failures);
            tracing::info!(%from, "password login failed (wrong password or forged finish)");
            return cx.refuse(from, Refusal::LoginFailed);
        }
        Err(_) => return cx.refuse(from, Refusal::LoginFailed),
    };
    if sh.state.has_session(keys.id) {
        return cx.refuse(from, Refusal::LoginFailed);
    }
    Audit::count(&sh.audit.logins);
    tracing::info!(%from, nick = %nick, session = keys.id, "password login");
    let held = sh.state.user(from);
    let upgrade = match held {
        Some(u) if nick_key(&u.nick) == nick_key(&nick) => {
            // The guest that holds this nickname proves it owns it: same user, now
            // protected, channels kept, shown as registered.
            if let Some(old) = u.session {
                sh.state.end_session(old);
            }
            sh.state.respell(from, &nick);
            // A new login starts without caps (so back on unicast in every channel);
            // the client asks again.
            sh.state.set_caps(from, Caps::default());
            multicast::leave_groups(cx, from, &u.channels);
            true
        }
        Some(_) => {
            login::logoff(cx, from);
            false
        }
        None => false,
    };
    if !upgrade {
        if sh.config.cluster {
            return login::reserve_and_claim(cx, rq, &nick, Some((keys, watch)));
        }
        if let Err(e) = sh.state.reserve_protected(from, &nick) {
            rights::evict_squatter(cx, &nick);
            return cx.refuse(from, e.into());
        }
        sh.state.admit(from, &nick, now, None);
    }
    sh.state.open_session(from, keys);
    login::protected_login_done(cx, rq, &nick, upgrade, &watch);
}

/// Opens a sealed datagram: known session, fresh counter, right tag. Returns the user's
/// address (where the session is bound: a datagram from elsewhere does not move it, but
/// starts a path challenge to its source), the inner datagram and the session, or
/// `None` (counted) to drop it.
pub(crate) fn open_sealed(
    cx: &mut Ctx<'_>,
    rq: &Req,
    datagram: &[u8],
) -> Option<(SocketAddr, Vec<u8>, u64)> {
    let sh = cx.sh;
    let reject = || {
        sh.state.note_auth_rejected();
        None
    };
    if datagram.len() > sh.config.max_datagram + SEAL_OVERHEAD {
        return reject();
    }
    let Ok(sealed) = Sealed::parse(datagram) else {
        return reject();
    };
    let SealCheck::Valid { bound, inner } = sh.state.check_sealed(&sealed) else {
        return reject();
    };
    if bound != rq.from {
        challenge_path(cx, rq, sealed.session, bound);
    }
    Some((bound, inner, sealed.session))
}

/// A genuine datagram of session `id` came from `rq.from`, not from `bound`: maybe NAT
/// rebinding, maybe a copy replayed from elsewhere by someone on the path. The session
/// stays where it is until the new address answers a challenge sealed for the session,
/// which only its holder can open; the challenge is all it gets (at most one per
/// [`CHALLENGE_EVERY`](crate::state::CHALLENGE_EVERY), smaller than the datagram
/// that caused it).
fn challenge_path(cx: &mut Ctx<'_>, rq: &Req, id: u64, bound: SocketAddr) {
    let (sh, new) = (cx.sh, rq.from);
    let mut data = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut data);
    if !sh.state.challenge_path(id, new, data, rq.now) {
        return;
    }
    let Some(sealer) = sh.state.sealer_of(id) else {
        return;
    };
    Audit::count(&sh.audit.path_challenges);
    tracing::info!(old = %bound, new = %new, session = id, "path challenge to a protected session's new address");
    cx.out
        .send_sealed(new, sealer, &Event::PathChallenge { data: &hex(&data) });
}

/// PATH_RESPONSE, sealed, from `from` (the datagram's source; the session's user is
/// at `bound`): if it answers the challenge sent to `from`, the session moves there.
/// A user already at `from` is never pushed out.
pub(crate) fn path_response(
    cx: &mut Ctx<'_>,
    from: SocketAddr,
    bound: SocketAddr,
    session: Option<u64>,
    data: &str,
) {
    let sh = cx.sh;
    let Some(id) = session else {
        return cx.refuse(bound, Refusal::Unimplemented);
    };
    if from == bound {
        return;
    }
    let Some(answer) = unhex8(data) else {
        return;
    };
    if !sh.state.path_answered(id, from, &answer) {
        return;
    }
    if sh.state.move_user(id, bound, from) {
        multicast::move_groups(sh, bound, from);
        Audit::count(&sh.audit.path_changes);
        tracing::info!(old = %bound, new = %from, session = id, "protected session moved to a validated address");
    } else {
        tracing::info!(old = %bound, new = %from, session = id, "validated address is taken by another user; session stays");
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
