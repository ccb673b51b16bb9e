//! Who may do what (part 5): the account a user is logged in to, server operators,
//! channel operators, and the checks a join, a public message or a moderation request
//! passes first. A check that fails sends its refusal and says so, like a request would.

use std::net::SocketAddr;
use std::sync::Arc;

use super::ctx::{unix_ms, Ctx, Req, Shared};
use super::refusal::Refusal;
use crate::outbox::Order;
use crate::settings::Live;
use crate::state::{nick_key, role, Channel};

/// The account the user at `addr` is logged in to with its password, as a key.
pub(crate) fn account_of(sh: &Shared, addr: SocketAddr) -> Option<String> {
    let u = sh.state.user(addr)?;
    u.session.map(|_| nick_key(&u.nick))
}

/// Whether the user at `addr` is a server operator: logged in with its password to an
/// account that the configuration names (`operators`) *and* that is marked as an
/// operator's in the store. The mark is set only by `chat-server accounts` on the
/// server's own database, never over the network, so the right belongs to credentials
/// the server's operator made, not to whoever registered a listed nickname first. Asked
/// at every request: a reload that drops the name, or a delete or demotion in the store,
/// ends the rights of a session already logged in at its next request.
pub(crate) fn is_server_op(sh: &Shared, live: &Live, addr: SocketAddr) -> bool {
    account_of(sh, addr)
        .is_some_and(|a| live.is_operator(&a) && sh.accounts.is_operator_account(&a))
}

/// Whether `nick` is reserved for a server operator: the configuration names it, or a
/// look-alike of it (`proto::nick` skeletons). Only the account made for it with
/// `chat-server accounts add` may hold it; a guest login or a registration over the
/// network of it is refused, so that nobody can take a listed name before its operator
/// does (or after its account was deleted), nor pass for the operator under `r\u{43e}ot`.
pub(crate) fn reserved(sh: &Shared, live: &Live, nick: &str) -> bool {
    live.is_operator(&nick_key(nick)) || sh.accounts.is_reserved(nick)
}

/// A password login to the operator's account of `nick` found the nickname held by a
/// guest elsewhere: one that logged in before a reload listed the name (a guest can't
/// take it since). The guest is disconnected, by an order to the worker that owns it, so
/// that the operator's next login gets the name; the login itself is refused as the
/// nickname is in use. Nothing happens for any other holder.
pub(crate) fn evict_squatter(cx: &mut Ctx<'_>, nick: &str) {
    let (sh, key) = (cx.sh, nick_key(nick));
    if !cx.live().is_operator(&key) || !sh.accounts.is_operator_account(&key) {
        return;
    }
    let Some(addr) = sh.state.address_of(nick) else {
        return;
    };
    let Some(held) = sh.state.user(addr).filter(|u| u.session.is_none()) else {
        return;
    };
    tracing::info!(%addr, nick = %held.nick, "guest holding an operator's nickname disconnected for its password login");
    let order = Order::Disconnect {
        nick: held.nick.to_string(),
        by: "the server".into(),
        reason: "nickname is reserved for a server operator".into(),
    };
    cx.relay(addr, order);
}

/// Whether the user at `from` is a server operator; refuses it if not.
pub(crate) fn operator(cx: &mut Ctx<'_>, from: SocketAddr) -> bool {
    let ok = is_server_op(cx.sh, &cx.live(), from);
    if !ok {
        cx.refuse(from, Refusal::NotServerOperator);
    }
    ok
}

/// Whether the user at `addr` may moderate `ch`: a server operator, an operator
/// member, or a lasting operator's account.
pub(crate) fn may_moderate(sh: &Shared, addr: SocketAddr, ch: &Channel) -> bool {
    if ch.roles(addr) & role::OP != 0 || is_server_op(sh, &sh.live.get(), addr) {
        return true;
    }
    account_of(sh, addr).is_some_and(|a| ch.with_meta(|m| m.is_op_account(&a)))
}

/// The channel `title` if the user at `from` may moderate it; otherwise it is refused
/// and `None` returned.
pub(crate) fn moderated_channel(
    cx: &mut Ctx<'_>,
    from: SocketAddr,
    title: &str,
) -> Option<Arc<Channel>> {
    let Some(ch) = cx.sh.state.channel_by_title(title) else {
        cx.refuse(from, Refusal::NoChannel(title));
        return None;
    };
    if !may_moderate(cx.sh, from, &ch) {
        cx.refuse(from, Refusal::NotOperatorOf(&ch.title));
        return None;
    }
    Some(ch)
}

/// Whether the user at `rq.from` (`nick`) may join `ch`, and with what roles: a server
/// operator or a lasting operator always may, as an operator; otherwise not while
/// banned, nor without an invitation into an invite-only channel. A member joining
/// again only makes the channel current. `None`: refused.
pub(crate) fn may_join(cx: &mut Ctx<'_>, rq: &Req, nick: &str, ch: &Channel) -> Option<u8> {
    let from = rq.from;
    if ch.contains(from) {
        return Some(0);
    }
    if is_server_op(cx.sh, &cx.live(), from) {
        return Some(role::OP);
    }
    let account = account_of(cx.sh, from);
    let now_ms = unix_ms(rq.wall);
    // Decided under the channel's lock, refused after it.
    let verdict = ch.with_meta(|m| {
        if account.as_deref().is_some_and(|a| m.is_op_account(a)) {
            return Ok(role::OP);
        }
        if let Some(ban) = m.ban_on(nick, account.as_deref(), now_ms) {
            return Err(Some(ban.reason));
        }
        if m.invite_only && !m.take_invite(nick) {
            return Err(None);
        }
        Ok(0)
    });
    let refusal = match &verdict {
        Ok(roles) => return Some(*roles),
        Err(Some(reason)) => Refusal::Banned(&ch.title, reason),
        Err(None) => Refusal::InviteOnly(&ch.title),
    };
    cx.refuse(from, refusal);
    None
}

/// Whether the user at `from` may speak in `ch`: not in a moderated channel without a
/// voice or the rights (refused).
pub(crate) fn may_speak(cx: &mut Ctx<'_>, from: SocketAddr, ch: &Channel) -> bool {
    if !ch.with_meta(|m| m.moderated)
        || ch.roles(from) & (role::OP | role::VOICE) != 0
        || may_moderate(cx.sh, from, ch)
    {
        return true;
    }
    cx.refuse(from, Refusal::Moderated(&ch.title));
    false
}
