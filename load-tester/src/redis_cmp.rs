//! `--compare-redis ADDR`: the same fan-out as the server run, through a redis-server's
//! PUBLISH, in the same run, so the report shows both side by side.
//!
//! As many TCP subscribers as the channel has members SUBSCRIBE to one channel; one
//! publisher connection sends PUBLISH with the same texts (sequence and intended send time)
//! as the server run's publisher, closed loop with the same `--window` (the next message
//! goes when subscriber 0 has received an earlier one, as the udpchat publisher waits for
//! its own copy) or at the same `--rate`. The subscribers are read by `--receivers` threads
//! through epoll, like the UDP members; latency is measured from the intended send time.
//! redis-server's CPU comes from `/proc/PID/task/*/schedstat`, PID from `INFO server`, so
//! the redis-server must run on this machine.
//!
//! The wire format is RESP, spoken here directly (a few lines): the `redis` crate's
//! subscriber API wants a blocking connection, or an async runtime, per subscriber, and
//! a thousand threads would measure the scheduler.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use crate::hist::new_histogram;
use crate::options::Traffic;
use crate::pace::{sleep_until, Parked};
use crate::procstat::process_cpu_ns;
use crate::progress::Progress;
use crate::report::{loss_pct, per, Latency, RedisReport};
use crate::sys::now_ns;
use crate::text::{message_text, sent_ns};

/// How long setting up (connecting, subscribing) may take per thousand subscribers.
const SETUP_PER_1000: Duration = Duration::from_secs(10);

/// What the subscribers' readers share with the publisher.
struct Shared {
    /// Messages received, all subscribers.
    received: AtomicU64,
    /// When the last one arrived (`now_ns`).
    last_ns: AtomicU64,
    /// Messages in flight: sent, and not yet received by subscriber 0.
    in_flight: AtomicU32,
    /// The publisher, to wake when subscriber 0 receives one.
    publisher: Parked,
    /// Subscribers whose connection ended (Redis drops a subscriber that falls too far
    /// behind: `client-output-buffer-limit pubsub`).
    closed: AtomicU64,
    stop: AtomicBool,
}

