//! What the server may send to an address that has not proved it receives what we send:
//! a classic guest. Anyone can send a `LOGIN_REQ` with a victim's address as its source, so
//! a guest's address is a claim until the guest echoes a proof token (`PROVE`, part 3 of
//! the protocol) or logs in with a password. Until then every datagram the server sends
//! there (answers, fan-outs, notices) is charged here, and what goes over is held back and
//! counted, so a forger can't turn the server into a reflector (RFC 9000 §8.1's rule for
//! unvalidated addresses; DNS Response Rate Limiting's per-prefix budgets).
//!
//! Three token buckets, in bytes, each checked before the datagram goes:
//!
//! - **the address**: it starts with an allowance (`--unproved-allowance`, 16 KiB: a classic
//!   session's login, channel list, join and user list fit), earns three times every byte
//!   the address sends, and refills at `--unproved-rate` (4 KiB/s: a busy channel at
//!   ordinary chat rates) up to the allowance;
//! - **its network** (IPv4 /24, IPv6 /64): refills at `--unproved-prefix-rate` (256 KiB/s)
//!   up to four seconds of it, and also earns three times what the network's unproved
//!   guests send, so many forged guests in a victim's network share one budget;
//! - **all unproved addresses together**: `--unproved-total-rate` (4 MiB/s), up to one
//!   second of it.
//!
//! So whatever a forger does, one victim address receives at most the allowance, plus
//! three times what was sent in its name, plus the address rate for as long as the forged
//! guest is kept alive; a victim network at most four seconds of the prefix rate plus the
//! prefix rate; and all victims together the total rate (docs/SECURITY.md). Proved and
//! protected users are not tracked here and cost the send path nothing: only fan-out
//! members marked `unproved` and replies to tracked addresses are looked up.
//!
//! The buckets live in concurrent maps (dashmap), charged by whichever thread sends
//! (workers, senders, the cluster thread). No guard of one map is held while another is
//! taken: a charge takes the address's tokens, then the network's, then the total, and
//! gives back what it took if a later one refuses.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use dashmap::DashMap;
use parking_lot::Mutex;

/// How many times the bytes an address sent it may be sent back (RFC 9000 §8.1).
pub const EARN_FACTOR: i64 = 3;
/// Seconds of its rate a network's bucket holds.
const PREFIX_SECONDS: i64 = 4;

/// The budgets' sizes, from the settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetLimits {
    /// Whether the budgets apply at all (`--allow-amplification` turns them off).
    pub on: bool,
    /// Bytes an unproved address starts with, and the most its refill reaches.
    pub allowance: u64,
    /// Bytes per second an unproved address's budget refills.
    pub rate: u64,
    /// Bytes per second a network's budget refills.
    pub prefix_rate: u64,
    /// Bytes per second all unproved addresses together may be sent.
    pub total_rate: u64,
}

impl Default for BudgetLimits {
    fn default() -> Self {
        BudgetLimits {
            on: true,
            allowance: 16 * 1024,
            rate: 4 * 1024,
            prefix_rate: 256 * 1024,
            total_rate: 4 * 1024 * 1024,
        }
    }
}

/// Which budget held a datagram back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// The address's own.
    Address,
    /// Its network's.
    Prefix,
    /// All unproved addresses'.
    Total,
}

impl Held {
    const ALL: [Held; 3] = [Held::Address, Held::Prefix, Held::Total];

    /// The label of its metric.
    pub fn label(self) -> &'static str {
        match self {
            Held::Address => "address",
            Held::Prefix => "prefix",
            Held::Total => "total",
        }
    }
}

/// A network as the budgets count it: an IPv4 /24 or an IPv6 /64 (IPv4-mapped IPv6 as
/// IPv4), as the registration limits count networks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Prefix {
    V4([u8; 3]),
    V6([u8; 8]),
}

impl Prefix {
    fn of(ip: IpAddr) -> Prefix {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        match ip {
            IpAddr::V4(v4) => {
                let [a, b, c, _] = v4.octets();
                Prefix::V4([a, b, c])
            }
            IpAddr::V6(v6) => {
                let mut p = [0u8; 8];
                p.copy_from_slice(&v6.octets()[..8]);
                Prefix::V6(p)
            }
        }
    }
}

