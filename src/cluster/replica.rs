//! The view of the users on the other servers of a cluster, kept current by their events,
//! and the notices each change owes to local users (USER_JOINS/PARTS to local members of
//! the channel, USER_ONLINE/OFFLINE to local watchers).
//!
//! Only the cluster thread writes it; workers read it for counts, lists and private
//! messages. A `parking_lot::RwLock` over plain maps, because writes are rare (a login, a
//! join) and a change has to update the user and the per-channel counts together. Readers
//! copy out what they need; no guard is held while the notices are queued.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::RwLock;

use super::event::UserRec;
use crate::handler::Outbox;
use crate::protocol::Event;
use crate::state::{ChannelId, State};

/// A user on another server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteUser {
    /// The nickname as typed.
    pub nick: Box<str>,
    /// The server it is on.
    pub server: Box<str>,
    /// Login time, milliseconds since the Unix epoch.
    pub login_ms: u64,
    /// Its channels that this server also has, most recently joined first.
    pub channels: Vec<ChannelId>,
}

impl RemoteUser {
    /// The user of `rec` on `server`, with the channels this server knows.
    pub fn from_rec(state: &State, server: &str, rec: &UserRec) -> Self {
        let mut channels: Vec<ChannelId> = Vec::with_capacity(rec.channels.len());
        for title in &rec.channels {
            if let Some(id) = state.channel_id(title) {
                if !channels.contains(&id) {
                    channels.push(id);
                }
            }
        }
        RemoteUser {
            nick: rec.nick.as_str().into(),
            server: server.into(),
            login_ms: rec.login_ms,
            channels,
        }
    }

    /// Whole seconds since it logged in.
    pub fn seconds_online(&self) -> u64 {
        unix_ms().saturating_sub(self.login_ms) / 1000
    }
}

/// Milliseconds since the Unix epoch now.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[derive(Debug, Default)]
struct Inner {
    /// Lower-cased nickname → user.
    users: HashMap<Box<str>, RemoteUser>,
    /// Remote members per channel id, so a JOIN_ACK's count costs no walk over users.
    counts: Vec<usize>,
}

/// The remote users.
#[derive(Debug, Default)]
pub struct Replica {
    inner: RwLock<Inner>,
}

impl Replica {
    /// An empty view for a server with `channels` channels.
    pub fn new(channels: usize) -> Self {
        Replica {
            inner: RwLock::new(Inner {
                users: HashMap::new(),
                counts: vec![0; channels],
            }),
        }
    }

    /// Remote members of channel `id`.
    pub fn count(&self, id: ChannelId) -> usize {
        self.inner
            .read()
            .counts
            .get(id as usize)
            .copied()
            .unwrap_or(0)
    }

    /// The remote user holding `nick` (any case).
    pub fn get(&self, nick: &str) -> Option<RemoteUser> {
        self.inner
            .read()
            .users
            .get(nick.to_lowercase().as_str())
            .cloned()
    }

    /// The remote members of channel `id`.
    pub fn members(&self, id: ChannelId) -> Vec<RemoteUser> {
        self.inner
            .read()
            .users
            .values()
            .filter(|u| u.channels.contains(&id))
            .cloned()
            .collect()
    }

    /// Up to `limit` remote users whose lower-cased nickname starts with `prefix`.
    pub fn matching(&self, prefix: &str, limit: usize) -> Vec<RemoteUser> {
        self.inner
            .read()
            .users
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .take(limit)
            .map(|(_, u)| u.clone())
            .collect()
    }

    /// Number of remote users.
    pub fn len(&self) -> usize {
        self.inner.read().users.len()
    }

    /// Whether no remote user is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The servers that have users here.
    pub fn servers(&self) -> Vec<Box<str>> {
        let mut s: Vec<Box<str>> = self
            .inner
            .read()
            .users
            .values()
            .map(|u| u.server.clone())
            .collect();
        s.sort();
        s.dedup();
        s
    }

