//! What the receive thread and the sweeper hand a worker ([`Job`]), and which worker owns a
//! route ([`worker_for`]): the one place every queue of the server is chosen, so that one
//! client's requests and the results of its effects all reach the same worker.

use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::time::Instant;

use crate::datagram::Class;
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
