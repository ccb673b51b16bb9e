//! The context every handler function works with: [`Shared`], the parts all workers share
//! (the state, the accounts, the requests waiting for effects, the live settings), and
//! [`Ctx`], those parts borrowed with the [`Outbox`] a call writes into. A request adds
//! [`Req`] (who asked, when, in which session) and, for a part-5 request, [`Actor`] (its
//! nickname too).
//!
//! The small operations every concept needs live here as methods of [`Ctx`]: refusing (the
//! one place an `ERROR` datagram is made, from a [`Refusal`]), tickets for effects,
//! publishing to the cluster, the audit log, and orders for the worker that owns a user.
//! This file imports no other file of the handler but the leaves `refusal`, `limits` and
//! `audit`, so every concept file may import it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dashmap::DashMap;

use super::audit::Audit;
use super::limits::MAX_WAITING;
use super::refusal::Refusal;
use crate::accounts::Service;
use crate::cluster::{ClusterEvent, CommunityEvent};
use crate::multicast::Groups;
use crate::outbox::community::{AuditRecord, Order};
use crate::outbox::{CommunityEffect, Effect, Outbox, Ticket};
use crate::settings::{Live, LiveSettings};
use crate::state::{Route, State};
use proto::auth::SessionKeys;

/// Milliseconds since the Unix epoch at `wall`.
pub fn unix_ms(wall: SystemTime) -> u64 {
    wall.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// What a server says about itself in `SERVER_HERE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    /// Its name (the cluster's server id, or the host name).
    pub name: String,
    /// The chat port to log in on.
    pub port: u16,
}

/// The fixed settings of a handler; what a reload may change is read from
/// [`Shared::live`] at each request, never copied here.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Config {
    pub(crate) max_datagram: usize,
    pub(crate) idle_timeout: Duration,
    /// Part of a cluster: logins wait for the nickname's lease and changes are published.
    pub(crate) cluster: bool,
    /// Channels have multicast groups: the `multicast` cap may be granted.
    pub(crate) multicast: bool,
}

/// A login waiting for its nickname's lease (cluster mode).
#[derive(Debug)]
pub(crate) struct LeaseWait {
    pub(crate) serial: u64,
    pub(crate) nick: String,
    pub(crate) since: Instant,
    /// For a password login: the session to open and the hot list to restore.
    pub(crate) session: Option<(SessionKeys, Vec<String>)>,
}

/// An account read or write waiting for the store.
#[derive(Debug)]
pub(crate) enum JobWait {
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

/// A request waiting for a part-5 effect.
#[derive(Debug)]
pub(crate) enum MailWait {
    /// A private message to a user away, being stored.
    Mail {
        addr: SocketAddr,
        recipient: String,
        since: Instant,
    },
    /// The messages kept for a user who just logged in, being read.
    Inbox {
        addr: SocketAddr,
        key: String,
        since: Instant,
    },
    /// The senders a user refuses, being changed or read.
    Refusals {
        addr: SocketAddr,
        key: String,
        since: Instant,
    },
}

/// Requests waiting for effects; shared by the workers, each entry written by the worker
/// that owns its address. Each table is bounded by [`MAX_WAITING`].
#[derive(Debug, Default)]
pub(crate) struct Waits {
    /// The last ticket serial given out.
    serial: AtomicU64,
    pub(crate) leases: DashMap<SocketAddr, LeaseWait>,
    pub(crate) jobs: DashMap<u64, JobWait>,
    pub(crate) mail: DashMap<u64, MailWait>,
}

impl Waits {
    /// Gives up the waits older than `timeout` at `now`; returns the lease waits given up
    /// (their reservations are to be dropped).
    pub(crate) fn give_up(&self, now: Instant, timeout: Duration) -> Vec<(SocketAddr, String)> {
        let late = |since: Instant| now.saturating_duration_since(since) > timeout;
        let mut given_up = Vec::new();
        self.leases.retain(|addr, w| {
            let keep = !late(w.since);
            if !keep {
                given_up.push((*addr, w.nick.clone()));
            }
            keep
        });
        self.jobs.retain(|_, j| match j {
            JobWait::Load { since, .. } | JobWait::Store { since, .. } => !late(*since),
        });
        self.mail.retain(|_, w| match w {
            MailWait::Mail { since, .. }
            | MailWait::Inbox { since, .. }
            | MailWait::Refusals { since, .. } => !late(*since),
        });
        given_up
    }
}

/// What every worker's handler shares; cheap to clone (every part that changes is behind
/// an `Arc`, shared by the clones).
#[derive(Debug, Clone)]
pub(crate) struct Shared {
    pub(crate) state: Arc<State>,
    pub(crate) accounts: Arc<Service>,
    pub(crate) waits: Arc<Waits>,
    /// The channels' multicast groups (empty without a multicast range).
    pub(crate) groups: Arc<Groups>,
    /// What DISCOVER is answered with; `None`: not answered (`--no-discovery`).
    pub(crate) discovery: Option<Arc<Discovery>>,
    /// Security counters (logins, lockouts, registrations, path changes).
    pub(crate) audit: Arc<Audit>,
    /// The settings a reload changes, shared with whoever reloads the configuration.
    pub(crate) live: Arc<LiveSettings>,
    pub(crate) config: Config,
}

/// The shared parts and the outbox of one call into the handler.
pub(crate) struct Ctx<'a> {
    pub(crate) sh: &'a Shared,
    pub(crate) out: &'a mut Outbox,
}

