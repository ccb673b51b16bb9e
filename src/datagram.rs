//! A received datagram, classified once: sealed (with its session) or plain (with its
//! code), and its length. The receive thread classifies; routing to a worker, the flood
//! limits and the state machine all read the same [`Class`] instead of peeking at bytes.

use std::net::SocketAddr;

use crate::state::Route;
use proto::code;

/// What kind of datagram it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Under 2 bytes: no code; dropped silently.
    TooShort,
    /// A classic datagram (or any code but SEALED).
    Plain {
        /// Its code.
        code: u16,
    },
    /// A `SEALED` datagram claiming this session (not yet verified).
    Sealed {
        /// The session id it names.
        session: u64,
    },
}

/// A datagram's class; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Class {
    /// The kind.
    pub kind: Kind,
    /// Its length in bytes (as received, possibly cut one past the size limit).
    pub len: usize,
}

impl Class {
    /// Classifies `bytes`.
    pub fn of(bytes: &[u8]) -> Class {
        let kind = match bytes {
            [hi, lo, rest @ ..] => {
                let c = u16::from_be_bytes([*hi, *lo]);
                match (c, rest.get(..8)) {
                    (code::SEALED, Some(id)) => {
                        let mut b = [0u8; 8];
                        b.copy_from_slice(id);
                        Kind::Sealed {
                            session: u64::from_be_bytes(b),
                        }
                    }
                    _ => Kind::Plain { code: c },
                }
            }
            _ => Kind::TooShort,
        };
        Class {
            kind,
            len: bytes.len(),
        }
    }

    /// Whether it is a classic `LOGIN_REQ` (whose answer the flood limits treat apart:
    /// a classic client can't pad its login).
    pub fn is_login(&self) -> bool {
        self.kind
            == Kind::Plain {
                code: code::LOGIN_REQ,
            }
    }

    /// Whether it is a `DISCOVER` (whose answer the flood limits hold to a few a second per
    /// source: anyone on the LAN may ask, from any address).
    pub fn is_discover(&self) -> bool {
        self.kind
            == Kind::Plain {
                code: code::DISCOVER,
            }
    }

    /// Whether it claims a protected session.
    pub fn is_sealed(&self) -> bool {
        matches!(self.kind, Kind::Sealed { .. })
    }

    /// The route of a datagram from `from`: sealed ones go to their session's worker,
    /// whatever address they come from, so a session's requests are handled in order by
    /// one thread even while its address changes.
    pub fn route(&self, from: SocketAddr) -> Route {
        match self.kind {
            Kind::Sealed { session } => Route::Session(session),
            _ => Route::Addr(from),
        }
    }
}

/// A datagram as the state machine takes it.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    /// Its source address.
    pub from: SocketAddr,
    /// Its class.
    pub class: Class,
    /// Its bytes.
    pub bytes: &'a [u8],
}

impl<'a> Incoming<'a> {
    /// Classifies `bytes` from `from`.
    pub fn new(from: SocketAddr, bytes: &'a [u8]) -> Self {
        Incoming {
            from,
            class: Class::of(bytes),
            bytes,
        }
    }

    /// A datagram already classified.
    pub fn classified(from: SocketAddr, class: Class, bytes: &'a [u8]) -> Self {
        Incoming { from, class, bytes }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert_eq!(Class::of(&[1]).kind, Kind::TooShort);
        assert!(Class::of(&[0, 20, b'a']).is_login());
        let mut sealed = code::SEALED.to_be_bytes().to_vec();
        sealed.extend_from_slice(&7u64.to_be_bytes());
        assert_eq!(Class::of(&sealed).kind, Kind::Sealed { session: 7 });
        // Too short to name a session: plain, and the decoder refuses it.
        assert_eq!(
            Class::of(&sealed[..5]).kind,
            Kind::Plain { code: code::SEALED }
        );
        let from: SocketAddr = "127.0.0.1:9".parse().unwrap();
        assert_eq!(Class::of(&sealed).route(from), Route::Session(7));
        assert_eq!(Class::of(&[0, 50]).route(from), Route::Addr(from));
    }
}
