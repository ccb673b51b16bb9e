//! The per-origin sequence tracking of cluster events, and their freshness: each origin
//! numbers what it publishes per topic and stamps it with the time it was sealed, so a
//! receiver drops duplicates, stale events (a previous run of the origin) and old ones
//! (however they got back into Redis), and notices gaps, which make it reload the
//! origin's users.
//!
//! # Why the state outlives subscriptions
//! Whoever can write to Redis can re-`PUBLISH` a signed event it captured; the tag still
//! verifies, so only the receiver's memory tells it apart. That memory must therefore not
//! be dropped when a topic is subscribed again (a channel gains local members again, or
//! the connection to Redis is made anew): the [`Tracker`] lives as long as the cluster
//! thread, and a topic subscribed again is only *resumed*, so the first event after it is
//! not counted as a gap, but nothing at or below the last sequence seen is taken again.
//!
//! # What bounds the rest
//! Three rules cover what the memory can't (a receiver that just started, an entry
//! forgotten to bound memory, an event published while the topic was not subscribed):
//! - an event sealed more than `max_age` ago (on the origin's clock, compared with ours)
//!   is refused, and so is one sealed more than `max_age` ahead of our clock;
//! - an event sealed more than `skew` before we subscribed to its topic (this run's first
//!   subscription included) is refused: Redis pub/sub only delivers what is published
//!   after a SUBSCRIBE, so such an event is a replay, not news;
//! - an event from an epoch older than the newest seen from its origin, on any topic, is
//!   stale.
//!
//! An entry is forgotten only once its last event is older than `max_age` (any replay of
//! what it covered is then refused by age), or, past [`MAX_TRACKED`] entries all younger
//! than that, oldest first.

use std::collections::HashMap;
use std::time::Duration;

use super::event::Envelope;

/// What the sequence check says of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Seen {
    /// The next one expected (or the first from this origin on this topic, or the first
    /// after the topic was subscribed again).
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
    /// Sealed too long ago, too far ahead, or before the topic was subscribed: a replay.
    /// Drop it.
    Old,
}

/// Origin and topic pairs tracked at most.
pub(super) const MAX_TRACKED: usize = 65536;
/// Origins whose newest epoch is remembered at most.
const MAX_ORIGINS: usize = 4096;

/// How old (or how far ahead) an event may be; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freshness {
    /// Events sealed longer ago than this, or further ahead, are refused.
    pub max_age: Duration,
    /// How far the servers' clocks may differ: an event sealed more than this before its
    /// topic was subscribed is refused.
    pub skew: Duration,
}

impl Default for Freshness {
    fn default() -> Self {
        Freshness {
            max_age: Duration::from_secs(30),
            skew: Duration::from_secs(2),
        }
    }
}

/// The last event seen from one origin on one topic.
#[derive(Debug, Clone, Copy)]
struct Last {
    epoch: u64,
    seq: u64,
    /// When it was sealed (the origin's clock, ms).
    sealed_ms: u64,
    /// The topic was subscribed again since: the next event is no gap.
    resumed: bool,
}

/// The last (epoch, sequence) seen per origin and topic, the newest epoch per origin, and
/// when each topic was subscribed (module docs).
#[derive(Debug, Default)]
pub(super) struct Tracker {
    last: HashMap<(String, String), Last>,
    /// Per origin: its newest epoch, and when the last event that told it was sealed.
    epochs: HashMap<String, (u64, u64)>,
    /// Per subscribed topic: our clock (ms) when it was subscribed.
    since: HashMap<String, u64>,
    fresh: Freshness,
    /// When an old event was last logged (ms), so a flood of replays logs once in a while.
    warned_ms: u64,
}

impl Tracker {
    /// A tracker refusing what `fresh` calls old.
    pub(super) fn new(fresh: Freshness) -> Self {
        Tracker {
            fresh,
            ..Tracker::default()
        }
    }

    /// `topic` is (re)subscribed at `now_ms`: what is sealed from then on is news; the next
    /// event of each origin is no gap, but nothing seen before is taken again.
    pub(super) fn subscribed(&mut self, topic: &str, now_ms: u64) {
        self.since.insert(topic.to_owned(), now_ms);
        for ((_, t), last) in self.last.iter_mut() {
            if t == topic {
                last.resumed = true;
            }
        }
    }

    /// `topic` is no longer subscribed. What was seen on it is kept (module docs).
    pub(super) fn unsubscribed(&mut self, topic: &str) {
        self.since.remove(topic);
    }

