//! Counters of what the server did, shared by its threads (relaxed atomics: each is an
//! independent tally read for reports, never used to synchronise anything).

use std::sync::atomic::{AtomicU64, Ordering};

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
            dropped_queue_full: get(&self.dropped_queue_full),
            dropped_rate_limited: get(&self.dropped_rate_limited),
            replies_withheld: get(&self.replies_withheld),
            send_errors: get(&self.send_errors),
            sweep_logoffs: get(&self.sweep_logoffs),
            group_datagrams_out: get(&self.group_datagrams_out),
        }
    }
}