/// A token bucket of bytes.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: i64,
    /// Nanoseconds since the budgets' epoch of the last refill.
    last: u64,
}

impl Bucket {
    fn full(tokens: i64, now: u64) -> Bucket {
        Bucket { tokens, last: now }
    }

    /// Refills at `rate` bytes a second up to `cap` (tokens earned above it are kept).
    fn refill(&mut self, now: u64, rate: u64, cap: i64) {
        let elapsed = now.saturating_sub(self.last);
        self.last = self.last.max(now);
        if self.tokens < cap {
            let add = (u128::from(elapsed) * u128::from(rate) / 1_000_000_000) as i64;
            self.tokens = self.tokens.saturating_add(add).min(cap);
        }
    }

    /// Takes `bytes` if there are that many.
    fn take(&mut self, bytes: i64) -> bool {
        let ok = self.tokens >= bytes;
        if ok {
            self.tokens -= bytes;
        }
        ok
    }
}

/// A network's bucket and how many unproved addresses of it are tracked.
#[derive(Debug, Clone, Copy)]
struct Network {
    bucket: Bucket,
    addrs: u32,
}

/// The budgets of unproved addresses; cheap to clone (a handle on shared maps).
#[derive(Debug, Clone)]
pub struct Budgets {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    limits: BudgetLimits,
    epoch: Instant,
    addrs: DashMap<SocketAddr, Bucket>,
    networks: DashMap<Prefix, Network>,
    total: Mutex<Bucket>,
    /// Entries in `addrs`, so that a server with no unproved guest skips every look-up.
    count: AtomicUsize,
    /// Datagrams and bytes held back, by [`Held`].
    held: [AtomicU64; 3],
    held_bytes: [AtomicU64; 3],
    /// Bytes sent to unproved addresses.
    sent_bytes: AtomicU64,
}

impl Default for Budgets {
    fn default() -> Self {
        Budgets::new(BudgetLimits::default())
    }
}

impl Budgets {
    /// Budgets of these sizes.
    pub fn new(limits: BudgetLimits) -> Budgets {
        let epoch = Instant::now();
        Budgets {
            inner: Arc::new(Inner {
                limits,
                epoch,
                addrs: DashMap::new(),
                networks: DashMap::new(),
                total: Mutex::new(Bucket::full(limits.total_rate as i64, 0)),
                count: AtomicUsize::new(0),
                held: Default::default(),
                held_bytes: Default::default(),
                sent_bytes: AtomicU64::new(0),
            }),
        }
    }

    /// Their sizes.
    pub fn limits(&self) -> BudgetLimits {
        self.inner.limits
    }

