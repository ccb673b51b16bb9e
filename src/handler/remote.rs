//! What the other servers of a cluster report, fed in by the cluster thread: changes to
//! the view of their users, with the notices each change owes to local users
//! (USER_JOINS/PARTS to local members of the channel, USER_ONLINE/OFFLINE to local
//! watchers), their public and private messages for local users, and their part-5 events
//! ([`super::community_remote`]). The cluster thread passes no time: nothing here needs
//! one.

use super::created::known_or_placeholder;
use super::ctx::{Ctx, Shared};
use super::history::{self, Said};
use super::{community_remote, multicast};
use crate::cluster::{ClusterInput, PrivateMessage, PublicMessage, UserInfo};
use crate::state::{ChannelId, RemoteChange, RemoteUser};
use proto::Event;

/// Applies what the cluster reported. Runs on the cluster thread, the only writer of
/// the view of remote users.
pub(crate) fn input(cx: &mut Ctx<'_>, input: ClusterInput) {
    let sh = cx.sh;
    match input {
        ClusterInput::User { server, nick, info } => {
            let user = info.map(|i| remote_user(sh, &server, &i));
            if let Some(change) = sh.state.remote().set(&server, &nick, user) {
                notify(cx, &change);
            }
        }
        ClusterInput::Server { server, users } => {
            let users = users.iter().map(|i| remote_user(sh, &server, i)).collect();
            for change in sh.state.remote().replace_server(&server, users) {
                notify(cx, &change);
            }
        }
        ClusterInput::Public(PublicMessage {
            title,
            nick,
            text,
            id,
            ms,
        }) => {
            if let Some(ch) = sh.state.channel_by_title(&title) {
                let event = Event::PublicMsg {
                    title: &ch.title,
                    sender: &nick,
                    text: &text,
                };
                multicast::fanout(cx, ch.id, ch.snapshot(), &event);
                if id != 0 {
                    // The origin keeps it in the store, if anyone does.
                    let said = Said {
                        id,
                        ms,
                        nick: &nick,
                        text: &text,
                    };
                    history::remember(cx, &ch, said, false);
                }
            }
        }
        ClusterInput::Private(PrivateMessage { to, from, text }) => {
            if let Some(addr) = sh.state.address_of(&to) {
                let event = Event::PrivateMsg {
                    sender: &from,
                    text: &text,
                };
                cx.out.send(addr, &event);
            }
        }
        ClusterInput::Community { event, .. } => community_remote::input(cx, event),
    }
}

/// The user of `info` on `server`, with the channels this server knows.
fn remote_user(sh: &Shared, server: &str, info: &UserInfo) -> RemoteUser {
    let mut channels: Vec<ChannelId> = Vec::with_capacity(info.channels.len());
    for title in &info.channels {
        // A channel created on another server before this one heard of it (this
        // server started later, or the event was lost) is known from here on.
        if let Some(id) = known_or_placeholder(sh, title) {
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
fn notify(cx: &mut Ctx<'_>, change: &RemoteChange) {
    let sh = cx.sh;
    let (old, new) = (change.old.as_ref(), change.new.as_ref());
    let nick = new.or(old).map(|u| u.nick.clone()).unwrap_or_default();
    let before: &[ChannelId] = old.map_or(&[], |u| &u.channels);
    let after: &[ChannelId] = new.map_or(&[], |u| &u.channels);
    let joined = after
        .iter()
        .filter(|id| !before.contains(id))
        .map(|&id| (id, true));
    let parted = before
        .iter()
        .filter(|id| !after.contains(id))
        .map(|&id| (id, false));
    for (id, joins) in joined.chain(parted) {
        let Some(ch) = sh.state.channel(id) else {
            continue;
        };
        let (title, nick) = (&*ch.title, &*nick);
        let event = if joins {
            Event::UserJoins { title, nick }
        } else {
            Event::UserParts { title, nick }
        };
        multicast::fanout(cx, id, ch.snapshot(), &event);
        if !joins {
            // The last member anywhere left a temporary channel (its server tells the
            // others too; each drops its copy on its own).
            let _ = sh.state.destroy_if_empty(id);
        }
    }
    let event = match (old, new) {
        (None, Some(_)) => Event::UserOnline { nick: &nick },
        (Some(_), None) => Event::UserOffline { nick: &nick },
        _ => return,
    };
    // A nickname also held locally (a conflict after a partition) is not news to
    // watchers.
    if sh.state.address_of(&nick).is_none() {
        for watcher in sh.state.watchers_of(&nick) {
            cx.out.send(watcher, &event);
        }
    }
}
