//! Where every input goes: a datagram (sealed or not) is opened, decoded and matched to
//! the concept function that answers it; an effect's result is matched to the function
//! that waited for it.
//!
//! [`request`] is the one match over [`Request`], and it has no catch-all: a variant
//! added to the protocol and not handled here does not compile. (The arm that refuses a
//! stranger has a guard, and the compiler counts no guarded arm towards exhaustiveness.)
//! Nested request enums would split the variants into groups
//! (anyone's, a user's, part 5's), but each group would need a conversion from
//! [`Request`] naming every variant again, a second list to keep in step; one flat match
//! gives the same guarantee with one list, and each arm reads as the request it answers.

use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

use super::ctx::{Actor, Ctx, Req};
use super::refusal::Refusal;
use super::{
    accounts, caps, channels, community, created, directory, history, hotlist, login, mailbox,
    messages, moderation, modes, multicast, operators, proof, sessions,
};
use crate::datagram::{Incoming, Kind};
use crate::outbox::Done;
use crate::state::Presence;
use proto::{code, DecodeError, Request};

/// Handles one datagram received at `now` (`wall`: the same moment on the wall clock).
/// Returns whether its source was logged in when it arrived (see
/// [`Handler::handle`](super::Handler::handle)).
pub(crate) fn datagram(
    cx: &mut Ctx<'_>,
    now: Instant,
    wall: SystemTime,
    dgram: Incoming<'_>,
) -> bool {
    let rq = Req {
        now,
        wall,
        from: dgram.from,
        session: None,
    };
    let sealed = matches!(
        dgram.class.kind,
        Kind::Sealed { .. } | Kind::Plain { code: code::SEALED }
    );
    if !sealed {
        return plain(cx, &rq, dgram.bytes);
    }
    if let Some((bound, inner, session)) = sessions::open_sealed(cx, &rq, dgram.bytes) {
        match Request::decode(&inner, cx.sh.config.max_datagram) {
            // Answers a challenge sent to the datagram's own source address.
            Ok(Request::PathResponse { data }) => {
                sessions::path_response(cx, dgram.from, bound, Some(session), data)
            }
            _ => {
                let rq = Req {
                    from: bound,
                    session: Some(session),
                    ..rq
                };
                plain(cx, &rq, &inner);
            }
        }
    }
    // A sealed datagram counts as logged in whether it verified or not: it gets no
    // answer either way unless it did.
    true
}

/// Handles a classic datagram from `rq.from` (in `rq.session`, if it was sealed).
fn plain(cx: &mut Ctx<'_>, rq: &Req, datagram: &[u8]) -> bool {
    let (sh, from) = (cx.sh, rq.from);
    let presence = sh.state.touch(from, rq.now);
    if let Presence::Protected(id) = presence {
        if rq.session != Some(id) {
            // Only the session's sealed datagrams speak for a protected user: this one
            // is forged or stale. No answer, so a forger learns nothing.
            sh.state.note_auth_rejected();
            return true;
        }
    }
    let logged_in = presence != Presence::Stranger;
    match Request::decode(datagram, sh.config.max_datagram) {
        Ok(r) => request(cx, rq, r, datagram.len(), logged_in),
        Err(e) => undecoded(cx, from, e, logged_in),
    }
    logged_in
}

/// Answers a datagram that did not decode, from a user if `logged_in`.
fn undecoded(cx: &mut Ctx<'_>, from: SocketAddr, e: DecodeError, logged_in: bool) {
    let refusal = match e {
        // Anyone on the LAN may look for servers; a malformed look gets no answer (part
        // 4's server notes), logged in or not.
        DecodeError::TooShort | DecodeError::Malformed(code::DISCOVER) => return,
        DecodeError::TooLong { .. } => Refusal::DatagramTooLong,
        DecodeError::InvalidText(_) if logged_in => Refusal::InvalidText,
        DecodeError::InvalidText(_) => return,
        DecodeError::UnknownCode(_) | DecodeError::Malformed(_) if logged_in => {
            Refusal::Unimplemented
        }
        DecodeError::UnknownCode(_) | DecodeError::Malformed(_) => Refusal::PleaseLogIn,
    };
    cx.refuse(from, refusal);
}

