//! Password authentication and protected sessions, shared by server and client; no I/O.
//!
//! - Passwords never cross the wire: accounts use OPAQUE (RFC 9807, the `opaque-ke` crate)
//!   with Ristretto255, triple Diffie-Hellman and Argon2 key stretching on the client. The
//!   server stores only the OPAQUE registration record, from which a password can't be
//!   checked without the server's secret OPRF key.
//! - A successful OPAQUE login gives both sides the same 64-byte session key. From it both
//!   derive a session id and a MAC key ([`SessionKeys`]), so the login needs no extra
//!   message.
//! - Every later datagram of the session is [sealed](seal): `SEALED` code, session id,
//!   counter, the classic datagram, and a 16-byte HMAC-SHA256 tag over all of it. The
//!   server accepts a counter once, within a sliding window ([`ReplayWindow`]).

use hmac::{Hmac, Mac};
use opaque_ke::{
    CipherSuite, ClientLogin, ClientLoginFinishParameters, ClientRegistration,
    ClientRegistrationFinishParameters, CredentialResponse, RegistrationResponse, Ristretto255,
    TripleDh,
};
use rand::rngs::OsRng;
use sha2::Sha256;

use crate::protocol::{code, encode_raw, DecodeError};

/// The OPAQUE cipher suite of udpchat.
pub struct Suite;

impl CipherSuite for Suite {
    type OprfCs = Ristretto255;
    type KeyExchange = TripleDh<Ristretto255, sha2::Sha512>;
    type Ksf = argon2::Argon2<'static>;
}

/// Bytes of the MAC tag at the end of a sealed datagram.
pub const TAG_LEN: usize = 16;
/// Bytes before the inner datagram: code, session id, counter.
pub const SEAL_HEADER_LEN: usize = 2 + 8 + 8;
/// Bytes a sealed datagram adds to the classic datagram it carries.
pub const SEAL_OVERHEAD: usize = SEAL_HEADER_LEN + TAG_LEN;
/// Counters older than this many below the highest seen are refused.
pub const REPLAY_WINDOW: u64 = 64;
/// AUTH_REQ datagrams are padded to at least this many bytes, so that the server's larger
/// answer to a not-yet-logged-in address never exceeds what it received.
pub const AUTH_REQ_MIN_LEN: usize = 512;

type HmacSha256 = Hmac<Sha256>;

/// What both ends derive from an OPAQUE session key.
#[derive(Clone)]
pub struct SessionKeys {
    /// Names the session in every sealed datagram.
    pub id: u64,
    mac_key: [u8; 32],
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKeys")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

fn derive(session_key: &[u8], label: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(session_key).expect("HMAC takes any key length");
    mac.update(label);
    mac.finalize().into_bytes().into()
}

impl SessionKeys {
    /// Derives the session id and MAC key from the OPAQUE session key.
    pub fn derive(session_key: &[u8]) -> Self {
        let id = derive(session_key, b"udpchat session id v1");
        let mut id8 = [0u8; 8];
        id8.copy_from_slice(&id[..8]);
        SessionKeys {
            id: u64::from_be_bytes(id8),
            mac_key: derive(session_key, b"udpchat mac key v1"),
        }
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.mac_key).expect("HMAC takes any key length")
    }
}

/// Wraps the classic datagram `inner` for the session: `SEALED`, id, `counter`, inner, tag.
pub fn seal(keys: &SessionKeys, counter: u64, inner: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(inner.len() + SEAL_OVERHEAD);
    out.extend_from_slice(&code::SEALED.to_be_bytes());
    out.extend_from_slice(&keys.id.to_be_bytes());
    out.extend_from_slice(&counter.to_be_bytes());
    out.extend_from_slice(inner);
    let mut mac = keys.mac();
    mac.update(&out);
    let tag = mac.finalize().into_bytes();
    out.extend_from_slice(&tag[..TAG_LEN]);
    out
}

/// The parts of a sealed datagram, not yet verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sealed<'a> {
    /// The session it claims.
    pub session: u64,
    /// Its counter.
    pub counter: u64,
    /// The classic datagram inside.
    pub inner: &'a [u8],
    signed: &'a [u8],
    tag: &'a [u8],
}

