//! The users on the other servers of a cluster, as their events describe them.
//!
//! Only the cluster thread writes this view (through the handler, which also works out the
//! notices each change owes to local users); workers read it for counts, lists and private
//! messages. A `parking_lot::RwLock` over plain maps, because writes are rare (a login, a
//! join) and a change has to update the user, the per-channel counts and the sorted index
//! together. Readers copy out what they need; no guard outlives a method.

use std::collections::{BTreeMap, HashMap};

use parking_lot::RwLock;

use super::channel::ChannelId;
use super::nicks::nick_key;

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
    /// Whole seconds since it logged in, at `now_ms` (milliseconds since the Unix epoch).
    pub fn seconds_online(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.login_ms) / 1000
    }
}

#[derive(Debug, Default)]
struct Inner {
    /// Nickname key → user, sorted so that WHO reads a prefix as one range.
    users: BTreeMap<Box<str>, RemoteUser>,
    /// Remote members per channel id, so a JOIN_ACK's count costs no walk over users.
    counts: HashMap<ChannelId, usize>,
    /// Users per server, so a dead server's users are found without a walk.
    per_server: HashMap<Box<str>, usize>,
}

/// A change to the view: the record before and after (either may be absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteChange {
    /// The record before the change.
    pub old: Option<RemoteUser>,
    /// The record after it.
    pub new: Option<RemoteUser>,
}

/// The remote users.
#[derive(Debug, Default)]
pub struct RemoteUsers {
    inner: RwLock<Inner>,
}

impl RemoteUsers {
    /// Remote members of channel `id`.
    pub fn count(&self, id: ChannelId) -> usize {
        self.inner.read().counts.get(&id).copied().unwrap_or(0)
    }

    /// The remote user holding `nick` (any case).
    pub fn get(&self, nick: &str) -> Option<RemoteUser> {
        self.inner
            .read()
            .users
            .get(nick_key(nick).as_str())
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

    /// Up to `limit` remote users whose nickname key starts with `prefix` (a key, already
    /// case-folded), sorted by key.
    pub fn matching(&self, prefix: &str, limit: usize) -> Vec<RemoteUser> {
        self.inner
            .read()
            .users
            .range::<str, _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(k, _)| k.starts_with(prefix))
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

    /// The servers that have users here, sorted.
    pub fn servers(&self) -> Vec<Box<str>> {
        let mut s: Vec<Box<str>> = self.inner.read().per_server.keys().cloned().collect();
        s.sort();
        s
    }

    /// Sets (or, with `None`, removes) the record of `nick` as `server` says; returns the
    /// change, or `None` when nothing changed. A removal by a server that does not hold the
    /// nickname here is ignored: after a partition two servers may both have had a user of
    /// that name, and the one that let go must not remove the other.
    pub fn set(&self, server: &str, nick: &str, new: Option<RemoteUser>) -> Option<RemoteChange> {
        let key: Box<str> = nick_key(nick).into();
        let mut inner = self.inner.write();
        let old = match (&new, inner.users.get(&key)) {
            (None, Some(held)) if &*held.server != server => return None,
            (None, None) => return None,
            _ => inner.users.remove(&key),
        };
        if let Some(o) = &old {
            for &id in &o.channels {
                if let Some(c) = inner.counts.get_mut(&id) {
                    *c = c.saturating_sub(1);
                    if *c == 0 {
                        inner.counts.remove(&id);
                    }
                }
            }
            if let Some(n) = inner.per_server.get_mut(&o.server) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    inner.per_server.remove(&o.server);
                }
            }
        }
        if let Some(u) = &new {
            for &id in &u.channels {
                *inner.counts.entry(id).or_insert(0) += 1;
            }
            *inner.per_server.entry(u.server.clone()).or_insert(0) += 1;
            inner.users.insert(key, u.clone());
        }
        Some(RemoteChange { old, new })
    }

    /// Replaces every user of `server` with `users` (a reload of its users hash, or an
    /// empty list when it died); returns the changes.
    pub fn replace_server(&self, server: &str, users: Vec<RemoteUser>) -> Vec<RemoteChange> {
        let gone: Vec<Box<str>> = {
            let inner = self.inner.read();
            inner
                .users
                .iter()
                .filter(|(k, u)| {
                    &*u.server == server && !users.iter().any(|n| nick_key(&n.nick) == ***k)
                })
                .map(|(k, _)| k.clone())
                .collect()
        };
        let mut changes = Vec::new();
        for key in gone {
            changes.extend(self.set(server, &key, None));
        }
        for u in users {
            let nick = u.nick.clone();
            changes.extend(self.set(server, &nick, Some(u)));
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(nick: &str, server: &str, channels: &[ChannelId]) -> RemoteUser {
        RemoteUser {
            nick: nick.into(),
            server: server.into(),
            login_ms: 0,
            channels: channels.to_vec(),
        }
    }

    #[test]
    fn changes_update_counts_servers_and_the_sorted_view() {
        let r = RemoteUsers::default();
        let c = r.set("b", "Ann", Some(user("Ann", "b", &[4]))).unwrap();
        assert!(c.old.is_none());
        r.set("b", "al", Some(user("al", "b", &[4, 1])));
        r.set("c", "Bob", Some(user("Bob", "c", &[])));
        assert_eq!((r.count(4), r.count(1)), (2, 1));
        assert_eq!(r.get("ANN").unwrap().server.as_ref(), "b");
        let names: Vec<_> = r.matching("a", 10).into_iter().map(|u| u.nick).collect();
        assert_eq!(names, vec!["al".into(), "Ann".into()] as Vec<Box<str>>);
        assert_eq!(r.servers(), vec!["b".into(), "c".into()] as Vec<Box<str>>);
        // Another server letting go of the name does not remove b's user.
        assert!(r.set("c", "ann", None).is_none());
        assert_eq!(r.count(4), 2);
        // b's death removes its users.
        let changes = r.replace_server("b", Vec::new());
        assert_eq!(changes.len(), 2);
        assert_eq!((r.count(4), r.count(1), r.len()), (0, 0, 1));
        assert_eq!(r.servers(), vec!["c".into()] as Vec<Box<str>>);
    }
}
