//! All shared state: users by address, the case-insensitive nickname index (with a sorted
//! copy for WHO), hot-list watchers, protected sessions, the channel table (configured
//! channels and those created and destroyed at run time, in `table.rs`) with each channel's
//! members, roles, moderation lists and history ([`channel`], [`community`]), the bans of
//! addresses, and the view of users on other servers of a cluster.
//!
//! # Locking
//! Every map is private; the methods here are the only way in. Each method takes at most
//! one guard at a time and drops it before it returns or takes the next, so no caller can
//! hold a map guard across a send, a queue push or another map (the deadlocks people hit
//! with dashmap: issues #74 and #369). What a caller needs is copied out.
//!
//! # One writer per user record
//! A user record is changed only by the worker that owns the user's *route*
//! ([`Route`]): the address for a guest, the session id for a protected user. A guest
//! becomes protected once, on the address's worker, before the client hears its
//! `LOGIN_ACK`; from then on only the session's sealed datagrams (routed by session id)
//! speak for the user, and a move to a new address ([`State::move_user`]) happens on that
//! same worker, once the new address has answered a path challenge
//! ([`State::challenge_path`], [`State::path_answered`]), which also arrives sealed and so
//! on the session's worker. Other threads only read records.

pub mod channel;
pub mod community;
pub mod remote;
mod table;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use parking_lot::RwLock;

pub use channel::{lane_of, role, Channel, ChannelId, Member};
pub use community::{AddrBans, Kind, Meta};
pub use remote::{RemoteChange, RemoteUser, RemoteUsers};
pub use table::Exists;

use crate::config::ChannelSpec;
use crate::sealing::Sealers;
use proto::auth::{Direction, ReplayWindow, Sealed, Sealer, SessionKeys};

/// The key of a nickname: nicknames are unique, and looked up, without regard to case
/// (a PRECIS fold, `proto::nick`).
pub fn nick_key(nick: &str) -> String {
    proto::nick::key(nick)
}

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

/// Which worker owns a user's record: see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// A guest, or an address with no user: its address.
    Addr(SocketAddr),
    /// A protected user: its session.
    Session(u64),
}

/// A protected session.
#[derive(Debug, Clone)]
struct Session {
    keys: SessionKeys,
    /// The address its user is known by now (it moves, once validated, with NAT
    /// rebinding).
    addr: SocketAddr,
    /// Counters already accepted.
    window: ReplayWindow,
    /// Seals what the server sends to the session.
    sealer: Arc<Sealer>,
    /// The path challenge under way: the new address, its data, when it was sent.
    challenge: Option<(SocketAddr, [u8; 8], Instant)>,
}

/// The least time between two path challenges of one session (each answers a sealed
/// datagram from a new address, so this also bounds what an unvalidated address gets).
pub const CHALLENGE_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// Why a nickname could not be claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimError {
    /// Another address holds it.
    InUse,
    /// The server holds its maximum number of users.
    Full,
}

/// What a join did.
#[derive(Debug, Clone)]
pub enum Joined {
    /// The user was not a member: these members were there before and are to be told.
    New(Arc<[Member]>),
    /// The user was a member already (the channel only became current).
    Again,
}

/// Why a join did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinError {
    /// Nobody is logged in at that address.
    NoUser,
    /// The user is in as many channels as it may be.
    TooMany,
    /// The channel holds as many members as its limit allows.
    Full,
    /// The channel was destroyed.
    Gone,
}

/// What a part did.
#[derive(Debug, Clone)]
pub struct Parted {
    /// The members left, to be told.
    pub rest: Arc<[Member]>,
    /// Whether the channel was the user's current one.
    pub was_current: bool,
    /// The user's current channel after the part.
    pub new_current: Option<ChannelId>,
}

/// A user that logged off, and the channels it left with the members to tell.
#[derive(Debug, Clone)]
pub struct Departed {
    /// The record as it was.
    pub user: User,
    /// Each channel it was in and the members left there.
    pub parts: Vec<(ChannelId, Arc<[Member]>)>,
}

/// What a sealed datagram's check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SealCheck {
    /// Genuine and fresh; the session's user is known by this address now.
    Valid {
        /// The address the session is bound to (may differ from the datagram's source).
        bound: SocketAddr,
        /// The classic datagram inside, decrypted.
        inner: Vec<u8>,
    },
    /// Unknown session, bad tag, or a replayed or stale counter.
    Rejected,
}

