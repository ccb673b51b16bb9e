//! How often password logins and registrations may start, counted only once the sender
//! has proven it receives at its address (a retry token or a registration cookie), so a
//! forged source address spends nobody's allowance.
//!
//! Password logins are limited three ways, each a window that resets after a quiet minute:
//! - per account and source prefix ([`Prefix`]: an IPv4 /24, an IPv6 /64): at most
//!   [`PER_ACCOUNT_PREFIX`] starts a minute, then that prefix waits for that account, one
//!   minute after the first lockout and twice as long after each further one, up to an
//!   hour ([`MAX_BACKOFF`]); a finished login clears it. Someone guessing from their own
//!   network locks only their own network out of the account;
//! - per source prefix over all accounts, [`PER_PREFIX`] a minute (one network trying
//!   many accounts);
//! - per account over all prefixes, [`PER_ACCOUNT`] a minute: the bound on guessing from
//!   many networks at once. It is well above what one owner uses, and a botnet big enough
//!   to reach it from many /24s can also keep the account busy for everyone (SECURITY.md).
//!
//! Registrations (new accounts, not password changes) are limited per address and per
//! prefix per hour ([`RegisterLimits`]).

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use dashmap::DashMap;

/// Login starts per account and source prefix per window before backoff.
pub const PER_ACCOUNT_PREFIX: u32 = 5;
/// Login starts per source prefix per window, over all accounts.
pub const PER_PREFIX: u32 = 30;
/// Login starts per account per window, over all prefixes.
pub const PER_ACCOUNT: u32 = 100;
/// The window of the login limits.
pub const WINDOW: Duration = Duration::from_secs(60);
/// The longest backoff of an account and prefix after repeated lockouts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// Registrations one address may make per hour.
pub const REGISTER_PER_ADDRESS: u32 = 5;
/// Registrations one prefix may make per hour, unless set otherwise.
pub const DEFAULT_REGISTER_PER_PREFIX: u32 = 30;
/// Entries each table keeps at most; past it the oldest windows are forgotten.
const MAX_ENTRIES: usize = 100_000;

/// A network prefix: what one party can be expected to hold many addresses in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prefix([u8; 8]);

impl Prefix {
    /// The /24 of an IPv4 address (also v4-mapped), the /64 of an IPv6 one.
    pub fn of(addr: SocketAddr) -> Prefix {
        let mut b = [0u8; 8];
        match addr.ip() {
            IpAddr::V4(v4) => {
                b[0] = 4;
                b[1..4].copy_from_slice(&v4.octets()[..3]);
            }
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => {
                    b[0] = 4;
                    b[1..4].copy_from_slice(&v4.octets()[..3]);
                }
                None => b.copy_from_slice(&v6.octets()[..8]),
            },
        }
        Prefix(b)
    }
}

impl std::fmt::Display for Prefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let b = self.0;
        if b[0] == 4 && b[4..] == [0, 0, 0, 0] {
            write!(f, "{}.{}.{}.0/24", b[1], b[2], b[3])
        } else {
            let words: Vec<String> = b
                .chunks(2)
                .map(|w| format!("{:x}", u16::from_be_bytes([w[0], w[1]])))
                .collect();
            write!(f, "{}::/64", words.join(":"))
        }
    }
}

/// A count within a window that starts at the first event after a quiet one.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    count: u32,
}

impl Window {
    fn new(now: Instant) -> Self {
        Window {
            start: now,
            count: 0,
        }
    }

    /// Counts one event; whether it is within `max` for a window of `len`.
    fn take(&mut self, now: Instant, len: Duration, max: u32) -> bool {
        if now.saturating_duration_since(self.start) >= len {
            *self = Window::new(now);
        }
        self.count += 1;
        self.count <= max
    }
}

/// An account and prefix's window and backoff.
#[derive(Debug, Clone, Copy)]
struct Backoff {
    window: Window,
    /// No start until then.
    locked_until: Option<Instant>,
    /// Lockouts so far (the next lasts `WINDOW << lockouts`).
    lockouts: u32,
}

