//! The soak driver: a steady population of clients at a moderate load for a long time,
//! with clients moving between channels, logging off cleanly and vanishing, while the
//! server's memory and threads are sampled.
//!
//! One thread does everything (sends, receives through one poller, bookkeeping): the load
//! is moderate by design, and a single thread needs no locks around the per-client state
//! that every received datagram is checked against.
//!
//! What is checked:
//! - a client that logged off gets no PUBLIC_MSG published after its logoff was confirmed
//!   (the server answers a probe with `ERROR please log in`) or more than a grace after
//!   the LOGOFF was sent, whichever is earlier; the socket stays open a while to see it;
//! - likewise no PUBLIC_MSG for a channel a client parted, counted from its PART_ACK or
//!   the PART plus the grace;
//! - a client that vanished (socket closed, no LOGOFF) is gone (WHOIS answers
//!   `not logged in`) once the idle timeout and two sweeps have passed.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, SocketAddrV4, TcpStream, ToSocketAddrs, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use serde::{Deserialize, Serialize};
use udpchat::protocol::{errors, Event, Request};

use crate::members::member_ip;
use crate::procstat;
use crate::sys::now_ns;

const SEC: u64 = 1_000_000_000;
const MS: u64 = 1_000_000;
/// Resend a request without its answer after this long (UDP may drop it).
const RETRY_NS: u64 = SEC;
/// Bookkeeping (keepalives, retries, churn) runs this often.
const TICK_NS: u64 = 100 * MS;
/// Logins and joins outstanding at once while the population is built.
const SETUP_WINDOW: usize = 200;
/// The token of the checker client, which asks WHOIS about vanished clients.
const CHECKER: usize = usize::MAX - 1;

/// The soak driver's flags.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "soak",
    about = "Steady load with churn for a long time; checks that departed clients get nothing and that memory and threads stay flat"
)]
pub struct SoakArgs {
    /// The server (loopback only).
    #[arg(long)]
    pub server: SocketAddr,
    /// The server's process id, for its RSS and thread count from /proc.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// The server's metrics endpoint (`http://127.0.0.1:9027/metrics` or `127.0.0.1:9027`),
    /// scraped at every sample.
    #[arg(long)]
    pub metrics: Option<String>,
    /// Seconds of steady load (at most a day).
    #[arg(long, default_value_t = 600.0)]
    pub duration: f64,
    /// Clients kept logged in and in a channel.
    #[arg(long, default_value_t = 2000)]
    pub clients: usize,
    /// Channels, titled `<prefix>0` ...; the server must have them.
    #[arg(long, default_value_t = 20)]
    pub channels: usize,
    /// Channel title prefix.
    #[arg(long, default_value = "lt")]
    pub title_prefix: String,
    /// Public messages per second, in total.
    #[arg(long, default_value_t = 200.0)]
    pub rate: f64,
    /// Clients replaced per second (each departs and a new one on a fresh socket logs in).
    #[arg(long, default_value_t = 10.0)]
    pub churn: f64,
    /// Share of the replaced clients that vanish instead of logging off.
    #[arg(long, default_value_t = 0.5)]
    pub vanish_share: f64,
    /// Clients per second that part their channel and join another.
    #[arg(long, default_value_t = 10.0)]
    pub moves: f64,
    /// Seconds between samples.
    #[arg(long, default_value_t = 30.0)]
    pub sample: f64,
    /// The server's --idle-timeout, in seconds: vanished clients must be gone after it.
    #[arg(long, default_value_t = 10.0)]
    pub idle_timeout: f64,
    /// The server's --check-interval, in seconds.
    #[arg(long, default_value_t = 2.0)]
    pub check_interval: f64,
    /// Seconds between a client's keepalives (default: a third of the idle timeout).
    #[arg(long)]
    pub keepalive: Option<f64>,
    /// Milliseconds after a LOGOFF or PART within which a publication may still be in
    /// flight to the departed client.
    #[arg(long, default_value_t = 200)]
    pub grace_ms: u64,
    /// Seconds a departed client's socket stays open, listening for stray deliveries.
    #[arg(long, default_value_t = 3.0)]
    pub linger: f64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// No progress lines on stderr.
    #[arg(long)]
    pub quiet: bool,
}

