//! Part 5, the community features: `HELLO`, and the results of part-5 effects (a private
//! message kept for a user away, the messages kept for a user who logs in, an order for
//! the worker that owns a user).
//!
//! A client becomes a part-5 client by saying `HELLO` after it logs in; from then on it
//! is sent part-5 notices (`CHAN_NOTICE`, `INVITED`, `SERVER_NOTICE`). Classic clients never
//! say it, so they see exactly part 1: a kick shows them `USER_PARTS`, a notice to everyone
//! a `PRIVATE_MSG`. Who may do what is in [`super::rights`]; the requests themselves in
//! [`super::created`], [`super::moderation`], [`super::modes`], [`super::history`] and
//! [`super::operators`].

use super::audit::Audit;
use super::ctx::{unix_ms, Actor, Ctx, MailWait, Req};
use super::refusal::Refusal;
use super::{login, mailbox, moderation};
use crate::accounts::Kept;
use crate::outbox::community::Order;
use crate::outbox::CommunityDone;
use crate::state::{nick_key, Route};
use proto::Event;

/// `HELLO`: the user becomes a part-5 client; it gets the message of the day, then
/// `HELLO_ACK`.
pub(crate) fn hello(cx: &mut Ctx<'_>, a: &Actor<'_>) {
    let from = a.rq.from;
    cx.sh.state.set_community(from);
    let live = cx.live();
    for line in &live.motd {
        cx.out.send(from, &Event::Motd { text: line });
    }
    cx.out.send(
        from,
        &Event::HelloAck {
            history: live.history as u64,
            now_ms: unix_ms(a.rq.wall),
        },
    );
}

/// Feeds back the result of a part-5 effect; `rq` holds the time (its address is the
/// ticket's).
pub(crate) fn done(cx: &mut Ctx<'_>, rq: &Req, done: CommunityDone) {
    let sh = cx.sh;
    match done {
        CommunityDone::Mailed { ticket, stored } => {
            let Some((
                _,
                MailWait::Mail {
                    addr, recipient, ..
                },
            )) = sh.waits.mail.remove(&ticket.serial)
            else {
                return;
            };
            if sh.state.nick_of(addr).is_none() {
                return;
            }
            if matches!(stored, Ok(k) if k != Kept::Kept) {
                Audit::count(&sh.audit.mail_refused);
            }
            match stored {
                Ok(Kept::Kept) if sh.state.is_community(addr) => cx.out.send(
                    addr,
                    &Event::PrivateStored {
                        recipient: &recipient,
                    },
                ),
                Ok(Kept::Kept) => {}
                Ok(Kept::Full) => cx.refuse(addr, Refusal::MailboxFull(&recipient)),
                Ok(Kept::SenderFull) => cx.refuse(addr, Refusal::MailboxSenderFull(&recipient)),
                Ok(Kept::Refused) => cx.refuse(addr, Refusal::MailRefused(&recipient)),
                Err(()) => cx.refuse(addr, Refusal::NotLoggedIn(&recipient)),
            }
        }
        CommunityDone::Refusals { ticket, list } => mailbox::refused(cx, ticket.serial, list),
        CommunityDone::Mail { ticket, mail } => {
            let Some((_, MailWait::Inbox { addr, key, .. })) = sh.waits.mail.remove(&ticket.serial)
            else {
                return;
            };
            let Ok(mail) = mail else {
                return;
            };
            if sh.state.nick_of(addr).is_none_or(|n| nick_key(&n) != key) {
                return;
            }
            for m in &mail {
                cx.out.send(
                    addr,
                    &Event::StoredPrivate {
                        ms: m.ms,
                        sender: &m.from,
                        text: &m.text,
                    },
                );
            }
        }
        CommunityDone::Order { ticket, order } => carry_out(cx, rq, ticket.route, order),
    }
}

/// Carries out an order for a user of this worker (see [`Order`]).
fn carry_out(cx: &mut Ctx<'_>, rq: &Req, route: Route, order: Order) {
    let nick = match &order {
        Order::Evict { nick, .. } | Order::Disconnect { nick, .. } => nick.clone(),
    };
    // The user may have logged off, or its nickname may have gone to someone else
    // whose record another worker owns: then there is nothing to do here.
    let Some(addr) = cx.sh.state.address_of(&nick) else {
        return;
    };
    if cx.route_of_user(addr) != Some(route) {
        return;
    }
    match order {
        Order::Evict { id, by, reason, .. } => {
            let rq = Req { from: addr, ..*rq };
            moderation::evicted(cx, &rq, id, &by, &reason)
        }
        Order::Disconnect { by, reason, .. } => {
            cx.refuse(addr, Refusal::Disconnected(&by, &reason));
            login::logoff(cx, addr);
        }
    }
}
