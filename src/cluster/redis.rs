//! The Redis side of a cluster: the cluster thread (subscription, replica, renewals,
//! failure detection, reconnection) and the publisher thread.
//!
//! The cluster thread owns the subscription connection and a command connection. It reads
//! with a short timeout so that, between messages, it can follow local channel membership
//! with SUBSCRIBE/UNSUBSCRIBE, renew this server's keys and leases, and look for servers
//! whose alive key has expired. Any Redis error ends the session: the thread marks the
//! cluster disconnected, waits (exponential backoff, capped) and starts a new session,
//! which republishes everything this server owns and reloads what the others own.
//!
//! A read that times out in the middle of a reply loses nothing: the client's RESP decoder
//! keeps the partial input and resumes at the next read.
//!
//! The cluster thread may block on Redis (a reload, a renewal, a full sender queue); it
//! holds no lock meanwhile, and the workers never wait for it.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ::redis::{Connection, RedisResult};
use crossbeam_channel::{Receiver, RecvTimeoutError};

use super::event::{self, valid_user, Body, ClusterInput, Envelope, UserInfo};
use super::lease::{release_cmd, CLAIM_LUA};
use super::node::{unix_ms, user_info, Cluster, Outgoing};
use super::track::{Seen, Tracker};
use crate::state::{ChannelId, State};
use proto::nick::key as nick_key;

/// First wait before reconnecting; doubled after each failure up to [`MAX_BACKOFF`].
pub(crate) const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait between reconnection attempts.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long the subscription read waits before the thread looks at its other duties. It
/// bounds how late a server subscribes to a channel after its first local member joined
/// (messages from other servers published in between do not reach that member).
const POLL: Duration = Duration::from_millis(10);
/// Timeout of connecting and of each command on the command connection.
const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// Events the publisher writes in one pipeline at most.
const PUBLISH_BATCH: usize = 256;

/// The most users read back from one server's users hash; a bigger hash is not read (only
/// someone writing to Redis behind the cluster's back makes one).
pub(crate) const MAX_USERS_PER_SERVER: usize = 1_000_000;
/// The longest users hash value read back, in bytes.
const MAX_USER_VALUE: usize = 64 * 1024;

fn connect(cluster: &Cluster) -> RedisResult<Connection> {
    let c = cluster.client().get_connection_with_timeout(IO_TIMEOUT)?;
    c.set_write_timeout(Some(IO_TIMEOUT))?;
    c.set_read_timeout(Some(IO_TIMEOUT))?;
    Ok(c)
}

