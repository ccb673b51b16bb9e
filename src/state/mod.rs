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
//!
//! # Files
//! Each concept keeps its own map behind a small type of its own, and [`State`] here ties
//! them together (a log-off touches users, nicknames, channels, watchers and the session):
//! - `users`: [`User`] records by address, [`Presence`], [`Route`];
//! - `nicks`: the nickname index and its sorted copy, the `--max-users` count;
//! - `watch`: hot-list watchers; `quota`: what unproved guests' hot lists hold, per
//!   network and in all; `sessions`: protected sessions and the sealers;
//! - `ids`: message ids;
//! - `table`: the channel table; [`channel`]: a channel and its members;
//!   [`community`]: settings, moderation lists, history and address bans;
//! - `remote`: the users of other servers; `check`: the invariants between all these.

pub(crate) mod channel;
mod check;
pub(crate) mod community;
mod ids;
mod nicks;
mod quota;
mod remote;
mod sessions;
mod table;
#[cfg(test)]
mod tests;
mod users;
mod watch;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

pub use channel::{lane_of, role, Channel, ChannelId, Member};
pub use community::{AddrBans, Kind, Meta};
pub use nicks::{nick_key, ClaimError};
pub use remote::{RemoteChange, RemoteUser, RemoteUsers};
pub use sessions::{SealCheck, CHALLENGE_EVERY};
pub use table::{Exists, TitleTaken};
pub use users::{Caps, Presence, Route, User};

use crate::budget::{BudgetLimits, Budgets};
use crate::config::ChannelSpec;
use crate::sealing::Sealers;
use channel::Added;
use ids::MessageIds;
use nicks::Nicks;
use proto::auth::{Sealed, Sealer, SessionKeys};
use quota::WatchQuota;
use sessions::Sessions;
use table::Channels;
use users::Users;
use watch::Watchers;

/// How long hot lists may grow: the limits of [`State::watch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchLimits {
    /// Nicknames one user's list holds.
    pub max: usize,
    /// Nicknames the list of a guest that has not proved its address holds.
    pub unproved: usize,
    /// Entries all unproved guests of one network hold together.
    pub per_network: usize,
    /// Entries all unproved guests hold together.
    pub total: usize,
}

/// Why a hot list took fewer nicknames than it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchStop {
    /// It holds [`WatchLimits::max`].
    Full,
    /// The user has not proved its address, and its own, its network's or the total
    /// limit of unproved guests is reached.
    Unproved,
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

/// All shared state; cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct State {
    /// The channels by id and title: configured at start, created and destroyed while
    /// the server runs.
    channels: Channels,
    /// Logged-in users by address (the protocol's identity of a client).
    users: Users,
    /// Nickname key → address (reserved nicknames too), and the user count.
    nicks: Nicks,
    /// Nickname key → addresses whose hot list holds it.
    watchers: Watchers,
    /// Hot-list entries of unproved guests, per network and in all: what a forger can make
    /// the server keep without a round trip.
    watch_quota: WatchQuota,
    /// Protected sessions by id, and the sealers by address for the send paths.
    sessions: Sessions,
    /// The users of the other servers of a cluster (empty when standing alone).
    remote: RemoteUsers,
    /// Bans of addresses and networks from the whole server.
    addr_bans: AddrBans,
    /// The last message id given ([`next_message_id`](Self::next_message_id)).
    message_ids: MessageIds,
    /// What the server may still send each unproved guest, for the send paths
    /// (`crate::budget`); opened at a guest's login, closed when it proves its address or
    /// leaves.
    budgets: Budgets,
}

impl State {
    /// State with the given channels and user cap.
    pub fn new(channels: &[ChannelSpec], max_users: usize) -> Self {
        State {
            channels: Channels::with(channels),
            users: Users::default(),
            nicks: Nicks::new(max_users),
            watchers: Watchers::default(),
            watch_quota: WatchQuota::default(),
            sessions: Sessions::default(),
            remote: RemoteUsers::default(),
            addr_bans: AddrBans::default(),
            message_ids: MessageIds::default(),
            budgets: Budgets::default(),
        }
    }

