//! Server operators (part 5): the registered nicknames the configuration names, logged in
//! with their passwords. `OPER_KILL` disconnects a user, `OPER_BAN`/`OPER_UNBAN` ban an
//! address or network (stored, with an expiry), `OPER_NOTICE` tells everyone,
//! `OPER_STATUS` shows the server's state. Each is answered with `OPER_ACK` (or the
//! status lines) and written to the audit log; anyone else gets
//! `ERROR you are not a server operator`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use super::created::created_channels;
use super::ctx::{unix_ms, Actor, Ctx};
use super::moderation::{ban_time, BanTime};
use super::refusal::Refusal;
use super::rights::{is_server_op, operator};
use crate::accounts::StoredAddrBan;
use crate::cluster::CommunityEvent;
use crate::outbox::CommunityEffect;
use crate::outbox::Order;
use crate::state::community::{AddrBan, Net};
use crate::state::{Member, User};
use proto::Event;

/// A login from a banned address is refused: returns whether it was.
pub(crate) fn refuse_banned_address(cx: &mut Ctx<'_>, wall: SystemTime, from: SocketAddr) -> bool {
    match cx.sh.state.addr_bans().on(from, unix_ms(wall)) {
        Some(ban) => {
            cx.refuse(from, Refusal::BannedFromServer(&ban.reason));
            true
        }
        None => false,
    }
}

/// `OPER_KILL nick reason`: the user is disconnected, here or on its server.
pub(crate) fn kill(cx: &mut Ctx<'_>, a: &Actor<'_>, who: &str, reason: &str) {
    let (sh, from) = (cx.sh, a.rq.from);
    if !operator(cx, from) {
        return;
    }
    let reason = if reason.is_empty() {
        "no reason given"
    } else {
        reason
    };
    if let Some(addr) = sh.state.address_of(who) {
        let Some(held) = sh.state.nick_of(addr) else {
            return cx.refuse(from, Refusal::NotLoggedIn(who));
        };
        let order = Order::Disconnect {
            nick: held.to_string(),
            by: a.nick.to_owned(),
            reason: reason.to_owned(),
        };
        cx.relay(addr, order);
    } else if let Some(r) = sh.state.remote().get(who).filter(|_| sh.config.cluster) {
        cx.publish_community(CommunityEvent::Kill {
            nick: r.nick.to_string(),
            by: a.nick.to_owned(),
            reason: reason.to_owned(),
        });
    } else {
        return cx.refuse(from, Refusal::NotLoggedIn(who));
    }
    ack(cx, from, "kill", who, reason);
    cx.log(a, "oper-kill", who, reason);
}

/// `OPER_BAN seconds net reason`.
pub(crate) fn ban(cx: &mut Ctx<'_>, a: &Actor<'_>, seconds: &str, net: &str, reason: &str) {
    let from = a.rq.from;
    if !operator(cx, from) {
        return;
    }
    let Some(BanTime { secs, until_ms }) = ban_time(cx, a, seconds) else {
        return;
    };
    let Some(parsed) = Net::parse(net) else {
        return cx.refuse(from, Refusal::InvalidAddress);
    };
    let record = StoredAddrBan {
        net: parsed.to_string(),
        until_ms,
        by: a.nick.to_owned(),
        reason: reason.to_owned(),
    };
    let Some(ban) = apply_addr_ban(cx, &record, unix_ms(a.rq.wall)) else {
        return cx.refuse(from, Refusal::TooManyAddressBans);
    };
    cx.community(CommunityEffect::SaveAddrBan(record.clone()));
    cx.publish_community(CommunityEvent::AddrBan(record));
    let detail = format!("{secs} {reason}");
    let (net, detail) = (ban.net.to_string(), detail.trim_end());
    ack(cx, from, "ban", &net, detail);
    cx.log(a, "oper-ban", &net, detail);
}

