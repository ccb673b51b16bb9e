//! What is remembered (part 5): each channel's recent public messages, asked for with
//! `HISTORY_REQ` (`since` a message id or the `last` few) and sent in batches of
//! `HISTORY_MSG` closed by `HISTORY_END`; and private messages to registered users who are
//! away, kept in the store (a bounded number per recipient) and delivered as
//! `STORED_PRIVATE` at their next password login.

use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

use super::community::Wait;
use super::{unix_ms, Handler, Outbox};
use crate::accounts::{StoredMail, StoredMessage};
use crate::outbox::CommunityEffect;
use crate::settings::HISTORY_BATCH;
use crate::state::community::Entry;
use crate::state::{nick_key, Channel, Kind, Presence, Route};
use proto::Event;

impl Handler {
    /// Remembers a public message of `ch`; with `origin` (sent through this server) also
    /// asks for it to be stored when the channel's history is kept in the store.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn remember(
        &self,
        ch: &Channel,
        id: u64,
        ms: u64,
        nick: &str,
        text: &str,
        origin: bool,
        out: &mut Outbox,
    ) {
        let live = self.live();
        if live.history == 0 {
            return;
        }
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
            self.community_effect(
                CommunityEffect::SaveMessage {
                    chan: ch.title.to_lowercase(),
                    message: StoredMessage {
                        id,
                        ms,
                        nick: nick.to_owned(),
                        text: text.to_owned(),
                    },
                    keep: live.history,
                },
                out,
            );
        }
    }

    /// `HISTORY_REQ title since|last N`: members (and server operators) get the
    /// messages, oldest first, at most a batch, then `HISTORY_END title last more`.
    pub(super) fn history(
        &self,
        from: SocketAddr,
        title: &str,
        how: &str,
        number: &str,
        out: &mut Outbox,
    ) {
        let Some(ch) = self.state.channel_by_title(title) else {
            return out.error(from, &format!("no channel named {title}"));
        };
        if !ch.contains(from) && !self.is_server_op(&self.live(), from) {
            return out.error(from, &format!("you are not in {}", ch.title));
        }
        let Ok(n) = number.parse::<u64>() else {
            return out.error(from, "give since MESSAGE-ID or last COUNT");
        };
        let (entries, more) = match how {
            "since" => ch.with_history(|h| h.since(n, HISTORY_BATCH)),
            "last" => ch.with_history(|h| h.last(n.min(usize::MAX as u64) as usize, HISTORY_BATCH)),
            _ => return out.error(from, "give since MESSAGE-ID or last COUNT"),
        };
        for e in &entries {
            out.send(
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
        out.send(
            from,
            &Event::HistoryEnd {
                title: &ch.title,
                last: entries.last().map_or(0, |e| e.id),
                more: more as u64,
            },
        );
    }

    /// A private message to `recipient`, who is nowhere logged in: kept for it if it is a
    /// registered user (and mailboxes are on). Returns whether it is being kept.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn keep_for_later(
        &self,
        now: Instant,
        wall: SystemTime,
        from: SocketAddr,
        sender: &str,
        recipient: &str,
        text: &str,
        out: &mut Outbox,
    ) -> bool {
        let live = self.live();
        if live.mailbox == 0 || !self.accounts.is_registered(recipient) {
            return false;
        }
        let Some(route) = self.route_of_user(from) else {
            return false;
        };
        let ticket = self.ticket(from, route);
        let wait = Wait::Mail {
            addr: from,
            recipient: recipient.to_owned(),
            since: now,
        };
        if !self.wait_for(ticket.serial, wait) {
            return false;
        }
        self.community_effect(
            CommunityEffect::StoreMail {
                ticket,
                mail: StoredMail {
                    to: nick_key(recipient),
                    ms: unix_ms(wall),
                    from: sender.to_owned(),
                    text: text.to_owned(),
                },
                max: live.mailbox,
            },
            out,
        );
        true
    }

    /// After a password login of `nick` at `from`: asks for the private messages kept
    /// while it was away.
    pub(super) fn fetch_mail(&self, now: Instant, from: SocketAddr, nick: &str, out: &mut Outbox) {
        if !matches!(self.state.presence(from), Presence::Protected(_)) {
            return;
        }
        if self.live().mailbox == 0 {
            return;
        }
        let key = nick_key(nick);
        // The result comes back to this worker (the login runs on the address's), so the
        // messages follow the LOGIN_ACK this round sends.
        let ticket = self.ticket(from, Route::Addr(from));
        let wait = Wait::Inbox {
            addr: from,
            key: key.clone(),
            since: now,
        };
        if self.wait_for(ticket.serial, wait) {
            self.community_effect(CommunityEffect::TakeMail { ticket, key }, out);
        }
    }
}
