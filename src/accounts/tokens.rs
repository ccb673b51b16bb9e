//! Stateless proofs that a sender receives at its address: the retry token a password
//! login must carry (as QUIC's Retry and WireGuard's cookie) and the cookie a registration
//! upload must carry. The server keeps nothing per token: a token is the time it was made
//! and an HMAC-SHA256 over its purpose, the address it was sent to, the nickname key and
//! that time, under a secret made at start. Only who receives at the address can send it
//! back, and only for a short while.
//!
//! Written here rather than taken from a crate: it is one HMAC over a few fields with the
//! `hmac` crate, and the layout is part of the protocol (PROTOCOL.md part 3).

use std::net::{IpAddr, SocketAddr};

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// How long a token is accepted after it was made, in seconds.
pub(crate) const TOKEN_LIFETIME_SECS: u64 = 60;
/// Bytes of the tag in a token.
const TAG_LEN: usize = 12;

/// What a token is for; each purpose has its own label, so one can't stand for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// AUTH_RETRY: a password login may start.
    Retry,
    /// REGISTER_RESP: a registration upload may be stored.
    Register,
    /// PROVE_TOKEN: a guest receives at its address.
    Prove,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Purpose::Retry => b"udpchat v2 retry",
            Purpose::Register => b"udpchat v2 register",
            Purpose::Prove => b"udpchat v2 prove",
        }
    }
}

/// The secret tokens are made with; see the module docs.
pub(crate) struct Tokens {
    key: [u8; 32],
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens").finish_non_exhaustive()
    }
}

impl Default for Tokens {
    fn default() -> Self {
        Self::new()
    }
}

/// The address as 16 bytes (IPv4 as v4-mapped IPv6) and the port.
fn addr_bytes(addr: SocketAddr) -> [u8; 18] {
    let ip = match addr.ip() {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    };
    let mut b = [0u8; 18];
    b[..16].copy_from_slice(&ip.octets());
    b[16..].copy_from_slice(&addr.port().to_be_bytes());
    b
}

impl Tokens {
    /// Tokens under a fresh random secret (tokens of an earlier run are invalid).
    pub(crate) fn new() -> Self {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        Tokens { key }
    }

    /// The MAC over what a token binds: its purpose, the address, the nickname key and
    /// the time it was issued.
    fn mac(&self, purpose: Purpose, addr: SocketAddr, key: &str, secs: u32) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(purpose.label());
        mac.update(&[0]);
        mac.update(&addr_bytes(addr));
        mac.update(key.as_bytes());
        mac.update(&[0]);
        mac.update(&secs.to_be_bytes());
        mac
    }

    fn tag(&self, purpose: Purpose, addr: SocketAddr, key: &str, secs: u32) -> [u8; TAG_LEN] {
        let full = self.mac(purpose, addr, key, secs).finalize().into_bytes();
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&full[..TAG_LEN]);
        tag
    }

    /// A token for `purpose`, sent to `addr` about the nickname key `key`, at `now_secs`
    /// (seconds since the Unix epoch): base64url without padding of the time (u32,
    /// big-endian) and the first 12 bytes of the tag.
    pub(crate) fn issue(
        &self,
        purpose: Purpose,
        addr: SocketAddr,
        key: &str,
        now_secs: u64,
    ) -> String {
        use base64::Engine;
        let secs = now_secs as u32;
        let mut raw = [0u8; 4 + TAG_LEN];
        raw[..4].copy_from_slice(&secs.to_be_bytes());
        raw[4..].copy_from_slice(&self.tag(purpose, addr, key, secs));
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    }

    /// Whether `token` was made by [`issue`](Self::issue) for the same purpose, address and
    /// key, at most [`TOKEN_LIFETIME_SECS`] before `now_secs` (and not after it). The tag
    /// is compared in constant time.
    pub(crate) fn check(
        &self,
        purpose: Purpose,
        addr: SocketAddr,
        key: &str,
        token: &str,
        now_secs: u64,
    ) -> bool {
        use base64::Engine;
        let Ok(raw) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token) else {
            return false;
        };
        if raw.len() != 4 + TAG_LEN {
            return false;
        }
        let secs = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
        let age = (now_secs as u32).wrapping_sub(secs);
        if u64::from(age) > TOKEN_LIFETIME_SECS {
            return false;
        }
        self.mac(purpose, addr, key, secs)
            .verify_truncated_left(&raw[4..])
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_bound_to_purpose_address_nickname_and_time() {
        let t = Tokens::new();
        let a: SocketAddr = "192.0.2.1:4000".parse().unwrap();
        let b: SocketAddr = "192.0.2.1:4001".parse().unwrap();
        let tok = t.issue(Purpose::Retry, a, "ann", 1000);
        assert!(t.check(Purpose::Retry, a, "ann", &tok, 1000));
        assert!(t.check(Purpose::Retry, a, "ann", &tok, 1060));
        let refused = [
            (Purpose::Retry, a, "ann", 1061, "expired"),
            (Purpose::Retry, a, "ann", 999, "from the future"),
            (Purpose::Retry, b, "ann", 1000, "other address"),
            (Purpose::Retry, a, "bob", 1000, "other nickname"),
            (Purpose::Register, a, "ann", 1000, "other purpose"),
        ];
        for (purpose, from, nick, at, why) in refused {
            assert!(!t.check(purpose, from, nick, &tok, at), "{why}");
        }
        assert!(
            !Tokens::new().check(Purpose::Retry, a, "ann", &tok, 1000),
            "other secret"
        );
        for junk in ["", "-", "....", "AAAAAAAAAAAAAAAAAAAAAA"] {
            assert!(!t.check(Purpose::Retry, a, "ann", junk, 1000));
        }
    }
}
