//! The server's shared state: users by address, the case-insensitive nickname index, the
//! hot-list index, and the channels with their members.
//!
//! Every user record is written only by the worker that owns its address (requests are
//! routed by source address), so a request's steps need no lock held across them; other
//! workers only read it. Uniqueness of nicknames is decided by one insert-if-absent on the
//! nickname index, so two workers can't both win a nickname. Guards of the concurrent maps
//! are never held while another map or a channel lock is taken: values are copied out first.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use parking_lot::Mutex;

use crate::config::ChannelSpec;

/// Index of a channel in [`State::channels`].
pub type ChannelId = u32;

/// A logged-in user.
#[derive(Debug, Clone)]
pub struct User {
    /// The nickname as typed at login.
    pub nick: Box<str>,
    /// When the user logged in (for the seconds shown in USER_ITEM).
    pub login: Instant,
    /// When the server last heard from the user (for the idle sweep).
    pub last_heard: Instant,
    /// Channels the user is in, most recently joined first; the first is current.
    pub channels: Vec<ChannelId>,
    /// Lower-cased nicknames on the user's hot list.
    pub watching: Vec<Box<str>>,
    /// The protected session, for users logged in with a password.
    pub session: Option<u64>,
}

/// What the server knows of an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// Not logged in.
    Stranger,
    /// Logged in without a password (classic login).
    Guest,
    /// Logged in with a password; only sealed datagrams of this session speak for it.
    Protected(u64),
}

/// A protected session.
#[derive(Debug, Clone)]
pub struct Session {
    /// Its id and MAC key.
    pub keys: crate::auth::SessionKeys,
    /// The address its user is known by now (it moves with NAT rebinding).
    pub addr: SocketAddr,
    /// Counters already accepted.
    pub window: crate::auth::ReplayWindow,
}

/// A configured channel and its members.
#[derive(Debug)]
pub struct Channel {
    /// The title as configured.
    pub title: Box<str>,
    /// The description as configured.
    pub description: Box<str>,
    /// Membership; a `parking_lot` mutex because every critical section is a few
    /// operations on a vector and a map, never I/O, and contention is brief.
    members: Mutex<Members>,
}

/// The members of a channel plus a cached, shareable snapshot of their addresses.
///
/// Fan-out reads the snapshot (`Arc<[SocketAddr]>`): a public message costs one reference
/// count, not a copy of the member list. A join or part drops the snapshot; the next reader
/// rebuilds it once, so a burst of joins pays one copy, not one per join.
#[derive(Debug, Default)]
struct Members {
    addrs: Vec<SocketAddr>,
    /// Position of each address in `addrs`, for O(1) removal by swap.
    pos: HashMap<SocketAddr, usize>,
    snapshot: Option<Arc<[SocketAddr]>>,
}

impl Members {
    fn snapshot(&mut self) -> Arc<[SocketAddr]> {
        self.snapshot
            .get_or_insert_with(|| Arc::from(&self.addrs[..]))
            .clone()
    }
}

impl Channel {
    fn new(spec: &ChannelSpec) -> Self {
        Channel {
            title: spec.title.as_str().into(),
            description: spec.description.as_str().into(),
            members: Mutex::new(Members::default()),
        }
    }

    /// The member addresses now, shared.
    pub fn snapshot(&self) -> Arc<[SocketAddr]> {
        self.members.lock().snapshot()
    }

    /// How many members the channel has.
    pub fn len(&self) -> usize {
        self.members.lock().addrs.len()
    }

    /// Whether the channel has no members.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds `addr`; returns the members before it joined (to be told) and the new count.
    /// Returns `None` when `addr` was a member already.
    pub fn add(&self, addr: SocketAddr) -> Option<(Arc<[SocketAddr]>, usize)> {
        let mut m = self.members.lock();
        if m.pos.contains_key(&addr) {
            return None;
        }
        let before = m.snapshot();
        let at = m.addrs.len();
        m.addrs.push(addr);
        m.pos.insert(addr, at);
        m.snapshot = None;
        Some((before, m.addrs.len()))
    }

    /// Removes `addr`; returns the remaining members (to be told), or `None` if it was not
    /// a member.
    pub fn remove(&self, addr: SocketAddr) -> Option<Arc<[SocketAddr]>> {
        let mut m = self.members.lock();
        let at = m.pos.remove(&addr)?;
        m.addrs.swap_remove(at);
        if let Some(&moved) = m.addrs.get(at) {
            m.pos.insert(moved, at);
        }
        m.snapshot = None;
        Some(m.snapshot())
    }

    /// Puts `new` in the place of member `old` (a session that moved address).
    pub fn replace(&self, old: SocketAddr, new: SocketAddr) {
        let mut m = self.members.lock();
        if let Some(at) = m.pos.remove(&old) {
            m.addrs[at] = new;
            m.pos.insert(new, at);
            m.snapshot = None;
        }
    }
}