/// Why a login may not start now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// This prefix tried this account too often: locked out of it until the backoff ends.
    /// `fresh` says the lockout began with this attempt (for the log and metrics).
    AccountPrefix {
        /// Whether this attempt started the lockout.
        fresh: bool,
    },
    /// This prefix started too many logins, over all accounts.
    Prefix,
    /// The account had too many starts from everywhere.
    Account,
}

/// The login limits; see the module docs.
#[derive(Debug, Default)]
pub struct LoginLimits {
    per_pair: DashMap<(Box<str>, Prefix), Backoff>,
    per_prefix: DashMap<Prefix, Window>,
    per_account: DashMap<Box<str>, Window>,
}

impl LoginLimits {
    /// Counts a login start for account `key` from `from` at `now`; `Err` if it may not
    /// start. Each map's guard is taken and dropped in turn.
    ///
    /// # Errors
    /// The limit it is over.
    pub fn start(&self, key: &str, from: SocketAddr, now: Instant) -> Result<(), Refusal> {
        let prefix = Prefix::of(from);
        {
            let mut b = self
                .per_pair
                .entry((key.into(), prefix))
                .or_insert(Backoff {
                    window: Window::new(now),
                    locked_until: None,
                    lockouts: 0,
                });
            if b.locked_until.is_some_and(|t| now < t) {
                return Err(Refusal::AccountPrefix { fresh: false });
            }
            if !b.window.take(now, WINDOW, PER_ACCOUNT_PREFIX) {
                let len = WINDOW
                    .saturating_mul(1 << b.lockouts.min(6))
                    .min(MAX_BACKOFF);
                b.locked_until = Some(now + len);
                b.lockouts += 1;
                b.window = Window::new(now + len);
                return Err(Refusal::AccountPrefix { fresh: true });
            }
        }
        if !self
            .per_prefix
            .entry(prefix)
            .or_insert(Window::new(now))
            .take(now, WINDOW, PER_PREFIX)
        {
            return Err(Refusal::Prefix);
        }
        if !self
            .per_account
            .entry(key.into())
            .or_insert(Window::new(now))
            .take(now, WINDOW, PER_ACCOUNT)
        {
            return Err(Refusal::Account);
        }
        Ok(())
    }

    /// A login of `key` from `from` finished: that prefix starts afresh for that account.
    pub fn succeeded(&self, key: &str, from: SocketAddr) {
        self.per_pair.remove(&(key.into(), Prefix::of(from)));
    }

    /// Forgets windows and backoffs that are over at `now`.
    pub fn housekeeping(&self, now: Instant) {
        let over = |w: &Window| now.saturating_duration_since(w.start) >= WINDOW;
        self.per_pair.retain(|_, b| {
            !(over(&b.window) && b.locked_until.is_none_or(|t| now >= t + MAX_BACKOFF))
        });
        self.per_prefix.retain(|_, w| !over(w));
        self.per_account.retain(|_, w| !over(w));
        // Only proven addresses make entries, so this takes an attacker with very many
        // networks; forgetting then costs at most a window's count, never memory.
        if self.per_pair.len() > MAX_ENTRIES {
            self.per_pair.clear();
        }
    }
}

/// The registration limits; see the module docs.
#[derive(Debug)]
pub struct RegisterLimits {
    per_prefix_max: u32,
    per_address: DashMap<SocketAddr, Window>,
    per_prefix: DashMap<Prefix, Window>,
}

impl RegisterLimits {
    /// Limits of `per_prefix` registrations per prefix per hour.
    pub fn new(per_prefix: u32) -> Self {
        RegisterLimits {
            per_prefix_max: per_prefix,
            per_address: DashMap::new(),
            per_prefix: DashMap::new(),
        }
    }