/// All shared state; cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct State {
    /// The channels by id and title (`table`): configured at start, created and
    /// destroyed while the server runs.
    channels: table::Channels,
    /// Logged-in users by address (the protocol's identity of a client).
    users: DashMap<SocketAddr, User>,
    /// Nickname key → address: the uniqueness check. Holds reserved nicknames too (a
    /// cluster login waiting for its lease), which have no user record yet.
    nicks: DashMap<Box<str>, SocketAddr>,
    /// A sorted copy of `nicks`, so that WHO reads a prefix as one range instead of
    /// walking every user. Written after `nicks`, never under its guard.
    sorted: RwLock<BTreeMap<Box<str>, SocketAddr>>,
    /// Nickname key → addresses whose hot list holds it.
    watchers: DashMap<Box<str>, Vec<SocketAddr>>,
    /// Protected sessions by id.
    sessions: DashMap<u64, Session>,
    /// The sealers of protected users by address, for the send paths (`crate::sealing`).
    pub sealers: Sealers,
    /// The users of the other servers of a cluster (empty when standing alone).
    pub remote: RemoteUsers,
    /// Bans of addresses and networks from the whole server.
    pub addr_bans: AddrBans,
    /// The last message id given ([`next_message_id`](Self::next_message_id)).
    message_ids: AtomicU64,
    /// Datagrams refused for authentication: unknown session, bad MAC, replayed or stale
    /// counter, or a plain datagram from the address of a protected session.
    pub auth_rejected: AtomicU64,
    /// Users and reserved nicknames, kept apart from the maps' lengths (which lock every
    /// shard) so that the `--max-users` check is one atomic operation.
    user_count: AtomicUsize,
    /// The `--max-users` cap (an atomic: a configuration reload may change it).
    max_users: AtomicUsize,
    /// Of `max_users`, how many only password logins may fill (guests stop short of it).
    account_reserve: AtomicUsize,
}

impl State {
    /// State with the given channels and user cap.
    pub fn new(channels: &[ChannelSpec], max_users: usize) -> Self {
        State {
            channels: table::Channels::with(channels),
            users: DashMap::new(),
            nicks: DashMap::new(),
            sorted: RwLock::new(BTreeMap::new()),
            watchers: DashMap::new(),
            sessions: DashMap::new(),
            sealers: Sealers::default(),
            remote: RemoteUsers::default(),
            addr_bans: AddrBans::default(),
            message_ids: AtomicU64::new(0),
            auth_rejected: AtomicU64::new(0),
            user_count: AtomicUsize::new(0),
            max_users: AtomicUsize::new(max_users),
            account_reserve: AtomicUsize::new(0),
        }
    }

    /// Changes the cap on users (a configuration reload); users over it stay.
    pub fn set_max_users(&self, max: usize) {
        self.max_users.store(max, Ordering::Relaxed);
    }

    /// Keeps `n` of the `--max-users` places for password logins: guests are refused as
    /// "server full" `n` places early, so forged guest logins can't shut out account holders.
    pub fn reserve_for_accounts(&self, n: usize) {
        self.account_reserve.store(
            n.min(self.max_users.load(Ordering::Relaxed)),
            Ordering::Relaxed,
        );
    }