/// Why a nickname could not be claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimError {
    /// Another address holds it.
    InUse,
    /// The server holds its maximum number of users.
    Full,
}

/// All shared state; cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct State {
    /// The channels, fixed at start.
    pub channels: Box<[Channel]>,
    /// Lower-cased title → channel, for case-insensitive look-up.
    channel_index: HashMap<Box<str>, ChannelId>,
    /// Logged-in users by address (the protocol's identity of a client).
    pub users: DashMap<SocketAddr, User>,
    /// Lower-cased nickname → address; the uniqueness check.
    nicks: DashMap<Box<str>, SocketAddr>,
    /// Lower-cased nickname → addresses whose hot list holds it.
    watchers: DashMap<Box<str>, Vec<SocketAddr>>,
    /// Protected sessions by id.
    pub sessions: DashMap<u64, Session>,
    /// Datagrams refused for authentication: unknown session, bad MAC, replayed or stale
    /// counter, or a plain datagram from the address of a protected session.
    pub auth_rejected: std::sync::atomic::AtomicU64,
    /// Number of logged-in users, kept apart from `users.len()` (which locks every shard)
    /// so that the `--max-users` check is one atomic operation.
    user_count: AtomicUsize,
    /// The `--max-users` cap.
    max_users: usize,
}

impl State {
    /// State with the given channels and user cap.
    pub fn new(channels: &[ChannelSpec], max_users: usize) -> Self {
        let channel_index = channels
            .iter()
            .enumerate()
            .map(|(i, c)| (c.title.to_lowercase().into(), i as ChannelId))
            .collect();
        State {
            channels: channels.iter().map(Channel::new).collect(),
            channel_index,
            users: DashMap::new(),
            nicks: DashMap::new(),
            watchers: DashMap::new(),
            sessions: DashMap::new(),
            auth_rejected: std::sync::atomic::AtomicU64::new(0),
            user_count: AtomicUsize::new(0),
            max_users,
        }
    }

    /// The channel titled `title`, ignoring case.
    pub fn channel_id(&self, title: &str) -> Option<ChannelId> {
        if let Some(&id) = self.channel_index.get(title) {
            return Some(id);
        }
        self.channel_index
            .get(title.to_lowercase().as_str())
            .copied()
    }

    /// The channel with this id.
    pub fn channel(&self, id: ChannelId) -> &Channel {
        &self.channels[id as usize]
    }

    /// Number of logged-in users.
    pub fn user_count(&self) -> usize {
        self.user_count.load(Ordering::Relaxed)
    }

    /// The address holding `nick` (any case), if it is logged in.
    pub fn address_of(&self, nick: &str) -> Option<SocketAddr> {
        self.nicks.get(nick.to_lowercase().as_str()).map(|e| *e)
    }

