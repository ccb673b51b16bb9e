//! Messages: `SEND_PUBLIC` to the current channel and `SEND_PRIVATE` to one user, on this
//! server or, in a cluster, on another. A public message is also remembered in the
//! channel's history, and a private one for a registered user who is away is kept for
//! them (part 5, `history`).

use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

use super::{unix_ms, Handler, Outbox};
use crate::cluster::ClusterEvent;
use proto::{errors, Event};

impl Handler {
    pub(super) fn public(&self, wall: SystemTime, from: SocketAddr, text: &str, out: &mut Outbox) {
        let Some((nick, current)) = self.state.nick_and_current(from) else {
            return;
        };
        let Some(id) = current else {
            return out.error(from, errors::NO_CURRENT_CHANNEL);
        };
        let Some(ch) = self.state.channel(id) else {
            return out.error(from, errors::NO_CURRENT_CHANNEL);
        };
        if let Some(refusal) = self.may_speak(from, &ch) {
            return out.error(from, &refusal);
        }
        let event = Event::PublicMsg {
            title: &ch.title,
            sender: &nick,
            text,
        };
        self.channel_fanout(id, ch.snapshot(), &event, out);
        let ms = unix_ms(wall);
        let msg_id = self.state.next_message_id(ms);
        self.remember(&ch, msg_id, ms, &nick, text, true, out);
        self.publish(
            ClusterEvent::Public {
                title: ch.title.to_string(),
                nick: nick.to_string(),
                text: text.to_owned(),
                id: msg_id,
                ms,
            },
            out,
        );
    }

    pub(super) fn private(
        &self,
        now: Instant,
        wall: SystemTime,
        from: SocketAddr,
        recipient: &str,
        text: &str,
        out: &mut Outbox,
    ) {
        if recipient.is_empty() {
            return out.error(from, errors::NO_RECIPIENT);
        }
        let Some(sender) = self.state.nick_of(from) else {
            return;
        };
        // A reserved nickname (a login waiting for its lease) has an address but no user.
        if let Some(to) = self.state.address_of(recipient) {
            if self.state.nick_of(to).is_some() {
                return out.send(
                    to,
                    &Event::PrivateMsg {
                        sender: &sender,
                        text,
                    },
                );
            }
        }
        match self.state.remote().get(recipient) {
            Some(r) if self.config.cluster => self.publish(
                ClusterEvent::Private {
                    server: r.server.to_string(),
                    to: r.nick.to_string(),
                    from: sender.to_string(),
                    text: text.to_owned(),
                },
                out,
            ),
            _ if self.keep_for_later(now, wall, from, &sender, recipient, text, out) => {}
            _ => out.error(from, &format!("{recipient}: not logged in")),
        }
    }
}
