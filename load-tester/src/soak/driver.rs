//! The driver's state, shared by its parts: the clients, the channels' members, the
//! checker that asks about vanished clients, and the tallies of the report.

use std::collections::{HashMap, VecDeque};
use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;

use anyhow::Context;
use mio::unix::SourceFd;
use mio::{Interest, Poll, Token};
use proto::Request;

use super::args::SoakArgs;
use super::client::{Asked, Client, Phase, Rng, Stay, Vanished};
use super::report::{Sample, SoakReport};
use crate::members::names::member_ip;
use crate::procstat;
use crate::scrape::{scrape, sum_prefix};
use crate::sys::{now_ns, SEC};

/// The token of the checker client, which asks WHOIS about vanished clients.
pub(super) const CHECKER: usize = usize::MAX - 1;

/// The driver's state.
pub(super) struct Soak<'a> {
    /// The flags.
    pub(super) args: &'a SoakArgs,
    /// Tag in the nicknames (the process id), so runs never collide.
    pub(super) run_id: u32,
    /// One poller over every client socket and the checker.
    pub(super) poll: Poll,
    /// The clients by number (their poller token), departing ones included.
    pub(super) clients: HashMap<usize, Client>,
    /// Active clients per channel, for expected deliveries and picking publishers.
    pub(super) members: Vec<Vec<usize>>,
    /// The number of the next client (and so its source address).
    pub(super) next_global: usize,
    /// The client that asks WHOIS about vanished clients; it joins no channel.
    pub(super) checker: UdpSocket,
    /// Vanished clients in the order they are due to be checked.
    pub(super) vanished: VecDeque<Vanished>,
    /// Picks publishers, moves and departures.
    pub(super) rng: Rng,
    /// The tallies.
    pub(super) report: SoakReport,
    /// Deliveries (expected, received) since the last sample.
    pub(super) period: (u64, u64),
    /// Messages published so far.
    pub(super) seq: u64,
    /// The receive buffer.
    pub(super) buf: Vec<u8>,
    /// When the steady load started (for the log's timestamps).
    pub(super) start_ns: u64,
}

impl<'a> Soak<'a> {
    /// The driver with its checker socket and poller, and no clients yet.
    pub(super) fn new(args: &'a SoakArgs) -> anyhow::Result<Self> {
        let checker = UdpSocket::bind(SocketAddrV4::new(member_ip(0), 0))?;
        checker.set_nonblocking(true)?;
        let poll = Poll::new()?;
        poll.registry().register(
            &mut SourceFd(&checker.as_raw_fd()),
            Token(CHECKER),
            Interest::READABLE,
        )?;
        let run_id = std::process::id();
        Ok(Soak {
            args,
            run_id,
            poll,
            clients: HashMap::new(),
            members: vec![Vec::new(); args.channels],
            next_global: 1,
            checker,
            vanished: VecDeque::new(),
            rng: Rng(0x9E37_79B9_7F4A_7C15 ^ u64::from(run_id)),
            report: SoakReport::default(),
            period: (0, 0),
            seq: 0,
            buf: vec![0; 65536],
            start_ns: now_ns(),
        })
    }

    /// Sends `req` from `socket` to the server.
    pub(super) fn send(&self, socket: &UdpSocket, req: &[u8]) {
        // A failed send is a lost request: the retries cover those that need an answer.
        let _ = socket.send_to(req, self.args.server);
    }

    /// A new client on a fresh socket, logging in to join `channel`.
    pub(super) fn spawn(&mut self, channel: usize) -> anyhow::Result<()> {
        let g = self.next_global;
        self.next_global += 1;
        let socket = UdpSocket::bind(SocketAddrV4::new(member_ip(g), 0))
            .with_context(|| format!("binding a client socket on {}", member_ip(g)))?;
        socket.set_nonblocking(true)?;
        self.poll.registry().register(
            &mut SourceFd(&socket.as_raw_fd()),
            Token(g),
            Interest::READABLE,
        )?;
        let nick = format!("sk{:x}_{g}", self.run_id);
        let now = now_ns();
        self.send(&socket, &Request::Login { nick: &nick }.to_bytes());
        let next_keepalive_ns = now + self.keepalive_ns();
        self.clients.insert(
            g,
            Client {
                socket,
                nick,
                phase: Phase::LoggingIn,
                stay: Stay {
                    channel,
                    joined_ns: 0,
                },
                left: Vec::new(),
                asked: Asked::at(now),
                next_keepalive_ns,
                close_ns: 0,
            },
        );
        Ok(())
    }

    /// Time to a client's next keepalive.
    pub(super) fn keepalive_ns(&mut self) -> u64 {
        let k = (self.args.keepalive_s() * SEC as f64) as u64;
        // Spread keepalives so they do not come in bursts.
        k / 2 + self.rng.next() % (k / 2).max(1)
    }

    /// Forgets client `g` and closes its socket.
    pub(super) fn close(&mut self, g: usize) {
        if let Some(c) = self.clients.remove(&g) {
            let _ = self
                .poll
                .registry()
                .deregister(&mut SourceFd(&c.socket.as_raw_fd()));
        }
    }

    /// Takes client `g` out of `channel`'s members.
    pub(super) fn remove_member(&mut self, g: usize, channel: usize) {
        let m = &mut self.members[channel];
        if let Some(p) = m.iter().position(|&x| x == g) {
            m.swap_remove(p);
        }
    }

    /// Clients the driver counts as logged in and staying.
    pub(super) fn active(&self) -> usize {
        self.members.iter().map(Vec::len).sum()
    }

    /// Clients still logging in or joining.
    pub(super) fn pending_setup(&self) -> usize {
        self.clients
            .values()
            .filter(|c| matches!(c.phase, Phase::LoggingIn | Phase::Proving | Phase::Joining))
            .count()
    }

    /// A progress line on stderr, unless --quiet.
    pub(super) fn log(&self, line: String) {
        if !self.args.output.quiet {
            eprintln!("[{:7.1}s] {line}", (now_ns() - self.start_ns) as f64 / 1e9);
        }
    }

    /// Keepalives, retries and closing lingering sockets.
    pub(super) fn random_active(&mut self) -> Option<usize> {
        let total = self.active();
        if total == 0 {
            return None;
        }
        let mut k = self.rng.below(total);
        for m in &self.members {
            if k < m.len() {
                return Some(m[k]);
            }
            k -= m.len();
        }
        None
    }

    /// Reads the server and the traffic since the previous sample.
    pub(super) fn sample(&mut self, t: f64, metrics: Option<SocketAddr>) -> Sample {
        let m = metrics.and_then(scrape);
        let pid = self.args.figures.server_pid;
        let (expected, received) = std::mem::take(&mut self.period);
        self.report.deliveries_expected += expected;
        self.report.deliveries_received += received;
        Sample {
            t: (t * 10.0).round() / 10.0,
            rss_kib: pid.and_then(procstat::rss_kib),
            threads: pid.and_then(procstat::threads),
            users: m.as_ref().and_then(|m| m.get("udpchat_users").copied()),
            channel_members: m
                .as_ref()
                .map(|m| sum_prefix(m, "udpchat_channel_members{")),
            clients: self.active(),
            vanished_pending: self.vanished.len(),
            expected,
            received,
            server_drops: m.as_ref().map(|m| sum_prefix(m, "udpchat_dropped")),
            queue_depth: m.as_ref().map(|m| sum_prefix(m, "udpchat_queue_depth")),
        }
    }
}