    /// Counts a new registration from `from`; whether it may go ahead.
    pub fn take(&self, from: SocketAddr, now: Instant) -> bool {
        const HOUR: Duration = Duration::from_secs(3600);
        if self.per_address.len() > MAX_ENTRIES {
            self.per_address.clear();
        }
        let per_address = self
            .per_address
            .entry(from)
            .or_insert(Window::new(now))
            .take(now, HOUR, REGISTER_PER_ADDRESS);
        per_address
            && self
                .per_prefix
                .entry(Prefix::of(from))
                .or_insert(Window::new(now))
                .take(now, HOUR, self.per_prefix_max)
    }
}

impl Default for RegisterLimits {
    fn default() -> Self {
        Self::new(DEFAULT_REGISTER_PER_PREFIX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn prefixes_group_a_network() {
        assert_eq!(Prefix::of(a("10.1.2.3:1")), Prefix::of(a("10.1.2.200:9")));
        assert_ne!(Prefix::of(a("10.1.2.3:1")), Prefix::of(a("10.1.3.3:1")));
        assert_eq!(
            Prefix::of(a("[::ffff:10.1.2.3]:1")),
            Prefix::of(a("10.1.2.9:1"))
        );
        assert_eq!(
            Prefix::of(a("[2001:db8:1:2::1]:1")),
            Prefix::of(a("[2001:db8:1:2:ffff::]:1"))
        );
        assert_eq!(Prefix::of(a("10.1.2.3:1")).to_string(), "10.1.2.0/24");
        assert_eq!(
            Prefix::of(a("[2001:db8:1:2::1]:1")).to_string(),
            "2001:db8:1:2::/64"
        );
    }

    #[test]
    fn a_guessing_network_locks_only_itself_out_with_growing_backoff() {
        let l = LoginLimits::default();
        let t0 = Instant::now();
        let evil = a("203.0.113.7:5000");
        let owner = a("198.51.100.4:6000");
        for _ in 0..PER_ACCOUNT_PREFIX {
            assert_eq!(l.start("ann", evil, t0), Ok(()));
        }
        assert_eq!(
            l.start("ann", evil, t0),
            Err(Refusal::AccountPrefix { fresh: true })
        );
        assert_eq!(
            l.start("ann", evil, t0 + Duration::from_secs(30)),
            Err(Refusal::AccountPrefix { fresh: false })
        );
        // The owner, elsewhere, is not affected.
        assert_eq!(l.start("ann", owner, t0), Ok(()));
        // After the first minute the guesser may try again, and the next lockout is longer.
        let t1 = t0 + WINDOW + Duration::from_secs(1);
        for _ in 0..PER_ACCOUNT_PREFIX {
            assert_eq!(l.start("ann", evil, t1), Ok(()));
        }
        assert!(l.start("ann", evil, t1).is_err());
        assert!(l
            .start("ann", evil, t1 + WINDOW + Duration::from_secs(1))
            .is_err());
        assert!(l
            .start("ann", evil, t1 + 2 * WINDOW + Duration::from_secs(1))
            .is_ok());
        // A success clears the pair.
        l.succeeded("ann", owner);
    }

    #[test]
    fn one_network_can_not_spray_many_accounts() {
        let l = LoginLimits::default();
        let t0 = Instant::now();
        let evil = a("203.0.113.7:5000");
        let ok = (0..100)
            .filter(|i| l.start(&format!("user{i}"), evil, t0).is_ok())
            .count();
        assert_eq!(ok, PER_PREFIX as usize);
    }

    #[test]
    fn registrations_are_limited_per_address_and_prefix() {
        let l = RegisterLimits::new(7);
        let t0 = Instant::now();
        let ok = (0..10).filter(|_| l.take(a("10.0.0.1:1"), t0)).count();
        assert_eq!(ok, REGISTER_PER_ADDRESS as usize);
        let ok = (2..20)
            .filter(|p| l.take(a(&format!("10.0.0.1:{p}")), t0))
            .count();
        assert_eq!(ok, 7 - REGISTER_PER_ADDRESS as usize);
        assert!(l.take(a("10.0.1.1:1"), t0), "another network");
    }
}
