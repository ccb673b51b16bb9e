//! The threads that carry the handler's effects out, so that no worker ever waits on
//! SQLite, PostgreSQL or Redis:
//!
//! - one **store thread** reads and writes accounts (one connection, so one account's
//!   operations happen in the order they were asked for), asks the store a few times a
//!   second whether another process changed it (SQLite's `PRAGMA data_version`), and
//!   then re-reads the registered nicknames and operators' accounts, so that an
//!   operator's `chat-server accounts delete` or `set --no-operator` takes effect within
//!   [`WATCH_EVERY`]; it re-reads them every [`REFRESH_EVERY`] whatever the store says;
//! - with a shared store (PostgreSQL), a **store-feed thread** follows other servers'
//!   (and `chat-server accounts`') changes as they happen;
//! - in cluster mode, a few **lease threads** claim and release nickname leases in Redis
//!   (a nickname always goes to the same one, so its claim and release stay in order);
//!   events for the other servers go straight to the cluster's publisher queue.
//!
//! Results go back to the worker that owns the request ([`Ticket::route`]) on that
//! worker's result queue. A worker hands an effect over with `try_send` and never waits:
//! when a queue is full the effect fails at once (a lease counts as unavailable, an
//! account write as failed) and the worker answers the user accordingly. Executors may
//! wait for room on a worker's result queue; since no worker ever waits on an executor,
//! that can't deadlock.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};

use super::jobs::{answer, named_thread, ExecutorStats};
use crate::accounts::{key, AccountStore, Service, StoreError};
use crate::cluster::{Cluster, Lease};
use crate::outbox::{Done, Effect, LeaseAnswer, Ticket};

/// Effects the store thread's queue holds.
pub(crate) const STORE_QUEUE: usize = 4096;
/// Effects each lease thread's queue holds.
pub(crate) const LEASE_QUEUE: usize = 1024;
/// Lease threads in cluster mode: Redis answers in well under a millisecond, but a claim
/// may wait up to its timeout (500 ms) when Redis is slow, so a few run side by side.
pub(crate) const LEASE_THREADS: usize = 4;
/// Results each worker's result queue holds.
pub(crate) const DONE_QUEUE: usize = 4096;
/// How often the store thread re-reads the registered nicknames.
pub(crate) const REFRESH_EVERY: Duration = Duration::from_secs(10);
/// How often the store thread asks the store whether another process changed it (for
/// SQLite, one `PRAGMA data_version`: a read of shared memory, no disk).
pub(crate) const WATCH_EVERY: Duration = Duration::from_millis(200);

/// Where workers hand their effects; cheap to clone.
#[derive(Clone)]
pub(crate) struct Effects {
    store: Sender<Effect>,
    leases: Vec<Sender<Effect>>,
    cluster: Option<Arc<Cluster>>,
    stats: Arc<ExecutorStats>,
    /// Part-5 effects: the community store thread (see `server::community`).
    community: Option<super::community::Sink>,
}

impl std::fmt::Debug for Effects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Effects")
            .field("store_queue", &self.store.len())
            .field("community", &self.community)
            .finish_non_exhaustive()
    }
}

impl Effects {
    /// Hands `effect` over to its thread. Returns the result to feed back at once when it
    /// could not be taken (queue full, or no cluster for a lease).
    pub(crate) fn submit(&self, effect: Effect) -> Option<Done> {
        let effect = match effect {
            Effect::Community(c) => {
                return match &self.community {
                    Some(sink) => sink.submit(c),
                    None => c.failed().map(Done::Community),
                };
            }
            other => other,
        };
        let queue = match &effect {
            Effect::Community(_) => return None,
            Effect::Publish(event) => {
                if let Some(c) = &self.cluster {
                    c.publish_event(event.clone());
                }
                return None;
            }
            Effect::ClaimLease { nick, .. } | Effect::ReleaseLease { nick } => {
                if self.cluster.is_none() || self.leases.is_empty() {
                    return effect.failed();
                }
                &self.leases[lease_thread(nick, self.leases.len())]
            }
            Effect::LoadAccount { .. }
            | Effect::StoreAccount { .. }
            | Effect::DeleteAccount { .. }
            | Effect::SaveHotList { .. } => &self.store,
        };
        self.stats.offer(queue, effect).and_then(|e| e.failed())
    }

