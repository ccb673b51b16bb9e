//! The simulated clients: one UDP socket each, bound to addresses spread over 127.0.0.0/8,
//! read by a few receiver threads polling many sockets each (never a thread per client).
//!
//! Receivers decode every datagram, and every event of a BATCH (part 4) as if it had come
//! alone: acknowledgements move a member's status on, PUBLIC_MSGs are counted and their
//! latency taken from the intended send time written in the text, USER_JOINS/USER_PARTS
//! only note that the server is still busy with membership changes. Datagrams that carried
//! deliveries are counted too, so a report shows events per datagram.
//!
//! Members that asked for multicast also read a group socket ([`crate::mcast`]); once a
//! member has confirmed its group, the group's copy of an event is the one counted, and
//! counted the same way (a CHANNEL_DATA may carry a BATCH too).

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
use mio::{Events, Interest, Poll, Registry, Token};
use proto::session::ClientSession;
use proto::{batch, code, errors, Event, Request};

use crate::mcast::{GroupSocks, Groups};
use crate::sys::now_ns;

/// Status bit: LOGIN_ACK received.
pub const LOGGED_IN: u8 = 1;
/// Status bit: JOIN_ACK received for the channel of the current step.
pub const JOINED: u8 = 2;
/// Status bit: CAPS_ACK received (the member asked for batches or multicast; what was
/// granted shows in the deliveries and the multicast figures).
pub const CAPS: u8 = 4;
/// Status bit: heard the current step's channel on its group and sent MCAST_JOINED.
pub const CONFIRMED: u8 = 8;
/// Status bit: told the current step's channel's group (MCAST_GROUP): its channel has one.
pub const TOLD: u8 = 16;

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
    /// Datagrams from the server that carried PUBLIC_MSGs (one each, or a BATCH of them).
    pub public_datagrams: AtomicU64,
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
    /// CHANNEL_DATA datagrams accepted from groups.
    pub group_datagrams: AtomicU64,
    /// CHANNEL_DATA whose tag did not verify.
    pub bad_tag: AtomicU64,
    /// CHANNEL_DATA whose sequence was not above the last one.
    pub old_sequence: AtomicU64,
    /// Group sockets that could not be opened or registered.
    pub group_errors: AtomicU64,
    /// PUBLIC_MSGs that came by unicast to a member that had confirmed its group (not
    /// counted: the group's copy is; MCAST_JOINED is sent again).
    pub unicast_after_confirm: AtomicU64,
}

/// What a receiver counts in one round of events, added to [`Counters`] at its end.
#[derive(Debug, Default)]
pub struct Tally {
    /// PUBLIC_MSGs from the server.
    pub public: u64,
    /// Datagrams (unicast or from a group) that carried them.
    pub public_datagrams: u64,
    /// PUBLIC_MSGs from a raw blaster.
    pub raw: u64,
    /// USER_JOINS and USER_PARTS.
    pub membership: u64,
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
    /// Whether each member asks for batches (`--batch`; every other one with `--mixed`).
    pub batch: Vec<bool>,
    /// Whether some members ask for batches and some do not.
    pub mixed: bool,
    /// Bumped to make each receiver hand in its latency histograms and start new ones.
    pub epoch: AtomicU64,
    /// Histograms handed in, with the epoch they cover.
    pub handed_in: Mutex<Vec<(u64, Hists)>>,
    /// Whether each member asks for multicast.
    pub multicast: Vec<bool>,
    /// Channel groups as MCAST_GROUP named them (for the raw multicast blaster).
    pub groups: Groups,
    /// The raw multicast blaster's thread, woken when raw deliveries are counted (it
    /// runs in closed loop on them).
    pub raw_thread: Mutex<Option<Thread>>,
    /// The protected session of each member that has one (`--protected`): what it sends
    /// is sealed, what it receives opened.
    pub sessions: Vec<Option<Mutex<ClientSession>>>,
}

/// Latency histograms of one receiver (microseconds), kept apart by who received what.
#[derive(Debug, Clone)]
pub struct Hists {
    /// Server deliveries to every member.
    pub all: Histogram<u64>,
    /// Server deliveries to members that asked for batches.
    pub batch: Histogram<u64>,
    /// Server deliveries to classic members.
    pub classic: Histogram<u64>,
    /// The raw blaster's datagrams.
    pub raw: Histogram<u64>,
}

