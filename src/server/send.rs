//! The sender pool: threads that write fan-outs (one payload, many members) to the socket
//! in `sendmmsg` batches, and the send loop the workers use for their own replies.
//!
//! # Policy on send errors
//! A failed send to one peer never stops the server. `sendmmsg` reports an error only when
//! the first datagram of a batch failed, having sent none; after a partial send the loop
//! resumes at the first datagram not sent. For the failing datagram:
//! - `Interrupted`: retried at once;
//! - `WouldBlock` (the socket is blocking, so only with a send timeout): retried after a
//!   short pause, up to a few times, then counted as dropped;
//! - anything else (`ENOBUFS`: the kernel dropped it; `EPERM`, `ENETUNREACH`, ...): counted
//!   in [`Stats::send_errors`], skipped, and logged at most once per [`LOG_EVERY`].
//!
//! `IP_RECVERR` stays off, so an ICMP port-unreachable from a departed client does not make
//! later batches stop short (`docs/PERFORMANCE.md`).
//!
//! # Sealing
//! A protected user's copy of a fan-out or reply is sealed for its session just before it
//! is written ([`Sealers::seal_for`], the one function every send path calls): the
//! payload stays shared, and only protected members cost an AEAD seal and a buffer.
//!
//! # Order
//! A fan-out is split into chunks of [`CHUNK`] members; chunk `i` of a fan-out with key `k`
//! (its channel) goes to sender `(k + i) % senders`. So the messages of one channel reach
//! each member in the order the workers produced them, while a big channel still spreads
//! over every sender.

use std::io;
use std::net::SocketAddr;
use std::ops::Range;
use std::os::fd::AsFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use super::stats::Stats;
use super::sys::{send_batch, MAX_BATCH};
use crate::handler::{Fanout, Outbox};
use crate::sealing::Sealers;

/// Members per chunk of a fan-out handed to one sender.
pub const CHUNK: usize = 1024;
/// Fan-out chunks a sender takes off its queue before it writes them out together.
const JOBS_PER_ROUND: usize = 64;
/// How often a persisting send error is logged at most.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

/// A part of a fan-out for one sender: the shared payload and a range of the members.
#[derive(Debug)]
pub struct SendJob {
    payload: Arc<[u8]>,
    dests: Arc<[SocketAddr]>,
    range: Range<usize>,
}

/// Splits `fanout` into chunks and queues each on its sender.
///
/// Blocks while a sender's queue is full: that is the back-pressure that slows workers
/// down (and, behind them, makes the receive thread drop) when the kernel can't keep up.
/// Returns `false` when the pool is gone (shutdown).
pub fn dispatch(fanout: Fanout, senders: &[Sender<SendJob>]) -> bool {
    let n = senders.len() as u64;
    let len = fanout.dests.len();
    let mut ok = true;
    for (i, start) in (0..len).step_by(CHUNK).enumerate() {
        let job = SendJob {
            payload: fanout.payload.clone(),
            dests: fanout.dests.clone(),
            range: start..(start + CHUNK).min(len),
        };
        let which = (fanout.key.wrapping_add(i as u64) % n) as usize;
        ok &= senders[which].send(job).is_ok();
    }
    ok
}