/// Who asked and when: the source of a request (or the user a result is for), the
/// moment it is handled on both clocks, and the protected session it arrived in.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Req {
    /// For durations: idle times, waits, seconds online.
    pub(crate) now: Instant,
    /// For what other servers and the store see: message times, bans, cookies.
    pub(crate) wall: SystemTime,
    pub(crate) from: SocketAddr,
    /// `None` for a classic datagram, and for a result fed back.
    pub(crate) session: Option<u64>,
}

/// A part-5 request: who asked, and the nickname it acts under.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Actor<'n> {
    pub(crate) rq: Req,
    pub(crate) nick: &'n str,
}

impl<'a> Ctx<'a> {
    /// Queues `ERROR` with the text of `refusal` for `to`.
    pub(crate) fn refuse(&mut self, to: SocketAddr, refusal: Refusal<'_>) {
        self.out.error(to, &refusal.to_string());
    }

    /// The live settings now; a request keeps the `Arc` it read for its whole course.
    pub(crate) fn live(&self) -> Arc<Live> {
        self.sh.live.get()
    }

    /// A new ticket for a request from `addr` whose worker owns `route`.
    pub(crate) fn ticket(&self, addr: SocketAddr, route: Route) -> Ticket {
        Ticket {
            addr,
            route,
            serial: self.sh.waits.serial.fetch_add(1, Ordering::Relaxed) + 1,
        }
    }

    /// Asks for `event` to be published, in cluster mode.
    pub(crate) fn publish(&mut self, event: ClusterEvent) {
        if self.sh.config.cluster {
            self.out.effect(Effect::Publish(event));
        }
    }

    /// Tells the other servers of a cluster of a part-5 change.
    pub(crate) fn publish_community(&mut self, event: CommunityEvent) {
        self.publish(ClusterEvent::Community(event));
    }

    /// Asks for a part-5 `effect` (a store write, a relay, an audit line).
    pub(crate) fn community(&mut self, effect: CommunityEffect) {
        self.out.effect(Effect::Community(effect));
    }

    /// Writes a line to the audit log: `by` did `action` to `target`.
    pub(crate) fn log(&mut self, by: &Actor<'_>, action: &str, target: &str, detail: &str) {
        self.community(CommunityEffect::Audit(AuditRecord {
            ms: unix_ms(by.rq.wall),
            actor: by.nick.to_owned(),
            action: action.to_owned(),
            target: target.to_owned(),
            detail: detail.to_owned(),
        }));
    }

    /// The route of the worker that owns the user at `addr`.
    pub(crate) fn route_of_user(&self, addr: SocketAddr) -> Option<Route> {
        let u = self.sh.state.user(addr)?;
        Some(match u.session {
            Some(id) => Route::Session(id),
            None => Route::Addr(addr),
        })
    }

    /// Hands `order` for the local user at `target` to the worker that owns it.
    pub(crate) fn relay(&mut self, target: SocketAddr, order: Order) {
        let Some(route) = self.route_of_user(target) else {
            return;
        };
        let ticket = self.ticket(target, route);
        self.community(CommunityEffect::Relay { ticket, order });
    }

    /// Records a wait for a part-5 effect; `false` (nothing recorded) when too many wait.
    pub(crate) fn wait_for_mail(&self, serial: u64, wait: MailWait) -> bool {
        let mail = &self.sh.waits.mail;
        if mail.len() >= MAX_WAITING {
            return false;
        }
        mail.insert(serial, wait);
        true
    }
}
