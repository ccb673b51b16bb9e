//! `load-tester churn`: users create and destroy channels at a steady rate while others
//! chat, and the server's memory is sampled throughout, to show that channels made and
//! given up at run time leave nothing behind.
//!
//! Each *creator* (its own socket, a guest) proves its address at login (PROVE_REQ,
//! PROVE: creating needs a proved address) and checks that the server lets it create,
//! then loops: `CHAN_CREATE` a channel of a fresh
//! title (it joins as operator), say one line there, `PART_REQ`, after which the server
//! destroys the now empty temporary channel. The creators together start `--rate` such
//! loops a second. Each *chatter* joins `--channel` and says a line every `--interval-ms`,
//! counting the public messages that come back. The report gives the loops done and
//! refused, the messages sent and received, the server's channel count before and after
//! (`--metrics`) and its resident memory sampled every `--sample` seconds (`--server-pid`).

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;
use proto::{code, Event, Request};
use serde::{Deserialize, Serialize};

use crate::flags::ServerFigures;
use crate::report::{print, Summary};
use crate::scrape::scrape;

/// The flags of `load-tester churn`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ChurnArgs {
    /// The server (loopback only).
    #[arg(long, default_value = "127.0.0.1:2027")]
    pub(crate) server: SocketAddr,
    // Its resident memory, sampled; its channel count before and after.
    #[command(flatten)]
    pub(crate) figures: ServerFigures,
    /// Seconds to run.
    #[arg(long, default_value_t = 30.0)]
    pub(crate) duration: f64,
    /// Channels created (and destroyed) per second, over all creators.
    #[arg(long, default_value_t = 100.0)]
    pub(crate) rate: f64,
    /// Users creating channels, each its own socket.
    #[arg(long, default_value_t = 4)]
    pub(crate) creators: usize,
    /// Users chatting meanwhile in --channel.
    #[arg(long, default_value_t = 20)]
    pub(crate) chatters: usize,
    /// The channel the chatters talk in.
    #[arg(long, default_value = "Pets")]
    pub(crate) channel: String,
    /// Milliseconds between one chatter's messages.
    #[arg(long, default_value_t = 50)]
    pub(crate) interval_ms: u64,
    /// Seconds between memory samples.
    #[arg(long, default_value_t = 1.0)]
    pub(crate) sample: f64,
    /// Print the report as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// What a churn run measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ChurnReport {
    /// Seconds it ran.
    pub duration_s: f64,
    /// Create-say-part loops completed.
    pub channels_created: u64,
    /// Loops the server refused or did not answer in time.
    pub failures: u64,
    /// Public messages the chatters sent.
    pub chat_sent: u64,
    /// Public messages the chatters received (each is seen by every chatter).
    pub chat_received: u64,
    /// The server's channel count before and after (`udpchat_channels`), if scraped.
    pub channels_before: Option<u64>,
    /// See `channels_before`.
    pub channels_after: Option<u64>,
    /// Resident memory samples, KiB, one per `--sample` seconds from the start.
    pub rss_kib: Vec<u64>,
}

impl Summary for ChurnReport {
    fn summary(&self) -> String {
        let rss = match (
            self.rss_kib.get(self.rss_kib.len() / 4),
            self.rss_kib.last(),
        ) {
            (Some(q), Some(last)) => format!(
                "server RSS {} KiB at a quarter of the run, {} KiB at the end ({:+} KiB); \
                 min {} max {}",
                q,
                last,
                *last as i64 - *q as i64,
                self.rss_kib.iter().min().unwrap_or(&0),
                self.rss_kib.iter().max().unwrap_or(&0)
            ),
            _ => "server RSS not sampled (--server-pid)".into(),
        };
        format!(
            "{:.1} s: {} channels created and destroyed ({:.0}/s), {} failures; chat {} sent, \
             {} received; channels before {:?}, after {:?}\n{rss}",
            self.duration_s,
            self.channels_created,
            self.channels_created as f64 / self.duration_s.max(0.001),
            self.failures,
            self.chat_sent,
            self.chat_received,
            self.channels_before,
            self.channels_after
        )
    }
}

/// A simulated user: a socket of its own, logged in.
struct User {
    sock: UdpSocket,
}

