//! The kernel's own limit, measured in the same run without the server: one thread sends a
//! PUBLIC_MSG-shaped datagram to every member of a channel with `sendmmsg`, message after
//! message, and the same receivers count what arrives. Flat out, or paced at a planned
//! rate, when its latency (from the planned send time, written in the text as the server
//! run does) is the yardstick for the server's at the same rate. The multicast blaster
//! ([`blast_groups`]) sends one CHANNEL_DATA-shaped datagram per message to the channel's
//! group instead, from one socket, as the server's group socket does.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use proto::channel_data::{mac, tag_with};
use proto::{channel_data, Event};
use socket2::SockRef;
use udp::{send_batch, MAX_BATCH};

use crate::members::GroupInfo;
use crate::pace::{sleep_until, Parked};
use crate::sent::{Sent, Start};
use crate::sys::now_ns;
use crate::text::{message_text, RAW_SENDER};

/// Sends to each channel's member addresses in turn (one "message" = one datagram per member
/// of a channel) for `duration`, counting sends in `sent`: as fast as it can with `rate`
/// 0, else `rate` messages per second at planned times (a late message is sent at once,
/// its lateness counted in the latency, as the server run counts it).
///
/// # Errors
/// If the blasting socket can't be made.
pub(crate) fn blast(
    channels: &[Vec<SocketAddr>],
    size: usize,
    duration: Duration,
    rate: f64,
    sent: &AtomicU64,
) -> anyhow::Result<Sent> {
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    // The same send buffer the server asks for by default, so neither side blocks earlier.
    // The kernel may grant less (net.core.wmem_max), which is fine for a load generator.
    let _ = SockRef::from(&socket).set_send_buffer_size(4 << 20);
    let all: Vec<SocketAddr> = channels.iter().flatten().copied().collect();
    let mut ranges = Vec::new();
    let mut at = 0;
    for c in channels.iter().filter(|c| !c.is_empty()) {
        ranges.push(at..at + c.len());
        at += c.len();
    }
    let mut out = Sent::default();
    if ranges.is_empty() {
        return Ok(out);
    }
    let start = Start::now();
    let end = start.ns + duration.as_nanos() as u64;
    let mut payload = Vec::with_capacity(size + 32);
    let mut seq = 0u64;
    let interval_ns = if rate > 0.0 { 1e9 / rate } else { 0.0 };
    while now_ns() < end {
        let intended = if rate > 0.0 {
            let t = start.ns + (seq as f64 * interval_ns) as u64;
            if t >= end {
                break;
            }
            sleep_until(t);
            t
        } else {
            now_ns()
        };
        let text = message_text(seq, intended, usize::MAX, size);
        payload.clear();
        Event::PublicMsg {
            title: "raw",
            sender: RAW_SENDER,
            text: &text,
        }
        .encode(&mut payload);
        let range = ranges[seq as usize % ranges.len()].clone();
        let (ok, refused) = send_all(&socket, &payload, &all[range]);
        out.sent += ok;
        out.refused += refused;
        sent.fetch_add(ok, Ordering::Relaxed);
        seq += 1;
    }
    out.stop(start);
    Ok(out)
}

/// Sends `payload` once to each of `dests`, [`MAX_BATCH`] at a time, resuming after partial
/// batches and skipping a destination the kernel refuses (`ENOBUFS`, an ICMP error queued on
/// the socket, ...) rather than spinning on it. Returns (sent, refused).
fn send_all(socket: &UdpSocket, payload: &[u8], dests: &[SocketAddr]) -> (u64, u64) {
    let (mut sent, mut failed) = (0u64, 0u64);
    let Some(&first) = dests.first() else {
        return (0, 0);
    };
    // One batch on the stack, refilled with destinations: no allocation per message.
    let mut batch = [(payload, first); MAX_BATCH];
    let mut i = 0;
    while i < dests.len() {
        let n = (dests.len() - i).min(MAX_BATCH);
        for (slot, d) in batch.iter_mut().zip(&dests[i..i + n]) {
            slot.1 = *d;
        }
        match send_batch(socket, &batch[..n]) {
            Ok(k) if k > 0 => {
                sent += k as u64;
                i += k;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // The first datagram of the batch went nowhere: count it and go on.
            _ => {
                failed += 1;
                i += 1;
            }
        }
    }
    (sent, failed)
}

/// What the raw multicast blaster sends.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GroupBlast<'a> {
    /// The groups, blasted in turn.
    pub(crate) groups: &'a [GroupInfo],
    /// Members of each group's channel: the deliveries each datagram owes.
    pub(crate) members: &'a [u64],
    /// Text bytes of each message.
    pub(crate) size: usize,
    /// Datagrams' deliveries outstanding at most.
    pub(crate) window: u64,
    /// How long to blast.
    pub(crate) duration: Duration,
}

