//! Requests of several fields written as the client's commands are (`/kick Den bob
//! reason`): `req::kick("Den", "bob", "reason")` for `Request::ChanKick { .. }`, each
//! field in the order the protocol sends it.

use proto::Request;

/// SEND_PUBLIC: `text` to the current channel.
pub fn public(text: &str) -> Request<'_> {
    Request::SendPublic { text }
}

/// SEND_PRIVATE: `text` to `recipient`.
pub fn private<'a>(recipient: &'a str, text: &'a str) -> Request<'a> {
    Request::SendPrivate { recipient, text }
}

/// CHAN_CREATE: a channel `title` described as `description`.
pub fn create<'a>(title: &'a str, description: &'a str) -> Request<'a> {
    Request::ChanCreate { title, description }
}

/// CHAN_TOPIC: `title`'s description becomes `text`.
pub fn topic<'a>(title: &'a str, text: &'a str) -> Request<'a> {
    Request::ChanTopic { title, text }
}

/// CHAN_KICK: `nick` out of `title`, for `reason`.
pub fn kick<'a>(title: &'a str, nick: &'a str, reason: &'a str) -> Request<'a> {
    Request::ChanKick {
        title,
        nick,
        reason,
    }
}

/// CHAN_BAN: `mask` out of `title` for `seconds` (0: for good), for `reason`.
pub fn ban<'a>(title: &'a str, seconds: &'a str, mask: &'a str, reason: &'a str) -> Request<'a> {
    Request::ChanBan {
        title,
        seconds,
        mask,
        reason,
    }
}

/// CHAN_UNBAN: the ban of `mask` on `title` lifted.
pub fn unban<'a>(title: &'a str, mask: &'a str) -> Request<'a> {
    Request::ChanUnban { title, mask }
}

/// CHAN_MODE: `change` (with `arg`) on `title`; an empty `change` asks for the modes.
pub fn mode<'a>(title: &'a str, change: &'a str, arg: &'a str) -> Request<'a> {
    Request::ChanMode { title, change, arg }
}

/// CHAN_INVITE: `nick` into `title`.
pub fn invite<'a>(title: &'a str, nick: &'a str) -> Request<'a> {
    Request::ChanInvite { title, nick }
}

/// HISTORY_REQ: `title`'s messages, `how` (`last` or `since`) `number`.
pub fn history<'a>(title: &'a str, how: &'a str, number: &'a str) -> Request<'a> {
    Request::History { title, how, number }
}

/// OPER_KILL: `nick` disconnected, for `reason`.
pub fn kill<'a>(nick: &'a str, reason: &'a str) -> Request<'a> {
    Request::OperKill { nick, reason }
}

/// OPER_BAN: addresses in `net` banned for `seconds` (0: for good), for `reason`.
pub fn oper_ban<'a>(seconds: &'a str, net: &'a str, reason: &'a str) -> Request<'a> {
    Request::OperBan {
        seconds,
        net,
        reason,
    }
}