impl User {
    fn login(server: SocketAddr, nick: &str) -> anyhow::Result<User> {
        let sock = UdpSocket::bind("127.0.0.1:0")?;
        sock.connect(server)?;
        sock.set_read_timeout(Some(Duration::from_millis(200)))?;
        let u = User { sock };
        for _ in 0..25 {
            u.send(Request::Login { nick });
            if u.wait_for(code::LOGIN_ACK, Duration::from_millis(200))
                .is_some()
            {
                u.prove();
                return Ok(u);
            }
        }
        anyhow::bail!("{nick} could not log in")
    }

    /// Proves the user's address (creating a channel needs it), a few tries; a server
    /// without proofs (ERROR `unimplemented`) needs none.
    fn prove(&self) {
        for _ in 0..5 {
            self.send(Request::ProveReq);
            let Some(token) = self.wait_for(code::PROVE_TOKEN, Duration::from_millis(200)) else {
                continue;
            };
            self.send(Request::Prove { token: &token });
            if self
                .wait_for(code::PROVED, Duration::from_millis(200))
                .is_some()
            {
                return;
            }
        }
    }

    fn send(&self, r: Request<'_>) {
        let _ = self.sock.send(&r.to_bytes());
    }

    /// The payload of the next datagram of `code` within `wait` (others are skipped); an
    /// ERROR ends the wait with `None`.
    fn wait_for(&self, want: u16, wait: Duration) -> Option<String> {
        let deadline = Instant::now() + wait;
        let mut buf = [0u8; 2048];
        while Instant::now() < deadline {
            let Ok(n) = self.sock.recv(&mut buf) else {
                continue;
            };
            match Event::decode(&buf[..n]) {
                Ok(Event::Error { .. }) => return None,
                Ok(e) if e.code() == want => {
                    return Some(String::from_utf8_lossy(&buf[2..n]).into_owned())
                }
                _ => {}
            }
        }
        None
    }

    /// Waits up to `within` until the server lets this guest create channels. It refuses
    /// that to a guest whose address is not proved (`ERROR address not proved`,
    /// docs/PROTOCOL.md, `CHAN_CREATE`) and checks it before the title, so a request with
    /// an empty title is a probe that creates nothing: any other answer means it may.
    fn wait_may_create(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        let mut buf = [0u8; 2048];
        while Instant::now() < deadline {
            self.send(Request::ChanCreate {
                title: "",
                description: "",
            });
            let answered = Instant::now() + Duration::from_millis(200);
            while Instant::now() < answered {
                let Ok(n) = self.sock.recv(&mut buf) else {
                    continue;
                };
                match Event::decode(&buf[..n]) {
                    Ok(Event::Error {
                        message: "address not proved",
                    }) => break,
                    Ok(Event::Error { .. }) => return true,
                    _ => {}
                }
            }
            thread::sleep(Duration::from_millis(20));
        }
        false
    }

    fn logoff(&self) {
        self.send(Request::Logoff);
    }
}

