//! Latency histograms: the receivers' (kept apart by who received what), and the
//! (microseconds, count) pairs that carry them from a worker process to its parent.

use hdrhistogram::Histogram;

/// A latency histogram in microseconds up to 100 s, 3 significant digits.
pub(crate) fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000, 3).expect("constant bounds are valid")
}

/// Latency histograms of one receiver (microseconds), kept apart by who received what.
#[derive(Debug, Clone)]
pub(crate) struct Hists {
    /// Server deliveries to every member.
    pub(crate) all: Histogram<u64>,
    /// Server deliveries to members that asked for batches.
    pub(crate) batch: Histogram<u64>,
    /// Server deliveries to classic members.
    pub(crate) classic: Histogram<u64>,
    /// The raw blaster's datagrams.
    pub(crate) raw: Histogram<u64>,
}

impl Default for Hists {
    fn default() -> Self {
        Hists {
            all: new_histogram(),
            batch: new_histogram(),
            classic: new_histogram(),
            raw: new_histogram(),
        }
    }
}

impl Hists {
    /// Adds `other`'s samples.
    pub(crate) fn add(&mut self, other: &Hists) {
        let _ = self.all.add(&other.all);
        let _ = self.batch.add(&other.batch);
        let _ = self.classic.add(&other.classic);
        let _ = self.raw.add(&other.raw);
    }
}

/// (microseconds, count) pairs as a histogram.
pub(crate) fn from_pairs(pairs: &[(u64, u64)]) -> Histogram<u64> {
    let mut h = new_histogram();
    for &(v, n) in pairs {
        let _ = h.record_n(v, n);
    }
    h
}

/// A histogram as (microseconds, count) pairs, to merge across processes.
pub(crate) fn pairs(h: &Histogram<u64>) -> Vec<(u64, u64)> {
    h.iter_recorded()
        .map(|v| (v.value_iterated_to(), v.count_at_value()))
        .collect()
}
