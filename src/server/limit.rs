//! Flood limits applied by each worker before a datagram reaches the state machine.
//!
//! - Requests: a token bucket per source address (`--rate-limit` per second, bursts of
//!   `--rate-burst`); excess is dropped and counted, so one address can't take the
//!   server from the others.
//! - ERROR replies to addresses that are not logged in: a second, smaller bucket per
//!   address, so that junk from a stranger can't make the server a chatty reflector.
//! - Amplification: an address that is not logged in is never sent more bytes in all than
//!   [`AMPLIFICATION_FACTOR`] times what it has sent, QUIC's anti-amplification limit (RFC
//!   9000 §8.1): enough that a classic client that lost its session is told `ERROR please
//!   log in` on its first request (a 9-byte `JOIN_REQ` earns 27 bytes; the answer is 15),
//!   while a forged source address gets at most three times what was sent in its name
//!   (`--allow-amplification` turns this off), with one exception: the ERROR
//!   answering a LOGIN_REQ. A classic client can't pad its login (the payload is the
//!   nickname), and a one-letter nickname that is taken would otherwise never be told so.
//!   Those answers are still held to the per-address ERROR bucket (5 at once, 2 a second)
//!   and to a per-worker budget for all strangers ([`STRANGER_ERRORS_TOTAL_PER_SEC`]), so
//!   a spoofed flood reflects at most that many short datagrams a second.
//! - Discovery: a `SERVER_HERE` answering a `DISCOVER` is held to the same buckets as an
//!   ERROR (5 at once and 2 a second per address, the per-worker budget for all), on top of
//!   the byte rule; the handler already keeps it no larger than the question. So a LAN
//!   that asks (or a spoofed flood of DISCOVERs) gets a few answers a second per source.
//!
//! # The table of records
//!
//! Each worker owns the records of the addresses routed to it, so the limiter needs no
//! lock. The records are bounded at [`MAX_TRACKED`] per worker and kept in an LRU cache
//! (the `lru` crate: a hash map over a linked list, most recently heard first), because a
//! spoofed flood sends every datagram from a new address, and each of those must cost
//! O(1) even when the table is full:
//!
//! - A known address moves to the front. A new address when the table is full takes the
//!   place of the least recently heard one (the cache reuses its node: no allocation).
//!   The first version scanned the whole table for idle records on each new address once
//!   it was full, about 280 µs a datagram.
//! - Idle records are forgotten after `PURGE_AFTER` (10 s), when their buckets would be full
//!   again anyway. Recency order is the order of the records' last datagrams, so the idle
//!   ones are all at the back: they are popped from there, at most `PURGE_BATCH` per
//!   datagram, so that the end of a flood is not paid for by one datagram.
//! - What a flood of new addresses achieves: it can evict a record only by sending
//!   [`MAX_TRACKED`] other new addresses between two datagrams of that record's address.
//!   An address that keeps talking stays near the front and is not evicted, and an evicted
//!   one loses nothing that matters: its request bucket comes back full (it can only
//!   gain), its ERROR bucket comes back at its burst of 5 (still under the per-worker
//!   budget), and a stranger's amplification credit comes back at the bytes of its new
//!   datagram (a login's answer does not need credit). An attacker evicting its own
//!   record spends [`MAX_TRACKED`] datagrams to win back one burst (2,000 by default).
//!   Memory stays bounded by [`MAX_TRACKED`] records whatever the flood (about 10 MB per
//!   worker at most, as before).
//! - Before, past [`MAX_TRACKED`] a new address shared one overflow bucket with every
//!   other untracked address. It is gone: during a flood of fresh addresses it starved
//!   every new or returning user along with the flood, while the flood itself, one
//!   datagram per address, is not something a per-address limit can hold back.
//! - Why not two generations of plain maps (rotated when the current one fills): also
//!   O(1) amortized, but a rotation drops a whole generation at once, and a steady address
//!   survives one to two generations instead of exactly [`MAX_TRACKED`] newer addresses.
//!   The `lru` crate is small, widely used, and gives the exact order without hand-written
//!   list code.
//! - The map hashes with the standard library's keyed SipHash ([`RandomState`]), as the
//!   plain `HashMap` before it did, rather than the crate's faster default: the keys are
//!   source addresses an attacker chooses, so the hash must resist crafted collisions.

use std::collections::hash_map::RandomState;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use lru::LruCache;

use crate::datagram::Class;
use crate::outbox::Outbox;

/// How many times the bytes a stranger sent it may be sent back (RFC 9000 §8.1).
pub const AMPLIFICATION_FACTOR: i64 = 3;

