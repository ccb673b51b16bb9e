//! What the other servers of a cluster report, fed in by the cluster thread: changes to
//! the view of their users, with the notices each change owes to local users
//! (USER_JOINS/PARTS to local members of the channel, USER_ONLINE/OFFLINE to local
//! watchers), and their public and private messages for local users.

use super::{Handler, Outbox};
use crate::cluster::{ClusterInput, UserInfo};
use crate::state::{ChannelId, RemoteChange, RemoteUser};
use proto::Event;

impl Handler {
    /// Applies what the cluster reported. Runs on the cluster thread, the only writer of
    /// the view of remote users.
    pub fn cluster_input(&self, input: ClusterInput, out: &mut Outbox) {
        match input {
            ClusterInput::User { server, nick, info } => {
                let user = info.map(|i| self.remote_user(&server, &i));
                if let Some(change) = self.state.remote().set(&server, &nick, user) {
                    self.notify(&change, out);
                }
            }
            ClusterInput::Server { server, users } => {
                let users = users.iter().map(|i| self.remote_user(&server, i)).collect();
                for change in self.state.remote().replace_server(&server, users) {
                    self.notify(&change, out);
                }
            }
            ClusterInput::Public {
                title,
                nick,
                text,
                id,
                ms,
            } => {
                if let Some(ch) = self.state.channel_by_title(&title) {
                    let event = Event::PublicMsg {
                        title: &ch.title,
                        sender: &nick,
                        text: &text,
                    };
                    self.channel_fanout(ch.id, ch.snapshot(), &event, out);
                    if id != 0 {
                        // The origin keeps it in the store, if anyone does.
                        self.remember(&ch, id, ms, &nick, &text, false, out);
                    }
                }
            }
            ClusterInput::Private { to, from, text } => {
                if let Some(addr) = self.state.address_of(&to) {
                    out.send(
                        addr,
                        &Event::PrivateMsg {
                            sender: &from,
                            text: &text,
                        },
                    );
                }
            }
            ClusterInput::Community { server, event } => {
                self.community_input(&server, event, out);
            }
        }
    }

    /// The user of `info` on `server`, with the channels this server knows.
    fn remote_user(&self, server: &str, info: &UserInfo) -> RemoteUser {
        let mut channels: Vec<ChannelId> = Vec::with_capacity(info.channels.len());
        for title in &info.channels {
            // A channel created on another server before this one heard of it (this
            // server started later, or the event was lost) is known from here on.
            if let Some(id) = self.known_or_placeholder(title) {
                if !channels.contains(&id) {
                    channels.push(id);
                }
            }
        }
        RemoteUser {
            nick: info.nick.as_str().into(),
            server: server.into(),
            login_ms: info.login_ms,
            channels,
        }
    }

    /// Queues what local users are owed when a remote user changes.
    fn notify(&self, change: &RemoteChange, out: &mut Outbox) {
        let (old, new) = (change.old.as_ref(), change.new.as_ref());
        let nick = new.or(old).map(|u| u.nick.clone()).unwrap_or_default();
        let before: &[ChannelId] = old.map_or(&[], |u| &u.channels);
        let after: &[ChannelId] = new.map_or(&[], |u| &u.channels);
        for &id in after.iter().filter(|id| !before.contains(id)) {
            let Some(ch) = self.state.channel(id) else {
                continue;
            };
            let event = Event::UserJoins {
                title: &ch.title,
                nick: &nick,
            };
            self.channel_fanout(id, ch.snapshot(), &event, out);
        }
        for &id in before.iter().filter(|id| !after.contains(id)) {
            let Some(ch) = self.state.channel(id) else {
                continue;
            };
            let event = Event::UserParts {
                title: &ch.title,
                nick: &nick,
            };
            self.channel_fanout(id, ch.snapshot(), &event, out);
            // The last member anywhere left a temporary channel (its server tells the
            // others too; each drops its copy on its own).
            let _ = self.state.destroy_if_empty(id);
        }
        let event = match (old, new) {
            (None, Some(_)) => Event::UserOnline { nick: &nick },
            (Some(_), None) => Event::UserOffline { nick: &nick },
            _ => return,
        };
        // A nickname also held locally (a conflict after a partition) is not news to
        // watchers.
        if self.state.address_of(&nick).is_none() {
            for watcher in self.state.watchers_of(&nick) {
                out.send(watcher, &event);
            }
        }
    }
}