    /// The same state holding unproved guests to budgets of these sizes.
    pub fn with_budgets(mut self, limits: BudgetLimits) -> Self {
        self.budgets = Budgets::new(limits);
        self
    }

    /// The budgets of unproved guests, for the send paths (`crate::budget`).
    pub fn budgets(&self) -> &Budgets {
        &self.budgets
    }

    /// The sealers of protected users by address, for the send paths (`crate::sealing`).
    pub fn sealers(&self) -> &Sealers {
        self.sessions.sealers()
    }

    /// The users of the other servers of a cluster (empty when standing alone).
    pub fn remote(&self) -> &RemoteUsers {
        &self.remote
    }

    /// Bans of addresses and networks from the whole server.
    pub fn addr_bans(&self) -> &AddrBans {
        &self.addr_bans
    }

    /// Counts a datagram refused for authentication: unknown session, bad MAC, replayed
    /// or stale counter, or a plain datagram from the address of a protected session.
    pub(crate) fn note_auth_rejected(&self) {
        self.sessions.note_rejected();
    }

    /// Datagrams refused for authentication so far.
    pub fn auth_rejected(&self) -> u64 {
        self.sessions.rejected()
    }

    /// Changes the cap on users (a configuration reload); users over it stay.
    pub(crate) fn set_max_users(&self, max: usize) {
        self.nicks.set_max(max);
    }

    /// Keeps `n` of the `--max-users` places for password logins: guests are refused as
    /// "server full" `n` places early, so forged guest logins can't shut out account holders.
    pub(crate) fn reserve_for_accounts(&self, n: usize) {
        self.nicks.reserve_for_accounts(n);
    }

    /// A new message id at `wall_ms` (milliseconds since the Unix epoch): the time in
    /// microseconds, or one more than the last id if that is larger. So ids grow within a
    /// run, survive a restart (the clock has moved on), and in a cluster the servers'
    /// ids, passed along with the messages, order them by time.
    pub(crate) fn next_message_id(&self, wall_ms: u64) -> u64 {
        self.message_ids.next(wall_ms)
    }

    /// Makes sure ids given from now on are above `id` (one read back from the store).
    pub(crate) fn note_message_id(&self, id: u64) {
        self.message_ids.note(id);
    }

    /// Marks the user at `addr` as a part-5 client (it said `HELLO`).
    pub(crate) fn set_community(&self, addr: SocketAddr) {
        self.users.update(addr, |u| u.community = true);
    }

    /// Whether someone is logged in at `addr` whose address is proved (see
    /// [`User::proved`]): a password session, or a guest that echoed a proof token.
    /// Strangers and unproved guests are not.
    pub fn is_proved(&self, addr: SocketAddr) -> bool {
        self.users.read(addr, |u| u.proved).unwrap_or(false)
    }

    /// Marks the guest at `addr` as proved, in its channels' member lists too; whether it
    /// was logged in and not yet proved (`handler::proof`, at the end of the exchange).
    pub(crate) fn prove(&self, addr: SocketAddr) -> bool {
        let Some((was, channels, watching)) = self.users.update(addr, |u| {
            let was = std::mem::replace(&mut u.proved, true);
            (was, u.channels.clone(), u.watching.len())
        }) else {
            return false;
        };
        self.budgets.close(addr);
        if !was {
            // Its hot list counts as a proved user's from now on.
            self.watch_quota.give_back(addr, watching);
        }
        // The user guard is gone: channel locks are never taken under it.
        for id in channels {
            if let Some(ch) = self.channel(id) {
                ch.set_proved(addr);
            }
        }
        !was
    }

    /// Whether the user at `addr` is a part-5 client.
    pub(crate) fn is_community(&self, addr: SocketAddr) -> bool {
        self.users.read(addr, |u| u.community).unwrap_or(false)
    }

