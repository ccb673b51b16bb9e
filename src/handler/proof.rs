//! A guest proves its address: `PROVE_REQ` is answered with a token sent to the address
//! the request came from, and `PROVE` echoing it marks the user as proved. Only whoever
//! receives at that address can echo the token, so a guest logged in with a forged source
//! address (anyone can send a classic `LOGIN_REQ` in a victim's name) stays unproved, and
//! what the server sends it stays held to the budget of an unproved address
//! (`crate::budget`). A password login is proved already: its AUTH_REQ echoed a retry
//! token.
//!
//! The token is stateless (`accounts::tokens`, purpose `Prove`): an HMAC over the address,
//! the nickname key and the time, good for 60 s; the server keeps nothing until the echo
//! arrives. A wrong, old or foreign token is dropped without an answer (the address may be
//! a victim's) and counted.

use super::audit::Audit;
use super::ctx::{unix_ms, Ctx, Req};
use crate::accounts::tokens::Purpose;
use crate::state::nick_key;
use proto::Event;

/// `PROVE_REQ`: a token to echo, or `PROVED` at once for an address proved already.
pub(crate) fn request(cx: &mut Ctx<'_>, rq: &Req) {
    let (sh, from) = (cx.sh, rq.from);
    let Some((nick, secs)) = unproved(cx, rq) else {
        return;
    };
    let token = sh
        .accounts
        .issue_token(Purpose::Prove, from, &nick_key(&nick), secs);
    cx.out.send(from, &Event::ProveToken { token: &token });
}

/// `PROVE token`: the guest at `rq.from` is proved if `token` is one this server sent it,
/// for its nickname, in the last minute.
pub(crate) fn prove(cx: &mut Ctx<'_>, rq: &Req, token: &str) {
    let (sh, from) = (cx.sh, rq.from);
    let Some((nick, secs)) = unproved(cx, rq) else {
        return;
    };
    if !sh
        .accounts
        .check_token(Purpose::Prove, from, &nick_key(&nick), token, secs)
    {
        Audit::count(&sh.audit.proofs_refused);
        return;
    }
    if sh.state.prove(from) {
        Audit::count(&sh.audit.proofs);
        tracing::debug!(%from, nick = %nick, "address proved");
    }
    cx.out.send(from, &Event::Proved);
}

/// The nickname of the guest at `rq.from` and the request's time in seconds, which its
/// token is made or checked with; `None` when there is nothing to prove: an address
/// proved already is told so again, and one with no user is ignored.
fn unproved(cx: &mut Ctx<'_>, rq: &Req) -> Option<(Box<str>, u64)> {
    let (sh, from) = (cx.sh, rq.from);
    if sh.state.is_proved(from) {
        cx.out.send(from, &Event::Proved);
        return None;
    }
    let nick = sh.state.nick_of(from)?;
    Some((nick, unix_ms(rq.wall) / 1000))
}