impl SoakArgs {
    /// Checks the flags: loopback only, bounded, sensible.
    ///
    /// # Errors
    /// The first flag that is out of bounds.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.server.ip().is_loopback(),
            "--server must be a loopback address"
        );
        anyhow::ensure!(
            self.duration > 0.0 && self.duration <= 86_400.0,
            "--duration must be in (0, 86400] seconds"
        );
        anyhow::ensure!(
            (1..=15_000).contains(&self.clients),
            "--clients must be 1 ..= 15000 (one open file each)"
        );
        anyhow::ensure!(self.channels >= 2, "--channels must be at least 2");
        anyhow::ensure!(
            (0.0..=10_000.0).contains(&self.rate),
            "--rate must be 0 ..= 10000"
        );
        anyhow::ensure!(
            (0.0..=1_000.0).contains(&self.churn) && (0.0..=1_000.0).contains(&self.moves),
            "--churn and --moves must be 0 ..= 1000"
        );
        anyhow::ensure!(
            (0.0..=1.0).contains(&self.vanish_share),
            "--vanish-share must be 0 ..= 1"
        );
        anyhow::ensure!(
            self.sample >= 0.1 && self.idle_timeout > 0.0 && self.check_interval > 0.0,
            "--sample, --idle-timeout and --check-interval must be positive"
        );
        anyhow::ensure!(
            self.keepalive_s() < self.idle_timeout,
            "keepalives must come more often than the idle timeout"
        );
        if let Some(m) = &self.metrics {
            anyhow::ensure!(
                metrics_addr(m)?.ip().is_loopback(),
                "--metrics must be on loopback"
            );
        }
        Ok(())
    }

    fn keepalive_s(&self) -> f64 {
        self.keepalive.unwrap_or(self.idle_timeout / 3.0)
    }

    fn title(&self, c: usize) -> String {
        format!("{}{c}", self.title_prefix)
    }

    /// When a vanished client must be gone: the idle timeout, two sweeps and a second.
    fn vanish_deadline_ns(&self) -> u64 {
        ((self.idle_timeout + 2.0 * self.check_interval + 1.0) * SEC as f64) as u64
    }
}

/// One sample of the server and of the traffic since the previous sample.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sample {
    /// Seconds since the steady load started.
    pub t: f64,
    /// Server resident memory, KiB.
    pub rss_kib: Option<u64>,
    /// Server threads.
    pub threads: Option<u64>,
    /// Logged-in users by the server's metrics.
    pub users: Option<u64>,
    /// Members of all channels by the server's metrics.
    pub channel_members: Option<u64>,
    /// Clients the driver holds logged in (not departing).
    pub clients: usize,
    /// Vanished clients the server may still hold (not yet swept).
    pub vanished_pending: usize,
    /// Deliveries expected since the previous sample.
    pub expected: u64,
    /// Of those, received.
    pub received: u64,
    /// Server drops since the start, all reasons (from metrics).
    pub server_drops: Option<u64>,
    /// Sum of the server's queue depths (from metrics).
    pub queue_depth: Option<u64>,
}

/// What the soak found.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SoakReport {
    /// Seconds of steady load.
    pub duration_s: f64,
    /// Steady population.
    pub clients: usize,
    /// Channels.
    pub channels: usize,
    /// Public messages per second asked for.
    pub rate: f64,
    /// Replacements per second asked for.
    pub churn: f64,
    /// Moves per second asked for.
    pub moves: f64,
    /// The grace after a departure, ms.
    pub grace_ms: u64,
    /// Seconds the initial population took to log in and join.
    pub setup_s: f64,
    /// The samples.
    pub samples: Vec<Sample>,
    /// RSS (KiB) at the first and last sample, and the largest seen.
    pub rss_first_kib: Option<u64>,
    /// See `rss_first_kib`.
    pub rss_last_kib: Option<u64>,
    /// See `rss_first_kib`.
    pub rss_max_kib: Option<u64>,
    /// Threads at the first and last sample, and the most seen.
    pub threads_first: Option<u64>,
    /// See `threads_first`.
    pub threads_last: Option<u64>,
    /// See `threads_first`.
    pub threads_max: Option<u64>,
    /// Public messages sent.
    pub messages_sent: u64,
    /// Deliveries expected (members in the channel, by their acknowledgements, at publish).
    pub deliveries_expected: u64,
    /// Of those, received.
    pub deliveries_received: u64,
    /// `1 - received/expected`, in per cent.
    pub loss_pct: f64,
    /// Clients that logged in (initial population and replacements).
    pub logins: u64,
    /// Clients that logged off cleanly.
    pub logged_off: u64,
    /// Of those, whose logoff the server confirmed.
    pub logoffs_confirmed: u64,
    /// Clients that vanished.
    pub vanished: u64,
    /// Vanished clients checked after the idle timeout (WHOIS answered).
    pub vanished_checked: u64,
    /// Vanished clients still logged in when checked: must be 0.
    pub vanished_still_there: u64,
    /// Channel moves (PART then JOIN) completed.
    pub moves_done: u64,
    /// PUBLIC_MSGs a logged-off client got that were published after the server confirmed
    /// its logoff: must be 0.
    pub departed_delivered: u64,
    /// PUBLIC_MSGs for a parted channel published after its PART_ACK arrived: must be 0.
    pub parted_delivered: u64,
    /// PUBLIC_MSGs a logged-off client got that were published more than the grace after
    /// the LOGOFF was sent but before the server confirmed it: the server had not yet
    /// processed the LOGOFF, so they are not wrong, but show how far its queues lagged.
    pub departed_after_grace: u64,
    /// The same for parted channels (published after PART + grace, before the PART_ACK).
    pub parted_after_grace: u64,
    /// PUBLIC_MSGs a departed or parted client got that were published within the grace.
    pub departed_in_flight: u64,
    /// Longest time from a LOGOFF to the server's confirmation, ms.
    pub logoff_confirm_max_ms: f64,
    /// Longest time from a PART to its PART_ACK, ms.
    pub part_confirm_max_ms: f64,
    /// Datagrams other than PUBLIC_MSG a logged-off client got after its logoff was
    /// confirmed (USER_JOINS, USER_PARTS, ...): must be 0.
    pub departed_other: u64,
    /// Requests resent for want of an answer.
    pub retries: u64,
    /// ERRORs other than the expected `please log in` and WHOIS answers.
    pub errors: u64,
    /// Users by the metrics after all clients logged off at the end (should be 0).
    pub users_after_logoff: Option<u64>,
    /// Departed-but-delivered and vanished checks passed.
    pub clean: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// LOGIN_REQ sent, waiting for LOGIN_ACK.
    LoggingIn,
    /// JOIN_REQ sent, waiting for JOIN_ACK.
    Joining,
    /// In `channel`, taking part.
    Active,
    /// PART_REQ sent for the old channel, waiting for PART_ACK, then joins `channel`.
    Parting,
    /// LOGOFF sent; the socket lingers to catch stray deliveries.
    Departed,
}