    /// Whether `env`, received on `topic` at `now_ms` (our clock), is fresh: sealed neither
    /// too long ago nor too far ahead, not before `topic` was subscribed, and not from an
    /// epoch older than its origin's newest. `Err` says what it is instead.
    pub(super) fn fresh(&self, topic: &str, env: &Envelope, now_ms: u64) -> Result<(), Seen> {
        let max_age = self.fresh.max_age.as_millis() as u64;
        let skew = self.fresh.skew.as_millis() as u64;
        if env.t.saturating_add(max_age) < now_ms || env.t > now_ms.saturating_add(max_age) {
            return Err(Seen::Old);
        }
        if self
            .since
            .get(topic)
            .is_some_and(|&since| env.t.saturating_add(skew) < since)
        {
            return Err(Seen::Old);
        }
        if self
            .epochs
            .get(&env.s)
            .is_some_and(|&(epoch, _)| env.e < epoch)
        {
            return Err(Seen::Stale);
        }
        Ok(())
    }

    /// Checks `env` received on `topic` at `now_ms` and records it unless it is to be
    /// dropped.
    pub(super) fn check(&mut self, topic: &str, env: &Envelope, now_ms: u64) -> Seen {
        if let Err(seen) = self.fresh(topic, env, now_ms) {
            return seen;
        }
        self.note_epoch(env, now_ms);
        let key = (env.s.clone(), topic.to_owned());
        let new = Last {
            epoch: env.e,
            seq: env.q,
            sealed_ms: env.t,
            resumed: false,
        };
        let Some(&last) = self.last.get(&key) else {
            self.make_room(now_ms);
            self.last.insert(key, new);
            return Seen::Next;
        };
        let seen = if env.e < last.epoch {
            return Seen::Stale;
        } else if env.e > last.epoch {
            Seen::NewEpoch
        } else if env.q <= last.seq {
            return Seen::Duplicate;
        } else if env.q == last.seq + 1 || last.resumed {
            Seen::Next
        } else {
            Seen::Gap {
                missed: env.q - last.seq - 1,
            }
        };
        self.last.insert(key, new);
        seen
    }

    /// Whether to log an old event refused at `now_ms`: at most once every 10 s.
    pub(super) fn warn_old(&mut self, now_ms: u64) -> bool {
        if now_ms.saturating_sub(self.warned_ms) < 10_000 && self.warned_ms != 0 {
            return false;
        }
        self.warned_ms = now_ms;
        true
    }

    /// The newest epoch seen from `origin` (on any topic).
    #[cfg(test)]
    fn epoch(&self, origin: &str) -> Option<u64> {
        self.epochs.get(origin).map(|&(epoch, _)| epoch)
    }

    fn note_epoch(&mut self, env: &Envelope, now_ms: u64) {
        if !self.epochs.contains_key(&env.s) && self.epochs.len() >= MAX_ORIGINS {
            // Only servers holding the secret sign events, so this takes far more servers
            // than a cluster has; forget those not heard from within the age bound.
            let max_age = self.fresh.max_age.as_millis() as u64;
            self.epochs
                .retain(|_, &mut (_, sealed)| sealed.saturating_add(max_age) >= now_ms);
            if self.epochs.len() >= MAX_ORIGINS {
                return;
            }
        }
        let e = self.epochs.entry(env.s.clone()).or_insert((env.e, env.t));
        if env.e >= e.0 {
            *e = (env.e, env.t.max(e.1));
        }
    }

    /// Room for one more entry: first forget those whose last event is too old to be
    /// replayed anyway, then, if all are younger, the oldest eighth.
    fn make_room(&mut self, now_ms: u64) {
        if self.last.len() < MAX_TRACKED {
            return;
        }
        let max_age = self.fresh.max_age.as_millis() as u64;
        self.last
            .retain(|_, l| l.sealed_ms.saturating_add(max_age) >= now_ms);
        if self.last.len() < MAX_TRACKED {
            return;
        }
        let mut ages: Vec<u64> = self.last.values().map(|l| l.sealed_ms).collect();
        let cut = ages.len() / 8;
        let (_, &mut oldest_kept, _) = ages.select_nth_unstable(cut);
        self.last.retain(|_, l| l.sealed_ms >= oldest_kept);
        tracing::warn!(
            tracked = self.last.len(),
            "cluster sequence tracking full; forgot the oldest origins and topics"
        );
    }

    /// Entries tracked (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.last.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::event::tests::env;

    /// A hello from `s`, epoch `e`, sequence `q`, sealed at `t`.
    fn at(s: &str, e: u64, q: u64, t: u64) -> Envelope {
        Envelope { t, ..env(s, e, q) }
    }

