//! The client's side of a protected session: sealing what it sends, opening (and otherwise
//! refusing) what it receives. Shared by the terminal client and the load tester.
//!
//! After a password login every datagram in both directions is sealed. The client opens
//! the server's with the session's server-to-client key and accepts each counter once
//! (a replay window as on the server); an unsealed datagram is dropped, so nobody who
//! merely forges the server's address can show the user a message, an error or a login.
//! Between AUTH_FINISH and the sealed LOGIN_ACK the session is *tentative*: sealed
//! datagrams are opened, and an unsealed `ERROR` still passes (the server refusing the
//! finish has no session to seal with), but nothing else unsealed does.

use std::borrow::Cow;

use crate::auth::{Direction, ReplayWindow, Sealed, SessionKeys};
use crate::wire::code;

/// A protected session on the client.
#[derive(Debug)]
pub struct ClientSession {
    keys: SessionKeys,
    /// The last counter sent.
    sent: u64,
    /// Counters of the server's datagrams accepted.
    window: ReplayWindow,
    /// Whether the server has said anything sealed yet (its LOGIN_ACK).
    confirmed: bool,
}

impl ClientSession {
    /// A tentative session with `keys` (just after AUTH_FINISH).
    pub fn new(keys: SessionKeys) -> Self {
        ClientSession {
            keys,
            sent: 0,
            window: ReplayWindow::default(),
            confirmed: false,
        }
    }

    /// Seals the classic datagram `inner` with the next counter.
    pub fn seal(&mut self, inner: &[u8]) -> Vec<u8> {
        self.sent += 1;
        self.keys.seal(Direction::ToServer, self.sent, inner)
    }

    /// Whether the server has sealed anything for this session yet.
    pub fn confirmed(&self) -> bool {
        self.confirmed
    }

    /// The datagram the user should see for `datagram` as received, or `None` to drop it:
    /// a sealed datagram of this session, opened, with a fresh counter; before the
    /// session is confirmed, an unsealed `ERROR` as is.
    pub fn open<'a>(&mut self, datagram: &'a [u8]) -> Option<Cow<'a, [u8]>> {
        if datagram.get(..2) != Some(&code::SEALED.to_be_bytes()[..]) {
            let is_error = datagram.get(..2) == Some(&code::ERROR.to_be_bytes()[..]);
            return (!self.confirmed && is_error).then_some(Cow::Borrowed(datagram));
        }
        let sealed = Sealed::parse(datagram).ok()?;
        if sealed.session != self.keys.id || !self.window.fresh(sealed.counter) {
            return None;
        }
        let inner = self.keys.open(Direction::ToClient, &sealed)?;
        self.window.accept(sealed.counter);
        self.confirmed = true;
        Some(Cow::Owned(inner))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_protected_client_opens_only_its_sessions_fresh_datagrams() {
        let keys = SessionKeys::derive(&[5u8; 64]);
        let sealer = keys.sealer();
        let mut c = ClientSession::new(keys.clone());
        let plain_error = b"\x00\x0alogin failed".to_vec();
        let plain_ack = b"\x00\x1eann".to_vec();
        // Tentative: an unsealed ERROR passes, an unsealed LOGIN_ACK does not.
        assert!(c.open(&plain_error).is_some());
        assert!(c.open(&plain_ack).is_none());
        let ack = sealer.seal(&plain_ack);
        assert_eq!(c.open(&ack).as_deref(), Some(&plain_ack[..]));
        assert!(c.confirmed());
        // Replayed: dropped. Unsealed, now even an ERROR: dropped.
        assert!(c.open(&ack).is_none());
        assert!(c.open(&plain_error).is_none());
        // Another session's, or sealed the other way (a reflected datagram of ours): dropped.
        let other = SessionKeys::derive(&[6u8; 64]).sealer();
        assert!(c.open(&other.seal(&plain_ack)).is_none());
        let reflected = c.seal(&plain_ack);
        assert!(c.open(&reflected).is_none());
    }
}
