//! Who a member is: its nickname and the loopback address its socket binds, spread over
//! 127.0.0.0/8 so that each address needs few ports and the server's per-network limits
//! see many networks.

use std::net::Ipv4Addr;

/// Protected members per /24: the server allows 30 registrations and password logins a
/// /24 per hour and per minute, and must not throttle the set-up.
const PROTECTED_PER_NETWORK: usize = 10;

/// The loopback address of the `global`-th member: spread over 127.0.0.2 .. 127.0.0.251 so
/// that each address needs few ports and more than 64k members fit on one machine.
pub(crate) fn member_ip(global: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, 2 + (global % 250) as u8)
}

/// The loopback address of the `global`-th member when it is protected: in 127.1.0.0/16
/// and up, [`PROTECTED_PER_NETWORK`] to a /24.
pub(crate) fn protected_ip(global: usize) -> Ipv4Addr {
    let net = global / PROTECTED_PER_NETWORK;
    Ipv4Addr::new(
        127,
        1 + (net / 250) as u8,
        (net % 250) as u8,
        2 + (global % PROTECTED_PER_NETWORK) as u8,
    )
}

/// The nickname of the `global`-th member of run `run_id`.
pub(crate) fn nickname(run_id: u32, global: usize) -> String {
    format!("lt{run_id:x}_{global}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_stay_in_loopback() {
        for g in [0, 1, 249, 250, 100_000] {
            assert!(member_ip(g).is_loopback());
            assert!(protected_ip(g).is_loopback());
        }
    }
}