    /// Effects waiting in the store thread's queue.
    pub(crate) fn store_depth(&self) -> usize {
        self.store.len()
    }

    /// Where part-5 effects go, if anywhere.
    pub(crate) fn community(&self) -> Option<&super::community::Sink> {
        self.community.as_ref()
    }

    /// The same handle, with part-5 effects going to `sink`.
    pub(crate) fn with_community(mut self, sink: super::community::Sink) -> Self {
        self.community = Some(sink);
        self
    }

    /// The counters of the store and lease threads (account reads and writes, leases).
    pub(crate) fn stats(&self) -> &Arc<ExecutorStats> {
        &self.stats
    }
}

fn lease_thread(nick: &str, n: usize) -> usize {
    static KEYS: std::sync::OnceLock<std::collections::hash_map::RandomState> =
        std::sync::OnceLock::new();
    (KEYS
        .get_or_init(Default::default)
        .hash_one(proto::nick::key(nick))
        % n as u64) as usize
}

/// Starts the effect threads; returns the handle workers use and the threads. `done` are
/// the workers' result queues, in worker order.
pub(crate) fn spawn(
    store: Arc<dyn AccountStore>,
    service: Arc<Service>,
    cluster: Option<Arc<Cluster>>,
    done: Vec<Sender<Done>>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<(Effects, Vec<JoinHandle<()>>)> {
    let stats = Arc::new(ExecutorStats::default());
    let mut threads = Vec::new();
    let (store_tx, store_rx) = bounded(STORE_QUEUE);
    {
        let (store, service, done, stats) =
            (store.clone(), service.clone(), done.clone(), stats.clone());
        threads.push(named_thread("store".into(), move || {
            run_store(&*store, &service, store_rx, &done, &stats)
        })?);
    }
    if store.shared() {
        let (service, stop) = (service.clone(), stop.clone());
        threads.push(named_thread("store-feed".into(), move || {
            run_feed(&*store, &service, &stop)
        })?);
    }
    let mut leases = Vec::new();
    if let Some(c) = &cluster {
        for i in 0..LEASE_THREADS {
            let (tx, rx) = bounded(LEASE_QUEUE);
            leases.push(tx);
            let (c, done) = (c.clone(), done.clone());
            threads.push(named_thread(format!("lease-{i}"), move || {
                run_leases(&c, rx, &done)
            })?);
        }
    }
    Ok((
        Effects {
            store: store_tx,
            leases,
            cluster,
            stats,
            community: None,
        },
        threads,
    ))
}

/// The store thread; runs until every worker has dropped its handle.
fn run_store(
    store: &dyn AccountStore,
    service: &Service,
    jobs: Receiver<Effect>,
    done: &[Sender<Done>],
    stats: &ExecutorStats,
) {
    let mut next_refresh = Instant::now() + REFRESH_EVERY;
    let mut next_watch = Instant::now() + WATCH_EVERY;
    // An account write or delete is answered with whether it is durable.
    let stored = |ticket: Ticket, result: Result<(), StoreError>, what: &str| {
        if let Err(e) = &result {
            stats.store_failed(e, what);
        }
        let ok = result.is_ok();
        answer(done, Done::Stored { ticket, ok });
    };
    loop {
        // Checked between effects too, so that a steady stream of them can't put the
        // re-reading off.
        let now = Instant::now();
        if now >= next_watch {
            next_watch = now + WATCH_EVERY;
            let changed = store.changed_elsewhere().unwrap_or_else(|e| {
                stats.store_failed(&e, "asking whether the accounts changed");
                false
            });
            if changed || now >= next_refresh {
                next_refresh = now + REFRESH_EVERY;
                if let Err(e) = reread(store, service) {
                    stats.store_failed(&e, "re-reading the registered nicknames");
                }
            }
        }
        let wait = next_watch.saturating_duration_since(Instant::now());
        let effect = match jobs.recv_timeout(wait) {
            Ok(e) => e,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        match effect {
            Effect::LoadAccount { ticket, key } => {
                let account = match store.get(&key) {
                    Ok(a) => {
                        match &a {
                            // Deleted by an operator (or on another server) meanwhile.
                            None => service.set_registered(&key, false),
                            Some(a) => service.set_operator(&key, a.operator),
                        }
                        Ok(a)
                    }
                    Err(e) => {
                        stats.store_failed(&e, "reading an account");
                        Err(())
                    }
                };
                answer(done, Done::Loaded { ticket, account });
            }
            Effect::StoreAccount {
                ticket,
                account,
                create,
            } => {
                let k = key(&account.nick);
                let written = match create {
                    true => store.create(&account),
                    false => store.put(&account).map(|()| true),
                };
                if let Ok(false) = written {
                    // Someone made the account while this registration was under way
                    // (`chat-server accounts add`, another server): it stays theirs.
                    service.set_registered(&k, true);
                    answer(done, Done::Stored { ticket, ok: false });
                    continue;
                }
                let result = written.and_then(|_| store.set_watch(&k, &account.watch));
                stored(ticket, result, "storing an account");
            }
            Effect::DeleteAccount { ticket, key } => {
                // Whether there was one: gone either way.
                let result = store.delete(&key).map(|_existed| ());
                stored(ticket, result, "deleting an account");
            }
            Effect::SaveHotList { key, watch } => {
                if let Err(e) = store.set_watch(&key, &watch) {
                    stats.store_failed(&e, "saving a hot list");
                }
            }
            Effect::ClaimLease { .. }
            | Effect::ReleaseLease { .. }
            | Effect::Publish(_)
            | Effect::Community(_) => {}
        }
    }
}

/// The registered nicknames and operators' accounts, read again from `store`.
fn reread(store: &dyn AccountStore, service: &Service) -> Result<(), StoreError> {
    let keys = store.keys()?;
    service.refresh(keys, store.operator_keys()?);
    Ok(())
}

/// The store-feed thread: applies other servers' registrations, deletions and operator
/// flags to the service's sets as they happen, reconnecting after failures.
fn run_feed(store: &dyn AccountStore, service: &Service, stop: &AtomicBool) {
    const WAIT: Duration = Duration::from_millis(200);
    while !stop.load(Ordering::Relaxed) {
        let mut feed = match store.changes() {
            Ok(Some(feed)) => feed,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "cannot follow account changes; retrying");
                sleep_unless_stopped(Duration::from_secs(1), stop);
                continue;
            }
        };
        // What changed while the feed was down.
        if let Err(e) = reread(store, service) {
            tracing::warn!(error = %e, "cannot re-read the accounts; retrying");
        }
        while !stop.load(Ordering::Relaxed) {
            match feed.next(WAIT) {
                Ok(changes) => changes.into_iter().for_each(|c| service.apply(c)),
                Err(e) => {
                    tracing::warn!(error = %e, "account change feed lost; reconnecting");
                    break;
                }
            }
        }
    }
}

fn sleep_unless_stopped(d: Duration, stop: &AtomicBool) {
    let until = Instant::now() + d;
    while Instant::now() < until && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A lease thread; runs until every worker has dropped its handle.
fn run_leases(cluster: &Cluster, jobs: Receiver<Effect>, done: &[Sender<Done>]) {
    while let Ok(effect) = jobs.recv() {
        match effect {
            Effect::ClaimLease { ticket, nick } => {
                let answer_ = match cluster.claim_nick(&nick) {
                    Lease::Ours => LeaseAnswer::Granted,
                    Lease::Taken => LeaseAnswer::Refused,
                    Lease::Unavailable => LeaseAnswer::Unavailable,
                };
                answer(
                    done,
                    Done::Lease {
                        ticket,
                        answer: answer_,
                    },
                );
            }
            Effect::ReleaseLease { nick } => {
                cluster.release_nick(&nick);
                cluster.user_gone(&nick);
            }
            _ => {}
        }
    }
}