/// Runs the comparison: `subscribers` subscribers read by `readers` threads, `traffic`
/// published to them.
///
/// # Errors
/// When Redis can't be reached, won't say its process id, or refuses a subscription.
pub(crate) fn run(
    addr: SocketAddr,
    subscribers: usize,
    readers: usize,
    traffic: &Traffic,
    pb: &Progress,
) -> anyhow::Result<RedisReport> {
    anyhow::ensure!(subscribers > 0, "no members to compare with");
    let pid = redis_pid(addr)?;
    let channel = format!("lt-compare-{}", std::process::id());
    pb.set(format!("redis: subscribing {subscribers} connections"));
    let deadline = Instant::now() + SETUP_PER_1000 * (subscribers as u32).div_ceil(1000);
    let subs = subscribe(addr, &channel, subscribers, deadline)?;
    let shared = Shared {
        received: AtomicU64::new(0),
        last_ns: AtomicU64::new(0),
        in_flight: AtomicU32::new(0),
        publisher: Parked::default(),
        closed: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    };
    let mut publisher = TcpStream::connect(addr).context("connecting the Redis publisher")?;
    publisher.set_nodelay(true)?;
    let replies = publisher.try_clone()?;
    let threads = readers.clamp(1, subscribers);
    let duration = Duration::from_secs_f64(traffic.duration);
    let cpu0 = process_cpu_ns(pid).unwrap_or(0);
    let start = now_ns() + 100_000_000;
    let end = start + duration.as_nanos() as u64;
    let (sent, hist) = thread::scope(|s| -> anyhow::Result<_> {
        let mut readers = Vec::new();
        let mut parts: Vec<Vec<(usize, TcpStream)>> = (0..threads).map(|_| Vec::new()).collect();
        for (i, sub) in subs.into_iter().enumerate() {
            parts[i % threads].push((i, sub));
        }
        for part in parts {
            let shared = &shared;
            readers.push(s.spawn(move || read_subscribers(part, shared)));
        }
        // PUBLISH answers (the number of receivers) are read and dropped, so that they
        // never back up into Redis.
        s.spawn(move || {
            let mut sink = replies;
            let mut buf = [0u8; 4096];
            while matches!(sink.read(&mut buf), Ok(n) if n > 0) {}
        });
        let sent = publish(&mut publisher, &channel, traffic, start, end, &shared)?;
        // Drain: until nothing arrives for 300 ms, or 2 s while some are missing (10 s at
        // most), as for the server.
        let mut last = (Instant::now(), 0);
        loop {
            thread::sleep(Duration::from_millis(100));
            let got = shared.received.load(Ordering::Relaxed);
            pb.set(format!("redis: {sent} published, {got} received"));
            let missing = got < sent * subscribers as u64;
            let wait = Duration::from_millis(if missing { 2000 } else { 300 });
            if got != last.1 {
                last = (Instant::now(), got);
            } else if last.0.elapsed() > wait || now_ns() > end + 10_000_000_000 {
                break;
            }
        }
        shared.stop.store(true, Ordering::Relaxed);
        let _ = publisher.shutdown(std::net::Shutdown::Both);
        let mut hist = new_histogram();
        for r in readers {
            let h = r
                .join()
                .map_err(|_| anyhow::anyhow!("a Redis reader panicked"))?;
            let _ = hist.add(h);
        }
        Ok((sent, hist))
    })?;
    let cpu_ns = process_cpu_ns(pid).unwrap_or(0).saturating_sub(cpu0);
    let received = shared.received.load(Ordering::Relaxed);
    let expected = sent * subscribers as u64;
    let secs = shared.last_ns.load(Ordering::Relaxed).saturating_sub(start) as f64 / 1e9;
    Ok(RedisReport {
        addr: addr.to_string(),
        pid,
        subscribers,
        messages_sent: sent,
        deliveries_expected: expected,
        deliveries_received: received,
        loss_pct: loss_pct(expected, received),
        secs,
        deliveries_per_s: per(received as f64, secs),
        latency_us: Latency::of(&hist),
        cpu_ns,
        cpu_ns_per_delivery: per(cpu_ns as f64, received as f64),
        server_ratio: 0.0,
        disconnected: shared.closed.load(Ordering::Relaxed) as usize,
    })
}

/// The redis-server's process id, from `INFO server`.
fn redis_pid(addr: SocketAddr) -> anyhow::Result<u32> {
    let mut c = TcpStream::connect(addr).with_context(|| format!("connecting to Redis {addr}"))?;
    c.set_read_timeout(Some(Duration::from_secs(5)))?;
    c.write_all(&command(&["INFO", "server"]))?;
    let mut r = BufReader::new(c);
    let mut header = String::new();
    r.read_line(&mut header)?;
    let len: usize = header
        .strip_prefix('$')
        .and_then(|l| l.trim_end().parse().ok())
        .with_context(|| format!("unexpected answer to INFO: {header:?}"))?;
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    let text = String::from_utf8_lossy(&body);
    text.lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .and_then(|p| p.trim().parse().ok())
        .context("INFO server gave no process_id")
}

/// Opens `n` connections subscribed to `channel`, each confirmed; non-blocking.
fn subscribe(
    addr: SocketAddr,
    channel: &str,
    n: usize,
    deadline: Instant,
) -> anyhow::Result<Vec<TcpStream>> {
    let cmd = command(&["SUBSCRIBE", channel]);
    let mut subs = Vec::with_capacity(n);
    for _ in 0..n {
        let mut c = TcpStream::connect(addr).context("connecting a Redis subscriber")?;
        c.write_all(&cmd)?;
        subs.push(c);
    }
    for c in &mut subs {
        let left = deadline.saturating_duration_since(Instant::now());
        anyhow::ensure!(
            !left.is_zero(),
            "Redis took too long to confirm subscriptions"
        );
        c.set_read_timeout(Some(left))?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 256];
        loop {
            let k = c.read(&mut chunk)?;
            if k == 0 {
                bail!("Redis closed a subscriber before confirming it");
            }
            buf.extend_from_slice(&chunk[..k]);
            match parse(&buf, 0) {
                Ok(Some((Resp::Array(v), used))) if used == buf.len() => match v.first() {
                    Some(Resp::Bulk(Some(b"subscribe"))) => break,
                    _ => bail!("Redis answered SUBSCRIBE with {v:?}"),
                },
                Ok(Some((other, _))) => bail!("Redis answered SUBSCRIBE with {other:?}"),
                Ok(None) => {}
                Err(()) => bail!("Redis sent something that is not RESP"),
            }
        }
        c.set_nonblocking(true)?;
    }
    Ok(subs)
}

