//! Messages: `SEND_PUBLIC` to the current channel and `SEND_PRIVATE` to one user, on this
//! server or, in a cluster, on another.

use std::net::SocketAddr;

use super::{Handler, Outbox};
use crate::outbox::ClusterEvent;
use crate::protocol::{errors, Event};

impl Handler {
    pub(super) fn public(&self, from: SocketAddr, text: &str, out: &mut Outbox) {
        let Some((nick, current)) = self.state.nick_and_current(from) else {
            return;
        };
        let Some(id) = current else {
            return out.error(from, errors::NO_CURRENT_CHANNEL);
        };
        let ch = self.state.channel(id);
        let event = Event::PublicMsg {
            title: &ch.title,
            sender: &nick,
            text,
        };
        self.channel_fanout(id, ch.snapshot(), &event, out);
        self.publish(
            ClusterEvent::Public {
                title: ch.title.to_string(),
                nick: nick.to_string(),
                text: text.to_owned(),
            },
            out,
        );
    }

    pub(super) fn private(&self, from: SocketAddr, recipient: &str, text: &str, out: &mut Outbox) {
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
        match self.state.remote.get(recipient) {
            Some(r) if self.config.cluster => self.publish(
                ClusterEvent::Private {
                    server: r.server.to_string(),
                    to: r.nick.to_string(),
                    from: sender.to_string(),
                    text: text.to_owned(),
                },
                out,
            ),
            _ => out.error(from, &format!("{recipient}: not logged in")),
        }
    }
}
