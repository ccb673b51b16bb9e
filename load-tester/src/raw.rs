//! The kernel's own limit, measured in the same run without the server: one thread sends a
//! PUBLIC_MSG-shaped datagram to every member of a channel with `sendmmsg`, message after
//! message, and the same receivers count what arrives.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use udpchat::protocol::Event;

use crate::members::{message_text, RAW_SENDER};
use crate::sys::{now_ns, thread_cpu_ns, Blaster};

/// What the blaster did.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Blasted {
    /// Datagrams the kernel accepted.
    pub sent: u64,
    /// Datagrams refused.
    pub failed: u64,
    /// CPU nanoseconds of the blasting thread (on loopback this includes the receivers'
    /// softirq work, as the server's CPU time does).
    pub cpu_ns: u64,
    /// Wall time spent sending.
    pub secs: f64,
}

/// Sends to each channel's member addresses in turn (one "message" = one datagram per member
/// of a channel) for `duration`, counting sends in `sent`.
///
/// # Errors
/// If the blasting socket can't be made.
pub fn blast(
    channels: &[Vec<SocketAddr>],
    size: usize,
    duration: Duration,
    sent: &AtomicU64,
) -> anyhow::Result<Blasted> {
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    // The same send buffer the server asks for by default, so neither side blocks earlier.
    crate::sys::set_buffer(&socket, libc::SO_SNDBUF, 4 << 20);
    let all: Vec<SocketAddr> = channels.iter().flatten().copied().collect();
    let blaster = Blaster::new(socket, &all)?;
    let mut ranges = Vec::new();
    let mut at = 0;
    for c in channels.iter().filter(|c| !c.is_empty()) {
        ranges.push(at..at + c.len());
        at += c.len();
    }
    let mut out = Blasted::default();
    if ranges.is_empty() {
        return Ok(out);
    }
    let start = now_ns();
    let cpu0 = thread_cpu_ns();
    let end = start + duration.as_nanos() as u64;
    let mut payload = Vec::with_capacity(size + 32);
    let mut seq = 0u64;
    while now_ns() < end {
        let text = message_text(seq, now_ns(), usize::MAX, size);
        payload.clear();
        Event::PublicMsg {
            title: "raw",
            sender: RAW_SENDER,
            text: &text,
        }
        .encode(&mut payload);
        let r = blaster.send_all(&payload, ranges[seq as usize % ranges.len()].clone());
        out.sent += r.sent;
        out.failed += r.failed;
        sent.fetch_add(r.sent, Ordering::Relaxed);
        seq += 1;
    }
    out.cpu_ns = thread_cpu_ns() - cpu0;
    out.secs = (now_ns() - start) as f64 / 1e9;
    Ok(out)
}