/// PUBLISHes from `start` until `end`: closed loop with the traffic's window of messages in
/// flight, or at its rate (of all publishers together). Returns how many were sent.
fn publish(
    conn: &mut TcpStream,
    channel: &str,
    traffic: &Traffic,
    start: u64,
    end: u64,
    shared: &Shared,
) -> anyhow::Result<u64> {
    shared.publisher.register();
    sleep_until(start);
    let mut out = Vec::new();
    let mut seq = 0u64;
    let rate = traffic.rate * traffic.publishers.max(1) as f64;
    let mut last_progress = (now_ns(), 0u64);
    loop {
        let now = now_ns();
        if now >= end {
            break;
        }
        out.clear();
        if rate > 0.0 {
            let intended = start + (seq as f64 * 1e9 / rate) as u64;
            if intended >= end {
                break;
            }
            sleep_until(intended);
            let text = message_text(seq, intended, 0, traffic.message_size);
            out.extend_from_slice(&command(&["PUBLISH", channel, &text]));
            seq += 1;
        } else {
            let flight = shared.in_flight.load(Ordering::Relaxed);
            let room = traffic.window.saturating_sub(flight);
            for _ in 0..room {
                let text = message_text(seq, now_ns(), 0, traffic.message_size);
                out.extend_from_slice(&command(&["PUBLISH", channel, &text]));
                seq += 1;
            }
            shared.in_flight.fetch_add(room, Ordering::Relaxed);
            if room == 0 {
                let received = shared.received.load(Ordering::Relaxed);
                if received != last_progress.1 {
                    last_progress = (now, received);
                } else if now - last_progress.0 > 200_000_000 {
                    // Subscriber 0 missed some (it was dropped?): start the window afresh.
                    shared.in_flight.store(0, Ordering::Relaxed);
                    last_progress = (now, received);
                }
                thread::park_timeout(Duration::from_millis(2));
                continue;
            }
        }
        conn.write_all(&out).context("writing PUBLISH to Redis")?;
    }
    shared.publisher.clear();
    Ok(seq)
}