/// A channel a client was in and when it left.
#[derive(Debug, Clone, Copy)]
struct Left {
    channel: usize,
    /// Publications before this (ns) may be delivered.
    from_ns: u64,
    /// When the client joined it (its JOIN_ACK arrived).
    joined_ns: u64,
    /// When the server confirmed the part (PART_ACK or `please log in`), if it has.
    confirmed_ns: Option<u64>,
}

struct Client {
    socket: UdpSocket,
    nick: String,
    phase: Phase,
    /// The current channel (or the one being joined).
    channel: usize,
    /// When the JOIN_ACK for `channel` arrived.
    joined_ns: u64,
    /// Channels left: the previous one on a move, the last one on logoff.
    left: Vec<Left>,
    /// When the pending request was last sent.
    sent_ns: u64,
    /// Resends of the pending request.
    tries: u32,
    next_keepalive_ns: u64,
    /// When a departed client's socket closes.
    close_ns: u64,
}

/// A vanished client awaiting its WHOIS check.
struct Vanished {
    nick: String,
    due_ns: u64,
    asked_ns: Option<u64>,
}

/// A small xorshift generator: the choices need no quality, only no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

/// The driver's state.
struct Soak<'a> {
    args: &'a SoakArgs,
    run_id: u32,
    poll: Poll,
    clients: HashMap<usize, Client>,
    /// Active clients per channel, for expected deliveries and picking publishers.
    members: Vec<Vec<usize>>,
    next_global: usize,
    checker: UdpSocket,
    vanished: VecDeque<Vanished>,
    rng: Rng,
    report: SoakReport,
    period: (u64, u64),
    seq: u64,
    buf: Vec<u8>,
    start_ns: u64,
}

/// The address behind `--metrics` (a URL or HOST:PORT).
fn metrics_addr(m: &str) -> anyhow::Result<SocketAddr> {
    let rest = m.strip_prefix("http://").unwrap_or(m);
    let host = rest.split('/').next().unwrap_or(rest);
    host.to_socket_addrs()
        .with_context(|| format!("resolving {host}"))?
        .next()
        .with_context(|| format!("no address for {host}"))
}

/// The samples of a Prometheus text page, by metric name with labels.
fn scrape(addr: SocketAddr) -> Option<HashMap<String, u64>> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET /metrics HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let body = text.split_once("\r\n\r\n")?.1;
    Some(
        body.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (name, v) = l.rsplit_once(' ')?;
                Some((name.to_string(), v.parse::<f64>().ok()? as u64))
            })
            .collect(),
    )
}

fn sum_prefix(m: &HashMap<String, u64>, prefix: &str) -> u64 {
    m.iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .map(|(_, v)| v)
        .sum()
}