/// Runs the cluster thread until `stop` is set. `deliver` takes what the other servers
/// reported (their users' changes, their messages for local users), in order.
pub(crate) fn run_cluster(
    cluster: Arc<Cluster>,
    state: Arc<State>,
    mut deliver: impl FnMut(Vec<ClusterInput>),
    stop: Arc<AtomicBool>,
) {
    let mut backoff = MIN_BACKOFF;
    let mut was_up = true; // so that a first failure is logged too
                           // Outlives every session: what was seen before a reconnection is still not news after
                           // it (`track`).
    let mut tracker = Tracker::new(cluster.config.freshness);
    while !stop.load(Ordering::Relaxed) {
        match session(
            &cluster,
            &state,
            &mut deliver,
            &stop,
            &mut backoff,
            &mut tracker,
        ) {
            Ok(()) => break,
            Err(e) => {
                if cluster.is_connected() || was_up {
                    tracing::warn!(
                        server = cluster.server_id(),
                        "cluster degraded: Redis unreachable ({e}); serving local users only, reconnecting"
                    );
                }
                was_up = false;
                cluster.set_connected(false);
            }
        }
        let until = Instant::now() + backoff;
        while Instant::now() < until && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(POLL);
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
    if cluster.is_connected() {
        goodbye(&cluster, &state);
    }
    cluster.set_connected(false);
}

/// On a clean stop: free this server's leases and keys and tell the others, so its users
/// vanish at once rather than after the lease TTL.
fn goodbye(cluster: &Cluster, state: &State) {
    let Ok(mut con) = connect(cluster) else {
        return;
    };
    let id = cluster.server_id();
    let mut pipe = ::redis::pipe();
    for nick in local_nicks(state) {
        pipe.add_command(release_cmd(
            &event::lease_key(&nick),
            &cluster.lease_value(&nick),
        ))
        .ignore();
    }
    pipe.del(event::server_key(id)).ignore();
    pipe.del(event::users_key(id)).ignore();
    let bye = Envelope {
        s: id.to_owned(),
        e: cluster.epoch,
        q: u64::MAX,
        t: unix_ms(),
        b: Body::Bye,
    };
    let topic = event::presence_topic();
    pipe.publish(&topic, bye.seal(&cluster.signer, &topic))
        .ignore();
    if let Err(e) = pipe.query::<()>(&mut con) {
        tracing::warn!("cluster goodbye failed: {e}");
    }
}

fn local_nicks(state: &State) -> Vec<Box<str>> {
    state.users().into_iter().map(|(_, u)| u.nick).collect()
}

/// Channels with local members now, by id with their titles.
fn wanted_channels(state: &State) -> HashMap<ChannelId, Box<str>> {
    state
        .channels()
        .into_iter()
        .filter(|c| !c.is_empty())
        .map(|c| (c.id, c.title.clone()))
        .collect()
}

/// One connection to Redis, from connect to the first error (`Err`) or stop (`Ok`).
fn session(
    cluster: &Cluster,
    state: &State,
    deliver: &mut impl FnMut(Vec<ClusterInput>),
    stop: &AtomicBool,
    backoff: &mut Duration,
    tracker: &mut Tracker,
) -> RedisResult<()> {
    let id = cluster.server_id().to_owned();
    let mut sub_con = connect(cluster)?;
    let mut cmd_con = connect(cluster)?;
    let mut ps = sub_con.as_pubsub();
    for topic in [event::presence_topic(), event::server_topic(&id)] {
        tracker.subscribed(&topic, unix_ms());
        ps.subscribe(topic)?;
    }
    let mut subscribed: HashMap<ChannelId, Box<str>> = HashMap::new();
    sync_subscriptions(state, &mut ps, &mut subscribed, tracker)?;
    ps.set_read_timeout(Some(IO_TIMEOUT))?;
    // Connected from here: events produced from now on are published, and what happened
    // before is covered by the republication below.
    cluster.set_connected(true);
    cluster.stats.connects.fetch_add(1, Ordering::Relaxed);
    republish(cluster, state, &mut cmd_con)?;
    let mut out: Vec<ClusterInput> = Vec::new();
    reload_all(cluster, &mut cmd_con, &mut out)?;
    deliver(std::mem::take(&mut out));
    tracing::info!(server = %id, epoch = cluster.epoch, "cluster connected to Redis");
    *backoff = MIN_BACKOFF;
    ps.set_read_timeout(Some(POLL))?;

    let tick = (cluster.config.lease_ttl / 3).max(Duration::from_millis(50));
    let grace = Instant::now() + cluster.config.lease_ttl + MAX_BACKOFF;
    let mut next_tick = Instant::now() + tick;
    let mut next_sync = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        match ps.get_message() {
            Ok(msg) => {
                let topic = msg.get_channel_name().to_owned();
                let payload: &[u8] = msg.get_payload_bytes();
                if let Some(action) = apply(cluster, tracker, &topic, payload, &mut out) {
                    match action {
                        Action::Reload(server) => {
                            reload_server(cluster, &mut cmd_con, &server, &mut out)?
                        }
                        Action::Drop(server) => out.push(ClusterInput::Server {
                            server,
                            users: Vec::new(),
                        }),
                    }
                }
            }
            Err(e) if e.is_timeout() => {}
            Err(e) => return Err(e),
        }
        let now = Instant::now();
        if now >= next_sync {
            sync_subscriptions(state, &mut ps, &mut subscribed, tracker)?;
            next_sync = now + POLL;
        }
        if now >= next_tick {
            renew(cluster, state, &mut cmd_con)?;
            check_servers(cluster, state, &mut cmd_con, &mut out, grace)?;
            next_tick = now + tick;
        }
        if !out.is_empty() {
            deliver(std::mem::take(&mut out));
        }
    }
    Ok(())
}

