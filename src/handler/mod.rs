//! The state machine: a datagram, the time and the shared [`State`] go in; datagrams to
//! send and [effects](crate::outbox::Effect) come out in an [`Outbox`]. It does no I/O and
//! reads no clock: the caller passes the time in, carries the effects out (a nickname
//! lease in Redis, an account read or write, an event for the other servers) and feeds
//! their results back through [`Handler::complete`]. A request that waits for such a
//! result is a state (a login waiting for its lease), never a blocked thread.
//!
//! # Shape
//! [`Handler`] is a cheap handle on the parts every worker shares; each entry point
//! borrows them with the caller's outbox as a `Ctx` (in `ctx`) and hands it to plain
//! functions, as mini-redis hands each command its `Db` and connection:
//!
//! - `dispatch`: the one exhaustive match over [`proto::Request`] (and over the results
//!   of effects); each arm calls the concept function that answers it.
//! - `ctx`: the context (`Ctx`: shared parts and outbox; `Req`: who asked and when;
//!   `Actor`: with its nickname, for part 5), the waits for effects, and the small
//!   operations every concept needs (refuse, publish, relay, audit).
//! - `refusal`: every `ERROR` text as a `Refusal`; `Ctx::refuse` makes the datagram.
//! - `limits`: the fixed limits.
//! - One file per concept, each a set of `pub(crate) fn`s over the context: `login` (log
//!   in and off, leases), `channels` (join, part, lists), `messages` (public and
//!   private), `directory` (who, whois), `hotlist` (watch, unwatch), `accounts`
//!   (register, unregister), `sessions` (password logins and sealed datagrams), `caps`
//!   (capabilities and PING), `proof` (a guest proving its address), `multicast` (channel
//!   groups and discovery), `remote` (what the other servers of a cluster report); part 5: `community` (HELLO, results),
//!   `rights` (who may do what), `created` (channels users create), `moderation` (topic,
//!   kick, ban, invitations), `modes` (modes, operators, voices), `history` (recent
//!   messages, mail kept for users away), `mailbox` (the senders a user refuses mail
//!   from), `operators` (server operators' commands) and
//!   `community_remote` (the same, as other servers report it); `view` (how channels and
//!   users are shown).
//!
//! Files import downwards only (`cargo test --test layers` checks it): `ctx` and the
//! leaves below it, then `multicast`, `view`, `rights`, `hotlist`, `history`, `channels`,
//! `created`, `login`, `sessions`, the part-5 files, `remote`, and `dispatch` on top; this
//! file imports only what its entry points call.
//!
//! # Adding a request
//! Add the variant to `proto::Request` (its code to the protocol's table); the build then
//! fails in `dispatch::request` until an arm calls a function for it. Write that function
//! in the concept's file, taking the context and the request's fields; refuse with a new
//! `Refusal` variant if none says what is wrong. A function another concept needs too
//! goes to the lower of the two files (or to `view`/`rights`), never upwards.
//!
//! # Tests
//! `tests`, `community_tests` and `multicast::tests` drive the handler through one
//! fixture, `rig`: requests in as datagrams, the clock injected, what went out decoded.

mod accounts;
pub mod audit;
mod caps;
mod channels;
mod community;
mod community_remote;
mod created;
mod ctx;
mod directory;
mod dispatch;
mod history;
mod hotlist;
mod limits;
mod login;
mod mailbox;
mod messages;
mod moderation;
mod modes;
mod multicast;
mod operators;
mod proof;
mod refusal;
mod remote;
mod rights;
mod sessions;
mod view;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

pub use crate::outbox::{Done, Effect, Fanout, Outbox};
pub use ctx::{unix_ms, Discovery};

use crate::accounts::Service;
use crate::cluster::ClusterInput;
use crate::datagram::Incoming;
use crate::multicast::Groups;
use crate::settings::LiveSettings;
use crate::state::{Route, State};
use audit::Audit;
use ctx::{Config, Ctx, Shared};
use limits::WAIT_TIMEOUT;

/// Applies requests to the shared state; cheap to clone (one per worker).
#[derive(Debug, Clone)]
pub struct Handler {
    sh: Shared,
}