    /// Logged-in users (and nicknames reserved for logins under way).
    pub fn user_count(&self) -> usize {
        self.nicks.count()
    }

    /// The address holding `nick` (any case): logged in, or reserved by a login under way.
    pub fn address_of(&self, nick: &str) -> Option<SocketAddr> {
        self.nicks.holder(nick)
    }

    // ---- logging in and off ----

    /// Reserves `nick` for `addr` without making a user yet (a login waiting for an
    /// answer from elsewhere); [`admit`](Self::admit) or [`unreserve`](Self::unreserve)
    /// follows.
    ///
    /// # Errors
    /// [`ClaimError::InUse`] if another address holds the nickname (in any case),
    /// [`ClaimError::Full`] if the server is at `max_users`.
    pub(crate) fn reserve(&self, addr: SocketAddr, nick: &str) -> Result<(), ClaimError> {
        self.nicks.claim(addr, nick, false)
    }

    /// As [`reserve`](Self::reserve), for a password login: it may use the places kept
    /// for accounts ([`reserve_for_accounts`](Self::reserve_for_accounts)).
    ///
    /// # Errors
    /// As [`reserve`](Self::reserve).
    pub(crate) fn reserve_protected(&self, addr: SocketAddr, nick: &str) -> Result<(), ClaimError> {
        self.nicks.claim(addr, nick, true)
    }

    /// Gives up a reservation of `nick` by `addr` that never became a user.
    pub(crate) fn unreserve(&self, addr: SocketAddr, nick: &str) {
        if self.nicks.release(addr, nick) {
            self.nicks.uncount();
        }
    }

    /// Makes the user of a reservation of `nick` held by `addr`.
    pub(crate) fn admit(&self, addr: SocketAddr, nick: &str, now: Instant, session: Option<u64>) {
        self.users.insert(addr, User::new(nick, now, session));
        if session.is_none() {
            self.budgets.open(addr, now);
        }
    }

    /// Claims `nick` for `addr` and creates its user record: [`reserve`](Self::reserve),
    /// then [`admit`](Self::admit).
    ///
    /// # Errors
    /// As [`reserve`](Self::reserve).
    pub(crate) fn claim(
        &self,
        addr: SocketAddr,
        nick: &str,
        now: Instant,
    ) -> Result<(), ClaimError> {
        self.reserve(addr, nick)?;
        self.admit(addr, nick, now, None);
        Ok(())
    }

    /// Logs the user at `addr` off: removes it from the user map, the nickname index, its
    /// channels, the watcher lists and its session. Returns what it was and the members
    /// to tell, or `None` if nobody was logged in there.
    pub(crate) fn depart(&self, addr: SocketAddr) -> Option<Departed> {
        let user = self.users.remove(addr)?;
        self.budgets.close(addr);
        self.nicks.release(addr, &user.nick);
        self.nicks.uncount();
        if let Some(id) = user.session {
            self.sessions.remove(id, addr);
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
            self.watchers.remove(key, addr);
        }
        if !user.proved {
            self.watch_quota.give_back(addr, user.watching.len());
        }
        Some(Departed { user, parts })
    }

    /// Records a sign of life from `addr`; returns what the address is.
    pub(crate) fn touch(&self, addr: SocketAddr, now: Instant) -> Presence {
        self.users
            .update(addr, |u| {
                u.last_heard = now;
                u.presence()
            })
            .unwrap_or(Presence::Stranger)
    }

    /// What `addr` is, without counting it as a sign of life.
    pub(crate) fn presence(&self, addr: SocketAddr) -> Presence {
        self.users
            .read(addr, User::presence)
            .unwrap_or(Presence::Stranger)
    }

    // ---- reading users ----

    /// A copy of the user at `addr`.
    pub fn user(&self, addr: SocketAddr) -> Option<User> {
        self.users.read(addr, User::clone)
    }

