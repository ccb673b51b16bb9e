//! What the receive thread and the sweeper hand a worker ([`Job`]), and which worker owns a
//! route ([`worker_for`]): the one place every queue of the server is chosen, so that one
//! client's requests and the results of its effects all reach the same worker. Also what
//! the threads carrying out effects (`effects`, `community`) share: how they take an
//! effect without making a worker wait ([`ExecutorStats::offer`]), count what fails, and
//! [`answer`].

use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crossbeam_channel::{Sender, TrySendError};

use crate::datagram::Class;
use crate::outbox::Done;
use crate::state::Route;

/// Work for a worker.
#[derive(Debug)]
pub(crate) enum Job {
    /// A datagram from `from`, received at `at`.
    Datagram {
        /// Source address.
        from: SocketAddr,
        /// When the receive thread read it.
        at: Instant,
        /// Its class, made once by the receive thread.
        class: Class,
        /// Its bytes (cut to one past the size limit).
        data: Box<[u8]>,
    },
    /// The idle sweep found this user silent: log it off if it still is.
    Expire(SocketAddr),
}

/// The worker that owns `route`, out of `workers`.
pub(super) fn worker_for(route: Route, workers: usize) -> usize {
    // A fixed-key hasher: routing must be stable for the life of the process, and
    // SipHash keeps a hostile peer from steering addresses onto one worker cheaply.
    static KEYS: std::sync::OnceLock<std::collections::hash_map::RandomState> =
        std::sync::OnceLock::new();
    (KEYS.get_or_init(Default::default).hash_one(route) % workers.max(1) as u64) as usize
}

/// Starts a thread called `name` running `f`.
pub(super) fn named_thread(
    name: String,
    f: impl FnOnce() + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name(name).spawn(f)
}

/// Counters of a thread that carries out effects.
#[derive(Debug, Default)]
pub(crate) struct ExecutorStats {
    /// Effects refused because the thread's queue was full.
    pub refused: AtomicU64,
    /// Reads and writes that failed in the store.
    pub store_errors: AtomicU64,
}

impl ExecutorStats {
    /// Hands `item` to `queue` without waiting; when the queue is full (or its thread
    /// gone) counts it as refused and gives it back, for the caller to fail.
    pub(crate) fn offer<T>(&self, queue: &Sender<T>, item: T) -> Option<T> {
        match queue.try_send(item) {
            Ok(()) => None,
            Err(TrySendError::Full(item) | TrySendError::Disconnected(item)) => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                Some(item)
            }
        }
    }

    /// Counts and logs a store operation that failed; `what` says what it was doing.
    pub(crate) fn store_failed(&self, error: &dyn std::fmt::Display, what: &str) {
        self.store_errors.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(error = %error, "{what} failed");
    }
}

/// Hands a result to the worker that owns its request; a worker that is gone (shutdown)
/// needs no answer.
pub(super) fn answer(done: &[Sender<Done>], result: Done) {
    let w = worker_for(result.ticket().route, done.len());
    let _ = done[w].send(result);
}
