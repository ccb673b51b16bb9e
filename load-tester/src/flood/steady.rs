//! The well-behaved user that keeps talking through the flood: it logs in, joins a channel,
//! and sends a public message at a fixed interval; the server echoes each to it (it is a
//! member of the channel), so every message measures one round trip.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use hdrhistogram::Histogram;
use proto::{Event, Request};
use serde::{Deserialize, Serialize};

use crate::sys::now_ns;
use crate::text::{sent_ns, stamp};

/// How long the user waits for an answer to its login or join before asking again.
const RETRY: Duration = Duration::from_millis(500);
/// Attempts at logging in and joining before the run is given up.
const ATTEMPTS: u32 = 20;

/// The steady user's socket, logged in and in its channel.
pub(super) struct Steady {
    socket: UdpSocket,
    server: SocketAddr,
    /// Its nickname.
    pub(super) nick: String,
}

/// What the steady user sent and got back.
#[derive(Debug, Default)]
pub(super) struct Log {
    /// Send time of every message, in order.
    pub(super) sent_ns: Vec<u64>,
    /// (send time, round trip) of every message that came back.
    pub(super) answered: Vec<(u64, u64)>,
    /// ERRORs the server sent it (it should get none).
    pub(super) errors: u64,
}

/// The steady user's messages in one stretch of time.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
pub struct Window {
    /// Messages sent.
    pub sent: u64,
    /// Of those, echoed back by the server.
    pub answered: u64,
    /// Median round trip, microseconds.
    pub p50_us: u64,
    /// 99th percentile round trip, microseconds.
    pub p99_us: u64,
    /// Longest round trip, microseconds.
    pub max_us: u64,
}

impl Window {
    /// The messages of `log` sent in `[from_ns, to_ns)`.
    pub(super) fn of(log: &Log, from_ns: u64, to_ns: u64) -> Window {
        let within = |t: u64| t >= from_ns && t < to_ns;
        let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds");
        let mut w = Window {
            sent: log.sent_ns.iter().filter(|&&t| within(t)).count() as u64,
            ..Window::default()
        };
        for &(_, rtt) in log.answered.iter().filter(|(t, _)| within(*t)) {
            w.answered += 1;
            h.saturating_record((rtt / 1000).max(1));
        }
        if w.answered > 0 {
            w.p50_us = h.value_at_quantile(0.5);
            w.p99_us = h.value_at_quantile(0.99);
            w.max_us = h.max();
        }
        w
    }

    /// Answered share in per cent (100 when nothing was sent).
    pub(crate) fn answered_pct(&self) -> f64 {
        if self.sent == 0 {
            100.0
        } else {
            100.0 * self.answered as f64 / self.sent as f64
        }
    }
}

impl Steady {
    /// Logs in as `nick` from a socket of its own on 127.0.0.1 and joins `channel`, retrying
    /// requests that go unanswered (UDP may drop them).
    ///
    /// # Errors
    /// If the socket can't be made or the server does not answer.
    pub(super) fn start(server: SocketAddr, nick: String, channel: &str) -> anyhow::Result<Self> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        socket.set_read_timeout(Some(Duration::from_millis(1)))?;
        let s = Steady {
            socket,
            server,
            nick,
        };
        let login = Request::Login { nick: &s.nick }.to_bytes();
        s.ask(&login, |e| matches!(e, Event::LoginAck { .. }))
            .with_context(|| format!("logging in as {} at {server}", s.nick))?;
        let join = Request::Join { title: channel }.to_bytes();
        s.ask(
            &join,
            |e| matches!(e, Event::JoinAck(info) if info.title.eq_ignore_ascii_case(channel)),
        )
        .with_context(|| format!("joining {channel} (does the server have it?)"))?;
        Ok(s)
    }

    /// Sends `req` until an answer `done` accepts it arrives.
    fn ask(&self, req: &[u8], done: impl Fn(&Event<'_>) -> bool) -> anyhow::Result<()> {
        let mut buf = [0u8; 2048];
        for _ in 0..ATTEMPTS {
            self.socket.send_to(req, self.server)?;
            let until = now_ns() + RETRY.as_nanos() as u64;
            while now_ns() < until {
                let Ok(len) = self.socket.recv(&mut buf) else {
                    continue;
                };
                match Event::decode(&buf[..len]) {
                    Ok(Event::Error { message }) => anyhow::bail!("the server said: {message}"),
                    Ok(e) if done(&e) => return Ok(()),
                    _ => {}
                }
            }
        }
        anyhow::bail!("no answer after {ATTEMPTS} attempts")
    }

    /// Sends a message every `interval` while `sending` is set, and reads the echoes until
    /// `stop` is set.
    pub(super) fn talk(&self, interval: Duration, sending: &AtomicBool, stop: &AtomicBool) -> Log {
        let mut log = Log::default();
        let mut buf = [0u8; 2048];
        let every = interval.as_nanos() as u64;
        let mut next = now_ns();
        let mut out = Vec::with_capacity(64);
        while !stop.load(Ordering::Relaxed) {
            let now = now_ns();
            if now >= next && sending.load(Ordering::Relaxed) {
                // `seq send_ns`, so the echo gives its round trip.
                let t = stamp(log.sent_ns.len() as u64, now);
                out.clear();
                Request::SendPublic { text: &t }.encode(&mut out);
                // A failed send is a message not answered: the report counts it so.
                let _ = self.socket.send_to(&out, self.server);
                log.sent_ns.push(now);
                // On schedule, without catching up in a burst after a stall.
                next = (next + every).max(now);
            }
            // Nothing to read within the timeout, or a queued ICMP error: go round again.
            let Ok(len) = self.socket.recv(&mut buf) else {
                continue;
            };
            let got = now_ns();
            match Event::decode(&buf[..len]) {
                Ok(Event::PublicMsg { sender, text, .. }) if sender == self.nick => {
                    if let Some(at) = sent_ns(text) {
                        log.answered.push((at, got.saturating_sub(at)));
                    }
                }
                Ok(Event::Error { .. }) => log.errors += 1,
                _ => {}
            }
        }
        log
    }

    /// Logs off (once: a lost LOGOFF leaves a user the idle sweep removes).
    pub(super) fn log_off(&self) {
        let _ = self
            .socket
            .send_to(&Request::Logoff.to_bytes(), self.server);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_split_by_send_time() {
        let log = Log {
            sent_ns: vec![10, 20, 30, 40],
            answered: vec![(10, 1_000_000), (30, 3_000_000), (40, 5_000_000)],
            errors: 0,
        };
        let w = Window::of(&log, 20, 100);
        assert_eq!((w.sent, w.answered), (3, 2));
        assert!((2_990..=3_010).contains(&w.p50_us), "{w:?}");
        assert!((4_990..=5_010).contains(&w.max_us), "{w:?}");
        assert_eq!(Window::of(&log, 100, 200), Window::default());
    }
}