/// Sends every datagram of `msgs`, resuming after partial batches and skipping the ones
/// that fail (see the module's policy). Counts datagrams, bytes and errors in `stats`.
pub fn send_all(
    socket: &impl AsFd,
    msgs: &[(&[u8], SocketAddr)],
    stats: &Stats,
    log: &mut ErrorLog,
) {
    let mut at = 0;
    let mut would_block = 0;
    while at < msgs.len() {
        match send_batch(socket, &msgs[at..]) {
            Ok(sent) => {
                let bytes: usize = msgs[at..at + sent].iter().map(|(p, _)| p.len()).sum();
                stats
                    .datagrams_out
                    .fetch_add(sent as u64, Ordering::Relaxed);
                stats.bytes_out.fetch_add(bytes as u64, Ordering::Relaxed);
                at += sent;
                would_block = 0;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && would_block < 3 => {
                would_block += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => {
                stats.send_errors.fetch_add(1, Ordering::Relaxed);
                log.report(msgs[at].1, &e);
                at += 1;
                would_block = 0;
            }
        }
    }
}

/// The single-address replies of `out` as they must go out: each sealed for its session
/// if the handler named one (a path challenge), or if its address is a protected user's.
pub fn sealed_replies<'a>(
    out: &'a Outbox,
    sealers: &Sealers,
) -> Vec<(std::borrow::Cow<'a, [u8]>, SocketAddr)> {
    out.unicast_sealed()
        .map(|(to, bytes, sealer)| {
            let payload = match sealer {
                Some(s) => std::borrow::Cow::Owned(s.seal(bytes)),
                None => sealers.seal_for(to, bytes),
            };
            (payload, to)
        })
        .collect()
}

/// Sends `replies` (from [`sealed_replies`]) with [`send_all`].
pub fn send_replies(
    socket: &impl AsFd,
    replies: &[(std::borrow::Cow<'_, [u8]>, SocketAddr)],
    stats: &Stats,
    log: &mut ErrorLog,
) {
    let msgs: Vec<(&[u8], SocketAddr)> = replies.iter().map(|(p, a)| (&**p, *a)).collect();
    send_all(socket, &msgs, stats, log);
}

/// Logs send errors at most once per [`LOG_EVERY`], with how many were suppressed.
#[derive(Debug)]
pub struct ErrorLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl ErrorLog {
    /// A log that has reported nothing yet.
    pub fn new() -> Self {
        ErrorLog {
            last: None,
            suppressed: 0,
        }
    }

    fn report(&mut self, dest: SocketAddr, err: &io::Error) {
        let now = Instant::now();
        if self.last.is_some_and(|t| now.duration_since(t) < LOG_EVERY) {
            self.suppressed += 1;
            return;
        }
        tracing::warn!(%dest, error = %err, suppressed = self.suppressed, "send failed; datagram dropped");
        self.last = Some(now);
        self.suppressed = 0;
    }
}

impl Default for ErrorLog {
    fn default() -> Self {
        Self::new()
    }
}

/// A sender thread's loop: takes fan-out chunks until every worker has hung up (shutdown),
/// writing them in batches of up to [`MAX_BATCH`] datagrams that may mix several chunks.
/// Protected members' copies are sealed here ([`Sealers::seal_for`]).
pub fn run_sender(
    socket: socket2::Socket,
    jobs: Receiver<SendJob>,
    stats: Arc<Stats>,
    sealers: Sealers,
) {
    let mut log = ErrorLog::new();
    let mut round: Vec<SendJob> = Vec::with_capacity(JOBS_PER_ROUND);
    while let Ok(first) = jobs.recv() {
        round.push(first);
        while round.len() < JOBS_PER_ROUND {
            match jobs.try_recv() {
                Ok(job) => round.push(job),
                Err(_) => break,
            }
        }
        let mut batch: Vec<(std::borrow::Cow<'_, [u8]>, SocketAddr)> =
            Vec::with_capacity(MAX_BATCH);
        for job in &round {
            for dest in &job.dests[job.range.clone()] {
                batch.push((sealers.seal_for(*dest, &job.payload), *dest));
                if batch.len() == MAX_BATCH {
                    send_replies(&socket, &batch, &stats, &mut log);
                    batch.clear();
                }
            }
        }
        send_replies(&socket, &batch, &stats, &mut log);
        drop(batch);
        round.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbeam_channel::bounded;

    fn fanout(members: usize, key: u64) -> Fanout {
        let dests: Vec<SocketAddr> = (0..members)
            .map(|i| SocketAddr::from(([127, 0, 0, 1], 1000 + i as u16)))
            .collect();
        Fanout {
            payload: Arc::from(&b"xy"[..]),
            dests: dests.into(),
            key,
        }
    }

    #[test]
    fn big_fanouts_spread_over_senders_in_chunks() {
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..3).map(|_| bounded(16)).unzip();
        assert!(dispatch(fanout(CHUNK * 2 + 5, 1), &txs));
        let got: Vec<Vec<Range<usize>>> = rxs
            .iter()
            .map(|rx| rx.try_iter().map(|j| j.range).collect())
            .collect();
        assert_eq!(got[1], vec![0..CHUNK]);
        assert_eq!(got[2], vec![CHUNK..2 * CHUNK]);
        assert_eq!(got[0], vec![2 * CHUNK..2 * CHUNK + 5]);
    }

    #[test]
    fn same_key_goes_to_same_sender() {
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..2).map(|_| bounded(16)).unzip();
        dispatch(fanout(3, 7), &txs);
        dispatch(fanout(4, 7), &txs);
        assert_eq!(rxs[1].len(), 2);
        assert_eq!(rxs[0].len(), 0);
    }

    #[test]
    fn failing_destination_is_counted_and_skipped() {
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let good = rx.local_addr().unwrap();
        // An IPv6 destination can't be reached from an IPv4 socket: EAFNOSUPPORT.
        let bad: SocketAddr = "[::1]:9".parse().unwrap();
        let msgs: Vec<(&[u8], SocketAddr)> = vec![
            (b"a", good),
            (b"b", bad),
            (b"c", good),
            (b"d", bad),
            (b"e", good),
        ];
        let stats = Stats::default();
        send_all(&tx, &msgs, &stats, &mut ErrorLog::new());
        assert_eq!(stats.send_errors.load(Ordering::Relaxed), 2);
        assert_eq!(stats.datagrams_out.load(Ordering::Relaxed), 3);
        let mut buf = [0u8; 8];
        let got: Vec<u8> = (0..3)
            .map(|_| {
                let (n, _) = rx.recv_from(&mut buf).unwrap();
                assert_eq!(n, 1);
                buf[0]
            })
            .collect();
        assert_eq!(got, b"ace");
    }
}
