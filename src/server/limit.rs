//! Flood limits applied by each worker before a datagram reaches the state machine.
//!
//! - Requests: a token bucket per source address (`--rate-limit` per second, bursts of
//!   `--rate-burst`); excess is dropped and counted, so one address can't take the
//!   server from the others.
//! - ERROR replies to addresses that are not logged in: a second, smaller bucket per
//!   address, so that junk from a stranger can't make the server a chatty reflector.
//! - Amplification: an address that is not logged in is never sent more bytes in all than
//!   it has sent (`--allow-amplification` turns this off), with one exception: the ERROR
//!   answering a LOGIN_REQ. A classic client can't pad its login (the payload is the
//!   nickname), and a one-letter nickname that is taken would otherwise never be told so.
//!   Those answers are still held to the per-address ERROR bucket (5 at once, 2 a second)
//!   and to a per-worker budget for all strangers ([`STRANGER_ERRORS_TOTAL_PER_SEC`]), so
//!   a spoofed flood reflects at most that many short datagrams a second.
//!
//! Each worker owns the records of the addresses routed to it, so the limiter needs no
//! lock. The records are bounded: idle ones are purged, and past [`MAX_TRACKED`] a new
//! address shares one overflow bucket and is sent nothing until it is tracked.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::datagram::Class;
use crate::outbox::Outbox;

/// Addresses one worker tracks at most.
pub const MAX_TRACKED: usize = 65_536;
/// A record untouched this long is forgotten (its buckets would be full again by then).
const PURGE_AFTER: Duration = Duration::from_secs(10);
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
    /// Bytes received from the address minus bytes sent to it while it was a stranger.
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
    records: HashMap<SocketAddr, Record>,
    overflow: Bucket,
    overflow_last: Instant,
    last_purge: Instant,
    stranger_errors: Bucket,
    stranger_errors_last: Instant,
}

impl Limiter {
    /// A limiter applying `limits`.
    pub fn new(limits: Limits, now: Instant) -> Self {
        Limiter {
            limits,
            records: HashMap::new(),
            overflow: Bucket::full(limits.burst),
            overflow_last: now,
            last_purge: now,
            stranger_errors: Bucket::full(STRANGER_ERRORS_TOTAL_PER_SEC),
            stranger_errors_last: now,
        }
    }

    /// Addresses tracked now.
    pub fn tracked(&self) -> usize {
        self.records.len()
    }

    fn purge(&mut self, now: Instant) {
        self.records
            .retain(|_, r| now.saturating_duration_since(r.last) < PURGE_AFTER);
        self.last_purge = now;
    }

    /// Accounts a datagram of `len` bytes from `from` at `now`.
    pub fn admit(&mut self, from: SocketAddr, len: usize, now: Instant) -> Verdict {
        if now.saturating_duration_since(self.last_purge) >= Duration::from_secs(1) {
            self.purge(now);
        }
        let l = self.limits;
        if !self.records.contains_key(&from) && self.records.len() >= MAX_TRACKED {
            self.purge(now);
        }
        let record = if self.records.len() < MAX_TRACKED || self.records.contains_key(&from) {
            Some(self.records.entry(from).or_insert(Record {
                last: now,
                requests: Bucket::full(l.burst),
                errors: Bucket::full(STRANGER_ERROR_BURST),
                credit: 0,
            }))
        } else {
            None
        };
        let Some(r) = record else {
            let elapsed = now
                .saturating_duration_since(self.overflow_last)
                .as_secs_f64();
            self.overflow_last = now;
            return if l.rate <= 0.0 || self.overflow.take(elapsed, l.rate, l.burst) {
                Verdict::Pass
            } else {
                Verdict::RateLimited
            };
        };
        let elapsed = now.saturating_duration_since(r.last).as_secs_f64();
        r.last = now;
        r.credit = r.credit.saturating_add(len as i64);
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
        let Some(r) = self.records.get_mut(&to) else {
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
        if replies.count == 0
            || self.allow_stranger_reply(to, replies.bytes, replies.errors, class.is_login(), now)
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

    #[test]
    fn bucket_allows_a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut l = Limiter::new(
            Limits {
                rate: 10.0,
                burst: 5.0,
                amplification_guard: true,
            },
            t0,
        );
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
    fn strangers_never_get_more_bytes_than_they_sent() {
        let t0 = Instant::now();
        let mut l = Limiter::new(Limits::default(), t0);
        l.admit(addr(1), 2, t0);
        assert!(!l.allow_stranger_reply(addr(1), 15, 1, false, t0));
        for _ in 0..7 {
            l.admit(addr(1), 2, t0);
        }
        assert!(l.allow_stranger_reply(addr(1), 15, 1, false, t0));
        // 16 received, 15 sent: one byte of credit left.
        assert!(!l.allow_stranger_reply(addr(1), 2, 0, false, t0));
    }

    #[test]
    fn stranger_errors_are_rate_limited() {
        let t0 = Instant::now();
        let mut l = Limiter::new(Limits::default(), t0);
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
    fn login_errors_skip_the_byte_rule_but_not_the_error_rates() {
        let t0 = Instant::now();
        let mut l = Limiter::new(Limits::default(), t0);
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
        let t0 = Instant::now();
        let mut l = Limiter::new(Limits::default(), t0);
        for i in 0..(MAX_TRACKED + 1000) as u32 {
            let a = SocketAddr::from(((i + 1).to_be_bytes(), 9));
            l.admit(a, 2, t0);
        }
        assert_eq!(l.tracked(), MAX_TRACKED);
        // Later, idle records are purged.
        l.admit(addr(1), 2, t0 + PURGE_AFTER + Duration::from_secs(1));
        assert_eq!(l.tracked(), 1);
    }
}