    /// The nickname of the user at `addr`.
    pub(crate) fn nick_of(&self, addr: SocketAddr) -> Option<Box<str>> {
        self.users.read(addr, |u| u.nick.clone())
    }

    /// The nickname and channels of the user at `addr`.
    pub(crate) fn nick_and_channels(&self, addr: SocketAddr) -> Option<(Box<str>, Vec<ChannelId>)> {
        self.users
            .read(addr, |u| (u.nick.clone(), u.channels.clone()))
    }

    /// The nickname and current channel of the user at `addr`.
    pub(crate) fn nick_and_current(
        &self,
        addr: SocketAddr,
    ) -> Option<(Box<str>, Option<ChannelId>)> {
        self.users
            .read(addr, |u| (u.nick.clone(), u.channels.first().copied()))
    }

    /// The current channel of the user at `addr`.
    pub(crate) fn current_channel(&self, addr: SocketAddr) -> Option<ChannelId> {
        self.users
            .read(addr, |u| u.channels.first().copied())
            .flatten()
    }

    /// Copies of the logged-in users of channel `id`, in member order.
    pub(crate) fn members_of(&self, id: ChannelId) -> Vec<User> {
        self.channel(id)
            .map(|c| c.snapshot())
            .unwrap_or_default()
            .iter()
            .filter_map(|m| self.user(m.addr))
            .collect()
    }

    /// Up to `limit` users whose nickname key starts with `prefix` (a key), sorted by key.
    /// Reads the sorted index, so its cost follows the matches, not the users.
    pub(crate) fn who(&self, prefix: &str, limit: usize) -> Vec<User> {
        let addrs = self.nicks.with_prefix(prefix, limit);
        addrs.into_iter().filter_map(|a| self.user(a)).collect()
    }

    /// Copies of every user with its address (for the cluster's republication and tests).
    pub fn users(&self) -> Vec<(SocketAddr, User)> {
        self.users.collect(|addr, u| Some((addr, u.clone())))
    }

    /// Users silent since before `deadline`, with the route of each.
    pub(crate) fn silent_since(&self, deadline: Instant) -> Vec<(SocketAddr, Route)> {
        self.users
            .collect(|addr, u| (u.last_heard < deadline).then(|| (addr, u.route(addr))))
    }

    // ---- channels ----

    /// The channel titled `title`, ignoring case.
    pub fn channel_id(&self, title: &str) -> Option<ChannelId> {
        self.channels.id(title)
    }

    /// The channel with this id, unless it was destroyed.
    pub fn channel(&self, id: ChannelId) -> Option<Arc<Channel>> {
        self.channels.get(id)
    }

    /// The channel titled `title`, ignoring case.
    pub fn channel_by_title(&self, title: &str) -> Option<Arc<Channel>> {
        self.channels.by_title(title)
    }

    /// Every channel, in listing order: configured ones first, then by creation.
    pub fn channels(&self) -> Vec<Arc<Channel>> {
        self.channels.all()
    }

    /// How many channels exist.
    pub(crate) fn channel_count(&self) -> usize {
        self.channels.count()
    }

    /// Creates channel `title` with `meta`.
    ///
    /// # Errors
    /// [`Exists`] when a channel of that title (any case) exists.
    pub(crate) fn create_channel(&self, title: &str, meta: Meta) -> Result<Arc<Channel>, Exists> {
        self.channels.insert(title, meta)
    }

    /// Creates channel `title` with `meta` (a user's `CHAN_CREATE`), unless a channel of
    /// that title or of a look-alike one (the same confusable skeleton) exists.
    ///
    /// # Errors
    /// [`TitleTaken`]: which of the two.
    pub(crate) fn create_unlike(
        &self,
        title: &str,
        meta: Meta,
    ) -> Result<Arc<Channel>, TitleTaken> {
        self.channels.insert_unlike(title, meta)
    }

