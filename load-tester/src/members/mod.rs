//! The simulated clients: one UDP socket each, bound to addresses spread over 127.0.0.0/8,
//! read by a few receiver threads polling many sockets each (never a thread per client).
//!
//! - [`names`]: each member's nickname and address;
//! - `secure`: protected members (`--protected`): registration and password login before
//!   the run, sealed traffic during it;
//! - [`shared`]: what the drivers and the receivers share (sockets, status, counters);
//! - `receive`: the receiver threads;
//! - `count`: what each event means for the member that got it;
//! - `mcast`: with `--multicast`, the members' group sockets and their checks.
//!
//! Datagrams that carried deliveries are counted too, so a report shows events per
//! datagram. Once a multicast member has confirmed its group, the group's copy of an event
//! is the one counted, and counted the same way (a CHANNEL_DATA may carry a BATCH too).

mod count;
mod mcast;
pub(crate) mod names;
mod receive;
mod secure;
pub(crate) mod shared;

use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::Context;

pub(crate) use shared::{GroupInfo, Shared, CAPS, CONFIRMED, JOINED, LOGGED_IN, PROVED, TOLD};

use crate::hist::Hists;
use crate::options::{Population, Protection};
use names::{member_ip, protected_ip};
use shared::Counters;

/// The members and their receiver threads.
pub(crate) struct Members {
    /// State shared with the receivers.
    pub(crate) shared: Arc<Shared>,
    receivers: Vec<JoinHandle<()>>,
}

impl Members {
    /// Binds one socket per global index in `globals` and starts `pop.receivers`
    /// receivers; the member of global index `g` talks to `pop.servers[g % n]`, asks for
    /// batches and multicast as `pop` says, and is protected as `protection` says.
    ///
    /// # Errors
    /// A socket that can't be bound (out of files or ports), a protected member that can't
    /// log in, or a poller that can't start.
    pub(crate) fn start(
        globals: Vec<usize>,
        pop: &Population,
        protection: Option<Protection>,
    ) -> anyhow::Result<Self> {
        let servers = &pop.servers;
        anyhow::ensure!(!servers.is_empty(), "no server to talk to");
        let protected = |g: usize| protection.is_some_and(|p| g >= p.from);
        let mut sockets = Vec::with_capacity(globals.len());
        for &g in &globals {
            let ip = if protected(g) {
                protected_ip(g)
            } else {
                member_ip(g)
            };
            let s = UdpSocket::bind(SocketAddrV4::new(ip, 0))
                .with_context(|| format!("binding member socket {g} on {ip}"))?;
            s.set_nonblocking(true)?;
            if pop.rcvbuf > 0 {
                // The kernel may grant less (net.core.rmem_max): the report shows the loss.
                let _ = socket2::SockRef::from(&s).set_recv_buffer_size(pop.rcvbuf);
            }
            sockets.push(s);
        }
        let n = sockets.len();
        let server: Vec<SocketAddr> = globals.iter().map(|g| servers[g % servers.len()]).collect();
        let sessions = match protection {
            Some(p) => secure::protect_all(&sockets, &globals, &server, p)?,
            None => (0..n).map(|_| None).collect(),
        };
        let status: Vec<AtomicU8> = sessions
            .iter()
            .map(|s| AtomicU8::new(if s.is_some() { LOGGED_IN | PROVED } else { 0 }))
            .collect();
        let batch: Vec<bool> = globals.iter().map(|&g| pop.batch_member(g)).collect();
        let shared = Arc::new(Shared {
            sockets,
            server,
            batch_size: pop.batch,
            mixed: batch.contains(&true) && batch.contains(&false),
            batch,
            multicast: globals.iter().map(|&g| pop.wants_multicast(g)).collect(),
            global: globals,
            status,
            sessions,
            in_flight: (0..n).map(|_| AtomicU32::new(0)).collect(),
            publisher_thread: Default::default(),
            counters: Counters::default(),
            stop: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
            handed_in: Mutex::new(Vec::new()),
            groups: Mutex::new(Default::default()),
            raw_thread: Default::default(),
        });
        let threads = pop.receivers.clamp(1, n.max(1));
        let receivers = (0..threads)
            .map(|t| receive::spawn(&shared, t, threads, pop.rcvbuf))
            .collect::<anyhow::Result<_>>()?;
        Ok(Members { shared, receivers })
    }

    /// Number of members.
    pub(crate) fn len(&self) -> usize {
        self.shared.sockets.len()
    }

    /// The local address of member `i`.
    pub(crate) fn addr(&self, i: usize) -> SocketAddr {
        self.shared.sockets[i]
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// The latency recorded since the last call (or the start), merged over receivers.
    pub(crate) fn take_latency(&self) -> Hists {
        let epoch = self.shared.epoch.fetch_add(1, Ordering::Relaxed);
        let mut merged = Hists::default();
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut got = 0;
        while got < self.receivers.len() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
            if let Ok(mut v) = self.shared.handed_in.lock() {
                for (e, h) in v.drain(..) {
                    if e == epoch {
                        got += 1;
                        merged.add(&h);
                    }
                }
            }
        }
        merged
    }

    /// Stops the receivers.
    pub(crate) fn stop(self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        for r in self.receivers {
            let _ = r.join();
        }
    }
}