    const NOW: u64 = 1_000_000_000;

    #[test]
    fn tracker_drops_duplicates_and_counts_gaps() {
        let mut t = Tracker::default();
        let e = |s, e, q| at(s, e, q, NOW);
        assert_eq!(t.check("p", &e("a", 1, 1), NOW), Seen::Next);
        assert_eq!(t.check("p", &e("a", 1, 2), NOW), Seen::Next);
        assert_eq!(t.check("p", &e("a", 1, 2), NOW), Seen::Duplicate);
        assert_eq!(t.check("p", &e("a", 1, 5), NOW), Seen::Gap { missed: 2 });
        assert_eq!(t.check("q", &e("a", 1, 7), NOW), Seen::Next);
        assert_eq!(t.check("p", &e("a", 2, 1), NOW), Seen::NewEpoch);
        assert_eq!(t.check("p", &e("a", 1, 9), NOW), Seen::Stale);
        // The newer epoch seen on p makes the old one stale on q too.
        assert_eq!(t.check("q", &e("a", 1, 8), NOW), Seen::Stale);
        assert_eq!(t.epoch("a"), Some(2));
    }

    #[test]
    fn a_topic_subscribed_again_takes_nothing_seen_before_and_counts_no_gap() {
        let mut t = Tracker::default();
        t.subscribed("p", NOW);
        assert_eq!(t.check("p", &at("a", 1, 1, NOW), NOW), Seen::Next);
        assert_eq!(t.check("p", &at("a", 1, 2, NOW), NOW), Seen::Next);
        t.unsubscribed("p");
        t.subscribed("p", NOW + 1000);
        // The captured event published again after the new SUBSCRIBE: seen.
        assert_eq!(
            t.check("p", &at("a", 1, 2, NOW), NOW + 1000),
            Seen::Duplicate
        );
        // What was published meanwhile is no gap.
        assert_eq!(
            t.check("p", &at("a", 1, 40, NOW + 1000), NOW + 1000),
            Seen::Next
        );
        assert_eq!(
            t.check("p", &at("a", 1, 42, NOW + 1000), NOW + 1000),
            Seen::Gap { missed: 1 }
        );
    }

    #[test]
    fn old_events_are_refused_however_they_come_back() {
        let fresh = Freshness {
            max_age: Duration::from_secs(30),
            skew: Duration::from_secs(2),
        };
        let mut t = Tracker::new(fresh);
        // Sealed 31 s ago, or 31 s ahead: old either way, even from an unknown origin.
        assert_eq!(t.check("p", &at("a", 1, 1, NOW - 31_000), NOW), Seen::Old);
        assert_eq!(t.check("p", &at("a", 1, 1, NOW + 31_000), NOW), Seen::Old);
        assert_eq!(t.check("p", &at("a", 1, 1, NOW - 29_000), NOW), Seen::Next);
        // A receiver that (re)subscribed takes nothing sealed before, but for the skew.
        t.subscribed("q", NOW);
        assert_eq!(t.check("q", &at("b", 1, 5, NOW - 2_500), NOW), Seen::Old);
        assert_eq!(t.check("q", &at("b", 1, 6, NOW - 1_500), NOW), Seen::Next);
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn memory_is_bounded_by_forgetting_what_age_covers_first() {
        let mut t = Tracker::default();
        let old = NOW - 20_000;
        for i in 0..MAX_TRACKED {
            assert_eq!(
                t.check(&format!("t{i}"), &at("a", 1, 1, old), NOW),
                Seen::Next
            );
        }
        // Fifteen seconds on, the first entries' events are too old to replay: forgotten
        // first, and a replay of one of them is refused by age.
        let later = NOW + 15_000;
        assert_eq!(t.check("new", &at("a", 1, 1, later), later), Seen::Next);
        assert_eq!(t.len(), 1);
        assert_eq!(t.check("t0", &at("a", 1, 1, old), later), Seen::Old);
        // All young: the oldest eighth goes.
        let mut t = Tracker::default();
        for i in 0..MAX_TRACKED as u64 {
            t.check(&format!("t{i}"), &at("a", 1, 1, NOW - 10_000 + i / 16), NOW);
        }
        t.check("new", &at("a", 1, 1, NOW), NOW);
        assert!(t.len() <= MAX_TRACKED * 7 / 8 + 2, "{}", t.len());
        assert_eq!(
            t.check(&format!("t{}", MAX_TRACKED - 1), &at("a", 1, 1, NOW), NOW),
            Seen::Duplicate,
            "the youngest kept"
        );
    }
}