    /// Destroys channel `id` if it is temporary and has no members here nor, in a
    /// cluster, on another server. Returns the channel if it was destroyed now.
    pub(crate) fn destroy_if_empty(&self, id: ChannelId) -> Option<Arc<Channel>> {
        self.channels.destroy_if_empty(id, &self.remote)
    }

    /// Destroys channel `id` whatever its kind, if it has no members. Returns whether it
    /// is gone.
    pub(crate) fn destroy_now(&self, id: ChannelId) -> bool {
        self.channels.destroy_now(id)
    }

    /// Makes the configured channels those of `specs` (a configuration reload): new
    /// titles are created, descriptions follow the file, a created channel named in the
    /// file becomes configured, and a configured channel the file no longer names becomes
    /// temporary (gone once empty). Returns what changed, one line each.
    pub(crate) fn reconcile_configured(&self, specs: &[ChannelSpec]) -> Vec<String> {
        self.channels.reconcile(specs, &self.remote)
    }

    // ---- changing users ----

    /// Puts the user at `addr` into channel `id` with `roles` (`channel::role` bits) and
    /// makes it current.
    ///
    /// # Errors
    /// [`JoinError`]: no such user, it would be in more than `max` channels, the channel
    /// is at its member limit, or it was destroyed.
    pub(crate) fn join(
        &self,
        addr: SocketAddr,
        id: ChannelId,
        max: usize,
        roles: u8,
    ) -> Result<Joined, JoinError> {
        self.join_with(addr, id, max, roles, false)
    }

    /// As [`join`](Self::join); with `past_limit` the channel's member limit does not
    /// apply (a founder or lasting operator taking its channel back).
    ///
    /// # Errors
    /// As [`join`](Self::join).
    pub(crate) fn join_with(
        &self,
        addr: SocketAddr,
        id: ChannelId,
        max: usize,
        roles: u8,
        past_limit: bool,
    ) -> Result<Joined, JoinError> {
        let (channels, caps, proved) = self
            .users
            .read(addr, |u| (u.channels.clone(), u.caps, u.proved))
            .ok_or(JoinError::NoUser)?;
        if !channels.contains(&id) && channels.len() >= max {
            return Err(JoinError::TooMany);
        }
        let ch = self.channel(id).ok_or(JoinError::Gone)?;
        let limit = match past_limit {
            true => None,
            false => ch.with_meta(|m| m.limit.map(|l| l as usize)),
        };
        let member = Member::new(addr, caps.batch.unwrap_or(0)).unproved(!proved);
        let joined = match ch.add(member, limit, roles) {
            Added::New(before) => Joined::New(before),
            Added::Again => Joined::Again,
            Added::Full => return Err(JoinError::Full),
            Added::Closed => return Err(JoinError::Gone),
        };
        self.users.update(addr, |u| {
            u.channels.retain(|&c| c != id);
            u.channels.insert(0, id);
        });
        Ok(joined)
    }

    /// Takes the user at `addr` out of channel `id`; `None` if it was not a member.
    pub(crate) fn part(&self, addr: SocketAddr, id: ChannelId) -> Option<Parted> {
        let rest = self.channel(id)?.remove(addr)?;
        self.users.update(addr, |u| {
            let was_current = u.channels.first() == Some(&id);
            u.channels.retain(|&c| c != id);
            Parted {
                rest,
                was_current,
                new_current: u.channels.first().copied(),
            }
        })
    }

    /// Sets the caps of the user at `addr`, and its batch size in the member lists of its
    /// channels (so fan-outs from now on deliver as it asked).
    pub(crate) fn set_caps(&self, addr: SocketAddr, caps: Caps) {
        let Some(channels) = self.users.update(addr, |u| {
            u.caps = caps;
            u.channels.clone()
        }) else {
            return;
        };
        // The user guard is gone: channel locks are never taken under it.
        for id in channels {
            if let Some(ch) = self.channel(id) {
                ch.set_batch(addr, caps.batch.unwrap_or(0));
            }
        }
    }