/// The one match over requests: each arm calls the concept function that answers it.
/// `len` is the datagram's length (DISCOVER's answer is no longer).
fn request(cx: &mut Ctx<'_>, rq: &Req, request: Request<'_>, len: usize, logged_in: bool) {
    let from = rq.from;
    let logs_in = matches!(
        request,
        Request::Login { .. } | Request::Auth { .. } | Request::AuthFinish { .. }
    );
    if logs_in && operators::refuse_banned_address(cx, rq.wall, from) {
        return;
    }
    if let Some(refusal) = logged_in.then(|| control_text(&request)).flatten() {
        return cx.refuse(from, refusal);
    }
    match request {
        // Anyone may ask these.
        Request::Login { nick } => login::login(cx, rq, nick),
        Request::Auth {
            nick,
            message,
            token,
        } => sessions::auth_start(cx, rq, nick, message, token),
        Request::AuthFinish { message } => sessions::auth_finish(cx, rq, message),
        // Answered whoever asks (how often is the worker's limit to set).
        Request::Discover => multicast::discover(cx, from, len),
        _ if !logged_in => cx.refuse(from, Refusal::PleaseLogIn),

        // Parts 1 to 4: users.
        Request::Logoff => login::logoff(cx, from),
        Request::Join { title } => channels::join(cx, rq, title),
        Request::Part { title } => channels::part(cx, rq, title),
        Request::SendPublic { text } => messages::public(cx, rq, text),
        Request::SendPrivate { recipient, text } => messages::private(cx, rq, recipient, text),
        Request::ListChannels => channels::list_channels(cx, rq),
        Request::ListUsers => channels::list_users(cx, rq),
        Request::StillHere => {}
        Request::Who { prefix } => directory::who(cx, rq, prefix),
        Request::Whois { nick } => directory::whois(cx, rq, nick),
        Request::Watch { nicks } => hotlist::watch(cx, from, nicks),
        Request::Unwatch { nicks } => hotlist::unwatch(cx, from, nicks),
        Request::Register { message } => accounts::register_start(cx, rq, message),
        Request::RegisterUpload { message } => accounts::register_finish(cx, rq, message),
        Request::Unregister => accounts::unregister(cx, rq),
        Request::PathResponse { data } => sessions::path_response(cx, from, from, rq.session, data),
        Request::Caps { caps } => caps::caps(cx, rq, caps),
        Request::Ping { token } => caps::ping(cx, rq, token),
        Request::McastJoined { title } => multicast::joined(cx.sh, from, title),
        Request::McastLeft { title } => multicast::left(cx.sh, from, title),
        Request::ProveReq => proof::request(cx, rq),
        Request::Prove { token } => proof::prove(cx, rq, token),

        // Part 5: the community features, under the user's nickname.
        Request::Hello { .. } => as_actor(cx, rq, community::hello),
        Request::ChanCreate { title, description } => {
            as_actor(cx, rq, |cx, a| created::create(cx, a, title, description))
        }
        Request::ChanTopic { title, text } => {
            as_actor(cx, rq, |cx, a| moderation::topic(cx, a, title, text))
        }
        Request::ChanKick {
            title,
            nick,
            reason,
        } => as_actor(cx, rq, |cx, a| moderation::kick(cx, a, title, nick, reason)),
        Request::ChanBan {
            title,
            seconds,
            mask,
            reason,
        } => as_actor(cx, rq, |cx, a| {
            moderation::ban(cx, a, title, seconds, mask, reason)
        }),
        Request::ChanUnban { title, mask } => {
            as_actor(cx, rq, |cx, a| moderation::unban(cx, a, title, mask))
        }
        Request::ChanMode { title, change, arg } => {
            as_actor(cx, rq, |cx, a| modes::mode(cx, a, title, change, arg))
        }
        Request::ChanInvite { title, nick } => {
            as_actor(cx, rq, |cx, a| moderation::invite(cx, a, title, nick))
        }
        Request::ChanDrop { title } => {
            as_actor(cx, rq, |cx, a| created::drop_channel(cx, a, title))
        }
        Request::History { title, how, number } => as_actor(cx, rq, |cx, a| {
            history::history(cx, a.rq.from, title, how, number)
        }),
        Request::OperKill { nick, reason } => {
            as_actor(cx, rq, |cx, a| operators::kill(cx, a, nick, reason))
        }
        Request::OperBan {
            seconds,
            net,
            reason,
        } => as_actor(cx, rq, |cx, a| operators::ban(cx, a, seconds, net, reason)),
        Request::OperUnban { net } => as_actor(cx, rq, |cx, a| operators::unban(cx, a, net)),
        Request::OperNotice { text } => as_actor(cx, rq, |cx, a| operators::notice(cx, a, text)),
        Request::OperStatus => as_actor(cx, rq, operators::status),
        Request::MailRefuse { mask } => {
            as_actor(cx, rq, |cx, a| mailbox::refuse(cx, a, mask, true))
        }
        Request::MailAccept { mask } => {
            as_actor(cx, rq, |cx, a| mailbox::refuse(cx, a, mask, false))
        }
    }
}

