//! The range of group addresses a server hands out (`--multicast CIDR`) and which channel
//! gets which group: stable across restarts for the same channels file.
//!
//! A channel's preferred slot in the range is a hash of its lower-cased title (SHA-256, so
//! the same on every build and machine); channels are placed in the order of the channels
//! file, each taking its preferred slot or, if an earlier channel has it, the next free one.
//! So the same file always gives the same groups, and a channel added at the end of the
//! file moves nobody else. When there are more channels than addresses, the later ones
//! share their preferred slot: CHANNEL_DATA carries no channel id, but every channel has
//! its own key, so a client tells the channels of one group apart by their tags.

use std::collections::HashSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// A range of multicast group addresses, IPv4 (inside 224.0.0.0/4) or IPv6 (inside
/// ff00::/8), written as CIDR: `239.77.0.0/24`, `ff15::77:0/112`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupRange {
    base: IpAddr,
    prefix: u8,
}

/// Why a `--multicast` range was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    /// Not `ADDRESS/PREFIX`.
    #[error("{0:?} is not a range like 239.77.0.0/24 or ff15::77:0/112")]
    Syntax(String),
    /// The prefix is longer than the address.
    #[error("prefix /{prefix} is too long for {addr}")]
    Prefix {
        /// The address given.
        addr: IpAddr,
        /// The prefix given.
        prefix: u8,
    },
    /// Part of the range is not multicast.
    #[error("{0} is not all multicast (IPv4 groups are in 224.0.0.0/4, IPv6 in ff00::/8)")]
    NotMulticast(String),
    /// 224.0.0.0/24 is for routing protocols; IPv6 scopes 0 (reserved) and 1 (interface-local)
    /// never reach another machine.
    #[error("{0} holds reserved groups (224.0.0.0/24, or an IPv6 scope other than 2 to f: use ff12::/16 for a link, ff15::/16 for a site)")]
    Reserved(String),
    /// Bits set below the prefix, so it is unclear which range was meant.
    #[error("{given} has bits set below the prefix; did you mean {meant}?")]
    HostBits {
        /// As given.
        given: String,
        /// With those bits cleared.
        meant: String,
    },
}

impl GroupRange {
    /// The first address of the range.
    pub fn base(&self) -> IpAddr {
        self.base
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether the groups are IPv6.
    pub fn is_ipv6(&self) -> bool {
        self.base.is_ipv6()
    }

    fn bits(&self) -> u8 {
        if self.is_ipv6() {
            128
        } else {
            32
        }
    }

    /// Addresses in the range (saturating at `u128::MAX` for `/0`-sized IPv6 ranges, which
    /// the parser refuses anyway).
    pub fn size(&self) -> u128 {
        let host = u32::from(self.bits() - self.prefix);
        1u128.checked_shl(host).unwrap_or(u128::MAX)
    }

    /// The `i`-th address of the range (wrapping around its size).
    pub fn nth(&self, i: u128) -> IpAddr {
        let offset = i % self.size();
        match self.base {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) + offset as u32)),
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) + offset)),
        }
    }

    /// Whether `addr` lies in the range.
    pub fn contains(&self, addr: IpAddr) -> bool {
        let host = u32::from(self.bits() - self.prefix);
        match (self.base, addr) {
            (IpAddr::V4(b), IpAddr::V4(a)) => {
                u32::from(a).checked_shr(host).unwrap_or(0)
                    == u32::from(b).checked_shr(host).unwrap_or(0)
            }
            (IpAddr::V6(b), IpAddr::V6(a)) => {
                u128::from(a).checked_shr(host).unwrap_or(0)
                    == u128::from(b).checked_shr(host).unwrap_or(0)
            }
            _ => false,
        }
    }

    /// The group of each channel, titles in channels-file order: see the module docs.
    pub fn assign<'a>(&self, titles: impl IntoIterator<Item = &'a str>) -> Vec<IpAddr> {
        let size = self.size();
        let mut used: HashSet<u128> = HashSet::new();
        let mut out = Vec::new();
        for title in titles {
            let preferred = slot_hash(title) % size;
            let mut slot = preferred;
            // Probe for a free slot, but never more than the range holds: past that, share.
            let mut probes = 0u128;
            while used.contains(&slot) && probes < size {
                slot = (slot + 1) % size;
                probes += 1;
            }
            if probes == size {
                slot = preferred;
            }
            used.insert(slot);
            out.push(self.nth(slot));
        }
        out
    }
}

/// The stable hash of a title that picks its preferred slot.
fn slot_hash(title: &str) -> u128 {
    let mut h = Sha256::new();
    h.update(b"udpchat group v1 ");
    h.update(title.to_lowercase().as_bytes());
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    u128::from_be_bytes(b)
}

impl FromStr for GroupRange {
    type Err = RangeError;