/// Sends CHANNEL_DATA-shaped datagrams (a PUBLIC_MSG from [`RAW_SENDER`], tagged with the
/// channel's key) to each group in turn for `duration`, from one socket that sends group
/// traffic out of loopback. Counts sends in `sent`.
///
/// Unlike the unicast blaster, whose thread pays for every copy it makes, one multicast
/// datagram costs its sender little and the receivers a thousand reads: sent flat out it
/// would overflow their socket buffers and measure the drops. So it runs in closed loop
/// like the server's publishers: at most `window` datagrams' deliveries outstanding (the
/// publishers' `--window`, so both are measured under the same rule), as counted in
/// `delivered` (the receivers' raw count), each datagram owing `members[g]` deliveries.
/// If the count stops moving for 200 ms (deliveries lost), the outstanding ones are written
/// off and sending goes on.
///
/// # Errors
/// If the blasting socket can't be made.
pub(crate) fn blast_groups(
    plan: &GroupBlast<'_>,
    sent: &AtomicU64,
    delivered: &AtomicU64,
    wake: &Parked,
) -> anyhow::Result<Sent> {
    let GroupBlast {
        groups,
        members,
        size,
        window,
        duration,
    } = *plan;
    wake.register();
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    let sock = SockRef::from(&socket);
    let _ = sock.set_send_buffer_size(4 << 20);
    sock.set_multicast_if_v4(&std::net::Ipv4Addr::LOCALHOST)?;
    sock.set_multicast_loop_v4(true)?;
    let mut out = Sent::default();
    if groups.is_empty() {
        return Ok(out);
    }
    let macs: Vec<_> = groups.iter().map(|g| mac(&g.key)).collect();
    let start = Start::now();
    let end = start.ns + duration.as_nanos() as u64;
    let mut seq = 0u64;
    let mut inner = Vec::with_capacity(size + 32);
    let mut payload = Vec::with_capacity(size + 64);
    // Deliveries owed by what was sent, against what the receivers counted.
    let base = delivered.load(Ordering::Relaxed);
    let mut owed = 0u64;
    let mut written_off = 0u64;
    while now_ns() < end {
        let g = seq as usize % groups.len();
        let per = members.get(g).copied().unwrap_or(1).max(1);
        let mut last = (now_ns(), u64::MAX);
        loop {
            let got = delivered.load(Ordering::Relaxed) - base + written_off;
            if owed.saturating_sub(got) + per <= window.max(1) * per {
                break;
            }
            let now = now_ns();
            if got != last.1 {
                last = (now, got);
            } else if now - last.0 > 200_000_000 {
                written_off += owed.saturating_sub(got);
                last = (now, owed);
            }
            if now >= end {
                break;
            }
            // Woken by the receivers when they count raw deliveries.
            std::thread::park_timeout(Duration::from_millis(2));
        }
        let text = message_text(seq, now_ns(), usize::MAX, size);
        inner.clear();
        Event::PublicMsg {
            title: "raw",
            sender: RAW_SENDER,
            text: &text,
        }
        .encode(&mut inner);
        payload.clear();
        payload.extend_from_slice(&channel_data::encode(seq + 1, &inner, |b| {
            tag_with(&macs[g], b)
        }));
        loop {
            match send_batch(&socket, &[(&payload[..], groups[g].addr)]) {
                Ok(1) => {
                    out.sent += 1;
                    owed += per;
                    sent.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                _ => out.refused += 1,
            }
            break;
        }
        seq += 1;
    }
    out.stop(start);
    wake.clear();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_destination_gets_the_payload_once() {
        let rx: Vec<UdpSocket> = (0..100)
            .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        let dests: Vec<SocketAddr> = rx.iter().map(|s| s.local_addr().unwrap()).collect();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        assert_eq!(send_all(&tx, b"hello", &dests), (100, 0));
        let mut buf = [0u8; 16];
        for s in &rx {
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            assert_eq!(s.recv(&mut buf).unwrap(), 5);
        }
        assert_eq!(send_all(&tx, b"hello", &[]), (0, 0));
    }
}
