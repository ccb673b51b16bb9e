//! Counters of what the server did, shared by its threads (relaxed atomics: each is an
//! independent tally read for reports, never used to synchronise anything).

use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds (`le`) of the events-per-datagram histogram's buckets; one more bucket
/// counts everything above the last.
pub(crate) const EVENTS_PER_DATAGRAM_BOUNDS: [u64; 8] = [1, 2, 4, 8, 16, 32, 64, 128];
/// Buckets of the events-per-datagram histogram: one per bound and one for the rest.
pub(crate) const EVENTS_PER_DATAGRAM_BUCKETS: usize = EVENTS_PER_DATAGRAM_BOUNDS.len() + 1;

/// Running totals since the server started.
#[derive(Debug, Default)]
pub struct Stats {
    /// Datagrams received.
    pub datagrams_in: AtomicU64,
    /// Bytes received.
    pub bytes_in: AtomicU64,
    /// Datagrams handed to the kernel.
    pub datagrams_out: AtomicU64,
    /// Bytes handed to the kernel.
    pub bytes_out: AtomicU64,
    /// Events handed to the kernel: one per reply, one per classic delivery, and every
    /// event inside a BATCH.
    pub events_out: AtomicU64,
    /// Datagrams handed to the kernel by how many events each carried, per bucket of
    /// [`EVENTS_PER_DATAGRAM_BOUNDS`] (not cumulative; the metrics page sums them).
    pub events_per_datagram: [AtomicU64; EVENTS_PER_DATAGRAM_BUCKETS],
    /// Datagrams dropped because their worker's queue was full.
    pub dropped_queue_full: AtomicU64,
    /// Datagrams dropped because their source was over its request rate.
    pub dropped_rate_limited: AtomicU64,
    /// Replies to addresses not logged in that were withheld (amplification guard or
    /// their ERROR rate).
    pub replies_withheld: AtomicU64,
    /// Datagrams the kernel refused to send (counted and skipped).
    pub send_errors: AtomicU64,
    /// Users logged off by the idle sweep.
    pub sweep_logoffs: AtomicU64,
    /// CHANNEL_DATA datagrams handed to the kernel for multicast groups (also counted in
    /// `datagrams_out`).
    pub group_datagrams_out: AtomicU64,
}

/// A copy of [`Stats`] at one moment.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// See [`Stats::datagrams_in`].
    pub datagrams_in: u64,
    /// See [`Stats::bytes_in`].
    pub bytes_in: u64,
    /// See [`Stats::datagrams_out`].
    pub datagrams_out: u64,
    /// See [`Stats::bytes_out`].
    pub bytes_out: u64,
    /// See [`Stats::events_out`].
    pub events_out: u64,
    /// See [`Stats::events_per_datagram`].
    pub events_per_datagram: [u64; EVENTS_PER_DATAGRAM_BUCKETS],
    /// See [`Stats::dropped_queue_full`].
    pub dropped_queue_full: u64,
    /// See [`Stats::dropped_rate_limited`].
    pub dropped_rate_limited: u64,
    /// See [`Stats::replies_withheld`].
    pub replies_withheld: u64,
    /// See [`Stats::send_errors`].
    pub send_errors: u64,
    /// See [`Stats::sweep_logoffs`].
    pub sweep_logoffs: u64,
    /// See [`Stats::group_datagrams_out`].
    pub group_datagrams_out: u64,
}

impl Stats {
    /// The totals now.
    pub fn snapshot(&self) -> StatsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsSnapshot {
            datagrams_in: get(&self.datagrams_in),
            bytes_in: get(&self.bytes_in),
            datagrams_out: get(&self.datagrams_out),
            bytes_out: get(&self.bytes_out),
            events_out: get(&self.events_out),
            events_per_datagram: std::array::from_fn(|i| get(&self.events_per_datagram[i])),
            dropped_queue_full: get(&self.dropped_queue_full),
            dropped_rate_limited: get(&self.dropped_rate_limited),
            replies_withheld: get(&self.replies_withheld),
            send_errors: get(&self.send_errors),
            sweep_logoffs: get(&self.sweep_logoffs),
            group_datagrams_out: get(&self.group_datagrams_out),
        }
    }
}

/// Counts of sent datagrams kept by one thread and added to [`Stats`] in one go, so the
/// histogram costs a few atomic additions per `sendmmsg` call, not per datagram.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Tally {
    datagrams: u64,
    bytes: u64,
    events: u64,
    buckets: [u64; EVENTS_PER_DATAGRAM_BUCKETS],
}

impl Tally {
    /// One datagram of `bytes` bytes carrying `events` events went out.
    pub(crate) fn sent(&mut self, bytes: usize, events: u32) {
        self.datagrams += 1;
        self.bytes += bytes as u64;
        self.events += u64::from(events);
        let bucket = EVENTS_PER_DATAGRAM_BOUNDS
            .iter()
            .position(|&b| u64::from(events) <= b)
            .unwrap_or(EVENTS_PER_DATAGRAM_BOUNDS.len());
        self.buckets[bucket] += 1;
    }

    /// Adds the counts to `stats` and starts again from zero.
    pub(crate) fn flush(&mut self, stats: &Stats) {
        if self.datagrams == 0 {
            return;
        }
        stats
            .datagrams_out
            .fetch_add(self.datagrams, Ordering::Relaxed);
        stats.bytes_out.fetch_add(self.bytes, Ordering::Relaxed);
        stats.events_out.fetch_add(self.events, Ordering::Relaxed);
        for (b, n) in self.buckets.iter().enumerate() {
            if *n > 0 {
                stats.events_per_datagram[b].fetch_add(*n, Ordering::Relaxed);
            }
        }
        *self = Tally::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tally_sorts_datagrams_into_buckets() {
        let stats = Stats::default();
        let mut t = Tally::default();
        for events in [1, 1, 2, 3, 13, 64, 65, 500] {
            t.sent(100, events);
        }
        t.flush(&stats);
        let s = stats.snapshot();
        assert_eq!((s.datagrams_out, s.bytes_out, s.events_out), (8, 800, 649));
        assert_eq!(s.events_per_datagram, [2, 1, 1, 0, 1, 0, 1, 1, 1]);
    }
}