    fn from_str(s: &str) -> Result<Self, RangeError> {
        let syntax = || RangeError::Syntax(s.to_owned());
        let (addr, prefix) = s.trim().split_once('/').ok_or_else(syntax)?;
        let addr: IpAddr = addr.parse().map_err(|_| syntax())?;
        let prefix: u8 = prefix.parse().map_err(|_| syntax())?;
        let bits = if addr.is_ipv6() { 128 } else { 32 };
        if prefix > bits {
            return Err(RangeError::Prefix { addr, prefix });
        }
        let host = u32::from(bits - prefix);
        let masked = match addr {
            IpAddr::V4(a) => {
                let mask = u32::MAX.checked_shl(host).unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX.checked_shl(host).unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
            }
        };
        if masked != addr {
            return Err(RangeError::HostBits {
                given: s.to_owned(),
                meant: format!("{masked}/{prefix}"),
            });
        }
        let range = GroupRange {
            base: masked,
            prefix,
        };
        // The whole range must be multicast: the first address is, and the prefix is at
        // least as long as the multicast block's own (/4, /8).
        let all_multicast = match masked {
            IpAddr::V4(a) => a.is_multicast() && prefix >= 4,
            IpAddr::V6(a) => a.is_multicast() && prefix >= 8,
        };
        if !all_multicast {
            return Err(RangeError::NotMulticast(s.to_owned()));
        }
        let reserved = match masked {
            // 224.0.0.0/24: never forwarded, used by routing protocols.
            IpAddr::V4(_) => range.contains(IpAddr::V4(Ipv4Addr::new(224, 0, 0, 1))),
            // The scope is the low nibble of the first 16 bits: a shorter prefix spans
            // scopes; 0 is reserved and 1 (interface-local) never leaves the host.
            IpAddr::V6(a) => prefix < 16 || matches!(a.segments()[0] & 0x000f, 0x0 | 0x1),
        };
        if reserved {
            return Err(RangeError::Reserved(s.to_owned()));
        }
        Ok(range)
    }
}

impl fmt::Display for GroupRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> GroupRange {
        s.parse().unwrap()
    }

    #[test]
    fn ranges_parse_and_are_checked() {
        let v4 = r("239.77.0.0/24");
        assert_eq!(v4.size(), 256);
        assert_eq!(v4.nth(5), "239.77.0.5".parse::<IpAddr>().unwrap());
        assert_eq!(v4.nth(256), "239.77.0.0".parse::<IpAddr>().unwrap());
        assert!(v4.contains("239.77.0.200".parse().unwrap()));
        assert!(!v4.contains("239.77.1.0".parse().unwrap()));
        assert_eq!(r("239.1.2.3/32").size(), 1);
        let v6 = r("ff15::77:0/112");
        assert_eq!(v6.size(), 65536);
        assert_eq!(v6.nth(1), "ff15::77:1".parse::<IpAddr>().unwrap());
        assert!(v6.is_ipv6());
        assert_eq!(v6.to_string(), "ff15::77:0/112");
        for bad in [
            "239.77.0.0",
            "239.77.0.0/33",
            "10.0.0.0/8",
            "200.0.0.0/3",
            "239.77.0.5/24",
            "224.0.0.0/24",
            "224.0.0.0/16",
            "ff01::/16",
            "ff10::/16",
            "ff15::/8",
            "fe80::/64",
            "x/24",
        ] {
            assert!(bad.parse::<GroupRange>().is_err(), "{bad}");
        }
        let e = "239.77.0.5/24".parse::<GroupRange>().unwrap_err();
        assert!(e.to_string().contains("239.77.0.0/24"), "{e}");
    }

    #[test]
    fn assignment_is_stable_distinct_and_shares_only_when_full() {
        let range = r("239.77.0.0/24");
        let titles = ["Pets", "Weather", "Gardening", "Hobbies", "CurrentEvents"];
        let a = range.assign(titles);
        assert_eq!(a, range.assign(titles), "same file, same groups");
        let distinct: HashSet<_> = a.iter().collect();
        assert_eq!(distinct.len(), titles.len());
        assert!(a.iter().all(|g| range.contains(*g)));
        // Case does not matter; a channel added at the end moves nobody.
        let more = range.assign([
            "PETS",
            "Weather",
            "Gardening",
            "Hobbies",
            "CurrentEvents",
            "Rust",
        ]);
        assert_eq!(&more[..5], &a[..]);
        // More channels than addresses: every address used, then shared.
        let tiny = r("239.77.0.0/30");
        let many: Vec<String> = (0..10).map(|i| format!("c{i}")).collect();
        let g = tiny.assign(many.iter().map(String::as_str));
        let distinct: HashSet<_> = g.iter().collect();
        assert_eq!(distinct.len(), 4);
        assert_eq!(
            r("239.1.1.1/32").assign(["a", "b"]),
            vec!["239.1.1.1".parse::<IpAddr>().unwrap(); 2]
        );
    }
}
