//! What the driver knows of each simulated client, and the probe it sends after a logoff.

use std::net::{SocketAddr, UdpSocket};

use proto::Request;

use crate::sys::SEC;

/// Where a client is in its life.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Phase {
    /// LOGIN_REQ sent, waiting for LOGIN_ACK.
    LoggingIn,
    /// PROVE_REQ sent, waiting for PROVED (the token is echoed as it comes): until then
    /// the server holds what it sends to the budget of an address anyone could forge.
    Proving,
    /// JOIN_REQ sent, waiting for JOIN_ACK.
    Joining,
    /// In `channel`, taking part.
    Active,
    /// PART_REQ sent for the old channel, waiting for PART_ACK, then joins `channel`.
    Parting,
    /// LOGOFF sent; the socket lingers to catch stray deliveries.
    Departed,
}

/// Resend a request without its answer after this long (UDP may drop it).
pub(super) const RETRY_NS: u64 = SEC;

/// A channel a client is in, or was: which, and since when.
#[derive(Debug, Clone, Copy)]
pub(super) struct Stay {
    /// The channel's index.
    pub(super) channel: usize,
    /// When the client joined it (its JOIN_ACK arrived).
    pub(super) joined_ns: u64,
}

/// A channel a client was in and when it left.
#[derive(Debug, Clone, Copy)]
pub(super) struct Left {
    /// The channel, and since when the client was in it.
    pub(super) stay: Stay,
    /// Publications before this (ns) may be delivered.
    pub(super) from_ns: u64,
    /// When the server confirmed the part (PART_ACK or `please log in`), if it has.
    pub(super) confirmed_ns: Option<u64>,
}

/// The request a client waits for the answer to, as far as resending it goes.
#[derive(Debug, Clone, Copy)]
pub(super) struct Asked {
    /// When it was last sent.
    pub(super) sent_ns: u64,
    /// How often it was sent again.
    pub(super) tries: u32,
}

impl Asked {
    /// First sent at `now`.
    pub(super) fn at(now: u64) -> Asked {
        Asked {
            sent_ns: now,
            tries: 0,
        }
    }

    /// Whether it has gone unanswered long enough at `now` to be sent again.
    pub(super) fn overdue(&self, now: u64) -> bool {
        now > self.sent_ns + RETRY_NS
    }

    /// Sent again at `now`.
    pub(super) fn again(&mut self, now: u64) {
        self.sent_ns = now;
        self.tries += 1;
    }
}

/// One simulated client: its own socket (so its own source address) and what it waits for.
pub(super) struct Client {
    /// Non-blocking, registered with the driver's poller under the client's number.
    pub(super) socket: UdpSocket,
    /// Its nickname.
    pub(super) nick: String,
    /// Where it is in its life.
    pub(super) phase: Phase,
    /// The current channel (or the one being joined; `joined_ns` is set at its JOIN_ACK).
    pub(super) stay: Stay,
    /// Channels left: the previous one on a move, the last one on logoff.
    pub(super) left: Vec<Left>,
    /// The pending request.
    pub(super) asked: Asked,
    /// When it sends its next STILL_HERE.
    pub(super) next_keepalive_ns: u64,
    /// When a departed client's socket closes.
    pub(super) close_ns: u64,
}

impl Client {
    /// Asks to prove its address, and waits for PROVED from `now`.
    pub(super) fn prove(&mut self, server: SocketAddr, now: u64) {
        self.phase = Phase::Proving;
        self.asked = Asked::at(now);
        let _ = self.socket.send_to(&Request::ProveReq.to_bytes(), server);
    }

    /// Asks to join its channel, titled `title`, and waits for the JOIN_ACK from `now`.
    pub(super) fn join(&mut self, title: &str, server: SocketAddr, now: u64) {
        self.phase = Phase::Joining;
        self.asked = Asked::at(now);
        let _ = self
            .socket
            .send_to(&Request::Join { title }.to_bytes(), server);
    }

    /// Leaves its current channel at `now` (a PART or a LOGOFF was sent): deliveries
    /// from there are judged against the departure from then on.
    pub(super) fn leave(&mut self, now: u64) {
        self.left.push(Left {
            stay: self.stay,
            from_ns: now,
            confirmed_ns: None,
        });
    }
}

/// A vanished client awaiting its WHOIS check.
pub(super) struct Vanished {
    /// Its nickname, which the checker asks WHOIS about.
    pub(super) nick: String,
    /// When the server must have swept it.
    pub(super) due_ns: u64,
    /// When the checker last asked, if it has.
    pub(super) asked_ns: Option<u64>,
}

/// A small xorshift generator: the choices need no quality, only no dependency.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    /// The next number.
    pub(super) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// A number in `0..n` (0 when `n` is 0).
    pub(super) fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    /// True with probability `p`.
    pub(super) fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

/// A probe that draws `please log in` from a logged-off address: padded so that the
/// server's amplification guard (no more bytes back than received) lets the answer out.
pub(super) fn probe() -> Vec<u8> {
    Request::Who {
        prefix: "soak-probe-padding",
    }
    .to_bytes()
}