    /// A new message id at `wall_ms` (milliseconds since the Unix epoch): the time in
    /// microseconds, or one more than the last id if that is larger. So ids grow within a
    /// run, survive a restart (the clock has moved on), and in a cluster the servers'
    /// ids, passed along with the messages, order them by time.
    pub fn next_message_id(&self, wall_ms: u64) -> u64 {
        let floor = wall_ms.saturating_mul(1000);
        let prev = self
            .message_ids
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |last| {
                Some(last.saturating_add(1).max(floor))
            })
            .unwrap_or(0);
        prev.saturating_add(1).max(floor)
    }

    /// Makes sure ids given from now on are above `id` (one read back from the store).
    pub fn note_message_id(&self, id: u64) {
        self.message_ids.fetch_max(id, Ordering::AcqRel);
    }

    /// Marks the user at `addr` as a part-5 client (it said `HELLO`).
    pub fn set_community(&self, addr: SocketAddr) {
        if let Some(mut u) = self.users.get_mut(&addr) {
            u.community = true;
        }
    }

    /// Whether the user at `addr` is a part-5 client.
    pub fn is_community(&self, addr: SocketAddr) -> bool {
        self.users.get(&addr).is_some_and(|u| u.community)
    }

    /// Logged-in users (and nicknames reserved for logins under way).
    pub fn user_count(&self) -> usize {
        self.user_count.load(Ordering::Relaxed)
    }

    /// The address holding `nick` (any case): logged in, or reserved by a login under way.
    pub fn address_of(&self, nick: &str) -> Option<SocketAddr> {
        self.nicks.get(nick_key(nick).as_str()).map(|e| *e)
    }

    // ---- logging in and off ----

    /// Reserves `nick` for `addr` without making a user yet (a login waiting for an
    /// answer from elsewhere); [`admit`](Self::admit) or [`unreserve`](Self::unreserve)
    /// follows.
    ///
    /// # Errors
    /// [`ClaimError::InUse`] if another address holds the nickname (in any case),
    /// [`ClaimError::Full`] if the server is at `max_users`.
    pub fn reserve(&self, addr: SocketAddr, nick: &str) -> Result<(), ClaimError> {
        let cap = self
            .max_users
            .load(Ordering::Relaxed)
            .saturating_sub(self.account_reserve.load(Ordering::Relaxed));
        self.reserve_within(addr, nick, cap)
    }

    /// As [`reserve`](Self::reserve), for a password login: it may use the places kept
    /// for accounts ([`reserve_for_accounts`](Self::reserve_for_accounts)).
    ///
    /// # Errors
    /// As [`reserve`](Self::reserve).
    pub fn reserve_protected(&self, addr: SocketAddr, nick: &str) -> Result<(), ClaimError> {
        self.reserve_within(addr, nick, self.max_users.load(Ordering::Relaxed))
    }

    fn reserve_within(&self, addr: SocketAddr, nick: &str, cap: usize) -> Result<(), ClaimError> {
        let key: Box<str> = nick_key(nick).into();
        if self
            .user_count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < cap).then_some(n + 1)
            })
            .is_err()
        {
            return Err(ClaimError::Full);
        }
        match self.nicks.entry(key.clone()) {
            Entry::Occupied(_) => {
                self.user_count.fetch_sub(1, Ordering::AcqRel);
                return Err(ClaimError::InUse);
            }
            Entry::Vacant(v) => {
                v.insert(addr);
            }
        }
        self.sorted.write().insert(key, addr);
        Ok(())
    }

    /// Gives up a reservation of `nick` by `addr` that never became a user.
    pub fn unreserve(&self, addr: SocketAddr, nick: &str) {
        let key = nick_key(nick);
        if self
            .nicks
            .remove_if(key.as_str(), |_, holder| *holder == addr)
            .is_some()
        {
            self.sorted.write().remove(key.as_str());
            self.user_count.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Makes the user of a reservation of `nick` held by `addr`.
    pub fn admit(&self, addr: SocketAddr, nick: &str, now: Instant, session: Option<u64>) {
        self.users.insert(
            addr,
            User {
                nick: nick.into(),
                login: now,
                last_heard: now,
                channels: Vec::new(),
                watching: Vec::new(),
                session,
                community: false,
                caps: Caps::default(),
            },
        );
    }

    /// Claims `nick` for `addr` and creates its user record.
    ///
    /// # Errors
    /// As [`reserve`](Self::reserve).
    pub fn claim(&self, addr: SocketAddr, nick: &str, now: Instant) -> Result<(), ClaimError> {
        self.reserve(addr, nick)?;
        self.admit(addr, nick, now, None);
        Ok(())
    }

    /// As [`claim`](Self::claim), for a password login ([`reserve_protected`](Self::reserve_protected)).
    ///
    /// # Errors
    /// As [`reserve`](Self::reserve).
    pub fn claim_protected(
        &self,
        addr: SocketAddr,
        nick: &str,
        now: Instant,
    ) -> Result<(), ClaimError> {
        self.reserve_protected(addr, nick)?;
        self.admit(addr, nick, now, None);
        Ok(())
    }

    /// Logs the user at `addr` off: removes it from the user map, the nickname index, its
    /// channels, the watcher lists and its session. Returns what it was and the members
    /// to tell, or `None` if nobody was logged in there.
    pub fn depart(&self, addr: SocketAddr) -> Option<Departed> {
        let (_, user) = self.users.remove(&addr)?;
        let key = nick_key(&user.nick);
        if self
            .nicks
            .remove_if(key.as_str(), |_, holder| *holder == addr)
            .is_some()
        {
            self.sorted.write().remove(key.as_str());
        }
        self.user_count.fetch_sub(1, Ordering::AcqRel);
        if let Some(id) = user.session {
            self.sessions.remove(&id);
            self.sealers.remove(addr, id);
        }
        let parts = user
            .channels
            .iter()
            .filter_map(|&id| {
                let rest = self.channel(id)?.remove(addr)?;
                Some((id, rest))
            })
            .collect();
        for key in &user.watching {
            self.remove_watcher(key, addr);
        }
        Some(Departed { user, parts })
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

    /// What `addr` is, without counting it as a sign of life.
    pub fn presence(&self, addr: SocketAddr) -> Presence {
        match self.users.get(&addr).map(|u| u.session) {
            Some(Some(id)) => Presence::Protected(id),
            Some(None) => Presence::Guest,
            None => Presence::Stranger,
        }
    }

    // ---- reading users ----

    /// A copy of the user at `addr`.
    pub fn user(&self, addr: SocketAddr) -> Option<User> {
        self.users.get(&addr).map(|u| u.clone())
    }

    /// The nickname of the user at `addr`.
    pub fn nick_of(&self, addr: SocketAddr) -> Option<Box<str>> {
        self.users.get(&addr).map(|u| u.nick.clone())
    }

    /// The nickname and channels of the user at `addr`.
    pub fn nick_and_channels(&self, addr: SocketAddr) -> Option<(Box<str>, Vec<ChannelId>)> {
        self.users
            .get(&addr)
            .map(|u| (u.nick.clone(), u.channels.clone()))
    }

    /// The nickname and current channel of the user at `addr`.
    pub fn nick_and_current(&self, addr: SocketAddr) -> Option<(Box<str>, Option<ChannelId>)> {
        self.users
            .get(&addr)
            .map(|u| (u.nick.clone(), u.channels.first().copied()))
    }

    /// The current channel of the user at `addr`.
    pub fn current_channel(&self, addr: SocketAddr) -> Option<ChannelId> {
        self.users
            .get(&addr)
            .and_then(|u| u.channels.first().copied())
    }

    /// Copies of the logged-in users of channel `id`, in member order.
    pub fn members_of(&self, id: ChannelId) -> Vec<User> {
        self.channel(id)
            .map(|c| c.snapshot())
            .unwrap_or_default()
            .iter()
            .filter_map(|m| self.user(m.addr))
            .collect()
    }

    /// Up to `limit` users whose nickname key starts with `prefix` (a key), sorted by key.
    /// Reads the sorted index, so its cost follows the matches, not the users.
    pub fn who(&self, prefix: &str, limit: usize) -> Vec<User> {
        let addrs: Vec<SocketAddr> = self
            .sorted
            .read()
            .range::<str, _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(k, _)| k.starts_with(prefix))
            .take(limit)
            .map(|(_, a)| *a)
            .collect();
        addrs.into_iter().filter_map(|a| self.user(a)).collect()
    }

    /// Copies of every user with its address (for the cluster's republication and tests).
    pub fn users(&self) -> Vec<(SocketAddr, User)> {
        self.users
            .iter()
            .map(|u| (*u.key(), u.value().clone()))
            .collect()
    }

    /// Users silent since before `deadline`, with the route of each.
    pub fn silent_since(&self, deadline: Instant) -> Vec<(SocketAddr, Route)> {
        self.users
            .iter()
            .filter(|u| u.last_heard < deadline)
            .map(|u| {
                let route = match u.session {
                    Some(id) => Route::Session(id),
                    None => Route::Addr(*u.key()),
                };
                (*u.key(), route)
            })
            .collect()
    }

    // ---- changing users ----

    /// Puts the user at `addr` into channel `id` with `roles` (`channel::role` bits) and
    /// makes it current.
    ///
    /// # Errors
    /// [`JoinError`]: no such user, it would be in more than `max` channels, the channel
    /// is at its member limit, or it was destroyed.
    pub fn join(
        &self,
        addr: SocketAddr,
        id: ChannelId,
        max: usize,
        roles: u8,
    ) -> Result<Joined, JoinError> {
        let (channels, caps) = self
            .users
            .get(&addr)
            .map(|u| (u.channels.clone(), u.caps))
            .ok_or(JoinError::NoUser)?;
        if !channels.contains(&id) && channels.len() >= max {
            return Err(JoinError::TooMany);
        }
        let ch = self.channel(id).ok_or(JoinError::Gone)?;
        let limit = ch.with_meta(|m| m.limit.map(|l| l as usize));
        let joined = match ch.add(addr, caps.batch.unwrap_or(0), limit, roles) {
            channel::Added::New(before) => Joined::New(before),
            channel::Added::Again => Joined::Again,
            channel::Added::Full => return Err(JoinError::Full),
            channel::Added::Closed => return Err(JoinError::Gone),
        };
        if let Some(mut u) = self.users.get_mut(&addr) {
            u.channels.retain(|&c| c != id);
            u.channels.insert(0, id);
        }
        Ok(joined)
    }

    /// Takes the user at `addr` out of channel `id`; `None` if it was not a member.
    pub fn part(&self, addr: SocketAddr, id: ChannelId) -> Option<Parted> {
        let rest = self.channel(id)?.remove(addr)?;
        let mut u = self.users.get_mut(&addr)?;
        let was_current = u.channels.first() == Some(&id);
        u.channels.retain(|&c| c != id);
        Some(Parted {
            rest,
            was_current,
            new_current: u.channels.first().copied(),
        })
    }

    /// Sets the caps of the user at `addr`, and its batch size in the member lists of its
    /// channels (so fan-outs from now on deliver as it asked).
    pub fn set_caps(&self, addr: SocketAddr, caps: Caps) {
        let channels = match self.users.get_mut(&addr) {
            Some(mut u) => {
                u.caps = caps;
                u.channels.clone()
            }
            None => return,
        };
        // The user guard is gone: channel locks are never taken under it.
        for id in channels {
            if let Some(ch) = self.channel(id) {
                ch.set_batch(addr, caps.batch.unwrap_or(0));
            }
        }
    }

    /// The caps of the user at `addr` (none for an address without a user).
    pub fn caps_of(&self, addr: SocketAddr) -> Caps {
        self.users.get(&addr).map(|u| u.caps).unwrap_or_default()
    }

    /// Sets the nickname's spelling of the user at `addr` (same key: a password login
    /// shows the nickname as registered).
    pub fn respell(&self, addr: SocketAddr, nick: &str) {
        if let Some(mut u) = self.users.get_mut(&addr) {
            if nick_key(&u.nick) == nick_key(nick) {
                u.nick = nick.into();
            }
        }
    }

    /// Adds nickname keys to the hot list of the user at `addr`, up to `max` in all.
    /// Returns the keys now on the list among those given, and whether some did not fit.
    pub fn watch<'a>(
        &self,
        addr: SocketAddr,
        keys: impl Iterator<Item = &'a str>,
        max: usize,
    ) -> (Vec<Box<str>>, bool) {
        let mut listed: Vec<Box<str>> = Vec::new();
        let mut full = false;
        {
            let Some(mut user) = self.users.get_mut(&addr) else {
                return (listed, false);
            };
            for key in keys {
                let key: Box<str> = key.into();
                if !user.watching.contains(&key) {
                    if user.watching.len() >= max {
                        full = true;
                        break;
                    }
                    user.watching.push(key.clone());
                }
                listed.push(key);
            }
        }
        for key in &listed {
            self.add_watcher(key, addr);
        }
        (listed, full)
    }

    /// Removes nickname keys from the hot list of the user at `addr`.
    pub fn unwatch<'a>(&self, addr: SocketAddr, keys: impl Iterator<Item = &'a str>) {
        let mut removed = Vec::new();
        if let Some(mut user) = self.users.get_mut(&addr) {
            for key in keys {
                let before = user.watching.len();
                user.watching.retain(|w| **w != *key);
                if user.watching.len() != before {
                    removed.push(key.to_owned());
                }
            }
        }
        for key in removed {
            self.remove_watcher(&key, addr);
        }
    }

    /// The hot list of the user at `addr`.
    pub fn watching(&self, addr: SocketAddr) -> Vec<Box<str>> {
        self.users
            .get(&addr)
            .map(|u| u.watching.clone())
            .unwrap_or_default()
    }

    fn add_watcher(&self, nick_key: &str, watcher: SocketAddr) {
        let mut list = self.watchers.entry(nick_key.into()).or_default();
        if !list.contains(&watcher) {
            list.push(watcher);
        }
    }

    fn remove_watcher(&self, nick_key: &str, watcher: SocketAddr) {
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
            .get(nick_key(nick).as_str())
            .map(|w| w.clone())
            .unwrap_or_default()
    }

    // ---- protected sessions ----

    /// Starts protected session `keys` for the user at `addr`. Returns `false` (and
    /// changes nothing) if a session with that id exists.
    pub fn open_session(&self, addr: SocketAddr, keys: SessionKeys) -> bool {
        let id = keys.id;
        let sealer = Arc::new(keys.sealer());
        match self.sessions.entry(id) {
            Entry::Occupied(_) => return false,
            Entry::Vacant(v) => {
                v.insert(Session {
                    keys,
                    addr,
                    window: ReplayWindow::default(),
                    sealer: sealer.clone(),
                    challenge: None,
                });
            }
        }
        if let Some(mut u) = self.users.get_mut(&addr) {
            u.session = Some(id);
        }
        self.sealers.insert(addr, sealer);
        true
    }

    /// Ends session `id` (the user stays, unprotected, if it is still there).
    pub fn end_session(&self, id: u64) {
        if let Some((_, s)) = self.sessions.remove(&id) {
            self.sealers.remove(s.addr, id);
            if let Some(mut u) = self.users.get_mut(&s.addr) {
                if u.session == Some(id) {
                    u.session = None;
                }
            }
        }
    }

    /// The sealer of session `id` (to answer a path challenge's address, which is not
    /// the session's yet).
    pub fn sealer_of(&self, id: u64) -> Option<Arc<Sealer>> {
        self.sessions.get(&id).map(|s| s.sealer.clone())
    }

    /// Records a path challenge of session `id` to `addr` with `data` at `now`, unless one
    /// to the same address went out less than [`CHALLENGE_EVERY`] ago. Returns whether a
    /// challenge is to be sent.
    pub fn challenge_path(&self, id: u64, addr: SocketAddr, data: [u8; 8], now: Instant) -> bool {
        let Some(mut s) = self.sessions.get_mut(&id) else {
            return false;
        };
        if let Some((a, _, sent)) = s.challenge {
            if a == addr && now.saturating_duration_since(sent) < CHALLENGE_EVERY {
                return false;
            }
        }
        s.challenge = Some((addr, data, now));
        true
    }

    /// Whether `data` answers the path challenge of session `id` to `addr` (which is then
    /// used up).
    pub fn path_answered(&self, id: u64, addr: SocketAddr, data: &[u8]) -> bool {
        let Some(mut s) = self.sessions.get_mut(&id) else {
            return false;
        };
        match s.challenge {
            Some((a, d, _)) if a == addr && d[..] == *data => {
                s.challenge = None;
                true
            }
            _ => false,
        }
    }

    /// Whether a session with this id exists.
    pub fn has_session(&self, id: u64) -> bool {
        self.sessions.contains_key(&id)
    }

    /// Checks a sealed datagram: known session, right tag (first, so that the window only
    /// moves for genuine datagrams), fresh counter.
    pub fn check_sealed(&self, sealed: &Sealed<'_>) -> SealCheck {
        let Some(mut s) = self.sessions.get_mut(&sealed.session) else {
            return SealCheck::Rejected;
        };
        if !s.window.fresh(sealed.counter) {
            return SealCheck::Rejected;
        }
        let Some(inner) = s.keys.open(Direction::ToServer, sealed) else {
            return SealCheck::Rejected;
        };
        s.window.accept(sealed.counter);
        SealCheck::Valid {
            bound: s.addr,
            inner,
        }
    }

    /// Moves the user of session `id` from `old` to `new`: user map, nickname index,
    /// channels, watcher lists and the session. Nobody may be at `new`; returns whether
    /// the move happened. Runs on the worker that owns the session (module docs).
    pub fn move_user(&self, id: u64, old: SocketAddr, new: SocketAddr) -> bool {
        if self.users.contains_key(&new) {
            return false;
        }
        let Some((_, user)) = self.users.remove(&old) else {
            return false;
        };
        let key: Box<str> = nick_key(&user.nick).into();
        for &c in &user.channels {
            if let Some(ch) = self.channel(c) {
                ch.replace(old, new);
            }
        }
        for w in &user.watching {
            if let Some(mut list) = self.watchers.get_mut(w) {
                for a in list.iter_mut().filter(|a| **a == old) {
                    *a = new;
                }
            }
        }
        self.users.insert(new, user);
        self.nicks.insert(key.clone(), new);
        self.sorted.write().insert(key, new);
        let sealer = self.sessions.get_mut(&id).map(|mut s| {
            s.addr = new;
            s.sealer.clone()
        });
        if let Some(sealer) = sealer {
            self.sealers.remove(old, id);
            self.sealers.insert(new, sealer);
        }
        true
    }

    // ---- checks ----

    /// Checks the invariants between users, nicknames, channels and sessions; returns the
    /// first broken one. For tests and fuzzing: it locks every channel in turn and walks
    /// every user.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut member_total = 0;
        for ch in self.channels() {
            let snapshot = ch.snapshot();
            member_total += snapshot.len();
            for m in snapshot.iter() {
                let addr = m.addr;
                let Some(u) = self.users.get(&addr) else {
                    return Err(format!("{addr} is in {} but not logged in", ch.title));
                };
                if !u.channels.contains(&ch.id) {
                    return Err(format!("{} in {} does not list it", u.nick, ch.title));
                }
                if m.batch != u.caps.batch.unwrap_or(0) {
                    return Err(format!("{}'s batch size in {} is stale", u.nick, ch.title));
                }
            }
        }
        let mut listed = 0;
        for u in self.users.iter() {
            listed += u.channels.len();
            let key = nick_key(&u.nick);
            if self.nicks.get(key.as_str()).map(|a| *a) != Some(*u.key()) {
                return Err(format!("{} is not in the nickname index", u.nick));
            }
            if let Some(id) = u.session {
                match self.sessions.get(&id) {
                    Some(s) if s.addr == *u.key() => {}
                    _ => return Err(format!("{}'s session is not bound to it", u.nick)),
                }
            }
        }
        if listed != member_total {
            return Err(format!(
                "users list {listed} memberships, channels hold {member_total}"
            ));
        }
        if self.nicks.len() != self.user_count() || self.users.len() > self.user_count() {
            return Err("user count disagrees with the maps".into());
        }
        let sorted: Vec<(Box<str>, SocketAddr)> = self
            .sorted
            .read()
            .iter()
            .map(|(k, a)| (k.clone(), *a))
            .collect();
        if sorted.len() != self.nicks.len()
            || sorted
                .iter()
                .any(|(k, a)| self.nicks.get(k).map(|e| *e) != Some(*a))
        {
            return Err("the sorted nickname index disagrees with the nickname map".into());
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
    fn claims_are_unique_ignoring_case_and_capped() {
        let state = State::new(&crate::config::classic_channels(), 2);
        let now = Instant::now();
        assert_eq!(state.claim(addr(1), "Bob", now), Ok(()));
        assert_eq!(state.claim(addr(2), "bob", now), Err(ClaimError::InUse));
        assert_eq!(state.claim(addr(2), "ann", now), Ok(()));
        assert_eq!(state.claim(addr(3), "cid", now), Err(ClaimError::Full));
        state.depart(addr(1)).unwrap();
        assert_eq!(state.claim(addr(3), "BOB", now), Ok(()));
        assert_eq!(state.address_of("bOb"), Some(addr(3)));
        state.check_invariants().unwrap();
    }

    #[test]
    fn a_reservation_holds_the_name_until_admitted_or_given_up() {
        let state = State::new(&crate::config::classic_channels(), 5);
        let now = Instant::now();
        state.reserve(addr(1), "Zed").unwrap();
        assert_eq!(state.claim(addr(2), "zed", now), Err(ClaimError::InUse));
        assert_eq!(state.presence(addr(1)), Presence::Stranger);
        state.check_invariants().unwrap();
        state.unreserve(addr(1), "Zed");
        assert_eq!(state.user_count(), 0);
        state.reserve(addr(2), "zed").unwrap();
        state.admit(addr(2), "zed", now, None);
        assert_eq!(state.presence(addr(2)), Presence::Guest);
        state.check_invariants().unwrap();
    }

    #[test]
    fn channel_lookup_ignores_case() {
        let state = State::new(&crate::config::classic_channels(), 2);
        assert_eq!(state.channel_id("weather"), Some(1));
        assert_eq!(state.channel_id("WEATHER"), Some(1));
        assert_eq!(state.channel_id("nowhere"), None);
    }

    #[test]
    fn who_reads_a_sorted_prefix() {
        let state = State::new(&crate::config::classic_channels(), 100);
        let now = Instant::now();
        for (i, n) in ["bob", "Al", "alice", "Carl", "ALF"].iter().enumerate() {
            state.claim(addr(i as u16 + 1), n, now).unwrap();
        }
        let names: Vec<String> = state
            .who("al", 10)
            .into_iter()
            .map(|u| u.nick.to_string())
            .collect();
        assert_eq!(names, ["Al", "ALF", "alice"]);
        assert_eq!(state.who("", 2).len(), 2);
        assert!(state.who("z", 10).is_empty());
    }

    #[test]
    fn departure_leaves_channels_watchers_and_session() {
        let state = State::new(&crate::config::classic_channels(), 10);
        let now = Instant::now();
        state.claim(addr(1), "ann", now).unwrap();
        state.claim(addr(2), "bob", now).unwrap();
        state.join(addr(1), 0, 64, 0).unwrap();
        state.join(addr(2), 0, 64, 0).unwrap();
        state.watch(addr(1), ["bob"].into_iter(), 100);
        let keys = SessionKeys::derive(&[3u8; 64]);
        let id = keys.id;
        assert!(state.open_session(addr(1), keys));
        state.check_invariants().unwrap();
        let gone = state.depart(addr(1)).unwrap();
        assert_eq!(gone.parts.len(), 1);
        assert_eq!(gone.parts[0].1[0].addr, addr(2));
        assert!(state.watchers_of("bob").is_empty());
        assert!(!state.has_session(id));
        state.check_invariants().unwrap();
    }

    #[test]
    fn caps_reach_the_member_lists_of_every_channel() {
        let state = State::new(&crate::config::classic_channels(), 10);
        let now = Instant::now();
        state.claim(addr(1), "ann", now).unwrap();
        state.join(addr(1), 0, 64, 0).unwrap();
        state.join(addr(1), 3, 64, 0).unwrap();
        let caps = Caps {
            batch: Some(4000),
            multicast: false,
        };
        state.set_caps(addr(1), caps);
        assert_eq!(state.channel(0).unwrap().snapshot()[0].batch, 4000);
        assert_eq!(state.channel(3).unwrap().snapshot()[0].batch, 4000);
        // A channel joined later takes the size at once.
        state.join(addr(1), 2, 64, 0).unwrap();
        assert_eq!(state.channel(2).unwrap().snapshot()[0].batch, 4000);
        state.set_caps(addr(1), Caps::default());
        assert_eq!(state.channel(2).unwrap().snapshot()[0].batch, 0);
        state.check_invariants().unwrap();
    }

    #[test]
    fn a_move_takes_the_whole_user_along() {
        let state = State::new(&crate::config::classic_channels(), 10);
        let now = Instant::now();
        state.claim(addr(1), "ann", now).unwrap();
        state.claim(addr(3), "cid", now).unwrap();
        state.join(addr(1), 2, 64, 0).unwrap();
        state.watch(addr(3), ["ann"].into_iter(), 100);
        state.watch(addr(1), ["cid"].into_iter(), 100);
        let keys = SessionKeys::derive(&[4u8; 64]);
        let id = keys.id;
        state.open_session(addr(1), keys);
        // Nobody may be pushed out of the new address.
        assert!(!state.move_user(id, addr(1), addr(3)));
        assert!(state.move_user(id, addr(1), addr(2)));
        assert_eq!(state.address_of("ANN"), Some(addr(2)));
        assert_eq!(state.channel(2).unwrap().snapshot()[0].addr, addr(2));
        assert_eq!(state.watchers_of("cid"), vec![addr(2)]);
        assert_eq!(state.presence(addr(2)), Presence::Protected(id));
        state.check_invariants().unwrap();
    }
}