/// Reads the subscriptions `(index, connection)` until told to stop; returns the latency.
fn read_subscribers(
    subs: Vec<(usize, TcpStream)>,
    shared: &Shared,
) -> hdrhistogram::Histogram<u64> {
    let mut hist = new_histogram();
    let Ok(mut poll) = Poll::new() else {
        return hist;
    };
    for (k, (_, c)) in subs.iter().enumerate() {
        let fd = c.as_raw_fd();
        if poll
            .registry()
            .register(&mut SourceFd(&fd), Token(k), Interest::READABLE)
            .is_err()
        {
            return hist;
        }
    }
    let mut subs: Vec<(usize, TcpStream, Vec<u8>, bool)> = subs
        .into_iter()
        .map(|(i, c)| (i, c, Vec::new(), false))
        .collect();
    let mut events = Events::with_capacity(1024);
    let mut chunk = vec![0u8; 1 << 16];
    while !shared.stop.load(Ordering::Relaxed) {
        if poll
            .poll(&mut events, Some(Duration::from_millis(50)))
            .is_err()
        {
            continue;
        }
        let mut got = 0u64;
        for ev in events.iter() {
            let Some((index, conn, buf, closed)) = subs.get_mut(ev.token().0) else {
                continue;
            };
            if *closed {
                continue;
            }
            // Edge-triggered: read until the socket is empty.
            loop {
                match conn.read(&mut chunk) {
                    Ok(0) => {
                        *closed = true;
                        shared.closed.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    Ok(k) => buf.extend_from_slice(&chunk[..k]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => {
                        *closed = true;
                        shared.closed.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                }
            }
            // The messages read arrived together: one clock reading for them.
            let now = now_ns();
            let mut at = 0;
            loop {
                let payload = match message(&buf[at..]) {
                    Ok(Some((payload, used))) => {
                        at += used;
                        payload
                    }
                    Ok(None) => break,
                    // Not a message (a subscription's confirmation): skip it whole.
                    Err(()) => match parse(buf, at) {
                        Ok(Some((_, used))) => {
                            at += used;
                            continue;
                        }
                        Ok(None) => break,
                        Err(()) => {
                            // Not RESP: nothing more can be read from this connection.
                            *closed = true;
                            shared.closed.fetch_add(1, Ordering::Relaxed);
                            at = buf.len();
                            break;
                        }
                    },
                };
                got += 1;
                if let Some(sent) = std::str::from_utf8(payload).ok().and_then(sent_ns) {
                    let lat = now.saturating_sub(sent) / 1000;
                    hist.saturating_record(lat.max(1));
                }
                if *index == 0
                    && shared
                        .in_flight
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |f| f.checked_sub(1))
                        .is_ok()
                {
                    shared.publisher.wake();
                }
            }
            buf.drain(..at);
        }
        if got > 0 {
            shared.received.fetch_add(got, Ordering::Relaxed);
            shared.last_ns.store(now_ns(), Ordering::Relaxed);
        }
    }
    hist
}

/// A pub/sub message at the start of `buf` (`*3`, `message`, channel, payload), read
/// without building a value, as the subscribers get hundreds of thousands a second: its
/// payload and the bytes it takes, `Ok(None)` when it is not all there yet, `Err` when it
/// is something else (the caller parses that in general).
fn message(buf: &[u8]) -> Result<Option<(&[u8], usize)>, ()> {
    const HEAD: &[u8] = b"*3\r\n$7\r\nmessage\r\n";
    if buf.len() < HEAD.len() {
        return if HEAD.starts_with(buf) {
            Ok(None)
        } else {
            Err(())
        };
    }
    if !buf.starts_with(HEAD) {
        return Err(());
    }
    let mut at = HEAD.len();
    let mut payload: &[u8] = &[];
    // The channel, then the payload.
    for _ in 0..2 {
        match bulk(&buf[at..])? {
            Some((bytes, used)) => {
                payload = bytes;
                at += used;
            }
            None => return Ok(None),
        }
    }
    Ok(Some((payload, at)))
}

/// A bulk string (`$<len>\r\n<bytes>\r\n`) at the start of `buf`, as [`message`] reads it.
fn bulk(buf: &[u8]) -> Result<Option<(&[u8], usize)>, ()> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    if first != b'$' {
        return Err(());
    }
    let Some(eol) = buf.iter().take(24).position(|&b| b == b'\r') else {
        return if buf.len() < 24 { Ok(None) } else { Err(()) };
    };
    let digits = &buf[1..eol];
    if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(());
    }
    let len = digits
        .iter()
        .fold(0usize, |n, &d| n * 10 + usize::from(d - b'0'));
    let start = eol + 2;
    let end = start + len;
    if buf.len() < end + 2 {
        return Ok(None);
    }
    if buf.get(eol + 1) != Some(&b'\n') || &buf[end..end + 2] != b"\r\n" {
        return Err(());
    }
    Ok(Some((&buf[start..end], end + 2)))
}

