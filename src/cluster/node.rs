//! The cluster handle ([`Cluster`]) the workers, lease threads, cluster thread and
//! publisher thread share: the connection setup, the bounded publisher queue, the pool of
//! connections for nickname leases, and the counters.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use parking_lot::Mutex;

use super::config::{ClusterConfig, ClusterError};
use super::event::{
    self, valid_server_id, Body, ClusterEvent, PrivateMessage, PublicMessage, Signer, UserInfo,
};
use super::lease;
use crate::state::{State, User};
use crate::tls::Trust;

/// Events the publisher queue holds; past that they are dropped and counted.
pub const PUBLISH_QUEUE: usize = 16384;
/// Idle Redis connections kept for nickname leases.
const LEASE_POOL: usize = 8;
/// How long a lease thread waits for Redis to answer a lease request before it gives up
/// and lets the login be decided locally.
const LEASE_TIMEOUT: Duration = Duration::from_millis(500);

/// Cluster counters (exported as metrics).
#[derive(Debug, Default)]
pub struct ClusterStats {
    /// Events published to Redis.
    pub published: AtomicU64,
    /// Events dropped because the publisher queue was full or Redis was unreachable.
    pub publish_dropped: AtomicU64,
    /// Events received from other servers and applied.
    pub received: AtomicU64,
    /// Events from Redis that were malformed.
    pub malformed: AtomicU64,
    /// Duplicate or stale events dropped.
    pub duplicates: AtomicU64,
    /// Events dropped as too old: sealed longer ago than the age bound, or before their
    /// topic was subscribed (a replay, or clocks that differ).
    pub too_old: AtomicU64,
    /// Events found missing by their sequence numbers.
    pub gaps: AtomicU64,
    /// Logins decided locally because Redis was unreachable.
    pub local_only_logins: AtomicU64,
    /// Leases found held by another server when re-claimed after an outage.
    pub lease_conflicts: AtomicU64,
    /// Times the connection to Redis was (re)established.
    pub connects: AtomicU64,
    /// Servers found dead (alive key expired) and dropped from the view.
    pub servers_lost: AtomicU64,
}

/// The answer to a nickname lease request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lease {
    /// This server holds it now.
    Ours,
    /// Another server holds it.
    Taken,
    /// Redis could not be asked.
    Unavailable,
}

/// What the publisher thread sends: an event for `topic`; `hash` also writes the users
/// hash (field, value or delete).
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub(super) topic: String,
    pub(super) body: Body,
    pub(super) hash: Option<(String, Option<String>)>,
}

/// The cluster handle: cheap to share behind an `Arc`, used by the workers (publishing),
/// the lease threads, the cluster thread and the publisher thread.
pub struct Cluster {
    /// The configuration.
    pub config: ClusterConfig,
    /// This run's epoch: its start time in milliseconds, so a restart is told from a
    /// late event of the previous run.
    pub epoch: u64,
    /// Connections are made from this (it only holds the parsed URL and TLS setup).
    client: ::redis::Client,
    /// Authenticates what this server writes to Redis and checks what it reads.
    pub(crate) signer: Signer,
    /// The counters.
    pub stats: ClusterStats,
    /// Whether the cluster thread is connected; workers skip Redis while it is not.
    connected: AtomicBool,
    /// The publisher queue (bounded; full: drop and count).
    publish_tx: Sender<Outgoing>,
    /// Its receiving end, taken by the publisher thread when it starts.
    publish_rx: Mutex<Option<Receiver<Outgoing>>>,
    /// Idle connections for lease requests: a bounded channel used as a lock-free pool, so
    /// no lock is held while a worker talks to Redis.
    pool: (Sender<::redis::Connection>, Receiver<::redis::Connection>),
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("server_id", &self.config.server_id)
            .field("epoch", &self.epoch)
            .field("connected", &self.is_connected())
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// A cluster handle for a server with `channels` channels. Does not connect yet: the
    /// cluster thread does, so a server starts even while Redis is down.
    ///
    /// # Errors
    /// When the server id or the URL is invalid.
    pub fn new(config: ClusterConfig, trust: &Trust) -> Result<Self, ClusterError> {
        if !valid_server_id(&config.server_id) {
            return Err(ClusterError::ServerId(config.server_id));
        }
        if config.secret.0.len() < event::MIN_SECRET {
            return Err(ClusterError::Secret(format!(
                "at least {} bytes are needed",
                event::MIN_SECRET
            )));
        }
        let client = trust.redis(&config.redis_url)?;
        let (publish_tx, publish_rx) = bounded(PUBLISH_QUEUE);
        Ok(Cluster {
            epoch: unix_ms(),
            client,
            stats: ClusterStats::default(),
            connected: AtomicBool::new(false),
            publish_tx,
            publish_rx: Mutex::new(Some(publish_rx)),
            pool: bounded(LEASE_POOL),
            signer: Signer::new(&config.secret.0),
            config,
        })
    }

