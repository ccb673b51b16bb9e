//! Messages: `SEND_PUBLIC` to the current channel and `SEND_PRIVATE` to one user, on this
//! server or, in a cluster, on another. A public message is also remembered in the
//! channel's history, and a private one for a registered user who is away is kept for
//! them (part 5, `history`).
//!
//! A public message is the hot path: one look-up of the sender, one of the channel, and
//! one fan-out sharing the channel's member snapshot (no copy of the member list).

use super::ctx::{unix_ms, Ctx, Req};
use super::history::{self, Said};
use super::refusal::Refusal;
use super::{multicast, rights};
use crate::cluster::{ClusterEvent, PrivateMessage, PublicMessage};
use proto::Event;

/// `SEND_PUBLIC text`: to every member of the sender's current channel.
pub(crate) fn public(cx: &mut Ctx<'_>, rq: &Req, text: &str) {
    let (sh, from) = (cx.sh, rq.from);
    let Some((nick, current)) = sh.state.nick_and_current(from) else {
        return;
    };
    let Some(ch) = current.and_then(|id| sh.state.channel(id)) else {
        return cx.refuse(from, Refusal::NoCurrentChannel);
    };
    if !rights::may_speak(cx, from, &ch) {
        return;
    }
    let event = Event::PublicMsg {
        title: &ch.title,
        sender: &nick,
        text,
    };
    multicast::fanout(cx, ch.id, ch.snapshot(), &event);
    let ms = unix_ms(rq.wall);
    let id = sh.state.next_message_id(ms);
    let said = Said {
        id,
        ms,
        nick: &nick,
        text,
    };
    history::remember(cx, &ch, said, true);
    cx.publish(ClusterEvent::Public(PublicMessage {
        title: ch.title.to_string(),
        nick: nick.to_string(),
        text: text.to_owned(),
        id,
        ms,
    }));
}

/// `SEND_PRIVATE recipient text`: to the user of that nickname here, or on the server
/// of the cluster that holds it, or kept for a registered user who is away.
pub(crate) fn private(cx: &mut Ctx<'_>, rq: &Req, recipient: &str, text: &str) {
    let (sh, from) = (cx.sh, rq.from);
    if recipient.is_empty() {
        return cx.refuse(from, Refusal::NoRecipient);
    }
    let Some(sender) = sh.state.nick_of(from) else {
        return;
    };
    // A reserved nickname (a login waiting for its lease) has an address but no user.
    if let Some(to) = sh.state.address_of(recipient) {
        if sh.state.nick_of(to).is_some() {
            let event = Event::PrivateMsg {
                sender: &sender,
                text,
            };
            return cx.out.send(to, &event);
        }
    }
    match sh.state.remote().get(recipient) {
        Some(r) if sh.config.cluster => cx.publish(ClusterEvent::Private {
            server: r.server.to_string(),
            message: PrivateMessage {
                to: r.nick.to_string(),
                from: sender.to_string(),
                text: text.to_owned(),
            },
        }),
        _ if history::keep_for_later(cx, rq, &sender, recipient, text) => {}
        _ => cx.refuse(from, Refusal::NotLoggedIn(recipient)),
    }
}