    /// Sets (or, with `None`, removes) the record of `nick` as `server` says, and queues the
    /// notices the change owes to local users. A removal by a server that does not hold the
    /// nickname here is ignored: after a partition two servers may both have had a user of
    /// that name, and the one that let go must not remove the other.
    pub fn set(
        &self,
        state: &State,
        server: &str,
        nick: &str,
        new: Option<RemoteUser>,
        out: &mut Outbox,
    ) {
        let key: Box<str> = nick.to_lowercase().into();
        let old = {
            let mut inner = self.inner.write();
            let old = match (&new, inner.users.get(&key)) {
                (None, Some(held)) if &*held.server != server => return,
                _ => inner.users.remove(&key),
            };
            for &id in old.iter().flat_map(|u| u.channels.iter()) {
                if let Some(c) = inner.counts.get_mut(id as usize) {
                    *c = c.saturating_sub(1);
                }
            }
            if let Some(u) = &new {
                for &id in &u.channels {
                    if let Some(c) = inner.counts.get_mut(id as usize) {
                        *c += 1;
                    }
                }
                inner.users.insert(key, u.clone());
            }
            old
        };
        notify(state, old.as_ref(), new.as_ref(), out);
    }

    /// Replaces every user of `server` with `users` (a reload of its users hash, or an
    /// empty list when it died), with the notices the differences owe.
    pub fn replace_server(
        &self,
        state: &State,
        server: &str,
        users: Vec<RemoteUser>,
        out: &mut Outbox,
    ) {
        let gone: Vec<Box<str>> = {
            let inner = self.inner.read();
            inner
                .users
                .iter()
                .filter(|(k, u)| {
                    &*u.server == server && !users.iter().any(|n| n.nick.to_lowercase() == ***k)
                })
                .map(|(k, _)| k.clone())
                .collect()
        };
        for key in gone {
            self.set(state, server, &key, None, out);
        }
        for u in users {
            let nick = u.nick.clone();
            self.set(state, server, &nick, Some(u), out);
        }
    }
}

/// Queues what local users are owed when a remote user goes from `old` to `new`.
fn notify(state: &State, old: Option<&RemoteUser>, new: Option<&RemoteUser>, out: &mut Outbox) {
    let nick = new.or(old).map(|u| u.nick.clone()).unwrap_or_default();
    let before: &[ChannelId] = old.map_or(&[], |u| &u.channels);
    let after: &[ChannelId] = new.map_or(&[], |u| &u.channels);
    for &id in after.iter().filter(|id| !before.contains(id)) {
        let ch = state.channel(id);
        let event = Event::UserJoins {
            title: &ch.title,
            nick: &nick,
        };
        out.fanout(ch.snapshot(), &event, u64::from(id));
    }
    for &id in before.iter().filter(|id| !after.contains(id)) {
        let ch = state.channel(id);
        let event = Event::UserParts {
            title: &ch.title,
            nick: &nick,
        };
        out.fanout(ch.snapshot(), &event, u64::from(id));
    }
    let event = match (old, new) {
        (None, Some(_)) => Event::UserOnline { nick: &nick },
        (Some(_), None) => Event::UserOffline { nick: &nick },
        _ => return,
    };
    // A nickname also held locally (a conflict after a partition) is not news to watchers.
    if state.address_of(&nick).is_none() {
        for watcher in state.watchers_of(&nick) {
            out.send(watcher, &event);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::classic_channels;
    use std::net::SocketAddr;
    use std::time::Instant;

    fn rec(nick: &str, channels: &[&str]) -> UserRec {
        UserRec {
            nick: nick.into(),
            login_ms: 0,
            channels: channels.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn changes_update_counts_and_tell_local_members_and_watchers() {
        let state = State::new(&classic_channels(), 10);
        let local: SocketAddr = "127.0.0.1:9".parse().unwrap();
        state.claim(local, "me", Instant::now()).unwrap();
        let pets = state.channel_id("Pets").unwrap();
        state.channel(pets).add(local);
        state.add_watcher("ann", local);
        let r = Replica::new(state.channels.len());
        let mut out = Outbox::new();
        let u = RemoteUser::from_rec(&state, "b", &rec("Ann", &["pets", "Nowhere"]));
        assert_eq!(u.channels, vec![pets]);
        r.set(&state, "b", "Ann", Some(u), &mut out);
        let mut got: Vec<Vec<u8>> = out.datagrams().into_iter().map(|d| d.1).collect();
        got.sort();
        assert_eq!(got.len(), 2);
        assert_eq!(r.count(pets), 1);
        assert_eq!(r.get("ANN").unwrap().server.as_ref(), "b");
        // Another server letting go of the name does not remove b's user.
        r.set(&state, "c", "ann", None, &mut Outbox::new());
        assert_eq!(r.count(pets), 1);
        // b's death removes it, with USER_PARTS and USER_OFFLINE.
        let mut out = Outbox::new();
        r.replace_server(&state, "b", Vec::new(), &mut out);
        assert_eq!(out.datagrams().len(), 2);
        assert_eq!(r.count(pets), 0);
        assert!(r.is_empty());
    }
}
