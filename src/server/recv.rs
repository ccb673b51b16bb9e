//! The receive thread: reads datagrams in `recvmmsg` batches, classifies each once
//! ([`Class`]) and hands it to the worker that owns its route (its source address, or for
//! a sealed datagram its session).
//!
//! It does only what must be serial: the batch read, the classification and the routing. The typed decoding
//! (UTF-8 checks, field splitting) runs in the workers, in parallel, on the bytes this
//! thread copies out; a datagram over the size limit arrives there cut to one byte past the
//! limit, which is enough for the decoder to call it too long.
//!
//! When a worker's queue is full the datagram is dropped and counted
//! ([`Stats::dropped_queue_full`]): this thread never blocks on a worker, so one slow
//! worker can't stop traffic for the others, and memory stays bounded by the queues.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Sender, TrySendError};

use super::jobs::{worker_for, Job};
use super::stats::Stats;
use crate::datagram::Class;
use udp::RecvBatch;

/// Runs until `stop` is set (checked at least once per socket read timeout).
pub(crate) fn run_receiver(
    socket: socket2::Socket,
    workers: Vec<Sender<Job>>,
    max_datagram: usize,
    stop: Arc<AtomicBool>,
    stats: Arc<Stats>,
) {
    let mut batch = RecvBatch::new(max_datagram + 1);
    while !stop.load(Ordering::Relaxed) {
        match batch.recv(&socket) {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            Err(e) => {
                // ECONNREFUSED and the like can surface here from ICMP errors; they are not
                // about the socket itself, so keep reading.
                tracing::debug!(error = %e, "recvmmsg failed");
                continue;
            }
        }
        let now = Instant::now();
        for (from, bytes) in batch.iter() {
            stats.datagrams_in.fetch_add(1, Ordering::Relaxed);
            stats
                .bytes_in
                .fetch_add(bytes.len() as u64, Ordering::Relaxed);
            let class = Class::of(bytes);
            let job = Job::Datagram {
                from,
                at: now,
                class,
                data: bytes.into(),
            };
            match workers[worker_for(class.route(from), workers.len())].try_send(job) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    stats.dropped_queue_full.fetch_add(1, Ordering::Relaxed);
                }
                Err(TrySendError::Disconnected(_)) => return,
            }
        }
    }
}