/// Puts an address ban in force here and disconnects the local users it covers
/// (server operators excepted); `None` when the server holds as many as it may.
pub(crate) fn apply_addr_ban(
    cx: &mut Ctx<'_>,
    record: &StoredAddrBan,
    now_ms: u64,
) -> Option<AddrBan> {
    let sh = cx.sh;
    let ban = AddrBan {
        net: Net::parse(&record.net)?,
        until_ms: record.until_ms,
        by: record.by.as_str().into(),
        reason: record.reason.as_str().into(),
    };
    let live = cx.live();
    if !sh
        .state
        .addr_bans()
        .set(ban.clone(), live.max_server_bans, now_ms)
    {
        return None;
    }
    for (addr, user) in sh.state.users() {
        if ban.net.contains(addr.ip()) && !is_server_op(sh, &live, addr) {
            let reason = if ban.reason.is_empty() {
                "banned from this server".to_owned()
            } else {
                format!("banned from this server: {}", ban.reason)
            };
            let order = Order::Disconnect {
                nick: user.nick.to_string(),
                by: ban.by.to_string(),
                reason,
            };
            cx.relay(addr, order);
        }
    }
    Some(ban)
}

/// `OPER_UNBAN net`.
pub(crate) fn unban(cx: &mut Ctx<'_>, a: &Actor<'_>, net: &str) {
    let from = a.rq.from;
    if !operator(cx, from) {
        return;
    }
    let Some(parsed) = Net::parse(net) else {
        return cx.refuse(from, Refusal::InvalidAddress);
    };
    if !cx.sh.state.addr_bans().remove(parsed) {
        return cx.refuse(from, Refusal::NoAddressBan(parsed));
    }
    let text = parsed.to_string();
    cx.community(CommunityEffect::DeleteAddrBan { net: text.clone() });
    cx.publish_community(CommunityEvent::AddrUnban { net: text.clone() });
    ack(cx, from, "unban", &text, "");
    cx.log(a, "oper-unban", &text, "");
}

/// `OPER_NOTICE text`: every user of the cluster is told.
pub(crate) fn notice(cx: &mut Ctx<'_>, a: &Actor<'_>, text: &str) {
    let from = a.rq.from;
    if !operator(cx, from) {
        return;
    }
    if text.is_empty() {
        return cx.refuse(from, Refusal::NoNotice);
    }
    notice_everyone(cx, a.nick, text);
    cx.publish_community(CommunityEvent::Notice {
        from: a.nick.to_owned(),
        text: text.to_owned(),
    });
    ack(cx, from, "notice", "-", "");
    cx.log(a, "oper-notice", "-", text);
}

/// Tells every local user: part-5 clients as `SERVER_NOTICE`, classic ones as a
/// `PRIVATE_MSG` from the operator (the only way part 1 has to show it).
pub(crate) fn notice_everyone(cx: &mut Ctx<'_>, from: &str, text: &str) {
    let users = cx.sh.state.users();
    let (part5, classic): (Vec<_>, Vec<_>) = users.iter().partition(|(_, u)| u.community);
    let members = |list: Vec<&(SocketAddr, User)>| -> Arc<[Member]> {
        list.into_iter()
            .map(|(a, u)| Member::new(*a, u.caps.batch.unwrap_or(0)).unproved(!u.proved))
            .collect()
    };
    cx.out
        .fanout(members(part5), &Event::ServerNotice { from, text }, 0);
    cx.out.fanout(
        members(classic),
        &Event::PrivateMsg { sender: from, text },
        0,
    );
}

/// `OPER_STATUS`: one `STATUS_ITEM` per figure.
pub(crate) fn status(cx: &mut Ctx<'_>, a: &Actor<'_>) {
    let (sh, from) = (cx.sh, a.rq.from);
    if !operator(cx, from) {
        return;
    }
    let (created, _) = created_channels(sh, None);
    let history: usize = sh
        .state
        .channels()
        .iter()
        .map(|c| c.with_history(|h| h.len()))
        .sum();
    let items = [
        ("users", sh.state.user_count().to_string()),
        ("remote-users", sh.state.remote().len().to_string()),
        ("channels", sh.state.channel_count().to_string()),
        ("created-channels", created.to_string()),
        ("accounts", sh.accounts.registered_count().to_string()),
        (
            "address-bans",
            sh.state.addr_bans().list().len().to_string(),
        ),
        ("history-messages", history.to_string()),
        ("cluster", sh.config.cluster.to_string()),
        ("time-ms", unix_ms(a.rq.wall).to_string()),
    ];
    for (key, value) in &items {
        cx.out.send(from, &Event::StatusItem { key, value });
    }
}

/// `OPER_ACK action target detail`.
fn ack(cx: &mut Ctx<'_>, to: SocketAddr, action: &str, target: &str, detail: &str) {
    let event = Event::OperAck {
        action,
        target,
        detail,
    };
    cx.out.send(to, &event);
}