/// Addresses one worker tracks at most.
pub const MAX_TRACKED: usize = 65_536;
/// A record untouched this long is forgotten (its buckets would be full again by then).
const PURGE_AFTER: Duration = Duration::from_secs(10);
/// How often the back of the table is checked for idle records.
const PURGE_EVERY: Duration = Duration::from_secs(1);
/// Idle records forgotten per datagram at most; the rest go with the next datagrams.
const PURGE_BATCH: usize = 1024;
/// ERROR replies per second to one address that is not logged in.
const STRANGER_ERRORS_PER_SEC: f64 = 2.0;
/// Burst of ERROR replies to one address that is not logged in.
const STRANGER_ERROR_BURST: f64 = 5.0;
/// ERROR replies per second one worker sends to all addresses not logged in together.
pub const STRANGER_ERRORS_TOTAL_PER_SEC: f64 = 500.0;

/// The limits, from the command line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Requests per second per address; 0 turns request limiting off.
    pub rate: f64,
    /// Bucket size for requests.
    pub burst: f64,
    /// Whether replies to strangers are held to the bytes they sent.
    pub amplification_guard: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            rate: 1000.0,
            burst: 2000.0,
            amplification_guard: true,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
}

impl Bucket {
    fn full(size: f64) -> Self {
        Bucket { tokens: size }
    }

    fn take(&mut self, elapsed: f64, rate: f64, size: f64) -> bool {
        self.tokens = (self.tokens + elapsed * rate).min(size);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Record {
    last: Instant,
    requests: Bucket,
    errors: Bucket,
    /// [`AMPLIFICATION_FACTOR`] times the bytes received from the address, minus the bytes
    /// sent to it while it was a stranger.
    credit: i64,
}

/// What the limiter says about a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Handle it.
    Pass,
    /// Drop it: the address is over its request rate.
    RateLimited,
}

/// Per-worker limiter state.
#[derive(Debug)]
pub struct Limiter {
    limits: Limits,
    /// Most recently heard first; full, a new address evicts the least recently heard.
    records: LruCache<SocketAddr, Record, RandomState>,
    last_purge: Instant,
    stranger_errors: Bucket,
    stranger_errors_last: Instant,
}

impl Limiter {
    /// A limiter applying `limits`.
    pub fn new(limits: Limits, now: Instant) -> Self {
        let cap = NonZeroUsize::new(MAX_TRACKED).expect("MAX_TRACKED is not zero");
        Limiter {
            limits,
            records: LruCache::with_hasher(cap, RandomState::new()),
            last_purge: now,
            stranger_errors: Bucket::full(STRANGER_ERRORS_TOTAL_PER_SEC),
            stranger_errors_last: now,
        }
    }

    /// Addresses tracked now.
    pub fn tracked(&self) -> usize {
        self.records.len()
    }

    /// Forgets up to `PURGE_BATCH` idle records from the back of the table. If that many
    /// went, the next datagram goes on with the rest instead of waiting a second.
    fn purge(&mut self, now: Instant) {
        for _ in 0..PURGE_BATCH {
            match self.records.peek_lru() {
                Some((_, r)) if now.saturating_duration_since(r.last) >= PURGE_AFTER => {
                    self.records.pop_lru();
                }
                _ => {
                    self.last_purge = now;
                    return;
                }
            }
        }
    }

    /// Accounts a datagram of `len` bytes from `from` at `now`.
    pub fn admit(&mut self, from: SocketAddr, len: usize, now: Instant) -> Verdict {
        if now.saturating_duration_since(self.last_purge) >= PURGE_EVERY {
            self.purge(now);
        }
        let l = self.limits;
        // Known: moved to the front. New: takes the least recently heard one's place if
        // the table is full.
        let r = self.records.get_or_insert_mut(from, || Record {
            last: now,
            requests: Bucket::full(l.burst),
            errors: Bucket::full(STRANGER_ERROR_BURST),
            credit: 0,
        });
        let elapsed = now.saturating_duration_since(r.last).as_secs_f64();
        r.last = now;
        r.credit = r
            .credit
            .saturating_add((len as i64).saturating_mul(AMPLIFICATION_FACTOR));
        // The error bucket refills on the same clock.
        r.errors.tokens =
            (r.errors.tokens + elapsed * STRANGER_ERRORS_PER_SEC).min(STRANGER_ERROR_BURST);
        if l.rate <= 0.0 || r.requests.take(elapsed, l.rate, l.burst) {
            Verdict::Pass
        } else {
            Verdict::RateLimited
        }
    }

