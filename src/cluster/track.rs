//! The per-origin sequence tracking of cluster events: each origin numbers what it
//! publishes per topic, so a receiver drops duplicates and stale events (a previous run of
//! the origin) and notices gaps, which make it reload the origin's users.

use std::collections::HashMap;

use super::event::Envelope;

/// What the sequence check says of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Seen {
    /// The next one expected (or the first from this origin on this topic).
    Next,
    /// Seen already (or older): drop it.
    Duplicate,
    /// Newer than expected: `missed` events were lost in between. Apply it.
    Gap {
        /// How many are missing.
        missed: u64,
    },
    /// From an epoch older than one already seen: a previous run of the origin. Drop it.
    Stale,
    /// The first from a new epoch of an origin seen before: it restarted.
    NewEpoch,
}

/// Origin and topic pairs tracked at most.
pub(super) const MAX_TRACKED: usize = 65536;

/// The last (epoch, sequence) seen per origin and topic.
#[derive(Debug, Default)]
pub(super) struct Tracker {
    last: HashMap<(String, String), (u64, u64)>,
}

impl Tracker {
    /// Checks `env` received on `topic` and records it unless it is to be dropped.
    pub(super) fn check(&mut self, topic: &str, env: &Envelope) -> Seen {
        let key = (env.s.clone(), topic.to_owned());
        let Some(&(epoch, seq)) = self.last.get(&key) else {
            if self.last.len() >= MAX_TRACKED {
                // Whoever can publish on our topics could otherwise grow this without
                // bound with made-up server ids; forgetting costs at most a missed gap
                // or a duplicate applied twice (events are idempotent).
                self.last.clear();
            }
            self.last.insert(key, (env.e, env.q));
            return Seen::Next;
        };
        let seen = if env.e < epoch {
            return Seen::Stale;
        } else if env.e > epoch {
            Seen::NewEpoch
        } else if env.q <= seq {
            return Seen::Duplicate;
        } else if env.q == seq + 1 {
            Seen::Next
        } else {
            Seen::Gap {
                missed: env.q - seq - 1,
            }
        };
        self.last.insert(key, (env.e, env.q));
        seen
    }

    /// The epoch last seen from `origin` on `topic`.
    pub(super) fn epoch(&self, origin: &str, topic: &str) -> Option<u64> {
        self.last
            .get(&(origin.to_owned(), topic.to_owned()))
            .map(|&(epoch, _)| epoch)
    }

    /// Forgets what was seen on `topic` (after subscribing to it again: what was published
    /// while unsubscribed is no gap).
    pub(super) fn forget_topic(&mut self, topic: &str) {
        self.last.retain(|(_, t), _| t != topic);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::event::tests::env;

    #[test]
    fn tracker_drops_duplicates_and_counts_gaps() {
        let mut t = Tracker::default();
        assert_eq!(t.check("p", &env("a", 1, 1)), Seen::Next);
        assert_eq!(t.check("p", &env("a", 1, 2)), Seen::Next);
        assert_eq!(t.check("p", &env("a", 1, 2)), Seen::Duplicate);
        assert_eq!(t.check("p", &env("a", 1, 5)), Seen::Gap { missed: 2 });
        assert_eq!(t.check("q", &env("a", 1, 7)), Seen::Next);
        assert_eq!(t.check("p", &env("a", 2, 1)), Seen::NewEpoch);
        assert_eq!(t.check("p", &env("a", 1, 9)), Seen::Stale);
        assert_eq!(t.epoch("a", "p"), Some(2));
        t.forget_topic("p");
        assert_eq!(t.epoch("a", "p"), None);
        assert_eq!(t.check("p", &env("a", 2, 40)), Seen::Next);
    }
}