impl<'a> Sealed<'a> {
    /// Splits a sealed datagram into its parts.
    ///
    /// # Errors
    /// [`DecodeError::Malformed`] if it is not a `SEALED` datagram long enough to hold a
    /// header, a 2-byte inner code and a tag.
    pub fn parse(datagram: &'a [u8]) -> Result<Self, DecodeError> {
        let malformed = DecodeError::Malformed(code::SEALED);
        if datagram.len() < SEAL_OVERHEAD + 2 || datagram[..2] != code::SEALED.to_be_bytes() {
            return Err(malformed);
        }
        let (signed, tag) = datagram.split_at(datagram.len() - TAG_LEN);
        let mut id = [0u8; 8];
        id.copy_from_slice(&signed[2..10]);
        let mut ctr = [0u8; 8];
        ctr.copy_from_slice(&signed[10..18]);
        Ok(Sealed {
            session: u64::from_be_bytes(id),
            counter: u64::from_be_bytes(ctr),
            inner: &signed[SEAL_HEADER_LEN..],
            signed,
            tag,
        })
    }

    /// Whether the tag is right for `keys` (compared in constant time).
    pub fn verify(&self, keys: &SessionKeys) -> bool {
        let mut mac = keys.mac();
        mac.update(self.signed);
        mac.verify_truncated_left(self.tag).is_ok()
    }
}

/// Accepts each counter at most once, and none more than [`REPLAY_WINDOW`] below the
/// highest accepted so far (datagrams may arrive out of order, but not very late).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayWindow {
    top: u64,
    /// Bit `i` set: counter `top - i` was accepted.
    seen: u64,
}

impl ReplayWindow {
    /// Whether `counter` would be accepted now (without accepting it).
    pub fn fresh(&self, counter: u64) -> bool {
        if counter == 0 {
            return false;
        }
        if counter > self.top {
            return true;
        }
        let age = self.top - counter;
        age < REPLAY_WINDOW && self.seen & (1 << age) == 0
    }

    /// Accepts `counter` if fresh; returns whether it was.
    pub fn accept(&mut self, counter: u64) -> bool {
        if !self.fresh(counter) {
            return false;
        }
        if counter > self.top {
            let shift = counter - self.top;
            self.seen = if shift >= REPLAY_WINDOW {
                0
            } else {
                self.seen << shift
            };
            self.top = counter;
            self.seen |= 1;
        } else {
            self.seen |= 1 << (self.top - counter);
        }
        true
    }
}

/// A datagram of `code` whose payload is `message` in base64.
fn b64_datagram(code: u16, message: &[u8]) -> Vec<u8> {
    let mut datagram = Vec::new();
    encode_raw(code, &b64_encode(message), &mut datagram);
    datagram
}

/// Base64 (standard alphabet, padded) for OPAQUE messages inside text payloads.
pub fn b64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decodes [`b64_encode`]'s output; `None` for anything else.
pub fn b64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

/// Why the client side of a password exchange failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClientAuthError {
    /// The server's answer does not open with this password (or was tampered with).
    #[error("wrong password")]
    WrongPassword,
    /// The server's answer is not a valid OPAQUE message.
    #[error("malformed answer from the server")]
    Malformed,
}

/// A password login under way on the client.
pub struct LoginStart {
    state: ClientLogin<Suite>,
    /// The AUTH_REQ datagram to send (padded, see [`AUTH_REQ_MIN_LEN`]).
    pub datagram: Vec<u8>,
}

/// Starts a password login as `nick`: the AUTH_REQ datagram and the state for its answer.
///
/// # Panics
/// Never in practice: OPAQUE's start fails only on an internal hashing error.
pub fn login_start(nick: &str, password: &str) -> LoginStart {
    let started = ClientLogin::<Suite>::start(&mut OsRng, password.as_bytes())
        .expect("OPAQUE login start does not fail");
    let mut payload = format!("{nick} {}", b64_encode(&started.message.serialize()));
    let padding = AUTH_REQ_MIN_LEN.saturating_sub(2 + payload.len() + 1);
    if padding > 0 {
        payload.push(' ');
        payload.extend(std::iter::repeat_n('.', padding));
    }
    let mut datagram = Vec::new();
    encode_raw(code::AUTH_REQ, &payload, &mut datagram);
    LoginStart {
        state: started.state,
        datagram,
    }
}