/// Subscribes to the topics of channels that gained local members and leaves those of
/// channels that lost them (or were destroyed: their titles are kept here for that).
fn sync_subscriptions(
    state: &State,
    ps: &mut ::redis::PubSub<'_>,
    subscribed: &mut HashMap<ChannelId, Box<str>>,
    tracker: &mut Tracker,
) -> RedisResult<()> {
    let wanted = wanted_channels(state);
    if wanted.len() == subscribed.len() && wanted.keys().all(|k| subscribed.contains_key(k)) {
        return Ok(());
    }
    // A (un)subscription waits for Redis's reply; the short read timeout of the message
    // loop could cut it off under load.
    ps.set_read_timeout(Some(IO_TIMEOUT))?;
    let topics = |m: &HashMap<ChannelId, Box<str>>| -> HashSet<String> {
        m.values().map(|t| event::channel_topic(t)).collect()
    };
    let (want, have) = (topics(&wanted), topics(subscribed));
    for topic in want.difference(&have) {
        // Resumed, not forgotten: a captured event published again is still seen.
        tracker.subscribed(topic, unix_ms());
        ps.subscribe(topic)?;
    }
    for topic in have.difference(&want) {
        tracker.unsubscribed(topic);
        ps.unsubscribe(topic)?;
    }
    *subscribed = wanted;
    ps.set_read_timeout(Some(POLL))
}

/// Writes this server's alive key, users hash and leases, then says hello.
fn republish(cluster: &Cluster, state: &State, con: &mut Connection) -> RedisResult<()> {
    let id = cluster.server_id();
    let ttl = cluster.config.lease_ttl.as_millis() as u64;
    let now = Instant::now();
    let users: Vec<UserInfo> = state
        .users()
        .iter()
        .map(|(_, u)| user_info(state, u, now))
        .collect();
    let mut pipe = ::redis::pipe();
    // Redis may be a new, empty one: load the lease script for the renewals' EVALSHA.
    pipe.cmd("SCRIPT").arg("LOAD").arg(CLAIM_LUA).ignore();
    pipe.cmd("SET")
        .arg(event::server_key(id))
        .arg(cluster.epoch)
        .arg("PX")
        .arg(ttl)
        .ignore();
    pipe.del(event::users_key(id)).ignore();
    for u in &users {
        let field = nick_key(&u.nick);
        let json = serde_json::to_string(u).unwrap_or_default();
        pipe.hset(
            event::users_key(id),
            &field,
            cluster.signer.seal_user(id, &field, &json),
        )
        .ignore();
    }
    pipe.cmd("PEXPIRE")
        .arg(event::users_key(id))
        .arg(ttl)
        .ignore();
    pipe.query::<()>(con)?;
    claim_all(
        cluster,
        &users.iter().map(|u| u.nick.as_str()).collect::<Vec<_>>(),
        con,
    )?;
    cluster.control(Body::Hello);
    Ok(())
}

/// Lease commands per pipeline when renewing, so that a server with many users neither
/// builds one huge request nor holds Redis busy with it.
const RENEW_CHUNK: usize = 1000;

/// Claims or renews the leases of `nicks`; logs and counts those another server holds.
///
/// A conflict arises when two servers let the same nickname log in while Redis was
/// unreachable. Both users stay logged in (neither server can tell which is "right", and
/// dropping a user that did nothing wrong is worse); the lease stays with the server that
/// got it first, so the name is free again only when both have let go.
fn claim_all(cluster: &Cluster, nicks: &[&str], con: &mut Connection) -> RedisResult<()> {
    if nicks.is_empty() {
        return Ok(());
    }
    let ttl = cluster.config.lease_ttl.as_millis() as u64;
    // The script by its hash (loaded at the start of the session): a renewal then costs
    // a few dozen bytes per user instead of the script's text.
    let script = ::redis::Script::new(CLAIM_LUA);
    for chunk in nicks.chunks(RENEW_CHUNK) {
        let mut pipe = ::redis::pipe();
        for nick in chunk {
            pipe.cmd("EVALSHA")
                .arg(script.get_hash())
                .arg(1)
                .arg(event::lease_key(nick))
                .arg(cluster.lease_value(nick))
                .arg(ttl);
        }
        let held: Vec<i64> = pipe.query(con)?;
        for (nick, ours) in chunk.iter().zip(held) {
            if ours != 1 {
                cluster
                    .stats
                    .lease_conflicts
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    nick,
                    "nickname lease held by another server; both users stay on"
                );
            }
        }
    }
    Ok(())
}