/// A command in RESP: an array of bulk strings.
fn command(parts: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", parts.len()).into_bytes();
    for p in parts {
        out.extend_from_slice(format!("${}\r\n", p.len()).as_bytes());
        out.extend_from_slice(p.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A RESP value, borrowing its bytes.
#[derive(Debug, PartialEq, Eq)]
enum Resp<'a> {
    Simple(&'a [u8]),
    Error(&'a [u8]),
    Int(i64),
    Bulk(Option<&'a [u8]>),
    Array(Vec<Resp<'a>>),
}

/// Deepest nesting parsed: Redis's answers here are at most an array of scalars.
const MAX_DEPTH: usize = 4;

/// Parses one RESP value at `buf[at..]`: `Ok(Some((value, bytes used)))`, `Ok(None)` when
/// it is not all there yet, `Err` when it is not RESP.
fn parse(buf: &[u8], at: usize) -> Result<Option<(Resp<'_>, usize)>, ()> {
    parse_at(buf.get(at..).ok_or(())?, 0)
}

fn parse_at(buf: &[u8], depth: usize) -> Result<Option<(Resp<'_>, usize)>, ()> {
    if depth > MAX_DEPTH {
        return Err(());
    }
    let Some(eol) = buf.windows(2).position(|w| w == b"\r\n") else {
        return Ok(None);
    };
    let (&kind, line) = buf[..eol].split_first().ok_or(())?;
    let head = eol + 2;
    let number = || -> Result<i64, ()> {
        std::str::from_utf8(line)
            .map_err(|_| ())?
            .parse()
            .map_err(|_| ())
    };
    Ok(Some(match kind {
        b'+' => (Resp::Simple(line), head),
        b'-' => (Resp::Error(line), head),
        b':' => (Resp::Int(number()?), head),
        b'$' => {
            let n = number()?;
            if n < 0 {
                (Resp::Bulk(None), head)
            } else {
                let n = usize::try_from(n).map_err(|_| ())?;
                let end = head.checked_add(n).ok_or(())?;
                if buf.len() < end + 2 {
                    return Ok(None);
                }
                if &buf[end..end + 2] != b"\r\n" {
                    return Err(());
                }
                (Resp::Bulk(Some(&buf[head..end])), end + 2)
            }
        }
        b'*' => {
            let n = number()?;
            let mut items = Vec::new();
            let mut used = head;
            for _ in 0..n.max(0) {
                match parse_at(&buf[used..], depth + 1)? {
                    Some((v, k)) => {
                        items.push(v);
                        used += k;
                    }
                    None => return Ok(None),
                }
            }
            (Resp::Array(items), used)
        }
        _ => return Err(()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resp_values_parse_whole_or_not_at_all() {
        let msg = b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n";
        let (v, used) = parse(msg, 0).unwrap().unwrap();
        assert_eq!(used, msg.len());
        assert_eq!(
            v,
            Resp::Array(vec![
                Resp::Bulk(Some(b"message")),
                Resp::Bulk(Some(b"ch")),
                Resp::Bulk(Some(b"hello")),
            ])
        );
        for cut in 0..msg.len() {
            assert_eq!(parse(&msg[..cut], 0), Ok(None), "cut at {cut}");
        }
        assert_eq!(message(msg), Ok(Some((&b"hello"[..], msg.len()))));
        for cut in 0..msg.len() {
            assert_eq!(message(&msg[..cut]), Ok(None), "cut at {cut}");
        }
        assert_eq!(message(b":1\r\n"), Err(()));
        assert_eq!(message(b"*3\r\n$9\r\nsubscribe\r\n"), Err(()));
        assert_eq!(parse(b":12\r\n", 0), Ok(Some((Resp::Int(12), 5))));
        assert_eq!(parse(b"$-1\r\n", 0), Ok(Some((Resp::Bulk(None), 5))));
        assert!(parse(b"?x\r\n", 0).is_err());
        assert!(parse(b"$2\r\nabcd", 0).is_err());
        assert_eq!(
            command(&["PUBLISH", "c", "hi"]),
            b"*3\r\n$7\r\nPUBLISH\r\n$1\r\nc\r\n$2\r\nhi\r\n"
        );
    }
}