impl LoginStart {
    /// Answers the server's AUTH_CHALLENGE: the AUTH_FINISH datagram and the session keys.
    ///
    /// # Errors
    /// [`ClientAuthError::WrongPassword`] when the password does not open the answer,
    /// [`ClientAuthError::Malformed`] when the answer is not an OPAQUE message.
    pub fn finish(
        self,
        password: &str,
        challenge: &str,
    ) -> Result<(Vec<u8>, SessionKeys), ClientAuthError> {
        let response = b64_decode(challenge)
            .and_then(|b| CredentialResponse::<Suite>::deserialize(&b).ok())
            .ok_or(ClientAuthError::Malformed)?;
        let done = self
            .state
            .finish(
                &mut OsRng,
                password.as_bytes(),
                response,
                ClientLoginFinishParameters::default(),
            )
            .map_err(|_| ClientAuthError::WrongPassword)?;
        let datagram = b64_datagram(code::AUTH_FINISH, &done.message.serialize());
        Ok((datagram, SessionKeys::derive(&done.session_key)))
    }
}

/// A registration (or password change) under way on the client.
pub struct RegisterStart {
    state: ClientRegistration<Suite>,
    /// The REGISTER_REQ datagram to send.
    pub datagram: Vec<u8>,
}

/// Starts registering `password` for the current nickname.
///
/// # Panics
/// Never in practice: OPAQUE's start fails only on an internal hashing error.
pub fn register_start(password: &str) -> RegisterStart {
    let started = ClientRegistration::<Suite>::start(&mut OsRng, password.as_bytes())
        .expect("OPAQUE registration start does not fail");
    let datagram = b64_datagram(code::REGISTER_REQ, &started.message.serialize());
    RegisterStart {
        state: started.state,
        datagram,
    }
}

impl RegisterStart {
    /// Answers the server's REGISTER_RESP with the REGISTER_UPLOAD datagram. This is where
    /// Argon2 stretches the password (tens of milliseconds).
    ///
    /// # Errors
    /// [`ClientAuthError::Malformed`] when the answer is not an OPAQUE message.
    pub fn finish(self, password: &str, response: &str) -> Result<Vec<u8>, ClientAuthError> {
        let response = b64_decode(response)
            .and_then(|b| RegistrationResponse::<Suite>::deserialize(&b).ok())
            .ok_or(ClientAuthError::Malformed)?;
        let done = self
            .state
            .finish(
                &mut OsRng,
                password.as_bytes(),
                response,
                ClientRegistrationFinishParameters::default(),
            )
            .map_err(|_| ClientAuthError::Malformed)?;
        Ok(b64_datagram(
            code::REGISTER_UPLOAD,
            &done.message.serialize(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> SessionKeys {
        SessionKeys::derive(&[7u8; 64])
    }

    #[test]
    fn sealed_datagram_verifies_and_any_change_breaks_it() {
        let k = keys();
        let d = seal(&k, 5, b"\x00\x5ahello");
        let s = Sealed::parse(&d).unwrap();
        assert_eq!(
            (s.session, s.counter, s.inner),
            (k.id, 5, &b"\x00\x5ahello"[..])
        );
        assert!(s.verify(&k));
        for i in 0..d.len() {
            let mut bad = d.clone();
            bad[i] ^= 1;
            let ok = Sealed::parse(&bad).map(|s| s.verify(&k)).unwrap_or(false);
            assert!(!ok, "flipping byte {i} went unnoticed");
        }
        let other = SessionKeys::derive(&[8u8; 64]);
        assert!(!s.verify(&other));
    }

    #[test]
    fn short_or_foreign_datagrams_are_not_sealed() {
        assert!(Sealed::parse(&[]).is_err());
        assert!(Sealed::parse(&[0x01, 0x90, 0, 0]).is_err());
        let mut d = seal(&keys(), 1, b"\x00\xc8");
        d[1] = 0x91;
        assert!(Sealed::parse(&d).is_err());
    }

    #[test]
    fn replay_window_accepts_each_counter_once_and_not_too_late() {
        let mut w = ReplayWindow::default();
        assert!(!w.accept(0));
        assert!(w.accept(1));
        assert!(!w.accept(1));
        assert!(w.accept(10));
        assert!(w.accept(5), "out of order but inside the window");
        assert!(!w.accept(5));
        assert!(w.accept(100));
        assert!(!w.accept(36), "64 or more below the top is stale");
        assert!(w.accept(37));
        assert!(w.accept(1000));
        assert!(!w.accept(100));
    }

    #[test]
    fn both_ends_derive_the_same_keys() {
        let a = SessionKeys::derive(&[1u8; 64]);
        let b = SessionKeys::derive(&[1u8; 64]);
        assert_eq!(a.id, b.id);
        assert!(Sealed::parse(&seal(&a, 1, b"\x00\xc8")).unwrap().verify(&b));
    }
}
