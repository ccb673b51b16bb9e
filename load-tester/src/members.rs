//! The simulated clients: one UDP socket each, bound to addresses spread over 127.0.0.0/8,
//! read by a few receiver threads polling many sockets each (never a thread per client).
//!
//! Receivers decode every datagram: acknowledgements move a member's status on, PUBLIC_MSGs
//! are counted and their latency taken from the intended send time written in the text,
//! USER_JOINS/USER_PARTS only note that the server is still busy with membership changes.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle, Thread};
use std::time::Duration;

use anyhow::Context;
use hdrhistogram::Histogram;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use udpchat::client::secure::ClientSession;
use udpchat::protocol::{errors, Event};

use crate::sys::now_ns;

/// Status bit: LOGIN_ACK received.
pub const LOGGED_IN: u8 = 1;
/// Status bit: JOIN_ACK received for the channel of the current step.
pub const JOINED: u8 = 2;

/// Sender nickname the raw blaster puts in its datagrams, so receivers count them apart.
pub const RAW_SENDER: &str = "~raw";

/// The loopback address of the `global`-th member: spread over 127.0.0.2 .. 127.0.0.251 so
/// that each address needs few ports and more than 64k members fit on one machine.
pub fn member_ip(global: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, 2 + (global % 250) as u8)
}

/// The nickname of the `global`-th member of run `run_id`.
pub fn nickname(run_id: u32, global: usize) -> String {
    format!("lt{run_id:x}_{global}")
}

/// Counters the receivers update and the drivers read.
#[derive(Default)]
pub struct Counters {
    /// PUBLIC_MSGs from the server.
    pub public: AtomicU64,
    /// PUBLIC_MSGs from the raw blaster.
    pub raw: AtomicU64,
    /// USER_JOINS and USER_PARTS.
    pub membership: AtomicU64,
    /// When the last membership notice arrived (`now_ns`).
    pub last_membership_ns: AtomicU64,
    /// When the last PUBLIC_MSG (server or raw) arrived (`now_ns`).
    pub last_public_ns: AtomicU64,
    /// ERRORs of any kind.
    pub errors: AtomicU64,
    /// `ERROR please log in`: the member had been logged off (idle timeout?).
    pub expired: AtomicU64,
    /// Datagrams that did not decode or carried an unexpected text.
    pub garbage: AtomicU64,
}

/// Everything the drivers and receivers share.
pub struct Shared {
    /// One socket per member, non-blocking.
    pub sockets: Vec<UdpSocket>,
    /// Each member's global index (for nicknames and addresses).
    pub global: Vec<usize>,
    /// The server each member talks to, for everything it sends.
    pub server: Vec<SocketAddr>,
    /// Status bits per member.
    pub status: Vec<AtomicU8>,
    /// Messages in flight per member (only publishers have any), for closed-loop publishing.
    pub in_flight: Vec<AtomicU32>,
    /// The thread to wake when a publisher sees its own message come back.
    pub publisher_thread: Mutex<Option<Thread>>,
    /// Counts.
    pub counters: Counters,
    /// Tells the receivers to stop.
    pub stop: AtomicBool,
    /// Bumped to make each receiver hand in its latency histogram and start a new one.
    pub epoch: AtomicU64,
    /// Histograms handed in, with the epoch they cover.
    pub handed_in: Mutex<Vec<(u64, Histogram<u64>)>>,
    /// The protected session of each member that has one (`--protected`): what it sends
    /// is sealed, what it receives opened.
    pub sessions: Vec<Option<Mutex<ClientSession>>>,
}

impl Shared {
    /// Sends `datagram` from member `i` to its server, sealed if it is protected.
    pub fn send(&self, i: usize, datagram: &[u8]) -> io::Result<usize> {
        match self.sessions[i].as_ref() {
            Some(s) => {
                let sealed = match s.lock() {
                    Ok(mut s) => s.seal(datagram),
                    Err(_) => return Err(io::Error::other("poisoned session")),
                };
                self.sockets[i].send_to(&sealed, self.server[i])
            }
            None => self.sockets[i].send_to(datagram, self.server[i]),
        }
    }
}

/// The protection of a run of `clients` members as `--protected` asks: the last ones.
pub fn protection(args: &crate::cli::Args, clients: usize, run_id: u32) -> Option<Protection> {
    (args.protected > 0).then(|| Protection {
        from: clients.saturating_sub(args.protected),
        run_id,
    })
}

/// Which members are protected, and how they are named.
#[derive(Debug, Clone, Copy)]
pub struct Protection {
    /// Members of this global index and above register and log in with a password.
    pub from: usize,
    /// The run's tag in nicknames.
    pub run_id: u32,
}

/// The members and their receiver threads.
pub struct Members {
    /// State shared with the receivers.
    pub shared: Arc<Shared>,
    receivers: Vec<JoinHandle<()>>,
}

