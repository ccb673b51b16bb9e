//! Protected sessions (password logins): each session's keys, replay window, the address
//! its user is known by and the path challenge under way when it moves; the sealers by
//! address that the send paths use (`crate::sealing`), kept in step with the sessions; and
//! the count of datagrams refused for authentication.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;

use crate::sealing::Sealers;
use proto::auth::{Direction, ReplayWindow, Sealed, Sealer, SessionKeys};

/// The least time between two path challenges of one session (each answers a sealed
/// datagram from a new address, so this also bounds what an unvalidated address gets).
pub const CHALLENGE_EVERY: Duration = Duration::from_millis(250);

/// What a sealed datagram's check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SealCheck {
    /// Genuine and fresh; the session's user is known by this address now.
    Valid {
        /// The address the session is bound to (may differ from the datagram's source).
        bound: SocketAddr,
        /// The classic datagram inside, decrypted.
        inner: Vec<u8>,
    },
    /// Unknown session, bad tag, or a replayed or stale counter.
    Rejected,
}

/// A protected session.
#[derive(Debug, Clone)]
struct Session {
    keys: SessionKeys,
    /// The address its user is known by now (it moves, once validated, with NAT
    /// rebinding).
    addr: SocketAddr,
    /// Counters already accepted.
    window: ReplayWindow,
    /// Seals what the server sends to the session.
    sealer: Arc<Sealer>,
    /// The path challenge under way: the new address, its data, when it was sent.
    challenge: Option<(SocketAddr, [u8; 8], Instant)>,
}

/// The sessions by id, and the sealers by address.
#[derive(Debug, Default)]
pub(super) struct Sessions {
    map: DashMap<u64, Session>,
    /// The sealer of each protected user's address, for the send paths.
    sealers: Sealers,
    /// Datagrams refused for authentication: unknown session, bad MAC, replayed or stale
    /// counter, or a plain datagram from the address of a protected session.
    rejected: AtomicU64,
}

impl Sessions {
    pub(super) fn sealers(&self) -> &Sealers {
        &self.sealers
    }

    pub(super) fn note_rejected(&self) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }

    /// Starts session `keys` for `addr`; its sealer, or `None` (and nothing changed) if a
    /// session with that id exists. The caller makes the address sealed
    /// ([`seal`](Self::seal)) once the user record names the session.
    pub(super) fn open(&self, addr: SocketAddr, keys: SessionKeys) -> Option<Arc<Sealer>> {
        let sealer = Arc::new(keys.sealer());
        match self.map.entry(keys.id) {
            Entry::Occupied(_) => None,
            Entry::Vacant(v) => {
                v.insert(Session {
                    keys,
                    addr,
                    window: ReplayWindow::default(),
                    sealer: sealer.clone(),
                    challenge: None,
                });
                Some(sealer)
            }
        }
    }

    /// Datagrams to `addr` are sealed with `sealer` from now on.
    pub(super) fn seal(&self, addr: SocketAddr, sealer: Arc<Sealer>) {
        self.sealers.insert(addr, sealer);
    }

    /// Ends session `id`; returns the address it was bound to.
    pub(super) fn end(&self, id: u64) -> Option<SocketAddr> {
        let (_, s) = self.map.remove(&id)?;
        self.sealers.remove(s.addr, id);
        Some(s.addr)
    }

    /// Ends session `id` of the user at `addr`, who logged off.
    pub(super) fn remove(&self, id: u64, addr: SocketAddr) {
        self.map.remove(&id);
        self.sealers.remove(addr, id);
    }

    pub(super) fn sealer_of(&self, id: u64) -> Option<Arc<Sealer>> {
        self.map.get(&id).map(|s| s.sealer.clone())
    }

    /// The address session `id` is bound to.
    pub(super) fn addr_of(&self, id: u64) -> Option<SocketAddr> {
        self.map.get(&id).map(|s| s.addr)
    }

    pub(super) fn contains(&self, id: u64) -> bool {
        self.map.contains_key(&id)
    }

    /// See `State::challenge_path`.
    pub(super) fn challenge(&self, id: u64, addr: SocketAddr, data: [u8; 8], now: Instant) -> bool {
        let Some(mut s) = self.map.get_mut(&id) else {
            return false;
        };
        if let Some((a, _, sent)) = s.challenge {
            if a == addr && now.saturating_duration_since(sent) < CHALLENGE_EVERY {
                return false;
            }
        }
        s.challenge = Some((addr, data, now));
        true
    }

    /// See `State::path_answered`.
    pub(super) fn answered(&self, id: u64, addr: SocketAddr, data: &[u8]) -> bool {
        let Some(mut s) = self.map.get_mut(&id) else {
            return false;
        };
        match s.challenge {
            Some((a, d, _)) if a == addr && d[..] == *data => {
                s.challenge = None;
                true
            }
            _ => false,
        }
    }

    /// See `State::check_sealed`.
    pub(super) fn check(&self, sealed: &Sealed<'_>) -> SealCheck {
        let Some(mut s) = self.map.get_mut(&sealed.session) else {
            return SealCheck::Rejected;
        };
        if !s.window.fresh(sealed.counter) {
            return SealCheck::Rejected;
        }
        let Some(inner) = s.keys.open(Direction::ToServer, sealed) else {
            return SealCheck::Rejected;
        };
        s.window.accept(sealed.counter);
        SealCheck::Valid {
            bound: s.addr,
            inner,
        }
    }

    /// Session `id`'s user moved from `old` to `new`: the session and its sealer follow.
    pub(super) fn rebind(&self, id: u64, old: SocketAddr, new: SocketAddr) {
        let sealer = self.map.get_mut(&id).map(|mut s| {
            s.addr = new;
            s.sealer.clone()
        });
        if let Some(sealer) = sealer {
            self.sealers.remove(old, id);
            self.sealers.insert(new, sealer);
        }
    }
}