/// The refusal of a part-5 request whose free text holds control characters (ESC, BEL,
/// CR, LF, the C1 controls...): a kick, ban or kill reason, or an operator's notice. It
/// would reach other users' terminals (a classic client prints `ERROR you were removed
/// ...: <reason>` as it comes), the audit log and the server log; refused here, once, before
/// any concept function sees it. Topics and descriptions are refused the same way where
/// they are checked (`invalid topic`, `invalid description`). Messages (`SEND_PUBLIC`,
/// `SEND_PRIVATE`) are not: the classic protocol lets them carry any text, and clients
/// defuse what they show.
fn control_text(request: &Request<'_>) -> Option<Refusal<'static>> {
    let controls = |text: &str| text.chars().any(char::is_control);
    match request {
        Request::ChanKick { reason, .. }
        | Request::ChanBan { reason, .. }
        | Request::OperKill { reason, .. }
        | Request::OperBan { reason, .. }
            if controls(reason) =>
        {
            Some(Refusal::InvalidReason)
        }
        Request::OperNotice { text } if controls(text) => Some(Refusal::InvalidNotice),
        _ => None,
    }
}

/// Runs the part-5 request `f` of the user at `rq.from` under its nickname; an address
/// that holds none (its login waits for the nickname's lease) gets no answer.
fn as_actor(cx: &mut Ctx<'_>, rq: &Req, f: impl FnOnce(&mut Ctx<'_>, &Actor<'_>)) {
    let Some(nick) = cx.sh.state.nick_of(rq.from) else {
        return;
    };
    f(
        cx,
        &Actor {
            rq: *rq,
            nick: &nick,
        },
    );
}

/// Feeds the result of an effect to the request that waited for it (`now`, `wall`: when
/// it came back).
pub(crate) fn done(cx: &mut Ctx<'_>, now: Instant, wall: SystemTime, done: Done) {
    let rq = Req {
        now,
        wall,
        from: done.ticket().addr,
        session: None,
    };
    match done {
        Done::Lease { ticket, answer } => login::lease_answered(cx, &rq, ticket, answer),
        Done::Loaded { ticket, account } => sessions::account_loaded(cx, now, ticket, account),
        Done::Stored { ticket, ok } => accounts::stored(cx, ticket, ok),
        Done::Community(done) => community::done(cx, &rq, done),
    }
}