    /// This server's id.
    pub fn server_id(&self) -> &str {
        &self.config.server_id
    }

    /// Whether the cluster thread is connected to Redis.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }

    pub(crate) fn set_connected(&self, up: bool) {
        self.connected.store(up, Ordering::Release);
    }

    pub(crate) fn client(&self) -> &::redis::Client {
        &self.client
    }

    pub(crate) fn take_publish_rx(&self) -> Option<Receiver<Outgoing>> {
        self.publish_rx.lock().take()
    }

    /// Queues an event for the publisher; drops and counts it when the queue is full
    /// (a worker never waits on Redis) or while Redis is unreachable (the reconnection
    /// republishes the state that matters).
    fn publish(&self, item: Outgoing) {
        if !self.is_connected() {
            self.stats.publish_dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        match self.publish_tx.try_send(item) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.stats.publish_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Runs `f` on a pooled connection; `None` when Redis is unreachable.
    fn with_conn<T>(
        &self,
        f: impl FnOnce(&mut ::redis::Connection) -> ::redis::RedisResult<T>,
    ) -> Option<T> {
        if !self.is_connected() {
            return None;
        }
        let mut conn = match self.pool.1.try_recv() {
            Ok(c) => c,
            Err(_) => {
                let c = self
                    .client
                    .get_connection_with_timeout(LEASE_TIMEOUT)
                    .ok()?;
                c.set_read_timeout(Some(LEASE_TIMEOUT)).ok()?;
                c.set_write_timeout(Some(LEASE_TIMEOUT)).ok()?;
                c
            }
        };
        match f(&mut conn) {
            Ok(v) => {
                // Pool full: this connection is simply closed.
                let _ = self.pool.0.try_send(conn);
                Some(v)
            }
            Err(e) => {
                tracing::debug!("lease request failed: {e}");
                None
            }
        }
    }

    /// Claims the lease of `nick` for this server (or confirms that it holds it). Waits
    /// for Redis up to [`LEASE_TIMEOUT`]: called by the lease threads, never a worker.
    pub fn claim_nick(&self, nick: &str) -> Lease {
        let ttl = self.config.lease_ttl.as_millis() as u64;
        let key = event::lease_key(nick);
        let ours = self.signer.lease_value(&key, self.server_id());
        let answer = self.with_conn(|c| {
            if lease::claim_cmd(&key, &ours, ttl).query::<i64>(c)? == 1 {
                return Ok(Lease::Ours);
            }
            // Held: by a server of the cluster, or by a value nobody with the secret wrote
            // (someone with write access to Redis squatting the name), which is replaced.
            let held: Option<Vec<u8>> = ::redis::cmd("GET").arg(&key).query(c)?;
            match held {
                Some(v) if !self.signer.lease_genuine(&key, &v) => {
                    tracing::warn!(nick, "forged nickname lease in Redis replaced");
                    self.stats.malformed.fetch_add(1, Ordering::Relaxed);
                    let stolen: i64 = lease::replace_cmd(&key, &v, &ours, ttl).query(c)?;
                    Ok(if stolen == 1 {
                        Lease::Ours
                    } else {
                        Lease::Taken
                    })
                }
                _ => Ok(Lease::Taken),
            }
        });
        match answer {
            Some(lease) => lease,
            None => {
                self.stats.local_only_logins.fetch_add(1, Ordering::Relaxed);
                Lease::Unavailable
            }
        }
    }

    /// The value of this server's lease of `nick`.
    pub(crate) fn lease_value(&self, nick: &str) -> String {
        self.signer
            .lease_value(&event::lease_key(nick), self.server_id())
    }

    /// Releases the lease of `nick` if this server holds it. While Redis is unreachable
    /// nothing is done: the lease expires, or the reconnection finds the user gone.
    pub fn release_nick(&self, nick: &str) {
        let key = event::lease_key(nick);
        let ours = self.lease_value(nick);
        let _ = self.with_conn(|c| lease::release_cmd(&key, &ours).query::<i64>(c));
    }

    /// Publishes an event of the handler's.
    pub fn publish_event(&self, event: ClusterEvent) {
        match event {
            ClusterEvent::User(rec) => self.user_changed(rec),
            ClusterEvent::UserGone { nick } => self.user_gone(&nick),
            ClusterEvent::Public(message) => self.public(message),
            ClusterEvent::Private { server, message } => self.private(&server, message),
            ClusterEvent::Community(ev) => self.publish(Outgoing {
                topic: event::presence_topic(),
                body: Body::Community { ev },
                hash: None,
            }),
        }
    }

    /// Tells the cluster about a local user's record after a login, join or part.
    pub fn user_changed(&self, rec: UserInfo) {
        let field = proto::nick::key(&rec.nick);
        let json = serde_json::to_string(&rec).unwrap_or_default();
        let value = self.signer.seal_user(self.server_id(), &field, &json);
        self.publish(Outgoing {
            topic: event::presence_topic(),
            body: Body::User {
                nick: rec.nick.clone(),
                rec: Some(rec),
            },
            hash: Some((field, Some(value))),
        });
    }

    /// Tells the cluster a local user logged off (after its lease was released).
    pub fn user_gone(&self, nick: &str) {
        self.publish(Outgoing {
            topic: event::presence_topic(),
            body: Body::User {
                nick: nick.to_owned(),
                rec: None,
            },
            hash: Some((proto::nick::key(nick), None)),
        });
    }

    /// Publishes a public message (with its history id and time) for the other servers'
    /// members of its channel.
    pub fn public(&self, message: PublicMessage) {
        self.publish(Outgoing {
            topic: event::channel_topic(&message.title),
            body: Body::Public(message),
            hash: None,
        });
    }

    /// Sends a private message to its recipient, a user of `server`.
    pub fn private(&self, server: &str, message: PrivateMessage) {
        self.publish(Outgoing {
            topic: event::server_topic(server),
            body: Body::Private(message),
            hash: None,
        });
    }

    /// Queues a control event (hello, bye); waits up to a second for room, since these
    /// are what make the others reload their view.
    pub(crate) fn control(&self, body: Body) {
        let item = Outgoing {
            topic: event::presence_topic(),
            body,
            hash: None,
        };
        if self
            .publish_tx
            .send_timeout(item, Duration::from_secs(1))
            .is_err()
        {
            self.stats.publish_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The record other servers get of the local `user`, at `now` (its login time is
/// converted to the wall clock).
pub fn user_info(state: &State, user: &User, now: Instant) -> UserInfo {
    let online = now.saturating_duration_since(user.login).as_millis() as u64;
    UserInfo {
        nick: user.nick.to_string(),
        login_ms: unix_ms().saturating_sub(online),
        channels: user
            .channels
            .iter()
            .filter_map(|&id| state.channel(id).map(|c| c.title.to_string()))
            .collect(),
    }
}

/// Milliseconds since the Unix epoch now.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
