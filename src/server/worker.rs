//! Worker threads: apply requests to the shared state through the [`Handler`], send the
//! single-address replies themselves, and pass fan-outs to the sender pool.
//!
//! One address always maps to one worker ([`route`]), so one sender's requests are handled
//! in the order they arrived and each user record has a single writer. Replies to a single
//! address are written by the worker directly (in one `sendmmsg` batch per round of
//! requests): handing them to the pool would cost a queue hop and a wake-up per reply
//! while the kernel's cost stays the same.

use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};

use super::limit::{Limiter, Limits, Verdict};
use super::send::{dispatch, send_all, ErrorLog, SendJob};
use super::stats::Stats;
use crate::handler::{Handler, Outbox};
use crate::protocol::code;

/// Requests a worker takes off its queue before it flushes replies.
const JOBS_PER_ROUND: usize = 64;

/// Work for a worker.
#[derive(Debug)]
pub enum Job {
    /// A datagram from `from`, received at `at`.
    Datagram {
        /// Source address.
        from: SocketAddr,
        /// When the receive thread read it.
        at: Instant,
        /// Its bytes (cut to one past the size limit).
        data: Box<[u8]>,
    },
    /// The idle sweep found this user silent: log it off if it still is.
    Expire(SocketAddr),
}

/// The worker that owns `addr`, out of `workers`.
pub fn route(addr: SocketAddr, workers: usize) -> usize {
    // A fixed-key hasher: routing must be stable for the life of the process, and
    // SipHash keeps a hostile peer from steering addresses onto one worker cheaply.
    static KEYS: std::sync::OnceLock<std::collections::hash_map::RandomState> =
        std::sync::OnceLock::new();
    (KEYS.get_or_init(Default::default).hash_one(addr) % workers as u64) as usize
}

/// A worker's loop: runs until the receive thread and the sweeper have hung up, then
/// returns, dropping its handles on the sender pool.
pub fn run_worker(
    handler: Handler,
    limits: Limits,
    socket: socket2::Socket,
    jobs: Receiver<Job>,
    senders: Vec<Sender<SendJob>>,
    stats: Arc<Stats>,
) {
    let mut out = Outbox::new();
    let mut limiter = Limiter::new(limits, Instant::now());
    let mut log = ErrorLog::new();
    while let Ok(first) = jobs.recv() {
        let mut next = Some(first);
        let mut taken = 0;
        while let Some(job) = next.take() {
            match job {
                Job::Datagram { from, at, data } => {
                    if limiter.admit(from, data.len(), at) == Verdict::RateLimited {
                        stats.dropped_rate_limited.fetch_add(1, Ordering::Relaxed);
                    } else {
                        let mark = out.unicast_len();
                        if !handler.handle(from, &data, at, &mut out) {
                            let (bytes, errors) = out.replies_to_since(from, mark);
                            let login = data.starts_with(&code::LOGIN_REQ.to_be_bytes());
                            if bytes > 0
                                && !limiter.allow_stranger_reply(from, bytes, errors, login, at)
                            {
                                let n = out.withdraw_to_since(from, mark);
                                stats
                                    .replies_withheld
                                    .fetch_add(n as u64, Ordering::Relaxed);
                            }
                        }
                    }
                }
                Job::Expire(addr) => {
                    if handler.expire(addr, Instant::now(), &mut out) {
                        stats.sweep_logoffs.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(%addr, "idle user logged off");
                    }
                }
            }
            taken += 1;
            if taken < JOBS_PER_ROUND {
                next = jobs.try_recv().ok();
            }
        }
        for fanout in out.fanouts.drain(..) {
            dispatch(fanout, &senders);
        }
        if out.unicast_len() > 0 {
            let replies: Vec<(&[u8], SocketAddr)> = out.unicast().map(|(to, b)| (b, to)).collect();
            send_all(&socket, &replies, &stats, &mut log);
        }
        out.clear();
    }
}