impl Members {
    /// Binds one socket per global index in `globals` and starts `threads` receivers; the
    /// member of global index `g` talks to `servers[g % servers.len()]`.
    ///
    /// # Errors
    /// A socket that can't be bound (out of files or ports) or a poller that can't start.
    pub fn start(
        globals: Vec<usize>,
        servers: &[SocketAddr],
        threads: usize,
        rcvbuf: usize,
        protection: Option<Protection>,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(!servers.is_empty(), "no server to talk to");
        let protected = |g: usize| protection.is_some_and(|p| g >= p.from);
        let mut sockets = Vec::with_capacity(globals.len());
        for &g in &globals {
            let ip = if protected(g) {
                crate::secure::protected_ip(g)
            } else {
                member_ip(g)
            };
            let s = UdpSocket::bind(SocketAddrV4::new(ip, 0))
                .with_context(|| format!("binding member socket {g} on {ip}"))?;
            s.set_nonblocking(true)?;
            if rcvbuf > 0 {
                // The kernel may grant less (net.core.rmem_max): the report shows the loss.
                let _ = socket2::SockRef::from(&s).set_recv_buffer_size(rcvbuf);
            }
            sockets.push(s);
        }
        let n = sockets.len();
        let server: Vec<SocketAddr> = globals.iter().map(|g| servers[g % servers.len()]).collect();
        let sessions = match protection {
            Some(p) => protect_all(&sockets, &globals, &server, p)?,
            None => (0..n).map(|_| None).collect(),
        };
        let status: Vec<AtomicU8> = sessions
            .iter()
            .map(|s| AtomicU8::new(if s.is_some() { LOGGED_IN } else { 0 }))
            .collect();
        let shared = Arc::new(Shared {
            sockets,
            server,
            global: globals,
            status,
            sessions,
            in_flight: (0..n).map(|_| AtomicU32::new(0)).collect(),
            publisher_thread: Default::default(),
            counters: Counters::default(),
            stop: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
            handed_in: Mutex::new(Vec::new()),
        });
        let threads = threads.clamp(1, n.max(1));
        let mut receivers = Vec::with_capacity(threads);
        for t in 0..threads {
            let poll = Poll::new().context("creating a poller")?;
            for i in (t..n).step_by(threads) {
                let fd = shared.sockets[i].as_raw_fd();
                poll.registry()
                    .register(&mut SourceFd(&fd), Token(i), Interest::READABLE)
                    .context("registering a member socket")?;
            }
            let shared = Arc::clone(&shared);
            receivers.push(
                thread::Builder::new()
                    .name(format!("receiver-{t}"))
                    .spawn(move || receive_loop(poll, &shared))?,
            );
        }
        Ok(Members { shared, receivers })
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.shared.sockets.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.shared.sockets.is_empty()
    }

    /// The local address of member `i`.
    pub fn addr(&self, i: usize) -> SocketAddr {
        self.shared.sockets[i]
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// The latency recorded since the last call (or the start), merged over receivers.
    pub fn take_latency(&self) -> Histogram<u64> {
        let epoch = self.shared.epoch.fetch_add(1, Ordering::Relaxed);
        let mut merged = new_histogram();
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        let mut got = 0;
        while got < self.receivers.len() && std::time::Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
            if let Ok(mut v) = self.shared.handed_in.lock() {
                for (e, h) in v.drain(..) {
                    if e == epoch {
                        got += 1;
                        let _ = merged.add(&h);
                    }
                }
            }
        }
        merged
    }

    /// Stops the receivers.
    pub fn stop(self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        for r in self.receivers {
            let _ = r.join();
        }
    }
}