impl Default for Hists {
    fn default() -> Self {
        Hists {
            all: new_histogram(),
            batch: new_histogram(),
            classic: new_histogram(),
            raw: new_histogram(),
        }
    }
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

impl Hists {
    /// Adds `other`'s samples.
    pub fn add(&mut self, other: &Hists) {
        let _ = self.all.add(&other.all);
        let _ = self.batch.add(&other.batch);
        let _ = self.classic.add(&other.classic);
        let _ = self.raw.add(&other.raw);
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
    /// member of global index `g` talks to `servers[g % servers.len()]`, asks for batches
    /// if `batch(g)` and for multicast if `multicast(g)`.
    ///
    /// # Errors
    /// A socket that can't be bound (out of files or ports) or a poller that can't start.
    pub fn start(
        globals: Vec<usize>,
        servers: &[SocketAddr],
        threads: usize,
        rcvbuf: usize,
        batch: impl Fn(usize) -> bool,
        multicast: impl Fn(usize) -> bool,
        protection: Option<Protection>,
    ) -> anyhow::Result<Self> {
        // The largest datagram a group socket may get: a BATCH of a few events, or one
        // long message.
        let largest = 65_536;
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
        let globals_multicast: Vec<bool> = globals.iter().map(|&g| multicast(g)).collect();
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
            batch: globals.iter().map(|&g| batch(g)).collect(),
            mixed: globals.iter().any(|&g| batch(g)) && !globals.iter().all(|&g| batch(g)),
            global: globals,
            status,
            sessions,
            in_flight: (0..n).map(|_| AtomicU32::new(0)).collect(),
            publisher_thread: Default::default(),
            counters: Counters::default(),
            stop: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
            handed_in: Mutex::new(Vec::new()),
            multicast: globals_multicast,
            groups: Mutex::new(Default::default()),
            raw_thread: Mutex::new(None),
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
            let groups = GroupSocks::new(n, rcvbuf, largest);
            receivers.push(
                thread::Builder::new()
                    .name(format!("receiver-{t}"))
                    .spawn(move || receive_loop(poll, &shared, groups))?,
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
    pub fn take_latency(&self) -> Hists {
        let epoch = self.shared.epoch.fetch_add(1, Ordering::Relaxed);
        let mut merged = Hists::default();
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        let mut got = 0;
        while got < self.receivers.len() && std::time::Instant::now() < deadline {
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

fn receive_loop(mut poll: Poll, shared: &Shared, mut groups: GroupSocks) {
    let mut events = Events::with_capacity(1024);
    let mut hists = Hists::default();
    let mut buf = vec![0u8; 65536];
    let c = &shared.counters;
    let mut epoch = shared.epoch.load(Ordering::Relaxed);
    while !shared.stop.load(Ordering::Relaxed) {
        let now_epoch = shared.epoch.load(Ordering::Relaxed);
        if now_epoch != epoch {
            let h = std::mem::take(&mut hists);
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
        let mut t = Tally::default();
        for ev in events.iter() {
            if let Some(i) = groups.member_of(ev.token()) {
                groups.read(shared, i, &mut t, &mut hists);
                continue;
            }
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
                let d: &[u8] = match shared.sessions[i].as_ref() {
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
                let before = t.public;
                // One clock reading per datagram: the events of a batch arrived together.
                let now = now_ns();
                let mut on = Unicast {
                    groups: &mut groups,
                    registry: poll.registry(),
                };
                if d.starts_with(&code::BATCH.to_be_bytes()) {
                    match batch::events(d) {
                        Ok(entries) => {
                            for e in entries {
                                one_event(shared, i, e, now, &mut t, &mut hists, Some(&mut on));
                            }
                        }
                        Err(_) => {
                            c.garbage.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                } else {
                    one_event(shared, i, d, now, &mut t, &mut hists, Some(&mut on));
                }
                if t.public > before {
                    t.public_datagrams += 1;
                }
            }
        }
        let now = now_ns();
        if t.public + t.raw > 0 {
            c.public.fetch_add(t.public, Ordering::Relaxed);
            c.public_datagrams
                .fetch_add(t.public_datagrams, Ordering::Relaxed);
            c.raw.fetch_add(t.raw, Ordering::Relaxed);
            c.last_public_ns.store(now, Ordering::Relaxed);
            if t.raw > 0 {
                if let Ok(t) = shared.raw_thread.lock() {
                    if let Some(t) = t.as_ref() {
                        t.unpark();
                    }
                }
            }
        }
        if t.membership > 0 {
            c.membership.fetch_add(t.membership, Ordering::Relaxed);
            c.last_membership_ns.store(now, Ordering::Relaxed);
        }
    }
}

/// What an event from a member's own socket may need besides the counts: the receiver's
/// group sockets (an MCAST_GROUP opens one) and its poller's registry.
pub struct Unicast<'a> {
    /// The group sockets of the receiver's members.
    pub groups: &'a mut GroupSocks,
    /// The receiver's poller, where a new group socket is registered.
    pub registry: &'a Registry,
}

/// Handles one event for member `i`: a datagram of its own, or an entry of a BATCH, that
/// came to its own socket (`unicast` given) or from its channel's group (`None`: then only
/// deliveries and membership notices count).
///
/// PUBLIC_MSGs, millions a second, take a short path over the bytes (the load tester's own
/// texts are ASCII): at ten times the kernel's datagram rate, a full decode of every event
/// would make the receiver, not the server, the thing measured.
pub fn one_event(
    shared: &Shared,
    i: usize,
    bytes: &[u8],
    now: u64,
    t: &mut Tally,
    hists: &mut Hists,
    unicast: Option<&mut Unicast<'_>>,
) {
    let c = &shared.counters;
    if let Some((title, sender, text)) = public_fields(bytes) {
        if sender == RAW_SENDER.as_bytes() {
            t.raw += 1;
            if let Some(sent_ns) = text.split(|&b| b == b' ').nth(1).and_then(number) {
                let lat = now.saturating_sub(sent_ns) / 1000;
                hists.raw.saturating_record(lat.max(1));
            }
            return;
        }
        if unicast.is_some() && shared.status[i].load(Ordering::Relaxed) & CONFIRMED != 0 {
            // The group's copy counts; the server has not heard our MCAST_JOINED.
            c.unicast_after_confirm.fetch_add(1, Ordering::Relaxed);
            if let Ok(title) = std::str::from_utf8(title) {
                let joined = Request::McastJoined { title }.to_bytes();
                let _ = shared.send(i, &joined);
            }
            return;
        }
        t.public += 1;
        let mut f = text.split(|&b| b == b' ').skip(1);
        let (sent_ns, slot) = (f.next().and_then(number), f.next().and_then(number));
        match (sent_ns, slot.and_then(|s| u32::try_from(s).ok())) {
            (Some(sent_ns), Some(slot)) => {
                let lat = (now.saturating_sub(sent_ns) / 1000).max(1);
                hists.all.saturating_record(lat);
                // Kept apart only when the channel holds both kinds (--mixed).
                if shared.mixed {
                    if shared.batch[i] {
                        hists.batch.saturating_record(lat);
                    } else {
                        hists.classic.saturating_record(lat);
                    }
                }
                own_message_back(shared, i, slot);
            }
            _ => {
                c.garbage.fetch_add(1, Ordering::Relaxed);
            }
        }
        return;
    }
    // Membership notices only count (filling a channel of 10,000 brings 50 million).
    if bytes.starts_with(&code::USER_JOINS.to_be_bytes())
        || bytes.starts_with(&code::USER_PARTS.to_be_bytes())
    {
        t.membership += 1;
        return;
    }
    let decoded = Event::decode(bytes);
    let Some(unicast) = unicast else {
        if decoded.is_err() {
            c.garbage.fetch_add(1, Ordering::Relaxed);
        }
        return;
    };
    match decoded {
        Ok(Event::LoginAck { .. }) => {
            shared.status[i].fetch_or(LOGGED_IN, Ordering::Relaxed);
        }
        Ok(Event::JoinAck(_)) => {
            shared.status[i].fetch_or(JOINED, Ordering::Relaxed);
        }
        Ok(Event::CapsAck { .. }) => {
            shared.status[i].fetch_or(CAPS, Ordering::Relaxed);
        }
        Ok(e @ Event::McastGroup { .. }) => {
            shared.status[i].fetch_or(TOLD, Ordering::Relaxed);
            unicast.groups.told(shared, unicast.registry, i, &e);
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

/// The title, sender and text of a PUBLIC_MSG datagram (`title sender text`), as bytes.
pub fn public_fields(d: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let rest = d.strip_prefix(&code::PUBLIC_MSG.to_be_bytes())?;
    let title_end = rest.iter().position(|&b| b == b' ')?;
    let (title, rest) = (&rest[..title_end], &rest[title_end + 1..]);
    let sender_end = rest.iter().position(|&b| b == b' ')?;
    Some((title, &rest[..sender_end], &rest[sender_end + 1..]))
}

/// A decimal number of ASCII digits (the fields of the load tester's texts).
fn number(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + u64::from(b - b'0'))
    })
}

/// Reads the intended send time back from a message text.
pub fn parse_intended(text: &str) -> Option<u64> {
    text.split(' ').nth(1)?.parse().ok()
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
        assert_eq!(parse_intended(&t), Some(123_456_789));
        let d = Event::PublicMsg {
            title: "lt0",
            sender: "ann",
            text: &t,
        }
        .to_bytes();
        let (title, sender, text) = public_fields(&d).unwrap();
        assert_eq!(
            (title, sender, text),
            (&b"lt0"[..], &b"ann"[..], t.as_bytes())
        );
        assert_eq!(number(b"123456789"), Some(123_456_789));
        assert_eq!(number(b"12a"), None);
        assert_eq!(number(b""), None);
        assert_eq!(parse_text("garbage"), None);
    }

    #[test]
    fn addresses_stay_in_loopback() {
        for g in [0, 1, 249, 250, 100_000] {
            assert!(member_ip(g).is_loopback());
        }
    }
}