    /// Decides whether `bytes` of replies, `errors` of them ERRORs, may go to `to`, which
    /// was not logged in when it sent its request at `now`. Charges them if so. A reply to
    /// a LOGIN_REQ (`login`) is exempt from the byte rule, not from the ERROR rates.
    pub fn allow_stranger_reply(
        &mut self,
        to: SocketAddr,
        bytes: usize,
        errors: usize,
        login: bool,
        now: Instant,
    ) -> bool {
        let guard = self.limits.amplification_guard && !login;
        // `admit` has just moved `to` to the front; a peek leaves the order alone.
        let Some(r) = self.records.peek_mut(&to) else {
            return !guard && errors == 0;
        };
        if guard && (bytes as i64) > r.credit {
            return false;
        }
        if errors > 0 {
            let elapsed = now
                .saturating_duration_since(self.stranger_errors_last)
                .as_secs_f64();
            self.stranger_errors_last = now;
            let total = &mut self.stranger_errors;
            total.tokens = (total.tokens + elapsed * STRANGER_ERRORS_TOTAL_PER_SEC)
                .min(STRANGER_ERRORS_TOTAL_PER_SEC);
            if r.errors.tokens < errors as f64 || total.tokens < errors as f64 {
                return false;
            }
            r.errors.tokens -= errors as f64;
            total.tokens -= errors as f64;
        }
        if guard {
            r.credit -= bytes as i64;
        }
        true
    }
}

/// The policy for replies to addresses that are not logged in, in one place.
impl Limiter {
    /// Applies the stranger rules to the replies queued for `to` since reply number
    /// `mark` of `out`, answering a datagram of class `class` that `to` sent while not
    /// logged in: all of them go, or none (withdrawn and counted by the caller). Returns
    /// how many were withdrawn.
    pub fn police_stranger_replies(
        &mut self,
        to: SocketAddr,
        class: Class,
        out: &mut Outbox,
        mark: usize,
        now: Instant,
    ) -> usize {
        let replies = out.replies_to_since(to, mark);
        // Answers to DISCOVER are rationed like ERRORs (module docs).
        let rationed = if class.is_discover() {
            replies.count
        } else {
            replies.errors
        };
        if replies.count == 0
            || self.allow_stranger_reply(to, replies.bytes, rationed, class.is_login(), now)
        {
            return 0;
        }
        out.withdraw_to_since(to, mark)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    /// A limiter with `limits`, and the moment it starts.
    fn limiter(limits: Limits) -> (Limiter, Instant) {
        let t0 = Instant::now();
        (Limiter::new(limits, t0), t0)
    }

    /// The `i`th of many distinct addresses, none of them `addr(_)`.
    fn many(i: u32) -> SocketAddr {
        SocketAddr::from(((i + 1).to_be_bytes(), 9))
    }

    #[test]
    fn bucket_allows_a_burst_then_the_rate() {
        let (mut l, t0) = limiter(Limits {
            rate: 10.0,
            burst: 5.0,
            amplification_guard: true,
        });
        let passed = (0..20)
            .filter(|_| l.admit(addr(1), 10, t0) == Verdict::Pass)
            .count();
        assert_eq!(passed, 5);
        // Another address is not affected.
        assert_eq!(l.admit(addr(2), 10, t0), Verdict::Pass);
        // After half a second, 5 more tokens.
        let t1 = t0 + Duration::from_millis(500);
        let passed = (0..20)
            .filter(|_| l.admit(addr(1), 10, t1) == Verdict::Pass)
            .count();
        assert_eq!(passed, 5);
    }

    #[test]
    fn strangers_never_get_more_than_three_times_what_they_sent() {
        let (mut l, t0) = limiter(Limits::default());
        // A 9-byte JOIN_REQ earns the 15-byte `ERROR please log in` at once.
        l.admit(addr(1), 9, t0);
        assert!(l.allow_stranger_reply(addr(1), 15, 1, false, t0));
        // 27 allowed, 15 sent: 12 left.
        assert!(!l.allow_stranger_reply(addr(1), 13, 1, false, t0));
        assert!(l.allow_stranger_reply(addr(1), 12, 1, false, t0));
        assert!(!l.allow_stranger_reply(addr(1), 1, 0, false, t0));
        l.admit(addr(2), 2, t0);
        assert!(!l.allow_stranger_reply(addr(2), 7, 1, false, t0));
        assert!(l.allow_stranger_reply(addr(2), 6, 1, false, t0));
    }

    #[test]
    fn stranger_errors_are_rate_limited() {
        let (mut l, t0) = limiter(Limits::default());
        let mut sent = 0;
        for _ in 0..50 {
            l.admit(addr(1), 1000, t0);
            if l.allow_stranger_reply(addr(1), 10, 1, false, t0) {
                sent += 1;
            }
        }
        assert_eq!(sent, STRANGER_ERROR_BURST as usize);
    }

    #[test]
    fn discovery_answers_are_rationed_per_source() {
        use proto::{Event, Request};
        let (mut l, t0) = limiter(Limits {
            amplification_guard: false,
            ..Limits::default()
        });
        let ask = Request::Discover.to_bytes();
        let class = Class::of(&ask);
        let answer = Event::ServerHere {
            port: 2027,
            name: "x",
            users: 1,
        };
        let mut answered = 0;
        for i in 0..50u64 {
            let now = t0 + Duration::from_millis(i);
            l.admit(addr(1), ask.len(), now);
            let mut out = Outbox::new();
            out.send(addr(1), &answer);
            if l.police_stranger_replies(addr(1), class, &mut out, 0, now) == 0 {
                answered += 1;
            }
        }
        // The burst, plus what 50 ms of the per-address rate allows.
        assert_eq!(answered, STRANGER_ERROR_BURST as usize);
        let later = t0 + Duration::from_secs(1);
        l.admit(addr(1), ask.len(), later);
        let mut out = Outbox::new();
        out.send(addr(1), &answer);
        assert_eq!(
            l.police_stranger_replies(addr(1), class, &mut out, 0, later),
            0
        );
    }

    #[test]
    fn login_errors_skip_the_byte_rule_but_not_the_error_rates() {
        let (mut l, t0) = limiter(Limits::default());
        l.admit(addr(1), 3, t0);
        assert!(l.allow_stranger_reply(addr(1), 25, 1, true, t0));
        let mut total = 1;
        for i in 2..5000u32 {
            let a = SocketAddr::from((i.to_be_bytes(), 7));
            l.admit(a, 3, t0);
            if l.allow_stranger_reply(a, 25, 1, true, t0) {
                total += 1;
            }
        }
        assert_eq!(total, STRANGER_ERRORS_TOTAL_PER_SEC as usize);
    }

    #[test]
    fn records_stay_bounded_under_a_flood_of_addresses() {
        let (mut l, t0) = limiter(Limits::default());
        let flood = (MAX_TRACKED + 1000) as u32;
        for i in 0..flood {
            l.admit(many(i), 2, t0);
            assert!(l.tracked() <= MAX_TRACKED);
        }
        assert_eq!(l.tracked(), MAX_TRACKED);
        // The newest are kept, the oldest made room.
        assert!(l.records.contains(&many(flood - 1)));
        assert!(!l.records.contains(&many(999)));
        assert!(l.records.contains(&many(1000)));
        // Later, idle records are forgotten, a batch per datagram at most...
        let later = t0 + PURGE_AFTER + Duration::from_secs(1);
        l.admit(addr(1), 2, later);
        assert_eq!(l.tracked(), MAX_TRACKED - PURGE_BATCH + 1);
        // ...until none is left.
        for _ in 0..MAX_TRACKED / PURGE_BATCH {
            l.admit(addr(1), 2, later);
        }
        assert_eq!(l.tracked(), 1);
    }

    #[test]
    fn a_full_table_evicts_the_least_recently_heard() {
        let (mut l, t0) = limiter(Limits::default());
        for i in 0..MAX_TRACKED as u32 {
            l.admit(many(i), 2, t0);
        }
        // The oldest speaks again, so the second oldest goes first.
        l.admit(many(0), 2, t0);
        l.admit(addr(1), 2, t0);
        assert_eq!(l.tracked(), MAX_TRACKED);
        assert!(l.records.contains(&many(0)));
        assert!(!l.records.contains(&many(1)));
        assert!(l.records.contains(&addr(1)));
    }

    #[test]
    fn a_steady_address_passes_through_a_flood_of_new_addresses() {
        // The steady address sends exactly at its rate (one token a millisecond, no
        // spare burst), one datagram per 100 of the flood's, which comes at 100,000 a
        // second. The flood first fills the table, then sends 200,000 more addresses.
        let limits = Limits {
            rate: 1000.0,
            burst: 1.0,
            amplification_guard: true,
        };
        let step = Duration::from_micros(10);
        let (mut l, mut now) = limiter(limits);
        let steady = addr(1);
        let fill = MAX_TRACKED as u32 - 1;
        let mut sent = 0;
        for i in 0..fill + 200_000 {
            if i == fill {
                assert_eq!(l.tracked(), MAX_TRACKED);
            }
            now += step;
            l.admit(many(i), 2, now);
            assert!(l.tracked() <= MAX_TRACKED);
            if i % 100 == 99 {
                assert_eq!(l.admit(steady, 10, now), Verdict::Pass, "datagram {i}");
                sent += 10;
            }
        }
        // Its record lived through the flood: the credit counts every byte it sent.
        assert_eq!(
            l.records.peek(&steady).map(|r| r.credit),
            Some(sent * AMPLIFICATION_FACTOR)
        );
        // The flood itself was held to the table's size: its first addresses are gone.
        assert!(!l.records.contains(&many(0)));
        assert!(l.records.contains(&many(fill + 199_999)));
    }
}