/// Renews the alive key, the users hash's TTL and the leases of local users.
///
/// If the alive key had expired (this server stalled for longer than the lease TTL, or
/// Redis lost it), the others may have taken this server for dead and dropped its users,
/// and its users hash has expired too: everything is republished, and the hello makes the
/// others load it again.
fn renew(cluster: &Cluster, state: &State, con: &mut Connection) -> RedisResult<()> {
    let id = cluster.server_id();
    let ttl = cluster.config.lease_ttl.as_millis() as u64;
    let (previous,): (Option<String>,) = ::redis::pipe()
        .cmd("SET")
        .arg(event::server_key(id))
        .arg(cluster.epoch)
        .arg("PX")
        .arg(ttl)
        .arg("GET")
        .cmd("PEXPIRE")
        .arg(event::users_key(id))
        .arg(ttl)
        .ignore()
        .query(con)?;
    if previous.is_none() {
        tracing::warn!(
            server = id,
            "alive key had expired; republishing this server's users"
        );
        return republish(cluster, state, con);
    }
    let nicks = local_nicks(state);
    claim_all(
        cluster,
        &nicks.iter().map(|n| &**n).collect::<Vec<_>>(),
        con,
    )
}

/// Reloads every other server's users.
fn reload_all(
    cluster: &Cluster,
    con: &mut Connection,
    out: &mut Vec<ClusterInput>,
) -> RedisResult<()> {
    let prefix = event::server_key("");
    let keys: Vec<String> =
        ::redis::Commands::scan_match::<_, String>(con, format!("{prefix}*"))?.collect();
    let alive: Vec<String> = keys
        .into_iter()
        .filter_map(|k| k.strip_prefix(&prefix).map(str::to_owned))
        .filter(|s| s != cluster.server_id() && event::valid_server_id(s))
        .collect();
    // Servers known here but without an alive key are not dropped now: Redis may have
    // restarted empty and they may be reconnecting too. `check_servers` drops them once
    // the grace period of this session is over.
    for server in alive {
        reload_server(cluster, con, &server, out)?;
    }
    Ok(())
}

