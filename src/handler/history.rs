//! What is remembered (part 5): each channel's recent public messages, asked for with
//! `HISTORY_REQ` (`since` a message id or the `last` few) and sent in batches of
//! `HISTORY_MSG` closed by `HISTORY_END`; and private messages to registered users who are
//! away, kept in the store (only from senders that proved their address; a bounded number
//! per recipient, per sender and from guests; none from senders the recipient refuses,
//! `mailbox`) and delivered as `STORED_PRIVATE` at their next password login.

use std::net::SocketAddr;
use std::time::Instant;

use super::audit::Audit;
use super::ctx::{unix_ms, Ctx, MailWait, Req};
use super::refusal::Refusal;
use super::rights::is_server_op;
use crate::accounts::limits::Prefix;
use crate::accounts::{account_sender, guest_sender, MailLimits, StoredMail, StoredMessage};
use crate::outbox::CommunityEffect;
use crate::settings::HISTORY_BATCH;
use crate::state::community::Entry;
use crate::state::{nick_key, Channel, Kind, Presence, Route};
use proto::Event;

/// A public message as it is remembered, borrowed from the request or cluster event.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Said<'m> {
    /// Its id, unique in the cluster (see `State::next_message_id`).
    pub(crate) id: u64,
    /// When it was sent, in milliseconds since the Unix epoch.
    pub(crate) ms: u64,
    pub(crate) nick: &'m str,
    pub(crate) text: &'m str,
}

/// Remembers the public message `said` of `ch`; with `origin` (sent through this server)
/// also asks for it to be stored when the channel's history is kept in the store.
pub(crate) fn remember(cx: &mut Ctx<'_>, ch: &Channel, said: Said<'_>, origin: bool) {
    let live = cx.live();
    if live.history == 0 {
        return;
    }
    let Said { id, ms, nick, text } = said;
    ch.with_history(|h| {
        h.push(
            Entry {
                id,
                ms,
                nick: nick.into(),
                text: text.into(),
            },
            live.history,
        )
    });
    if origin && live.persist_history && ch.with_meta(|m| m.kind) != Kind::Temporary {
        cx.community(CommunityEffect::SaveMessage {
            chan: ch.title.to_lowercase(),
            message: StoredMessage {
                id,
                ms,
                nick: nick.to_owned(),
                text: text.to_owned(),
            },
            keep: live.history,
        });
    }
}

/// `HISTORY_REQ title since|last N`: members (and server operators) get the
/// messages, oldest first, at most a batch, then `HISTORY_END title last more`.
pub(crate) fn history(cx: &mut Ctx<'_>, from: SocketAddr, title: &str, how: &str, number: &str) {
    let Some(ch) = cx.sh.state.channel_by_title(title) else {
        return cx.refuse(from, Refusal::NoChannel(title));
    };
    if !ch.contains(from) && !is_server_op(cx.sh, &cx.live(), from) {
        return cx.refuse(from, Refusal::NotIn(&ch.title));
    }
    let Ok(n) = number.parse::<u64>() else {
        return cx.refuse(from, Refusal::InvalidHistory);
    };
    let (entries, more) = match how {
        "since" => ch.with_history(|h| h.since(n, HISTORY_BATCH)),
        "last" => ch.with_history(|h| h.last(n.min(usize::MAX as u64) as usize, HISTORY_BATCH)),
        _ => return cx.refuse(from, Refusal::InvalidHistory),
    };
    for e in &entries {
        cx.out.send(
            from,
            &Event::HistoryMsg {
                title: &ch.title,
                id: e.id,
                ms: e.ms,
                sender: &e.nick,
                text: &e.text,
            },
        );
    }
    cx.out.send(
        from,
        &Event::HistoryEnd {
            title: &ch.title,
            last: entries.last().map_or(0, |e| e.id),
            more: more as u64,
        },
    );
}

/// A private message from `sender` at `rq.from` to `recipient`, who is nowhere logged
/// in: kept for it if it is a registered user (and mailboxes are on). Returns whether it
/// is answered here (being kept, or refused because the sender's address is not proved);
/// `false` leaves the classic answer (`not logged in`) to the caller.
///
/// Only a sender that proved its address may leave a message: anyone can log in as a
/// guest under a forged source address, and what it left would outlive it. A classic
/// client can't prove, and is told what a classic server says; a part-5 client is told
/// why. The store then applies the recipient's refusals and the limits per sender (an
/// account, or a guest's network: a guest's nickname costs nothing to change), for
/// guests together and in all.
pub(crate) fn keep_for_later(
    cx: &mut Ctx<'_>,
    rq: &Req,
    sender: &str,
    recipient: &str,
    text: &str,
) -> bool {
    let live = cx.live();
    if live.mailbox == 0 || !cx.sh.accounts.is_registered(recipient) {
        return false;
    }
    let Some(user) = cx.sh.state.user(rq.from) else {
        return false;
    };
    if !user.proved {
        Audit::count(&cx.sh.audit.mail_unproved);
        if user.community {
            cx.refuse(rq.from, Refusal::NotProved);
        }
        return user.community;
    }
    let (route, account, sender_id) = match user.session {
        Some(id) => {
            let key = nick_key(sender);
            (Route::Session(id), Some(key.clone()), account_sender(&key))
        }
        None => (
            Route::Addr(rq.from),
            None,
            guest_sender(Prefix::of(rq.from)),
        ),
    };
    let ticket = cx.ticket(rq.from, route);
    let wait = MailWait::Mail {
        addr: rq.from,
        recipient: recipient.to_owned(),
        since: rq.now,
    };
    if !cx.wait_for_mail(ticket.serial, wait) {
        return false;
    }
    cx.community(CommunityEffect::StoreMail {
        ticket,
        mail: StoredMail {
            to: nick_key(recipient),
            ms: unix_ms(rq.wall),
            from: sender.to_owned(),
            sender_id,
            text: text.to_owned(),
        },
        account,
        limits: MailLimits {
            max: live.mailbox,
            per_sender: live.mailbox_per_sender,
            // Half for guests (rounded up), so that guests from many networks can't
            // shut out the senders with accounts.
            guests: live.mailbox.div_ceil(2),
        },
    });
    true
}

/// After a password login of `nick` at `from`: asks for the private messages kept
/// while it was away.
pub(crate) fn fetch_mail(cx: &mut Ctx<'_>, now: Instant, from: SocketAddr, nick: &str) {
    if !matches!(cx.sh.state.presence(from), Presence::Protected(_)) {
        return;
    }
    if cx.live().mailbox == 0 {
        return;
    }
    let key = nick_key(nick);
    // The result comes back to this worker (the login runs on the address's), so the
    // messages follow the LOGIN_ACK this round sends.
    let ticket = cx.ticket(from, Route::Addr(from));
    let wait = MailWait::Inbox {
        addr: from,
        key: key.clone(),
        since: now,
    };
    if cx.wait_for_mail(ticket.serial, wait) {
        cx.community(CommunityEffect::TakeMail { ticket, key });
    }
}