/// Threads of `pid` (`Threads:` of `/proc/PID/status`).
pub fn threads(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with("Threads:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The text of a soak message: `seq publish_ns`.
fn text(seq: u64, ns: u64) -> String {
    format!("{seq} {ns}")
}

fn parse(text: &str) -> Option<u64> {
    text.split(' ').nth(1)?.parse().ok()
}

/// A probe that draws `please log in` from a logged-off address: padded so that the
/// server's amplification guard (no more bytes back than received) lets the answer out.
fn probe() -> Vec<u8> {
    Request::Who {
        prefix: "soak-probe-padding",
    }
    .to_bytes()
}

impl<'a> Soak<'a> {
    fn new(args: &'a SoakArgs) -> anyhow::Result<Self> {
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

    fn send(&self, socket: &UdpSocket, req: &[u8]) {
        // A failed send is a lost request: the retries cover those that need an answer.
        let _ = socket.send_to(req, self.args.server);
    }

    /// A new client on a fresh socket, logging in to join `channel`.
    fn spawn(&mut self, channel: usize) -> anyhow::Result<()> {
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
                channel,
                joined_ns: 0,
                left: Vec::new(),
                sent_ns: now,
                tries: 0,
                next_keepalive_ns,
                close_ns: 0,
            },
        );
        Ok(())
    }

    fn keepalive_ns(&mut self) -> u64 {
        let k = (self.args.keepalive_s() * SEC as f64) as u64;
        // Spread keepalives so they do not come in bursts.
        k / 2 + self.rng.next() % (k / 2).max(1)
    }

    fn close(&mut self, g: usize) {
        if let Some(c) = self.clients.remove(&g) {
            let _ = self
                .poll
                .registry()
                .deregister(&mut SourceFd(&c.socket.as_raw_fd()));
        }
    }

    fn remove_member(&mut self, g: usize, channel: usize) {
        let m = &mut self.members[channel];
        if let Some(p) = m.iter().position(|&x| x == g) {
            m.swap_remove(p);
        }
    }

    /// Clients the driver counts as logged in and staying.
    fn active(&self) -> usize {
        self.members.iter().map(Vec::len).sum()
    }

    fn pending_setup(&self) -> usize {
        self.clients
            .values()
            .filter(|c| matches!(c.phase, Phase::LoggingIn | Phase::Joining))
            .count()
    }

    fn poll_once(&mut self, timeout: Duration) {
        let mut events = Events::with_capacity(1024);
        if self.poll.poll(&mut events, Some(timeout)).is_err() {
            return;
        }
        for ev in events.iter() {
            let g = ev.token().0;
            // Edge-triggered: read until empty.
            loop {
                let r = if g == CHECKER {
                    self.checker.recv(&mut self.buf)
                } else {
                    match self.clients.get(&g) {
                        Some(c) => c.socket.recv(&mut self.buf),
                        None => break,
                    }
                };
                let len = match r {
                    Ok(len) => len,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    // A queued ICMP error: read past it.
                    Err(_) => continue,
                };
                let data = self.buf[..len].to_vec();
                if g == CHECKER {
                    self.on_checker(&data);
                } else {
                    self.on_datagram(g, &data);
                }
            }
        }
    }

    fn on_checker(&mut self, data: &[u8]) {
        let (nick, gone) = match Event::decode(data) {
            Ok(Event::UserItem { nick, .. }) => (nick.to_string(), false),
            Ok(Event::Error { message }) => match message.strip_suffix(": not logged in") {
                Some(n) => (n.to_string(), true),
                None => {
                    self.report.errors += 1;
                    return;
                }
            },
            _ => return,
        };
        if let Some(p) = self
            .vanished
            .iter()
            .position(|v| v.asked_ns.is_some() && v.nick.eq_ignore_ascii_case(&nick))
        {
            self.vanished.remove(p);
            self.report.vanished_checked += 1;
            if !gone {
                self.report.vanished_still_there += 1;
                self.log(format!("vanished client {nick} still logged in"));
            }
        }
    }

    fn on_datagram(&mut self, g: usize, data: &[u8]) {
        let now = now_ns();
        let grace = self.args.grace_ms * MS;
        let Some(c) = self.clients.get_mut(&g) else {
            return;
        };
        match Event::decode(data) {
            Ok(Event::PublicMsg { title, text, .. }) => {
                let Some(pub_ns) = parse(text) else {
                    self.report.errors += 1;
                    return;
                };
                let current = self.args.title(c.channel);
                if title == current && matches!(c.phase, Phase::Active) && pub_ns > c.joined_ns {
                    self.period.1 += 1;
                    return;
                }
                // A channel it left: in flight, or a delivery after the departure.
                let Some(l) = c
                    .left
                    .iter()
                    .rev()
                    .find(|l| self.args.title(l.channel) == title)
                else {
                    return;
                };
                let departed = c.phase == Phase::Departed
                    && c.left.last().map(|x| x.channel) == Some(l.channel);
                if let Some(confirmed) = l.confirmed_ns.filter(|&t| pub_ns > t) {
                    // The server had processed the departure before this was even sent.
                    if departed {
                        self.report.departed_delivered += 1;
                    } else {
                        self.report.parted_delivered += 1;
                    }
                    let what = if departed { "logged off" } else { "parted" };
                    let msg = format!(
                        "{} ({what} {title}) got a message published {} ms after its {what} was confirmed",
                        c.nick,
                        (pub_ns - confirmed) / MS
                    );
                    self.log(msg);
                } else if pub_ns > l.from_ns + grace {
                    if departed {
                        self.report.departed_after_grace += 1;
                    } else {
                        self.report.parted_after_grace += 1;
                    }
                } else if pub_ns > l.joined_ns && pub_ns < l.from_ns {
                    // Published while it was a member: an expected delivery that came late.
                    self.period.1 += 1;
                } else {
                    self.report.departed_in_flight += 1;
                }
            }
            Ok(Event::LoginAck { .. }) if c.phase == Phase::LoggingIn => {
                c.phase = Phase::Joining;
                c.sent_ns = now;
                c.tries = 0;
                let req = Request::Join {
                    title: &self.args.title(c.channel),
                }
                .to_bytes();
                let _ = c.socket.send_to(&req, self.args.server);
            }
            Ok(Event::JoinAck(info)) if c.phase == Phase::Joining => {
                if info.title == self.args.title(c.channel) {
                    c.phase = Phase::Active;
                    c.joined_ns = now;
                    let ch = c.channel;
                    self.members[ch].push(g);
                    if c.left.is_empty() {
                        self.report.logins += 1;
                    } else {
                        self.report.moves_done += 1;
                    }
                }
            }
            Ok(Event::PartAck(info)) if c.phase == Phase::Parting => {
                let old = c.left.last().map(|l| l.channel);
                if old.map(|o| self.args.title(o)) == Some(info.title.to_string()) {
                    if let Some(l) = c.left.last_mut() {
                        l.confirmed_ns = Some(now);
                        let ms = (now - l.from_ns) as f64 / MS as f64;
                        self.report.part_confirm_max_ms = self.report.part_confirm_max_ms.max(ms);
                    }
                    c.phase = Phase::Joining;
                    c.sent_ns = now;
                    c.tries = 0;
                    let req = Request::Join {
                        title: &self.args.title(c.channel),
                    }
                    .to_bytes();
                    let _ = c.socket.send_to(&req, self.args.server);
                }
            }
            Ok(Event::Error { message }) if message == errors::PLEASE_LOG_IN => {
                if c.phase == Phase::Departed {
                    if let Some(l) = c.left.last_mut() {
                        if l.confirmed_ns.is_none() {
                            l.confirmed_ns = Some(now);
                            self.report.logoffs_confirmed += 1;
                            let ms = (now - l.from_ns) as f64 / MS as f64;
                            self.report.logoff_confirm_max_ms =
                                self.report.logoff_confirm_max_ms.max(ms);
                        }
                    }
                } else {
                    self.report.errors += 1;
                    let msg = format!("{} was logged off by the server", c.nick);
                    self.log(msg);
                }
            }
            Ok(Event::Error { .. }) => self.report.errors += 1,
            Ok(_) => {
                // USER_JOINS/USER_PARTS and the like: after a confirmed logoff, none may come.
                if c.phase == Phase::Departed {
                    if let Some(confirmed) = c.left.last().and_then(|l| l.confirmed_ns) {
                        if now > confirmed + grace {
                            self.report.departed_other += 1;
                        }
                    }
                }
            }
            Err(_) => self.report.errors += 1,
        }
    }

    fn log(&self, line: String) {
        if !self.args.quiet {
            eprintln!("[{:7.1}s] {line}", (now_ns() - self.start_ns) as f64 / 1e9);
        }
    }

    /// Keepalives, retries and closing lingering sockets.
    fn housekeeping(&mut self, now: u64) {
        let mut to_close = Vec::new();
        let server = self.args.server;
        let mut retries = 0;
        let ka = self.keepalive_ns();
        for (&g, c) in self.clients.iter_mut() {
            match c.phase {
                Phase::Departed => {
                    if now >= c.close_ns {
                        to_close.push(g);
                    } else if c.left.last().is_some_and(|l| l.confirmed_ns.is_none())
                        && now > c.sent_ns + RETRY_NS
                    {
                        // Still unconfirmed: resend the LOGOFF with its probe.
                        let _ = c.socket.send_to(&Request::Logoff.to_bytes(), server);
                        let _ = c.socket.send_to(&probe(), server);
                        c.sent_ns = now;
                        retries += 1;
                    }
                    continue;
                }
                Phase::LoggingIn | Phase::Joining | Phase::Parting
                    if now > c.sent_ns + RETRY_NS =>
                {
                    let title = self.args.title(c.channel);
                    let old = c
                        .left
                        .last()
                        .map_or(title.clone(), |l| self.args.title(l.channel));
                    if c.phase == Phase::Parting && c.tries >= 2 {
                        // The server answers no PART for a channel the client is not in, so
                        // a lost PART_ACK would be waited for forever: the part happened.
                        c.phase = Phase::Joining;
                    }
                    c.tries += 1;
                    let req = match c.phase {
                        Phase::LoggingIn => Request::Login { nick: &c.nick }.to_bytes(),
                        Phase::Joining => Request::Join { title: &title }.to_bytes(),
                        _ => Request::Part { title: &old }.to_bytes(),
                    };
                    let _ = c.socket.send_to(&req, server);
                    c.sent_ns = now;
                    retries += 1;
                }
                _ => {}
            }
            if now >= c.next_keepalive_ns {
                let _ = c.socket.send_to(&Request::StillHere.to_bytes(), server);
                c.next_keepalive_ns = now + ka;
            }
        }
        self.report.retries += retries;
        for g in to_close {
            self.close(g);
        }
        // The checker keeps itself alive too, and asks about vanished clients that are due.
        let _ = self
            .checker
            .send_to(&Request::StillHere.to_bytes(), self.args.server);
        for v in self.vanished.iter_mut() {
            if now < v.due_ns {
                break;
            }
            if v.asked_ns.is_none_or(|a| now > a + RETRY_NS) {
                let _ = self
                    .checker
                    .send_to(&Request::Whois { nick: &v.nick }.to_bytes(), server);
                v.asked_ns = Some(now);
            }
        }
    }

    fn random_active(&mut self) -> Option<usize> {
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

    fn publish(&mut self) {
        let Some(g) = self.random_active() else {
            return;
        };
        let Some(c) = self.clients.get(&g) else {
            return;
        };
        self.seq += 1;
        let now = now_ns();
        let t = text(self.seq, now);
        let _ = c.socket.send_to(
            &Request::SendPublic { text: &t }.to_bytes(),
            self.args.server,
        );
        self.report.messages_sent += 1;
        self.period.0 += self.members[c.channel].len() as u64;
    }

    /// A random active client parts its channel and joins another.
    fn move_one(&mut self) {
        let Some(g) = self.random_active() else {
            return;
        };
        let to = self.rng.below(self.args.channels);
        let Some(c) = self.clients.get(&g) else {
            return;
        };
        let from = c.channel;
        // Not back into a channel it left recently: deliveries there are checked against
        // the part, and a rejoin would make them look like deliveries after it.
        if to == from || c.left.iter().any(|l| l.channel == to) {
            return;
        }
        self.remove_member(g, from);
        let now = now_ns();
        let title = self.args.title(from);
        let c = self.clients.get_mut(&g).expect("present");
        let _ = c.socket.send_to(
            &Request::Part { title: &title }.to_bytes(),
            self.args.server,
        );
        c.left.retain(|l| now < l.from_ns + 60 * SEC);
        c.left.push(Left {
            channel: from,
            from_ns: now,
            joined_ns: c.joined_ns,
            confirmed_ns: None,
        });
        c.phase = Phase::Parting;
        c.channel = to;
        c.sent_ns = now;
        c.tries = 0;
    }

    /// A random active client departs (logs off or vanishes) and a new one takes its place.
    fn replace_one(&mut self) -> anyhow::Result<()> {
        let Some(g) = self.random_active() else {
            return Ok(());
        };
        let channel = self.clients[&g].channel;
        self.remove_member(g, channel);
        let now = now_ns();
        if self.rng.chance(self.args.vanish_share) {
            let nick = self.clients[&g].nick.clone();
            self.close(g);
            self.vanished.push_back(Vanished {
                nick,
                due_ns: now + self.args.vanish_deadline_ns(),
                asked_ns: None,
            });
            self.report.vanished += 1;
        } else {
            let linger = (self.args.linger * SEC as f64) as u64;
            let server = self.args.server;
            let c = self.clients.get_mut(&g).expect("present");
            let _ = c.socket.send_to(&Request::Logoff.to_bytes(), server);
            let _ = c.socket.send_to(&probe(), server);
            c.left.push(Left {
                channel,
                from_ns: now,
                joined_ns: c.joined_ns,
                confirmed_ns: None,
            });
            c.phase = Phase::Departed;
            c.sent_ns = now;
            c.close_ns = now + linger;
            self.report.logged_off += 1;
        }
        let ch = self.rng.below(self.args.channels);
        self.spawn(ch)
    }

    fn sample(&mut self, t: f64, metrics: Option<SocketAddr>) -> Sample {
        let m = metrics.and_then(scrape);
        let pid = self.args.server_pid;
        let (expected, received) = std::mem::take(&mut self.period);
        self.report.deliveries_expected += expected;
        self.report.deliveries_received += received;
        Sample {
            t: (t * 10.0).round() / 10.0,
            rss_kib: pid.and_then(procstat::rss_kib),
            threads: pid.and_then(threads),
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

/// Runs the soak and returns its report.
///
/// # Errors
/// Invalid flags, sockets that can't be bound, a population that can't be built.
pub fn soak(args: &SoakArgs) -> anyhow::Result<SoakReport> {
    args.validate()?;
    crate::sys::raise_nofile_limit();
    let metrics = args.metrics.as_deref().map(metrics_addr).transpose()?;
    let mut s = Soak::new(args)?;
    s.report.duration_s = args.duration;
    s.report.clients = args.clients;
    s.report.channels = args.channels;
    s.report.rate = args.rate;
    s.report.churn = args.churn;
    s.report.moves = args.moves;
    s.report.grace_ms = args.grace_ms;

    // The checker logs in first; it joins no channel, so it hears no traffic.
    let checker_nick = format!("sk{:x}_check", s.run_id);
    s.send(
        &s.checker,
        &Request::Login {
            nick: &checker_nick,
        }
        .to_bytes(),
    );

    // Build the population a window at a time, so that joins do not flood the server.
    let setup_start = now_ns();
    let setup_deadline = setup_start + 120 * SEC;
    let mut spawned = 0;
    let mut next_tick = now_ns();
    while s.active() < args.clients {
        let now = now_ns();
        anyhow::ensure!(
            now < setup_deadline,
            "only {} of {} clients logged in and joined within 120 s",
            s.active(),
            args.clients
        );
        while spawned < args.clients && s.pending_setup() < SETUP_WINDOW {
            s.spawn(spawned % args.channels)?;
            spawned += 1;
        }
        if now >= next_tick {
            s.housekeeping(now);
            next_tick = now + TICK_NS;
        }
        s.poll_once(Duration::from_millis(5));
    }
    s.report.setup_s = (now_ns() - setup_start) as f64 / 1e9;
    s.log(format!(
        "{} clients in {} channels after {:.1} s",
        args.clients, args.channels, s.report.setup_s
    ));
    s.report.logins = 0;

    // Steady load.
    let start = now_ns();
    s.start_ns = start;
    let end = start + (args.duration * SEC as f64) as u64;
    let pub_every = if args.rate > 0.0 {
        (SEC as f64 / args.rate) as u64
    } else {
        u64::MAX
    };
    let sample_every = (args.sample * SEC as f64) as u64;
    let mut next_pub = start;
    let mut next_sample = start;
    let mut next_tick = start;
    let (mut churn_due, mut moves_due) = (0.0f64, 0.0f64);
    loop {
        let now = now_ns();
        if now >= next_sample {
            let sm = s.sample((now - start) as f64 / 1e9, metrics);
            s.log(format!(
                "rss {} KiB, threads {}, users {}, delivered {}/{}",
                sm.rss_kib.map_or("-".into(), |v| v.to_string()),
                sm.threads.map_or("-".into(), |v| v.to_string()),
                sm.users.map_or("-".into(), |v| v.to_string()),
                sm.received,
                sm.expected
            ));
            s.report.samples.push(sm);
            next_sample += sample_every;
            if now >= end {
                break;
            }
        }
        while next_pub <= now && now < end {
            s.publish();
            next_pub += pub_every;
        }
        if now >= next_tick {
            if now < end {
                churn_due += args.churn * TICK_NS as f64 / SEC as f64;
                moves_due += args.moves * TICK_NS as f64 / SEC as f64;
                while churn_due >= 1.0 {
                    s.replace_one()?;
                    churn_due -= 1.0;
                }
                while moves_due >= 1.0 {
                    s.move_one();
                    moves_due -= 1.0;
                }
            }
            s.housekeeping(now);
            next_tick += TICK_NS;
        }
        // The last sample is due at the end, even if the sampling period does not divide it.
        if now >= end && next_sample > now {
            next_sample = now;
        }
        let wait = next_pub
            .min(next_tick)
            .min(next_sample)
            .saturating_sub(now_ns());
        s.poll_once(Duration::from_nanos(wait.clamp(MS / 2, 5 * MS)));
    }

    // Drain: keep the population alive until every vanished client has been checked and
    // every departed socket closed, then log everyone off.
    // Late deliveries of the last messages are counted with the last sample.
    let drain_start = now_ns();
    let drain_end = drain_start + args.vanish_deadline_ns() + 5 * SEC;
    let mut next_tick = drain_start;
    loop {
        let now = now_ns();
        let settled =
            s.vanished.is_empty() && !s.clients.values().any(|c| c.phase == Phase::Departed);
        if now >= drain_end || (settled && now > drain_start + 500 * MS) {
            break;
        }
        if now >= next_tick {
            s.housekeeping(now);
            next_tick = now + TICK_NS;
        }
        s.poll_once(Duration::from_millis(5));
    }
    let (expected, received) = std::mem::take(&mut s.period);
    if let Some(last) = s.report.samples.last_mut() {
        last.expected += expected;
        last.received += received;
    }
    s.report.deliveries_expected = s.report.samples.iter().map(|x| x.expected).sum();
    s.report.deliveries_received = s.report.samples.iter().map(|x| x.received).sum();
    let unchecked = s.vanished.len() as u64;
    if unchecked > 0 {
        s.log(format!(
            "{unchecked} vanished clients were never answered for"
        ));
    }
    let all: Vec<usize> = s.clients.keys().copied().collect();
    for &g in &all {
        s.send(&s.clients[&g].socket, &Request::Logoff.to_bytes());
    }
    s.send(&s.checker, &Request::Logoff.to_bytes());
    for g in all {
        s.close(g);
    }
    if let Some(m) = metrics {
        std::thread::sleep(Duration::from_secs(2));
        s.report.users_after_logoff = scrape(m).and_then(|m| m.get("udpchat_users").copied());
    }
    finish(&mut s.report, unchecked);
    Ok(s.report)
}

fn finish(r: &mut SoakReport, unchecked: u64) {
    let rss: Vec<u64> = r.samples.iter().filter_map(|x| x.rss_kib).collect();
    r.rss_first_kib = rss.first().copied();
    r.rss_last_kib = rss.last().copied();
    r.rss_max_kib = rss.iter().copied().max();
    let th: Vec<u64> = r.samples.iter().filter_map(|x| x.threads).collect();
    r.threads_first = th.first().copied();
    r.threads_last = th.last().copied();
    r.threads_max = th.iter().copied().max();
    r.loss_pct = if r.deliveries_expected > 0 {
        100.0 * (1.0 - r.deliveries_received as f64 / r.deliveries_expected as f64)
    } else {
        0.0
    };
    r.clean = r.departed_delivered == 0
        && r.parted_delivered == 0
        && r.departed_other == 0
        && r.vanished_still_there == 0
        && unchecked == 0;
}

impl SoakReport {
    /// The human summary.
    pub fn summary(&self) -> String {
        let opt = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
        let mut s = format!(
            "soak: {:.0} s, {} clients in {} channels, {} msg/s, churn {}/s, moves {}/s (setup {:.1} s)\n",
            self.duration_s, self.clients, self.channels, self.rate, self.churn, self.moves, self.setup_s
        );
        s.push_str("| t (s) | RSS (KiB) | threads | users | clients | vanished pending | delivered / expected |\n|---:|---:|---:|---:|---:|---:|---:|\n");
        for x in &self.samples {
            s.push_str(&format!(
                "| {:.0} | {} | {} | {} | {} | {} | {} / {} |\n",
                x.t,
                opt(x.rss_kib),
                opt(x.threads),
                opt(x.users),
                x.clients,
                x.vanished_pending,
                x.received,
                x.expected
            ));
        }
        s.push_str(&format!(
            "RSS first/last/max: {} / {} / {} KiB; threads first/last/max: {} / {} / {}\n",
            opt(self.rss_first_kib),
            opt(self.rss_last_kib),
            opt(self.rss_max_kib),
            opt(self.threads_first),
            opt(self.threads_last),
            opt(self.threads_max)
        ));
        s.push_str(&format!(
            "messages {}, deliveries {} of {} expected (loss {:.4} %)\n",
            self.messages_sent, self.deliveries_received, self.deliveries_expected, self.loss_pct
        ));
        s.push_str(&format!(
            "replacements: {} logged in, {} logged off ({} confirmed), {} vanished ({} checked, {} still there); {} moves; {} retries, {} errors\n",
            self.logins,
            self.logged_off,
            self.logoffs_confirmed,
            self.vanished,
            self.vanished_checked,
            self.vanished_still_there,
            self.moves_done,
            self.retries,
            self.errors
        ));
        s.push_str(&format!(
            "departed-but-delivered (published after the server confirmed the departure): {} after logoff, {} after part, {} other datagrams after logoff; users after final logoff: {}\n",
            self.departed_delivered,
            self.parted_delivered,
            self.departed_other,
            opt(self.users_after_logoff)
        ));
        s.push_str(&format!(
            "in flight: {} published within {} ms of the departure; {} after logoff and {} after part published later than that but before the server confirmed (longest confirmation: logoff {:.0} ms, part {:.0} ms)\n",
            self.departed_in_flight,
            self.grace_ms,
            self.departed_after_grace,
            self.parted_after_grace,
            self.logoff_confirm_max_ms,
            self.part_confirm_max_ms
        ));
        s.push_str(if self.clean {
            "verdict: clean\n"
        } else {
            "verdict: FAILED\n"
        });
        s
    }
}

/// Parses the flags, runs the soak and prints the report; exits 1 if a check failed.
pub fn main_with(args: &SoakArgs) -> anyhow::Result<bool> {
    let r = soak(args)?;
    let out = if args.json {
        serde_json::to_string_pretty(&r)?
    } else {
        r.summary()
    };
    println!("{out}");
    Ok(r.clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_text_round_trips() {
        assert_eq!(parse(&text(7, 123)), Some(123));
        assert_eq!(parse("x"), None);
    }

    #[test]
    fn metrics_address_from_url_or_address() {
        let want: SocketAddr = "127.0.0.1:9027".parse().unwrap();
        assert_eq!(metrics_addr("http://127.0.0.1:9027/metrics").unwrap(), want);
        assert_eq!(metrics_addr("127.0.0.1:9027").unwrap(), want);
    }

    #[test]
    fn reads_own_threads() {
        assert!(threads(std::process::id()).unwrap() >= 1);
    }
}
