//! Logged-in users by address (the protocol's identity of a client): the [`User`] record,
//! what an address is ([`Presence`]) and which worker owns it ([`Route`]).
//!
//! The map is private; [`Users::read`] and [`Users::update`] run a closure under one
//! entry's guard and return what it copied out, so no guard outlives a call.

use std::net::SocketAddr;
use std::time::Instant;

use dashmap::DashMap;

use super::channel::ChannelId;

/// A logged-in user.
#[derive(Debug, Clone)]
pub struct User {
    /// The nickname as typed at login (as registered, for a password login).
    pub nick: Box<str>,
    /// When the user logged in (for the seconds shown in USER_ITEM).
    pub login: Instant,
    /// When the server last heard from the user (for the idle sweep).
    pub last_heard: Instant,
    /// Channels the user is in, most recently joined first; the first is current.
    pub channels: Vec<ChannelId>,
    /// Nickname keys on the user's hot list.
    pub watching: Vec<Box<str>>,
    /// The protected session, for users logged in with a password.
    pub session: Option<u64>,
    /// Whether the client said `HELLO` (part 5): it is sent part-5 notices.
    pub community: bool,
    /// What the client asked for with CAPS_REQ and was granted (none at login).
    pub caps: Caps,
    /// Whether the address is proved to receive what the server sends it: a password login
    /// (its AUTH_REQ echoed a retry token), or a guest that echoed a proof token
    /// (`PROVE`). Until then a guest's address is only a claim anyone could forge, and
    /// what the server sends it is held to a budget (`server::budget`).
    pub proved: bool,
}

impl User {
    /// A user who logged in at `now` as `nick`, protected by `session` if given.
    pub(super) fn new(nick: &str, now: Instant, session: Option<u64>) -> Self {
        User {
            nick: nick.into(),
            login: now,
            last_heard: now,
            channels: Vec::new(),
            watching: Vec::new(),
            session,
            community: false,
            caps: Caps::default(),
            proved: session.is_some(),
        }
    }

    /// What the user's address is.
    pub(super) fn presence(&self) -> Presence {
        match self.session {
            Some(id) => Presence::Protected(id),
            None => Presence::Guest,
        }
    }

    /// The route of the user at `addr`.
    pub(super) fn route(&self, addr: SocketAddr) -> Route {
        match self.session {
            Some(id) => Route::Session(id),
            None => Route::Addr(addr),
        }
    }
}

/// The delivery capabilities a client was granted (part 4 of the protocol).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Caps {
    /// `batch=BYTES`: events may be packed into BATCH datagrams of at most this many bytes.
    pub batch: Option<u16>,
    /// `multicast`: the client can hear channels on their multicast groups.
    pub multicast: bool,
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

/// Which worker owns a user's record: see the `state` module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// A guest, or an address with no user: its address.
    Addr(SocketAddr),
    /// A protected user: its session.
    Session(u64),
}

/// The users by address.
#[derive(Debug, Default)]
pub(super) struct Users {
    map: DashMap<SocketAddr, User>,
}

impl Users {
    /// `f` of the user at `addr`, under its guard.
    pub(super) fn read<T>(&self, addr: SocketAddr, f: impl FnOnce(&User) -> T) -> Option<T> {
        self.map.get(&addr).map(|u| f(&u))
    }

    /// `f` of the user at `addr`, which it may change, under its guard.
    pub(super) fn update<T>(&self, addr: SocketAddr, f: impl FnOnce(&mut User) -> T) -> Option<T> {
        self.map.get_mut(&addr).map(|mut u| f(&mut u))
    }

    /// Whether someone is logged in at `addr`.
    pub(super) fn contains(&self, addr: SocketAddr) -> bool {
        self.map.contains_key(&addr)
    }

    pub(super) fn insert(&self, addr: SocketAddr, user: User) {
        self.map.insert(addr, user);
    }

    pub(super) fn remove(&self, addr: SocketAddr) -> Option<User> {
        self.map.remove(&addr).map(|(_, u)| u)
    }

    /// Users logged in.
    pub(super) fn len(&self) -> usize {
        self.map.len()
    }

    /// `f` of every user with its address, in no order; each entry's guard is held only
    /// while `f` runs on it.
    pub(super) fn collect<T>(&self, mut f: impl FnMut(SocketAddr, &User) -> Option<T>) -> Vec<T> {
        self.map
            .iter()
            .filter_map(|u| f(*u.key(), u.value()))
            .collect()
    }
}