/// Registers and logs in, with a password, every protected member among `globals`, on a
/// few threads; the sockets are blocking meanwhile.
fn protect_all(
    sockets: &[UdpSocket],
    globals: &[usize],
    servers: &[SocketAddr],
    p: Protection,
) -> anyhow::Result<Vec<Option<Mutex<ClientSession>>>> {
    let todo: Vec<usize> = (0..sockets.len())
        .filter(|&i| globals[i] >= p.from)
        .collect();
    let threads = thread::available_parallelism()
        .map_or(2, |n| n.get())
        .max(2)
        * 2;
    let results: Vec<anyhow::Result<(usize, ClientSession)>> = thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let mine: Vec<usize> = todo.iter().copied().skip(t).step_by(threads).collect();
                s.spawn(move || {
                    mine.into_iter()
                        .map(|i| {
                            sockets[i].set_nonblocking(false)?;
                            let nick = nickname(p.run_id, globals[i]);
                            let session = crate::secure::protect(&sockets[i], servers[i], &nick)?;
                            sockets[i].set_nonblocking(true)?;
                            Ok((i, session))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let mut sessions: Vec<Option<Mutex<ClientSession>>> =
        (0..sockets.len()).map(|_| None).collect();
    for r in results {
        let (i, session) = r?;
        sessions[i] = Some(Mutex::new(session));
    }
    Ok(sessions)
}

/// A latency histogram in microseconds up to 100 s, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000, 3).expect("constant bounds are valid")
}

fn receive_loop(mut poll: Poll, shared: &Shared) {
    let mut events = Events::with_capacity(1024);
    let mut hist = new_histogram();
    let mut buf = vec![0u8; 65536];
    let c = &shared.counters;
    let mut epoch = shared.epoch.load(Ordering::Relaxed);
    while !shared.stop.load(Ordering::Relaxed) {
        let now_epoch = shared.epoch.load(Ordering::Relaxed);
        if now_epoch != epoch {
            let h = std::mem::replace(&mut hist, new_histogram());
            if let Ok(mut v) = shared.handed_in.lock() {
                v.push((epoch, h));
            }
            epoch = now_epoch;
        }
        if poll
            .poll(&mut events, Some(Duration::from_millis(50)))
            .is_err()
        {
            continue;
        }
        let (mut public, mut raw, mut membership) = (0u64, 0u64, 0u64);
        for ev in events.iter() {
            let i = ev.token().0;
            let Some(sock) = shared.sockets.get(i) else {
                continue;
            };
            // Edge-triggered: read until the socket is empty or the next edge is lost.
            loop {
                let len = match sock.recv(&mut buf) {
                    Ok(len) => len,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    // ICMP errors queued on the socket (e.g. a refused send): read past them.
                    Err(_) => continue,
                };
                let opened;
                let bytes: &[u8] = match shared.sessions[i].as_ref() {
                    Some(s) => match s
                        .lock()
                        .ok()
                        .and_then(|mut s| s.open(&buf[..len]).map(|b| b.into_owned()))
                    {
                        Some(b) => {
                            opened = b;
                            &opened
                        }
                        None => {
                            c.garbage.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                    },
                    None => &buf[..len],
                };
                match Event::decode(bytes) {
                    Ok(Event::PublicMsg { sender, text, .. }) => {
                        if sender == RAW_SENDER {
                            raw += 1;
                            continue;
                        }
                        public += 1;
                        match parse_text(text) {
                            Some((sent_ns, slot)) => {
                                let lat = now_ns().saturating_sub(sent_ns) / 1000;
                                hist.saturating_record(lat.max(1));
                                own_message_back(shared, i, slot);
                            }
                            None => {
                                c.garbage.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    Ok(Event::UserJoins { .. } | Event::UserParts { .. }) => membership += 1,
                    Ok(Event::LoginAck { .. }) => {
                        shared.status[i].fetch_or(LOGGED_IN, Ordering::Relaxed);
                    }
                    Ok(Event::JoinAck(_)) => {
                        shared.status[i].fetch_or(JOINED, Ordering::Relaxed);
                    }
                    Ok(Event::Error { message }) => {
                        c.errors.fetch_add(1, Ordering::Relaxed);
                        if message == errors::PLEASE_LOG_IN {
                            c.expired.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Ok(_) => {}
                    Err(_) => {
                        c.garbage.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
        let now = now_ns();
        if public + raw > 0 {
            c.public.fetch_add(public, Ordering::Relaxed);
            c.raw.fetch_add(raw, Ordering::Relaxed);
            c.last_public_ns.store(now, Ordering::Relaxed);
        }
        if membership > 0 {
            c.membership.fetch_add(membership, Ordering::Relaxed);
            c.last_membership_ns.store(now, Ordering::Relaxed);
        }
    }
}

/// A publisher that sees its own message come back may send the next one (closed loop).
fn own_message_back(shared: &Shared, member: usize, publisher: u32) {
    if shared.global[member] != publisher as usize {
        return;
    }
    let f = &shared.in_flight[member];
    if f.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_sub(1))
        .is_ok()
    {
        if let Ok(t) = shared.publisher_thread.lock() {
            if let Some(t) = t.as_ref() {
                t.unpark();
            }
        }
    }
}

/// The text of a load-test message: `seq intended_ns publisher` padded with dots to `size` bytes.
pub fn message_text(seq: u64, intended_ns: u64, publisher: usize, size: usize) -> String {
    let mut s = format!("{seq} {intended_ns} {publisher} ");
    while s.len() < size {
        s.push('.');
    }
    s
}

/// Reads the intended send time and the publisher's global index back from a message text.
pub fn parse_text(text: &str) -> Option<(u64, u32)> {
    let mut f = text.split(' ');
    let _seq = f.next()?;
    let ns = f.next()?.parse().ok()?;
    let slot = f.next()?.parse().ok()?;
    Some((ns, slot))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_text_round_trips() {
        let t = message_text(7, 123_456_789, 3, 64);
        assert_eq!(t.len(), 64);
        assert_eq!(parse_text(&t), Some((123_456_789, 3)));
        assert_eq!(parse_text("garbage"), None);
    }

    #[test]
    fn addresses_stay_in_loopback() {
        for g in [0, 1, 249, 250, 100_000] {
            assert!(member_ip(g).is_loopback());
        }
    }
}
