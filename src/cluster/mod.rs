//! Cluster mode: several `chat-server` processes share one chat space through Redis.
//!
//! ```text
//!  workers ── Publish effects (login, logoff, join, part, public, private) ──► bounded queue ──► publisher thread ──► Redis
//!  lease threads ── ClaimLease/ReleaseLease effects: SET NX / compare-and-delete, on a small connection pool
//!  cluster thread ◄── SUBSCRIBE presence, own server topic, topics of channels with local members
//!     │  what the others report ──► Handler::cluster_input (view of remote users, notices) ──► senders
//!     └─ every lease TTL / 3: renew server key, users hash and leases; drop servers whose key is gone
//! ```
//!
//! Redis holds, per server, a key that says it is alive (`udpchat:server:<id>`, with a TTL)
//! and the hash of its users (`udpchat:users:<id>`), and per nickname a lease
//! (`udpchat:nick:<lower>` = server id, with a TTL). Events go over plain pub/sub: one
//! presence topic all servers hear, one topic per channel that only servers with local
//! members of it subscribe to, and one topic per server for private messages. A public
//! message is thus published once and delivered once per server with members in the
//! channel, and each server fans it out with its own sender pool.
//!
//! This module knows neither the handler nor the outbox: workers hand it [`ClusterEvent`]s
//! to publish, and the cluster thread hands what it hears to a closure as
//! [`ClusterInput`]s, which the server feeds into the handler. Its files:
//!
//! - `event`: the events, their JSON form in Redis and its authentication, key names;
//! - `track`: per-origin sequence numbers and the age of events (duplicates, replays,
//!   gaps, restarts);
//! - `config`: how to join; `node`: the shared [`Cluster`] handle (publisher queue, lease
//!   connections, counters); `lease`: the lease scripts;
//! - `redis`: the cluster thread and the publisher thread.
//!
//! Publishing goes through one bounded queue to one publisher thread rather than a
//! connection per worker: the publisher pipelines whatever has queued up into one write (so
//! a burst of messages costs Redis few round trips), a worker never waits on Redis for a
//! message, and the sequence numbers of one topic are given in the order Redis receives
//! them. When the queue is full the event is dropped and counted: a worker must never stall
//! its users because Redis is slow. Nickname leases are asked for by the server's lease
//! threads (a login waits for the answer as a state, not a blocked worker), on connections
//! taken from a small pool.
//!
//! When Redis is unreachable every server keeps serving its own users: logins are decided
//! locally (and against the last known view of the others), events are dropped, and
//! `udpchat_cluster_connected` reads 0. The cluster thread reconnects with capped
//! exponential backoff and then republishes its users, leases and subscriptions and reloads
//! the others' users, so the view converges.

mod config;
pub mod event;
mod lease;
mod node;
pub(crate) mod redis;
mod track;

pub use config::{ClusterConfig, ClusterError, ClusterSecret};
pub use event::{
    ClusterEvent, ClusterInput, CommunityEvent, PrivateMessage, PublicMessage, UserInfo,
};
pub use node::{unix_ms, user_info, Cluster, ClusterStats, Lease, PUBLISH_QUEUE};
pub use track::Freshness;
