//! The state machine: a datagram, the time and the shared [`State`] go in; datagrams to
//! send and [effects](crate::outbox::Effect) come out in an [`Outbox`]. It does no I/O and
//! reads no clock: the caller passes the time in, carries the effects out (a nickname
//! lease in Redis, an account read or write, an event for the other servers) and feeds
//! their results back through [`Handler::complete`]. A request that waits for such a
//! result is a state (a login waiting for its lease), never a blocked thread.
//!
//! One module per concept, each an `impl Handler` block with the requests it answers:
//! [`login`] (log in and off, leases), [`channels`] (join, part, lists), [`messages`]
//! (public and private), [`directory`] (who, whois), [`hotlist`] (watch, unwatch),
//! [`accounts`] (register, unregister), [`sessions`] (password logins and sealed
//! datagrams), [`caps`] (capabilities and PING), [`multicast`] (channel groups
//! and discovery) and [`remote`] (what the other servers of a cluster report).
//!
//! Part 5, the community features: [`community`] (HELLO, rights, notices, results),
//! [`created`] (channels users create and give up), [`moderation`] (topic, kick, ban,
//! invitations), [`modes`] (modes, operators, voices), [`history`] (recent messages, private messages kept for users
//! away), [`operators`] (server operators' commands, address bans) and
//! [`community_remote`] (the same, as other servers of a cluster report it).

mod accounts;
pub mod audit;
mod caps;
mod channels;
mod community;
mod community_remote;
mod created;
mod directory;
mod history;
mod hotlist;
mod login;
mod messages;
mod moderation;
mod modes;
mod multicast;
mod operators;
mod remote;
mod sessions;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dashmap::DashMap;

pub use crate::outbox::{Done, Effect, Fanout, Outbox};
pub use multicast::Discovery;

use crate::accounts::Service;
use crate::cluster::{ClusterEvent, UserInfo};
use crate::datagram::{Incoming, Kind};
use crate::multicast::Groups;
use crate::outbox::Ticket;
use crate::settings::{Live, LiveSettings};
use crate::state::{Channel, ChannelId, Presence, Route, State, User};
use audit::Audit;
use proto::auth::SessionKeys;
use proto::{code, errors, ChannelInfo, DecodeError, Event, Request};

/// The most nicknames one user's hot list holds.
pub const MAX_WATCH: usize = 100;
/// The most USER_ITEMs one WHO_REQ answers with.
pub const MAX_WHO: usize = 100;
/// Channels one user may be in at once, unless set otherwise.
pub const DEFAULT_MAX_CHANNELS_PER_USER: usize = 64;
/// Requests waiting for an effect's result at once, per kind; past it new ones are
/// refused, so a flood can't grow the tables.
pub const MAX_WAITING: usize = 4096;
/// How long a request waits for an effect's result before it is given up (the threads
/// that carry effects out answer well within this: Redis requests time out after 500 ms).
pub const WAIT_TIMEOUT: Duration = Duration::from_secs(30);