/// Replaces the view of `server`'s users with its users hash.
fn reload_server(
    cluster: &Cluster,
    con: &mut Connection,
    server: &str,
    out: &mut Vec<ClusterInput>,
) -> RedisResult<()> {
    // Bounded: a hash bigger than any server holds is someone else's doing, not read.
    let len: usize = ::redis::cmd("HLEN")
        .arg(event::users_key(server))
        .query(con)
        .unwrap_or(0);
    if len > MAX_USERS_PER_SERVER {
        cluster.stats.malformed.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(server, len, "users hash too big; not read");
        out.push(ClusterInput::Server {
            server: server.to_owned(),
            users: Vec::new(),
        });
        return Ok(());
    }
    let raw: Vec<(String, Vec<u8>)> = match ::redis::cmd("HGETALL")
        .arg(event::users_key(server))
        .query(con)
    {
        Ok(raw) => raw,
        Err(e) if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() => return Err(e),
        Err(e) => {
            // Not a hash of strings (someone else wrote the key): count it and take the
            // server as having no users, rather than reconnect over and over.
            cluster.stats.malformed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(server, "unreadable users hash: {e}");
            Vec::new()
        }
    };
    let mut users = Vec::with_capacity(raw.len());
    for (field, value) in raw {
        let json = (value.len() <= MAX_USER_VALUE)
            .then(|| cluster.signer.open_user(server, &field, &value))
            .flatten();
        match json.map(serde_json::from_slice::<UserInfo>) {
            Some(Ok(rec)) if valid_user(&rec) && nick_key(&rec.nick) == field => users.push(rec),
            _ => {
                cluster.stats.malformed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    out.push(ClusterInput::Server {
        server: server.to_owned(),
        users,
    });
    Ok(())
}

/// Drops the users of servers whose alive key has expired (they died). Until `grace`, a
/// missing key is not taken for a death: the session is new, and after a restart of Redis
/// the other servers need up to a lease TTL plus a backoff to republish.
fn check_servers(
    cluster: &Cluster,
    state: &State,
    con: &mut Connection,
    out: &mut Vec<ClusterInput>,
    grace: Instant,
) -> RedisResult<()> {
    let servers = state.remote().servers();
    if servers.is_empty() || Instant::now() < grace {
        return Ok(());
    }
    let mut pipe = ::redis::pipe();
    for s in &servers {
        pipe.exists(event::server_key(s));
    }
    let alive: Vec<bool> = pipe.query(con)?;
    for (server, alive) in servers.iter().zip(alive) {
        if !alive {
            tracing::warn!(server = %server, "cluster server gone (alive key expired); dropping its users");
            cluster.stats.servers_lost.fetch_add(1, Ordering::Relaxed);
            out.push(ClusterInput::Server {
                server: server.to_string(),
                users: Vec::new(),
            });
        }
    }
    Ok(())
}

/// What an event asks of the cluster thread beyond the replica.
enum Action {
    Reload(String),
    Drop(String),
}

/// Applies one message from Redis.
fn apply(
    cluster: &Cluster,
    tracker: &mut Tracker,
    topic: &str,
    payload: &[u8],
    out: &mut Vec<ClusterInput>,
) -> Option<Action> {
    let now = unix_ms();
    let env = match Envelope::open(&cluster.signer, topic, payload, now) {
        Ok(env) => env,
        Err(e) => {
            cluster.stats.malformed.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(topic, "dropped a cluster event: {e}");
            return None;
        }
    };
    if env.s == cluster.server_id() {
        // Our own messages come back on the channel topics we subscribe to; the local
        // members had them from the worker already.
        return None;
    }
    if env.b == Body::Bye {
        // Sent by the stopping server's cluster thread outside the publisher's numbering;
        // one from an earlier run than the one known here, or too old, is late, not news.
        if let Err(seen) = tracker.fresh(topic, &env, now) {
            refused(cluster, tracker, seen, topic, &env, now);
            return None;
        }
        return Some(Action::Drop(env.s));
    }
    let mut action = None;
    match tracker.check(topic, &env, now) {
        seen @ (Seen::Duplicate | Seen::Stale | Seen::Old) => {
            refused(cluster, tracker, seen, topic, &env, now);
            return None;
        }
        Seen::Gap { missed } => {
            cluster.stats.gaps.fetch_add(missed, Ordering::Relaxed);
            tracing::warn!(origin = %env.s, topic, missed, "cluster events lost");
            if topic == event::presence_topic() {
                action = Some(Action::Reload(env.s.clone()));
            }
        }
        Seen::NewEpoch if topic == event::presence_topic() => {
            // The origin restarted: whatever we had of its previous run is stale.
            action = Some(Action::Reload(env.s.clone()));
        }
        Seen::NewEpoch | Seen::Next => {}
    }
    cluster.stats.received.fetch_add(1, Ordering::Relaxed);
    match env.b {
        Body::Hello => return Some(Action::Reload(env.s)),
        Body::Bye => return Some(Action::Drop(env.s)),
        Body::User { nick, rec } => out.push(ClusterInput::User {
            server: env.s,
            nick,
            info: rec,
        }),
        Body::Public(message) => out.push(ClusterInput::Public(message)),
        Body::Private(message) => out.push(ClusterInput::Private(message)),
        Body::Community { ev } => out.push(ClusterInput::Community {
            server: env.s,
            event: ev,
        }),
    }
    action
}

/// Counts (and, for an old one, logs now and then) an event refused as seen or old.
fn refused(
    cluster: &Cluster,
    tracker: &mut Tracker,
    seen: Seen,
    topic: &str,
    env: &Envelope,
    now: u64,
) {
    if seen != Seen::Old {
        cluster.stats.duplicates.fetch_add(1, Ordering::Relaxed);
        return;
    }
    cluster.stats.too_old.fetch_add(1, Ordering::Relaxed);
    if tracker.warn_old(now) {
        let age_ms = now as i64 - env.t as i64;
        tracing::warn!(
            origin = %env.s,
            topic,
            age_ms,
            "cluster event refused as too old (published again by someone, or the servers' clocks differ)"
        );
    }
}

/// Runs the publisher thread: takes events off the queue, numbers them per topic and
/// writes them to Redis in pipelines, until `stop` is set and the queue is empty.
///
/// While Redis is unreachable (the cluster thread says so, or a write fails) events are
/// dropped and counted; the reconnection republishes the state that matters.
pub(crate) fn run_publisher(cluster: Arc<Cluster>, stop: Arc<AtomicBool>) {
    let Some(rx) = cluster.take_publish_rx() else {
        return;
    };
    let mut seqs: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    let mut con: Option<Connection> = None;
    let mut batch: Vec<Outgoing> = Vec::with_capacity(PUBLISH_BATCH);
    loop {
        match rx.recv_timeout(POLL) {
            Ok(item) => batch.push(item),
            Err(RecvTimeoutError::Timeout) => {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
        fill(&rx, &mut batch);
        let n = batch.len() as u64;
        if !cluster.is_connected() {
            con = None;
        } else if con.is_none() {
            con = connect(&cluster).ok();
        }
        let Some(c) = con.as_mut() else {
            cluster
                .stats
                .publish_dropped
                .fetch_add(n, Ordering::Relaxed);
            batch.clear();
            continue;
        };
        let pipe = build_pipeline(&cluster, &mut seqs, batch.drain(..));
        let mut result = pipe.query::<()>(c);
        if result.is_err() {
            // The connection may be a stale one from before a Redis restart that this
            // thread did not notice: one fresh try.
            con = connect(&cluster).ok();
            if let Some(c) = con.as_mut() {
                result = pipe.query::<()>(c);
            }
        }
        match result {
            Ok(()) => {
                cluster.stats.published.fetch_add(n, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::debug!("cluster publish failed: {e}");
                cluster
                    .stats
                    .publish_dropped
                    .fetch_add(n, Ordering::Relaxed);
                con = None;
            }
        }
    }
}

fn fill(rx: &Receiver<Outgoing>, batch: &mut Vec<Outgoing>) {
    while batch.len() < PUBLISH_BATCH {
        match rx.try_recv() {
            Ok(item) => batch.push(item),
            Err(_) => break,
        }
    }
}

fn build_pipeline(
    cluster: &Cluster,
    seqs: &mut std::collections::HashMap<String, u64>,
    items: impl Iterator<Item = Outgoing>,
) -> ::redis::Pipeline {
    let id = cluster.server_id();
    let users = event::users_key(id);
    let ttl = cluster.config.lease_ttl.as_millis() as u64;
    let mut pipe = ::redis::pipe();
    let mut touched_hash = false;
    let sealed_at = unix_ms();
    for item in items {
        let Outgoing { topic, body, hash } = item;
        match hash {
            Some((field, Some(value))) => {
                pipe.hset(&users, field, value).ignore();
                touched_hash = true;
            }
            Some((field, None)) => {
                pipe.hdel(&users, field).ignore();
            }
            None => {}
        }
        let seq = seqs.entry(topic.clone()).or_insert(0);
        *seq += 1;
        let env = Envelope {
            s: id.to_owned(),
            e: cluster.epoch,
            q: *seq,
            t: sealed_at,
            b: body,
        };
        let sealed = env.seal(&cluster.signer, &topic);
        pipe.publish(topic, sealed).ignore();
    }
    if touched_hash {
        // A hash made anew by HSET has no TTL; a dead server's must expire.
        pipe.cmd("PEXPIRE").arg(&users).arg(ttl).ignore();
    }
    pipe
}