    /// Claims `nick` for `addr` and creates its user record.
    ///
    /// # Errors
    /// [`ClaimError::InUse`] if another address holds the nickname (in any case),
    /// [`ClaimError::Full`] if the server is at `max_users`.
    pub fn claim(&self, addr: SocketAddr, nick: &str, now: Instant) -> Result<(), ClaimError> {
        let key: Box<str> = nick.to_lowercase().into();
        if self
            .user_count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_users).then_some(n + 1)
            })
            .is_err()
        {
            return Err(ClaimError::Full);
        }
        match self.nicks.entry(key) {
            Entry::Occupied(_) => {
                self.user_count.fetch_sub(1, Ordering::AcqRel);
                return Err(ClaimError::InUse);
            }
            Entry::Vacant(v) => {
                v.insert(addr);
            }
        }
        self.users.insert(
            addr,
            User {
                nick: nick.into(),
                login: now,
                last_heard: now,
                channels: Vec::new(),
                watching: Vec::new(),
                session: None,
            },
        );
        Ok(())
    }

    /// Removes the user at `addr` from the user map and nickname index; the caller takes
    /// care of its channels and hot list. Returns the removed record.
    pub fn release(&self, addr: SocketAddr) -> Option<User> {
        let (_, user) = self.users.remove(&addr)?;
        self.nicks
            .remove_if(user.nick.to_lowercase().as_str(), |_, holder| {
                *holder == addr
            });
        self.user_count.fetch_sub(1, Ordering::AcqRel);
        Some(user)
    }

    /// Records a sign of life from `addr`; returns what the address is.
    pub fn touch(&self, addr: SocketAddr, now: Instant) -> Presence {
        match self.users.get_mut(&addr) {
            Some(mut u) => {
                u.last_heard = now;
                match u.session {
                    Some(id) => Presence::Protected(id),
                    None => Presence::Guest,
                }
            }
            None => Presence::Stranger,
        }
    }

    /// Moves the user at `old` to `new`: user map, nickname index, channels and hot-list
    /// index. The caller makes sure nobody is at `new`.
    pub fn move_user(&self, old: SocketAddr, new: SocketAddr) -> bool {
        let Some((_, user)) = self.users.remove(&old) else {
            return false;
        };
        let key: Box<str> = user.nick.to_lowercase().into();
        for &id in &user.channels {
            self.channel(id).replace(old, new);
        }
        for w in &user.watching {
            if let Some(mut list) = self.watchers.get_mut(w) {
                for a in list.iter_mut().filter(|a| **a == old) {
                    *a = new;
                }
            }
        }
        self.users.insert(new, user);
        self.nicks.insert(key, new);
        true
    }

    /// Adds `watcher` to those told about `nick_key` (lower-cased).
    pub fn add_watcher(&self, nick_key: &str, watcher: SocketAddr) {
        let mut list = self.watchers.entry(nick_key.into()).or_default();
        if !list.contains(&watcher) {
            list.push(watcher);
        }
    }

    /// Removes `watcher` from those told about `nick_key` (lower-cased).
    pub fn remove_watcher(&self, nick_key: &str, watcher: SocketAddr) {
        if let Entry::Occupied(mut e) = self.watchers.entry(nick_key.into()) {
            e.get_mut().retain(|w| *w != watcher);
            if e.get().is_empty() {
                e.remove();
            }
        }
    }

    /// Those whose hot list holds `nick` (any case).
    pub fn watchers_of(&self, nick: &str) -> Vec<SocketAddr> {
        self.watchers
            .get(nick.to_lowercase().as_str())
            .map(|w| w.clone())
            .unwrap_or_default()
    }

    /// Users silent since before `deadline`.
    pub fn silent_since(&self, deadline: Instant) -> Vec<SocketAddr> {
        self.users
            .iter()
            .filter(|u| u.last_heard < deadline)
            .map(|u| *u.key())
            .collect()
    }

    /// Checks the invariants between users and channels; returns the first broken one.
    /// For tests and fuzzing: it locks every channel in turn and walks every user.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut member_total = 0;
        for (id, ch) in self.channels.iter().enumerate() {
            let snapshot = ch.snapshot();
            member_total += snapshot.len();
            for addr in snapshot.iter() {
                let Some(u) = self.users.get(addr) else {
                    return Err(format!("{addr} is in {} but not logged in", ch.title));
                };
                if !u.channels.contains(&(id as ChannelId)) {
                    return Err(format!("{} in {} does not list it", u.nick, ch.title));
                }
            }
        }
        let mut listed = 0;
        for u in self.users.iter() {
            listed += u.channels.len();
            let key = u.nick.to_lowercase();
            if self.nicks.get(key.as_str()).map(|a| *a) != Some(*u.key()) {
                return Err(format!("{} is not in the nickname index", u.nick));
            }
        }
        if listed != member_total {
            return Err(format!(
                "users list {listed} memberships, channels hold {member_total}"
            ));
        }
        if self.users.len() != self.user_count() || self.nicks.len() != self.user_count() {
            return Err("user count disagrees with the maps".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn members_snapshot_follows_adds_and_removes() {
        let state = State::new(&crate::config::classic_channels(), 10);
        let ch = state.channel(0);
        assert!(ch.add(addr(1)).unwrap().0.is_empty());
        let (before, n) = ch.add(addr(2)).unwrap();
        assert_eq!((&before[..], n), (&[addr(1)][..], 2));
        assert!(ch.add(addr(2)).is_none());
        ch.add(addr(3)).unwrap();
        let rest = ch.remove(addr(1)).unwrap();
        let mut rest = rest.to_vec();
        rest.sort();
        assert_eq!(rest, vec![addr(2), addr(3)]);
        assert!(ch.remove(addr(1)).is_none());
        assert!(ch.remove(addr(3)).is_some());
        assert_eq!(&ch.snapshot()[..], &[addr(2)]);
    }

    #[test]
    fn claims_are_unique_ignoring_case_and_capped() {
        let state = State::new(&crate::config::classic_channels(), 2);
        let now = Instant::now();
        assert_eq!(state.claim(addr(1), "Bob", now), Ok(()));
        assert_eq!(state.claim(addr(2), "bob", now), Err(ClaimError::InUse));
        assert_eq!(state.claim(addr(2), "ann", now), Ok(()));
        assert_eq!(state.claim(addr(3), "cid", now), Err(ClaimError::Full));
        state.release(addr(1)).unwrap();
        assert_eq!(state.claim(addr(3), "BOB", now), Ok(()));
        assert_eq!(state.address_of("bOb"), Some(addr(3)));
        state.check_invariants().unwrap();
    }

    #[test]
    fn channel_lookup_ignores_case() {
        let state = State::new(&crate::config::classic_channels(), 2);
        assert_eq!(state.channel_id("weather"), Some(1));
        assert_eq!(state.channel_id("WEATHER"), Some(1));
        assert_eq!(state.channel_id("nowhere"), None);
    }
}