/// Milliseconds since the Unix epoch at `wall`.
pub fn unix_ms(wall: SystemTime) -> u64 {
    wall.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The fixed settings of a handler.
#[derive(Debug, Clone, Copy)]
struct Config {
    max_datagram: usize,
    idle_timeout: Duration,
    max_channels_per_user: usize,
    /// Part of a cluster: logins wait for the nickname's lease and changes are published.
    cluster: bool,
    /// Channels have multicast groups: the `multicast` cap may be granted.
    multicast: bool,
}

/// A login waiting for its nickname's lease (cluster mode).
#[derive(Debug)]
struct LeaseWait {
    serial: u64,
    nick: String,
    since: Instant,
    /// For a password login: the session to open and the hot list to restore.
    session: Option<(SessionKeys, Vec<String>)>,
}

/// An account read or write waiting for the store.
#[derive(Debug)]
enum JobWait {
    /// AUTH_REQ: the account is being read.
    Load {
        addr: SocketAddr,
        request: Vec<u8>,
        since: Instant,
    },
    /// REGISTER_UPLOAD or UNREGISTER_REQ: the write is being committed.
    Store {
        addr: SocketAddr,
        key: String,
        nick: String,
        /// `registered`, `changed` or `unregistered`.
        what: &'static str,
        since: Instant,
    },
}

impl JobWait {
    fn since(&self) -> Instant {
        match self {
            JobWait::Load { since, .. } | JobWait::Store { since, .. } => *since,
        }
    }
}

/// Requests waiting for effects; shared by the workers, each entry written by the worker
/// that owns its address.
#[derive(Debug, Default)]
struct Waits {
    serial: AtomicU64,
    leases: DashMap<SocketAddr, LeaseWait>,
    jobs: DashMap<u64, JobWait>,
}

/// Applies requests to the shared state; cheap to clone (one per worker).
#[derive(Debug, Clone)]
pub struct Handler {
    state: Arc<State>,
    accounts: Arc<Service>,
    waits: Arc<Waits>,
    /// The channels' multicast groups (empty without a multicast range).
    groups: Arc<Groups>,
    /// What DISCOVER is answered with; `None`: not answered (`--no-discovery`).
    discovery: Option<Arc<Discovery>>,
    /// Security counters (logins, lockouts, registrations, path changes).
    audit: Arc<Audit>,
    config: Config,
    /// Part 5: the live settings and the requests waiting for community effects.
    community: Arc<community::Community>,
}

impl Handler {
    /// A handler over `state` that accepts datagrams of up to `max_datagram` bytes and logs
    /// off users silent for longer than `idle_timeout`. No accounts exist until
    /// [`with_accounts`](Self::with_accounts) gives a service.
    pub fn new(state: Arc<State>, max_datagram: usize, idle_timeout: Duration) -> Self {
        Handler {
            state,
            accounts: Arc::new(Service::in_memory()),
            waits: Arc::default(),
            groups: Arc::default(),
            discovery: None,
            community: Arc::default(),
            audit: Arc::default(),
            config: Config {
                max_datagram,
                idle_timeout,
                max_channels_per_user: DEFAULT_MAX_CHANNELS_PER_USER,
                cluster: false,
                multicast: false,
            },
        }
    }

    /// The same handler as part of a cluster: logins wait for the nickname's lease
    /// ([`Effect::ClaimLease`]) and local changes are published ([`Effect::Publish`]).
    pub fn in_cluster(mut self) -> Self {
        self.config.cluster = true;
        self
    }

    /// The same handler with another cap on the channels one user may be in at once.
    pub fn with_max_channels_per_user(mut self, cap: usize) -> Self {
        self.config.max_channels_per_user = cap.max(1);
        let mut live = (*self.live()).clone();
        live.max_channels_per_user = self.config.max_channels_per_user;
        self.community.live.set(live);
        self
    }

    /// The same handler reading its part-5 settings from `live` (shared with whoever
    /// reloads the configuration).
    pub fn with_live(mut self, live: Arc<LiveSettings>) -> Self {
        self.community = Arc::new(community::Community::new(live));
        self
    }

    /// The part-5 settings now.
    pub fn live(&self) -> Arc<Live> {
        self.community.live.get()
    }

    /// The same handler with the accounts of `accounts`.
    pub fn with_accounts(mut self, accounts: Arc<Service>) -> Self {
        self.accounts = accounts;
        self
    }

    /// The same handler with multicast groups for its channels: the `multicast` cap is
    /// granted (if any channel has a group) and members that confirm hear their channels
    /// there.
    pub fn with_groups(mut self, groups: Arc<Groups>) -> Self {
        self.config.multicast = !groups.is_empty();
        self.groups = groups;
        self
    }

    /// The same handler answering DISCOVER with `discovery`.
    pub fn with_discovery(mut self, discovery: Discovery) -> Self {
        self.discovery = Some(Arc::new(discovery));
        self
    }

    /// The channels' multicast groups.
    pub fn groups(&self) -> &Arc<Groups> {
        &self.groups
    }

    /// The shared state.
    pub fn state(&self) -> &Arc<State> {
        &self.state
    }

    /// The accounts service.
    pub fn accounts(&self) -> &Arc<Service> {
        &self.accounts
    }

    /// The security counters.
    pub fn audit(&self) -> &Arc<Audit> {
        &self.audit
    }

    /// Handles one datagram received at `now` (`wall`: the same moment on the wall clock).
    /// Returns whether its source was logged in when it arrived (replies to strangers are
    /// limited by the caller); a sealed datagram counts as logged in whether it verified or
    /// not, since it gets no answer either way unless it did.
    pub fn handle(
        &self,
        now: Instant,
        wall: SystemTime,
        dgram: Incoming<'_>,
        out: &mut Outbox,
    ) -> bool {
        let sealed_code = matches!(
            dgram.class.kind,
            Kind::Sealed { .. }
                | Kind::Plain {
                    code: proto::code::SEALED
                }
        );
        if sealed_code {
            if let Some((bound, inner, session)) =
                self.open_sealed(now, dgram.from, dgram.bytes, out)
            {
                match Request::decode(&inner, self.config.max_datagram) {
                    // Answers a challenge sent to the datagram's own source address.
                    Ok(Request::PathResponse { data }) => {
                        self.path_response(dgram.from, bound, Some(session), data, out)
                    }
                    _ => {
                        self.plain(now, wall, bound, &inner, Some(session), out);
                    }
                }
            }
            return true;
        }
        self.plain(now, wall, dgram.from, dgram.bytes, None, out)
    }

    /// Handles a classic datagram; `session` is the protected session it arrived in.
    fn plain(
        &self,
        now: Instant,
        wall: SystemTime,
        from: SocketAddr,
        datagram: &[u8],
        session: Option<u64>,
        out: &mut Outbox,
    ) -> bool {
        let presence = self.state.touch(from, now);
        if let Presence::Protected(id) = presence {
            if session != Some(id) {
                // Only the session's sealed datagrams speak for a protected user: this one
                // is forged or stale. No answer, so a forger learns nothing.
                self.state.note_auth_rejected();
                return true;
            }
        }
        let logged_in = presence != Presence::Stranger;
        let request = match Request::decode(datagram, self.config.max_datagram) {
            Ok(r) => r,
            Err(e) => {
                match e {
                    // Anyone on the LAN may look for servers; a malformed look gets no
                    // answer (part 4's server notes), logged in or not.
                    DecodeError::TooShort | DecodeError::Malformed(code::DISCOVER) => {}
                    DecodeError::TooLong { .. } => out.error(from, errors::DATAGRAM_TOO_LONG),
                    DecodeError::InvalidText(_) if logged_in => {
                        out.error(from, errors::INVALID_TEXT)
                    }
                    DecodeError::InvalidText(_) => {}
                    DecodeError::UnknownCode(_) | DecodeError::Malformed(_) if logged_in => {
                        out.error(from, errors::UNIMPLEMENTED)
                    }
                    DecodeError::UnknownCode(_) | DecodeError::Malformed(_) => {
                        out.error(from, errors::PLEASE_LOG_IN)
                    }
                }
                return logged_in;
            }
        };
        if matches!(
            request,
            Request::Login { .. } | Request::Auth { .. } | Request::AuthFinish { .. }
        ) && self.refuse_banned_address(wall, from, out)
        {
            return logged_in;
        }
        match request {
            Request::Login { nick } => self.login(now, wall, from, nick, out),
            Request::Auth {
                nick,
                message,
                token,
            } => self.auth_start(now, wall, from, (nick, message, token), out),
            Request::AuthFinish { message } => self.auth_finish(now, wall, from, message, out),
            // Answered whoever asks (how often is the worker's limit to set).
            Request::Discover => self.discover(from, datagram.len(), out),
            _ if !logged_in => out.error(from, errors::PLEASE_LOG_IN),
            Request::Logoff => self.logoff(from, out),
            Request::Join { title } => self.join(now, wall, from, title, out),
            Request::Part { title } => self.part(now, wall, from, title, out),
            Request::SendPublic { text } => self.public(wall, from, text, out),
            Request::SendPrivate { recipient, text } => {
                self.private(now, wall, from, recipient, text, out)
            }
            Request::ListChannels => self.list_channels(from, out),
            Request::ListUsers => self.list_users(now, wall, from, out),
            Request::StillHere => {}
            Request::Who { prefix } => self.who(now, wall, from, prefix, out),
            Request::Whois { nick } => self.whois(now, wall, from, nick, out),
            Request::Watch { nicks } => self.watch(from, nicks, out),
            Request::Unwatch { nicks } => self.unwatch(from, nicks, out),
            Request::Register { message } => self.register_start(wall, from, message, session, out),
            Request::RegisterUpload { message } => {
                self.register_finish(now, wall, from, message, session, out)
            }
            Request::Unregister => self.unregister(now, from, session, out),
            Request::PathResponse { data } => self.path_response(from, from, session, data, out),
            Request::Caps { caps } => self.caps(now, from, caps, out),
            Request::Ping { token } => self.ping(from, token, out),
            Request::McastJoined { title } => self.mcast_joined(from, title),
            Request::McastLeft { title } => self.mcast_left(from, title),
            r @ (Request::Hello { .. }
            | Request::ChanCreate { .. }
            | Request::ChanTopic { .. }
            | Request::ChanKick { .. }
            | Request::ChanBan { .. }
            | Request::ChanUnban { .. }
            | Request::ChanMode { .. }
            | Request::ChanInvite { .. }
            | Request::ChanDrop { .. }
            | Request::History { .. }
            | Request::OperKill { .. }
            | Request::OperBan { .. }
            | Request::OperUnban { .. }
            | Request::OperNotice { .. }
            | Request::OperStatus) => self.community_request(now, wall, from, r, out),
        }
        logged_in
    }

    /// Feeds the result of an effect back in: completes the request that waited for it.
    /// A result for a request that was given up in the meantime is ignored.
    pub fn complete(&self, now: Instant, wall: SystemTime, done: Done, out: &mut Outbox) {
        match done {
            Done::Lease { ticket, answer } => self.lease_answered(now, wall, ticket, answer, out),
            Done::Loaded { ticket, account } => self.account_loaded(now, ticket, account, out),
            Done::Stored { ticket, ok } => self.stored(ticket, ok, out),
            Done::Community(done) => self.community_done(now, wall, done, out),
        }
    }

    /// Periodic clean-up of what expires on its own: password logins left half-way,
    /// attempt counts, and requests whose effect never answered.
    pub fn housekeeping(&self, now: Instant) {
        self.accounts.housekeeping(now);
        let late = |since: Instant| now.saturating_duration_since(since) > WAIT_TIMEOUT;
        let mut given_up = Vec::new();
        self.waits.leases.retain(|addr, w| {
            let keep = !late(w.since);
            if !keep {
                given_up.push((*addr, w.nick.clone()));
            }
            keep
        });
        for (addr, nick) in given_up {
            self.state.unreserve(addr, &nick);
        }
        self.waits.jobs.retain(|_, j| !late(j.since()));
        self.community.housekeeping(now);
    }

    /// Users silent for longer than the idle timeout at `now`, with the route of each.
    pub fn idle_users(&self, now: Instant) -> Vec<(SocketAddr, Route)> {
        match now.checked_sub(self.config.idle_timeout) {
            Some(deadline) => self.state.silent_since(deadline),
            None => Vec::new(),
        }
    }

    /// Logs off the user at `addr` if it is still silent past the idle timeout at `now`
    /// (it may have spoken since the sweep listed it). Returns whether it was logged off.
    pub fn expire(&self, now: Instant, addr: SocketAddr, out: &mut Outbox) -> bool {
        let still_idle = self.state.user(addr).is_some_and(|u| {
            now.saturating_duration_since(u.last_heard) > self.config.idle_timeout
        });
        if still_idle {
            self.logoff(addr, out);
        }
        still_idle
    }

    // ---- helpers shared by the concept modules ----

    /// A new ticket for a request from `addr` whose worker owns `route`.
    fn ticket(&self, addr: SocketAddr, route: Route) -> Ticket {
        Ticket {
            addr,
            route,
            serial: self.waits.serial.fetch_add(1, Ordering::Relaxed) + 1,
        }
    }

    /// Asks for `event` to be published, in cluster mode.
    fn publish(&self, event: ClusterEvent, out: &mut Outbox) {
        if self.config.cluster {
            out.effect(Effect::Publish(event));
        }
    }

    /// Publishes the whole record of the user at `addr` (after a login, join or part).
    fn publish_user(&self, now: Instant, wall: SystemTime, addr: SocketAddr, out: &mut Outbox) {
        if !self.config.cluster {
            return;
        }
        if let Some(user) = self.state.user(addr) {
            let online = now.saturating_duration_since(user.login).as_millis() as u64;
            let info = UserInfo {
                nick: user.nick.to_string(),
                login_ms: unix_ms(wall).saturating_sub(online),
                channels: self.titles(&user.channels),
            };
            self.publish(ClusterEvent::User(info), out);
        }
    }

    /// The titles of `ids` (those that still exist).
    fn titles(&self, ids: &[ChannelId]) -> Vec<String> {
        ids.iter()
            .filter_map(|&id| self.state.channel(id).map(|c| c.title.to_string()))
            .collect()
    }

    /// A channel as JOIN_ACK, PART_ACK and CHANNEL_ITEM show it, counting remote members;
    /// `None` if it was destroyed.
    fn channel_view(&self, id: ChannelId) -> Option<ChannelView> {
        self.state.channel(id).map(|ch| self.view_of(ch))
    }

    /// The view of `ch`.
    fn view_of(&self, ch: Arc<Channel>) -> ChannelView {
        let count = (ch.len() + self.state.remote().count(ch.id)) as u32;
        ChannelView {
            description: ch.description(),
            count,
            ch,
        }
    }

    /// Appends USER_ITEM for the local `user` to `out`.
    fn user_item(&self, now: Instant, to: SocketAddr, user: &User, out: &mut Outbox) {
        let titles = self.titles(&user.channels).join(" ");
        out.send(
            to,
            &Event::UserItem {
                nick: &user.nick,
                seconds: now.saturating_duration_since(user.login).as_secs(),
                channels: &titles,
            },
        );
    }
}

/// A channel as JOIN_ACK, PART_ACK and CHANNEL_ITEM show it, owned so that it outlives
/// the look-up in the channel table.
struct ChannelView {
    ch: Arc<Channel>,
    description: Arc<str>,
    count: u32,
}

impl ChannelView {
    fn info(&self) -> ChannelInfo<'_> {
        ChannelInfo {
            title: &self.ch.title,
            count: self.count,
            description: &self.description,
        }
    }
}

#[cfg(test)]
mod community_tests;
#[cfg(test)]
mod tests;
