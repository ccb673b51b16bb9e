//! Message ids: unique in a cluster and growing with time, so that history can be read
//! "since" an id and the servers' messages order by time.

use std::sync::atomic::{AtomicU64, Ordering};

/// The last message id given.
#[derive(Debug, Default)]
pub(super) struct MessageIds {
    last: AtomicU64,
}

impl MessageIds {
    /// A new id at `wall_ms`: see `State::next_message_id`.
    pub(super) fn next(&self, wall_ms: u64) -> u64 {
        let floor = wall_ms.saturating_mul(1000);
        let prev = self
            .last
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |last| {
                Some(last.saturating_add(1).max(floor))
            })
            .unwrap_or(0);
        prev.saturating_add(1).max(floor)
    }

    /// Ids given from now on are above `id`.
    pub(super) fn note(&self, id: u64) {
        self.last.fetch_max(id, Ordering::AcqRel);
    }
}