    fn now(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.inner.epoch).as_nanos() as u64
    }

    /// Starts the budget of `addr`, a guest that just logged in unproved (nothing if it
    /// has one already, or if the budgets are off).
    pub fn open(&self, addr: SocketAddr, now: Instant) {
        let l = self.inner.limits;
        if !l.on {
            return;
        }
        let t = self.now(now);
        let mut added = false;
        self.inner.addrs.entry(addr).or_insert_with(|| {
            added = true;
            Bucket::full(l.allowance as i64, t)
        });
        if !added {
            return;
        }
        self.inner.count.fetch_add(1, Ordering::Relaxed);
        let cap = (l.prefix_rate as i64).saturating_mul(PREFIX_SECONDS);
        self.inner
            .networks
            .entry(Prefix::of(addr.ip()))
            .or_insert_with(|| Network {
                bucket: Bucket::full(cap, t),
                addrs: 0,
            })
            .addrs += 1;
    }

    /// Ends the budget of `addr` (it proved its address, or logged off).
    pub fn close(&self, addr: SocketAddr) {
        if self.inner.addrs.remove(&addr).is_none() {
            return;
        }
        self.inner.count.fetch_sub(1, Ordering::Relaxed);
        self.inner
            .networks
            .remove_if_mut(&Prefix::of(addr.ip()), |_, n| {
                n.addrs = n.addrs.saturating_sub(1);
                n.addrs == 0
            });
    }

    /// Whether `addr` is an unproved address with a budget.
    pub fn tracked(&self, addr: SocketAddr) -> bool {
        self.inner.count.load(Ordering::Relaxed) > 0 && self.inner.addrs.contains_key(&addr)
    }

    /// Unproved addresses tracked now.
    pub fn len(&self) -> usize {
        self.inner.count.load(Ordering::Relaxed)
    }

    /// Whether no address is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `addr` sent `bytes`: if it is tracked, it and its network earn three times as much.
    pub fn earn(&self, addr: SocketAddr, bytes: usize) {
        if self.inner.count.load(Ordering::Relaxed) == 0 {
            return;
        }
        let earned = (bytes as i64).saturating_mul(EARN_FACTOR);
        let tracked = self
            .inner
            .addrs
            .get_mut(&addr)
            .map(|mut b| b.tokens = b.tokens.saturating_add(earned))
            .is_some();
        if tracked {
            if let Some(mut n) = self.inner.networks.get_mut(&Prefix::of(addr.ip())) {
                n.bucket.tokens = n.bucket.tokens.saturating_add(earned);
            }
        }
    }

    /// Charges a datagram of `bytes` to `addr` at `now` if it is tracked: whether it may go.
    /// One held back is counted by the budget that held it.
    pub fn allow(&self, addr: SocketAddr, bytes: usize, now: Instant) -> bool {
        if self.inner.count.load(Ordering::Relaxed) == 0 {
            return true;
        }
        match self.charge(addr, bytes as i64, self.now(now)) {
            Ok(()) => true,
            Err(held) => {
                let i = Held::ALL.iter().position(|h| *h == held).unwrap_or(0);
                self.inner.held[i].fetch_add(1, Ordering::Relaxed);
                self.inner.held_bytes[i].fetch_add(bytes as u64, Ordering::Relaxed);
                false
            }
        }
    }

    fn charge(&self, addr: SocketAddr, bytes: i64, now: u64) -> Result<(), Held> {
        let l = self.inner.limits;
        // The address: untracked means proved (or gone), and nothing is charged.
        let Some(taken) = self.inner.addrs.get_mut(&addr).map(|mut b| {
            b.refill(now, l.rate, l.allowance as i64);
            b.take(bytes)
        }) else {
            return Ok(());
        };
        if !taken {
            return Err(Held::Address);
        }
        let refund = || {
            if let Some(mut b) = self.inner.addrs.get_mut(&addr) {
                b.tokens = b.tokens.saturating_add(bytes);
            }
        };
        // Its network.
        let prefix = Prefix::of(addr.ip());
        let cap = (l.prefix_rate as i64).saturating_mul(PREFIX_SECONDS);
        let network_ok = self.inner.networks.get_mut(&prefix).is_none_or(|mut n| {
            n.bucket.refill(now, l.prefix_rate, cap);
            n.bucket.take(bytes)
        });
        if !network_ok {
            refund();
            return Err(Held::Prefix);
        }
        // Everyone's.
        let total_ok = {
            let mut t = self.inner.total.lock();
            t.refill(now, l.total_rate, l.total_rate as i64);
            t.take(bytes)
        };
        if !total_ok {
            refund();
            if let Some(mut n) = self.inner.networks.get_mut(&prefix) {
                n.bucket.tokens = n.bucket.tokens.saturating_add(bytes);
            }
            return Err(Held::Total);
        }
        self.inner
            .sent_bytes
            .fetch_add(bytes as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Datagrams and bytes held back so far by `held`.
    pub fn held(&self, held: Held) -> (u64, u64) {
        let i = Held::ALL.iter().position(|h| *h == held).unwrap_or(0);
        (
            self.inner.held[i].load(Ordering::Relaxed),
            self.inner.held_bytes[i].load(Ordering::Relaxed),
        )
    }

    /// Bytes sent to unproved addresses so far.
    pub fn sent_bytes(&self) -> u64 {
        self.inner.sent_bytes.load(Ordering::Relaxed)
    }

    /// Every budget that may hold a datagram back, for the metrics page.
    pub fn kinds() -> [Held; 3] {
        Held::ALL
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn addr(ip: [u8; 4], port: u16) -> SocketAddr {
        SocketAddr::from((ip, port))
    }

    fn small() -> Budgets {
        Budgets::new(BudgetLimits {
            on: true,
            allowance: 1000,
            rate: 100,
            prefix_rate: 1000,
            total_rate: 100_000,
        })
    }

    /// Opens a guest at `a` and sends it 100 bytes at a time at `now` until a budget holds
    /// it back; the bytes sent.
    fn send_until_held(b: &Budgets, a: SocketAddr, now: Instant) -> u64 {
        b.open(a, now);
        let mut sent = 0;
        while b.allow(a, 100, now) {
            sent += 100;
        }
        sent
    }

    #[test]
    fn an_unproved_address_gets_its_allowance_what_it_earned_and_its_rate() {
        let b = small();
        let t0 = Instant::now();
        let a = addr([127, 0, 0, 1], 1);
        b.open(a, t0);
        assert!(b.allow(a, 1000, t0));
        assert!(!b.allow(a, 1, t0));
        // It sent 10 bytes: 30 more may go.
        b.earn(a, 10);
        assert!(b.allow(a, 30, t0));
        assert!(!b.allow(a, 1, t0));
        // A second later, the rate's 100 bytes.
        let t1 = t0 + Duration::from_secs(1);
        assert!(b.allow(a, 100, t1));
        assert!(!b.allow(a, 1, t1));
        assert_eq!(b.held(Held::Address), (3, 3));
        // The refill never goes past the allowance.
        let much_later = t0 + Duration::from_secs(3600);
        assert!(b.allow(a, 1000, much_later));
        assert!(!b.allow(a, 1, much_later));
    }

    #[test]
    fn many_forged_guests_in_one_network_share_its_budget() {
        let b = small();
        let t0 = Instant::now();
        // The network holds 4 s of 1,000 bytes/s; each guest its own 1,000.
        let mut sent = 0;
        for port in 1..=10 {
            sent += send_until_held(&b, addr([10, 1, 2, 3], port), t0);
        }
        assert_eq!(sent, 4000);
        assert!(b.held(Held::Prefix).0 > 0);
        // Another network is not held by this one's.
        let other = addr([10, 1, 3, 1], 1);
        b.open(other, t0);
        assert!(b.allow(other, 1000, t0));
    }

    #[test]
    fn all_unproved_addresses_together_are_held_to_the_total_rate() {
        let b = Budgets::new(BudgetLimits {
            on: true,
            allowance: 1000,
            rate: 0,
            prefix_rate: 1_000_000,
            total_rate: 5000,
        });
        let t0 = Instant::now();
        let mut sent = 0;
        for n in 0..50u8 {
            sent += send_until_held(&b, addr([10, n, 0, 1], 1), t0);
        }
        assert_eq!(sent, 5000);
        assert!(b.held(Held::Total).0 > 0);
        // What the total refused was given back to the address: the sixth network's guest,
        // refused at once, still has its whole allowance once the total refills.
        let a = addr([10, 5, 0, 1], 1);
        let t1 = t0 + Duration::from_secs(1);
        assert!(b.allow(a, 1000, t1));
    }

    #[test]
    fn proved_and_unknown_addresses_are_not_charged() {
        let b = small();
        let t0 = Instant::now();
        let a = addr([127, 0, 0, 1], 1);
        assert!(b.allow(a, 1_000_000, t0));
        b.open(a, t0);
        assert!(b.tracked(a));
        b.close(a);
        assert!(!b.tracked(a) && b.is_empty());
        assert!(b.allow(a, 1_000_000, t0));
        // Off: nothing is tracked.
        let off = Budgets::new(BudgetLimits {
            on: false,
            ..BudgetLimits::default()
        });
        off.open(a, t0);
        assert!(!off.tracked(a));
    }

    #[test]
    fn a_network_is_forgotten_with_its_last_unproved_address() {
        let b = small();
        let t0 = Instant::now();
        let (a, c) = (addr([10, 0, 0, 1], 1), addr([10, 0, 0, 2], 1));
        b.open(a, t0);
        b.open(c, t0);
        b.close(a);
        assert_eq!(b.inner.networks.len(), 1);
        b.close(c);
        assert_eq!(b.inner.networks.len(), 0);
        // IPv4-mapped IPv6 counts as IPv4.
        let mapped: SocketAddr = "[::ffff:10.0.0.9]:5".parse().unwrap();
        assert_eq!(Prefix::of(mapped.ip()), Prefix::of(a.ip()));
    }
}
