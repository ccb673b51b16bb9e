//! Which addresses are sent sealed datagrams, and the sealing itself, done where datagrams
//! leave: [`Sealers::seal_for`] is the one function every send path calls (the workers'
//! replies, the sender pool's fan-outs, the cluster thread's deliveries).
//!
//! The state machine encodes each event once, in the clear, as before; a protected user's
//! copy is sealed with its session's [`Sealer`] just before it is written to the socket.
//! So a fan-out still carries one payload and its member snapshot, and costs one AEAD
//! seal per protected member (measured in docs/BENCHMARKS.md). The map is kept by
//! `State` (on password logins, path changes and log-offs); with no protected user the
//! check is one atomic load.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use dashmap::DashMap;

pub use proto::auth::Sealer;

/// Protected users' sealers by address; cheap to clone (a handle on one shared map).
#[derive(Debug, Clone, Default)]
pub struct Sealers {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Address of a protected user → its session's sealer.
    by_addr: DashMap<SocketAddr, Arc<Sealer>>,
    /// Entries in `by_addr`, so that a server with none skips the look-up.
    count: AtomicUsize,
}

impl Sealers {
    /// Datagrams to `addr` are sealed with `sealer` from now on.
    pub fn insert(&self, addr: SocketAddr, sealer: Arc<Sealer>) {
        if self.inner.by_addr.insert(addr, sealer).is_none() {
            self.inner.count.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Datagrams to `addr` go out in the clear again (if it was sealed for session `id`).
    pub fn remove(&self, addr: SocketAddr, id: u64) {
        if self
            .inner
            .by_addr
            .remove_if(&addr, |_, s| s.id() == id)
            .is_some()
        {
            self.inner.count.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// The sealer of the protected user at `addr`, if any.
    pub fn get(&self, addr: SocketAddr) -> Option<Arc<Sealer>> {
        if self.inner.count.load(Ordering::Relaxed) == 0 {
            return None;
        }
        self.inner.by_addr.get(&addr).map(|s| s.clone())
    }

    /// Protected addresses now.
    pub fn len(&self) -> usize {
        self.inner.count.load(Ordering::Relaxed)
    }

    /// Whether no address is protected.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `payload` as it must go to `dest`: sealed for a protected user, as is otherwise.
    pub fn seal_for<'a>(&self, dest: SocketAddr, payload: &'a [u8]) -> Cow<'a, [u8]> {
        match self.get(dest) {
            Some(sealer) => Cow::Owned(sealer.seal(payload)),
            None => Cow::Borrowed(payload),
        }
    }
}