    /// The caps of the user at `addr` (none for an address without a user).
    pub(crate) fn caps_of(&self, addr: SocketAddr) -> Caps {
        self.users.read(addr, |u| u.caps).unwrap_or_default()
    }

    /// Sets the nickname's spelling of the user at `addr` (same key: a password login
    /// shows the nickname as registered).
    pub(crate) fn respell(&self, addr: SocketAddr, nick: &str) {
        self.users.update(addr, |u| {
            if nick_key(&u.nick) == nick_key(nick) {
                u.nick = nick.into();
            }
        });
    }

    // ---- hot lists ----

    /// Adds nickname keys to the hot list of the user at `addr`, within `limits`: up to
    /// `limits.max` in all, and for a guest that has not proved its address up to
    /// `limits.unproved`, as far as its network's and the total entries of unproved guests
    /// allow. Returns the keys now on the list among those given, and why some did not
    /// fit, if some did not.
    pub(crate) fn watch<'a>(
        &self,
        addr: SocketAddr,
        keys: impl Iterator<Item = &'a str>,
        limits: WatchLimits,
    ) -> (Vec<Box<str>>, Option<WatchStop>) {
        let mut keys: Vec<Box<str>> = keys.map(Box::from).collect();
        let mut seen = std::collections::HashSet::new();
        keys.retain(|k| seen.insert(k.clone()));
        // What is new to the list, and what this user may add (one writer per record:
        // nothing changes it between this read and the update below).
        let Some((proved, len, new)) = self.users.read(addr, |u| {
            let new = keys.iter().filter(|k| !u.watching.contains(k)).count();
            (u.proved, u.watching.len(), new)
        }) else {
            return (Vec::new(), None);
        };
        let room = limits.max.saturating_sub(len);
        let granted = if proved {
            room
        } else {
            let own = limits.unproved.min(limits.max).saturating_sub(len);
            let want = new.min(own);
            self.watch_quota
                .take(addr, want, limits.per_network, limits.total)
        };
        let Some((listed, added, stop)) = self.users.update(addr, |user| {
            let mut listed: Vec<Box<str>> = Vec::new();
            let mut added = 0;
            for key in keys {
                if !user.watching.contains(&key) {
                    if added >= granted {
                        let stop = if user.watching.len() >= limits.max {
                            WatchStop::Full
                        } else {
                            WatchStop::Unproved
                        };
                        return (listed, added, Some(stop));
                    }
                    user.watching.push(key.clone());
                    added += 1;
                }
                listed.push(key);
            }
            (listed, added, None)
        }) else {
            if !proved {
                self.watch_quota.give_back(addr, granted);
            }
            return (Vec::new(), None);
        };
        if !proved {
            self.watch_quota.give_back(addr, granted - added);
        }
        for key in &listed {
            self.watchers.add(key, addr);
        }
        (listed, stop)
    }

    /// Removes nickname keys from the hot list of the user at `addr`.
    pub(crate) fn unwatch<'a>(&self, addr: SocketAddr, keys: impl Iterator<Item = &'a str>) {
        let Some((removed, proved)) = self.users.update(addr, |user| {
            let mut removed = Vec::new();
            for key in keys {
                let before = user.watching.len();
                user.watching.retain(|w| **w != *key);
                if user.watching.len() != before {
                    removed.push(key.to_owned());
                }
            }
            (removed, user.proved)
        }) else {
            return;
        };
        if !proved {
            self.watch_quota.give_back(addr, removed.len());
        }
        for key in removed {
            self.watchers.remove(&key, addr);
        }
    }

    /// The hot list of the user at `addr`.
    pub(crate) fn watching(&self, addr: SocketAddr) -> Vec<Box<str>> {
        self.users
            .read(addr, |u| u.watching.clone())
            .unwrap_or_default()
    }

    /// Hot-list entries held by guests that have not proved their address, in all.
    pub fn unproved_watch_entries(&self) -> usize {
        self.watch_quota.total()
    }

    /// Hot-list entries held by the guests of the network of `addr` (IPv4 /24, IPv6 /64)
    /// that have not proved their address.
    pub fn unproved_watch_entries_of(&self, addr: SocketAddr) -> usize {
        self.watch_quota.of_network(addr)
    }

    /// Those whose hot list holds `nick` (any case).
    pub(crate) fn watchers_of(&self, nick: &str) -> Vec<SocketAddr> {
        self.watchers.of(&nick_key(nick))
    }

    // ---- protected sessions ----

    /// Starts protected session `keys` for the user at `addr`. Returns `false` (and
    /// changes nothing) if a session with that id exists.
    pub(crate) fn open_session(&self, addr: SocketAddr, keys: SessionKeys) -> bool {
        let id = keys.id;
        let Some(sealer) = self.sessions.open(addr, keys) else {
            return false;
        };
        let (channels, was_proved, watching) = self
            .users
            .update(addr, |u| {
                u.session = Some(id);
                let was = std::mem::replace(&mut u.proved, true);
                (Some(u.channels.clone()), was, u.watching.len())
            })
            .unwrap_or((None, true, 0));
        self.budgets.close(addr);
        if !was_proved {
            // A guest became protected: its hot list counts as a proved user's now.
            self.watch_quota.give_back(addr, watching);
        }
        for id in channels.into_iter().flatten() {
            if let Some(ch) = self.channel(id) {
                ch.set_proved(addr);
            }
        }
        self.sessions.seal(addr, sealer);
        true
    }

    /// Ends session `id` (the user stays, unprotected, if it is still there).
    pub(crate) fn end_session(&self, id: u64) {
        if let Some(addr) = self.sessions.end(id) {
            self.users.update(addr, |u| {
                if u.session == Some(id) {
                    u.session = None;
                }
            });
        }
    }

    /// The sealer of session `id` (to answer a path challenge's address, which is not
    /// the session's yet).
    pub(crate) fn sealer_of(&self, id: u64) -> Option<Arc<Sealer>> {
        self.sessions.sealer_of(id)
    }

    /// Records a path challenge of session `id` to `addr` with `data` at `now`, unless one
    /// to the same address went out less than [`CHALLENGE_EVERY`] ago. Returns whether a
    /// challenge is to be sent.
    pub(crate) fn challenge_path(
        &self,
        id: u64,
        addr: SocketAddr,
        data: [u8; 8],
        now: Instant,
    ) -> bool {
        self.sessions.challenge(id, addr, data, now)
    }

    /// Whether `data` answers the path challenge of session `id` to `addr` (which is then
    /// used up).
    pub(crate) fn path_answered(&self, id: u64, addr: SocketAddr, data: &[u8]) -> bool {
        self.sessions.answered(id, addr, data)
    }

    /// Whether a session with this id exists.
    pub(crate) fn has_session(&self, id: u64) -> bool {
        self.sessions.contains(id)
    }

    /// Checks a sealed datagram: known session, right tag (first, so that the window only
    /// moves for genuine datagrams), fresh counter.
    pub(crate) fn check_sealed(&self, sealed: &Sealed<'_>) -> SealCheck {
        self.sessions.check(sealed)
    }

    /// Moves the user of session `id` from `old` to `new`: user map, nickname index,
    /// channels, watcher lists and the session. Nobody may be at `new`; returns whether
    /// the move happened. Runs on the worker that owns the session (module docs).
    pub(crate) fn move_user(&self, id: u64, old: SocketAddr, new: SocketAddr) -> bool {
        if self.users.contains(new) {
            return false;
        }
        let Some(user) = self.users.remove(old) else {
            return false;
        };
        for &c in &user.channels {
            if let Some(ch) = self.channel(c) {
                ch.replace(old, new);
            }
        }
        for w in &user.watching {
            self.watchers.replace(w, old, new);
        }
        let nick = user.nick.clone();
        self.users.insert(new, user);
        self.nicks.rebind(&nick, new);
        self.sessions.rebind(id, old, new);
        true
    }
}