/// Runs the churn and returns its report.
///
/// # Errors
/// A server outside loopback, or users that can't log in.
fn churn(args: &ChurnArgs) -> anyhow::Result<ChurnReport> {
    anyhow::ensure!(
        args.server.ip().is_loopback(),
        "the load tester targets loopback only"
    );
    anyhow::ensure!(
        args.creators >= 1 && args.rate > 0.0,
        "give --creators and --rate"
    );
    let metrics = args.figures.metrics_addr()?;
    let channels = || {
        metrics
            .and_then(scrape)
            .and_then(|m| m.get("udpchat_channels").copied())
    };
    let run = std::process::id();
    let creators: Vec<User> = (0..args.creators)
        .map(|i| User::login(args.server, &format!("mk{run:x}-{i}")))
        .collect::<anyhow::Result<_>>()?;
    for (i, u) in creators.iter().enumerate() {
        anyhow::ensure!(
            u.wait_may_create(Duration::from_secs(5)),
            "creator {i} may not create channels: the server wants a proved address"
        );
    }
    let chatters: Vec<User> = (0..args.chatters)
        .map(|i| {
            let u = User::login(args.server, &format!("ch{run:x}-{i}"))?;
            u.send(Request::Join {
                title: &args.channel,
            });
            u.wait_for(code::JOIN_ACK, Duration::from_secs(2))
                .with_context(|| format!("joining {}", args.channel))?;
            Ok(u)
        })
        .collect::<anyhow::Result<_>>()?;
    let mut report = ChurnReport {
        channels_before: channels(),
        ..ChurnReport::default()
    };
    let (created, failures, sent, received) = (
        AtomicU64::new(0),
        AtomicU64::new(0),
        AtomicU64::new(0),
        AtomicU64::new(0),
    );
    let stop = AtomicBool::new(false);
    let start = Instant::now();
    let every = Duration::from_secs_f64(args.creators as f64 / args.rate);
    let mut rss = Vec::new();
    thread::scope(|s| {
        for (i, u) in creators.iter().enumerate() {
            let (created, failures, stop) = (&created, &failures, &stop);
            s.spawn(move || {
                let mut next = Instant::now() + every.mul_f64(i as f64 / args.creators as f64);
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    if let Some(wait) = next.checked_duration_since(Instant::now()) {
                        thread::sleep(wait);
                    }
                    next += every;
                    n += 1;
                    let title = format!("t{run:x}-{i}-{n}");
                    if create_say_part(u, &title) {
                        created.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        for (i, u) in chatters.iter().enumerate() {
            let (sent, received, stop) = (&sent, &received, &stop);
            let interval = Duration::from_millis(args.interval_ms.max(1));
            s.spawn(move || {
                let _ = u.sock.set_read_timeout(Some(Duration::from_millis(5)));
                let mut buf = [0u8; 2048];
                let mut next = Instant::now();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    if Instant::now() >= next {
                        n += 1;
                        let text = format!("chatter {i} line {n}");
                        u.send(Request::SendPublic { text: &text });
                        sent.fetch_add(1, Ordering::Relaxed);
                        next += interval;
                    }
                    if let Ok(len) = u.sock.recv(&mut buf) {
                        if len >= 2 && u16::from_be_bytes([buf[0], buf[1]]) == code::PUBLIC_MSG {
                            received.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                // The last lines' echoes.
                let end = Instant::now() + Duration::from_millis(300);
                while Instant::now() < end {
                    if let Ok(len) = u.sock.recv(&mut buf) {
                        if len >= 2 && u16::from_be_bytes([buf[0], buf[1]]) == code::PUBLIC_MSG {
                            received.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            });
        }
        let sample = Duration::from_secs_f64(args.sample.max(0.05));
        let until = start + Duration::from_secs_f64(args.duration);
        let mut next = start;
        while Instant::now() < until {
            if Instant::now() >= next {
                if let Some(kib) = args.figures.rss_kib() {
                    rss.push(kib);
                }
                next += sample;
            }
            thread::sleep(
                Duration::from_millis(10).min(until.saturating_duration_since(Instant::now())),
            );
        }
        stop.store(true, Ordering::Relaxed);
    });
    report.duration_s = start.elapsed().as_secs_f64();
    for u in creators.iter().chain(&chatters) {
        u.logoff();
    }
    // The last parts and logoffs are handled asynchronously.
    thread::sleep(Duration::from_millis(300));
    report.channels_after = channels();
    report.channels_created = created.into_inner();
    report.failures = failures.into_inner();
    report.chat_sent = sent.into_inner();
    report.chat_received = received.into_inner();
    if let Some(kib) = args.figures.rss_kib() {
        rss.push(kib);
    }
    report.rss_kib = rss;
    Ok(report)
}

/// One loop of a creator: create `title` (and be its operator), say a line there, part,
/// which destroys it. Returns whether every step was answered as it should.
fn create_say_part(u: &User, title: &str) -> bool {
    u.send(Request::ChanCreate {
        title,
        description: "made by the load tester",
    });
    if u.wait_for(code::JOIN_ACK, Duration::from_secs(2)).is_none() {
        return false;
    }
    u.send(Request::SendPublic {
        text: "short-lived",
    });
    if u.wait_for(code::PUBLIC_MSG, Duration::from_secs(2))
        .is_none()
    {
        return false;
    }
    u.send(Request::Part { title });
    u.wait_for(code::PART_ACK, Duration::from_secs(2)).is_some()
}

/// `load-tester churn`: runs, prints the report, and says whether it went well (every
/// loop answered).
///
/// # Errors
/// As [`churn`].
pub(crate) fn main_with(args: &ChurnArgs) -> anyhow::Result<bool> {
    let report = churn(args)?;
    print(&report, args.json)?;
    Ok(report.failures == 0 && report.channels_created > 0)
}