impl Handler {
    /// A handler over `state` that accepts datagrams of up to `max_datagram` bytes and logs
    /// off users silent for longer than `idle_timeout`. No accounts exist until
    /// [`with_accounts`](Self::with_accounts) gives a service.
    pub fn new(state: Arc<State>, max_datagram: usize, idle_timeout: Duration) -> Self {
        Handler {
            sh: Shared {
                state,
                accounts: Arc::new(Service::in_memory()),
                waits: Arc::default(),
                groups: Arc::default(),
                discovery: None,
                audit: Arc::default(),
                live: Arc::default(),
                config: Config {
                    max_datagram,
                    idle_timeout,
                    cluster: false,
                    multicast: false,
                },
            },
        }
    }

    /// The same handler as part of a cluster: logins wait for the nickname's lease
    /// ([`Effect::ClaimLease`]) and local changes are published ([`Effect::Publish`]).
    pub fn in_cluster(mut self) -> Self {
        self.sh.config.cluster = true;
        self
    }

    /// The same handler reading the settings a reload changes (limits, operators, the
    /// message of the day) from `live`, shared with whoever reloads the configuration.
    /// It reads them there at each request and keeps no copy.
    pub fn with_live(mut self, live: Arc<LiveSettings>) -> Self {
        self.sh.live = live;
        self
    }

    /// The same handler with the accounts of `accounts`.
    pub fn with_accounts(mut self, accounts: Arc<Service>) -> Self {
        self.sh.accounts = accounts;
        self
    }

    /// The same handler with multicast groups for its channels: the `multicast` cap is
    /// granted (if any channel has a group) and members that confirm hear their channels
    /// there.
    pub fn with_groups(mut self, groups: Arc<Groups>) -> Self {
        self.sh.config.multicast = !groups.is_empty();
        self.sh.groups = groups;
        self
    }

    /// The same handler answering DISCOVER with `discovery`.
    pub fn with_discovery(mut self, discovery: Discovery) -> Self {
        self.sh.discovery = Some(Arc::new(discovery));
        self
    }

    /// The shared state.
    pub fn state(&self) -> &Arc<State> {
        &self.sh.state
    }

    /// The security counters.
    pub fn audit(&self) -> &Arc<Audit> {
        &self.sh.audit
    }

    /// The context of one call writing into `out`.
    fn cx<'a>(&'a self, out: &'a mut Outbox) -> Ctx<'a> {
        Ctx { sh: &self.sh, out }
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
        dispatch::datagram(&mut self.cx(out), now, wall, dgram)
    }

    /// Feeds the result of an effect back in: completes the request that waited for it.
    /// A result for a request that was given up in the meantime is ignored.
    pub fn complete(&self, now: Instant, wall: SystemTime, done: Done, out: &mut Outbox) {
        dispatch::done(&mut self.cx(out), now, wall, done);
    }

    /// Applies what the cluster reported. Runs on the cluster thread, the only writer of
    /// the view of remote users.
    pub fn cluster_input(&self, input: ClusterInput, out: &mut Outbox) {
        remote::input(&mut self.cx(out), input);
    }

    /// Periodic clean-up of what expires on its own: password logins left half-way,
    /// attempt counts, and requests whose effect never answered.
    pub fn housekeeping(&self, now: Instant) {
        self.sh.accounts.housekeeping(now);
        for (addr, nick) in self.sh.waits.give_up(now, WAIT_TIMEOUT) {
            self.sh.state.unreserve(addr, &nick);
        }
    }

    /// Users silent for longer than the idle timeout at `now`, with the route of each.
    pub fn idle_users(&self, now: Instant) -> Vec<(SocketAddr, Route)> {
        match now.checked_sub(self.sh.config.idle_timeout) {
            Some(deadline) => self.sh.state.silent_since(deadline),
            None => Vec::new(),
        }
    }

    /// Logs off the user at `addr` if it is still silent past the idle timeout at `now`
    /// (it may have spoken since the sweep listed it). Returns whether it was logged off.
    pub fn expire(&self, now: Instant, addr: SocketAddr, out: &mut Outbox) -> bool {
        let idle = self.sh.config.idle_timeout;
        let still_idle = self
            .sh
            .state
            .user(addr)
            .is_some_and(|u| now.saturating_duration_since(u.last_heard) > idle);
        if still_idle {
            login::logoff(&mut self.cx(out), addr);
        }
        still_idle
    }
}

#[cfg(test)]
mod community_tests;
#[cfg(test)]
mod rig;
#[cfg(test)]
mod tests;
