//! Password authentication and protected sessions, shared by server and client; no I/O.
//!
//! - Passwords never cross the wire: accounts use OPAQUE (RFC 9807, the `opaque-ke` crate)
//!   with Ristretto255, triple Diffie-Hellman and Argon2id key stretching on the client
//!   ([`argon2`]: the OWASP recommendation), under the context string [`CONTEXT`]. The
//!   server stores only the OPAQUE registration record, from which a password can't be
//!   checked without the server's secret OPRF key.
//! - A successful OPAQUE login gives both sides the same 64-byte session key. From it both
//!   derive, with HKDF-SHA256, a session id and one ChaCha20-Poly1305 key per direction
//!   ([`SessionKeys`]), so the login needs no extra message.
//! - Every later datagram of the session, in both directions, is [sealed](SessionKeys::seal):
//!   `SEALED` code, session id, counter, then the classic datagram encrypted and
//!   authenticated with the direction's key, the counter as nonce and the header as
//!   associated data. Each end accepts a counter once, within a sliding window
//!   ([`ReplayWindow`]).
//! - The server's side of a session's sending is a [`Sealer`]: its key and an atomic
//!   counter, shared by every thread that sends to the session's user.

use std::sync::atomic::{AtomicU64, Ordering};

use hkdf::Hkdf;
use opaque_ke::{
    CipherSuite, ClientLogin, ClientLoginFinishParameters, ClientRegistration,
    ClientRegistrationFinishParameters, CredentialResponse, Identifiers, RegistrationResponse,
    Ristretto255, TripleDh,
};
use rand::rngs::OsRng;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305};
use sha2::Sha256;

use crate::wire::{code, encode_raw, DecodeError};

/// The OPAQUE cipher suite of udpchat.
pub struct Suite;

impl CipherSuite for Suite {
    type OprfCs = Ristretto255;
    type KeyExchange = TripleDh<Ristretto255, sha2::Sha512>;
    type Ksf = argon2::Argon2<'static>;
}

/// The OPAQUE context string both ends bind their logins to (RFC 9807 section 6.1), so a
/// transcript of another protocol using the same keys can't pass for one of ours.
pub const CONTEXT: &[u8] = b"udpchat v2";

/// Argon2id memory cost in KiB, iterations and lanes: the OWASP Password Storage Cheat
/// Sheet's first recommendation (m=19 MiB, t=2, p=1). The client stretches every password
/// with these at registration and at every login; changing them locks out every account
/// registered before, so they are part of the protocol (PROTOCOL.md part 3), not a flag.
pub const ARGON2_PARAMS: (u32, u32, u32) = (19 * 1024, 2, 1);

/// The key-stretching function of [`Suite`] with [`ARGON2_PARAMS`].
///
/// # Panics
/// Never: the parameters are constants that `argon2` accepts.
pub fn argon2() -> argon2::Argon2<'static> {
    let (m, t, p) = ARGON2_PARAMS;
    argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(m, t, p, None).expect("valid Argon2 parameters"),
    )
}

/// Bytes of the AEAD tag at the end of a sealed datagram.
pub const TAG_LEN: usize = 16;
/// Bytes before the inner datagram: code, session id, counter.
pub const SEAL_HEADER_LEN: usize = 2 + 8 + 8;
/// Bytes a sealed datagram adds to the classic datagram it carries.
pub const SEAL_OVERHEAD: usize = SEAL_HEADER_LEN + TAG_LEN;
/// Counters older than this many below the highest seen are refused.
pub const REPLAY_WINDOW: u64 = 64;
/// AUTH_REQ datagrams are padded to at least this many bytes, so that the server's larger
/// answer to a not-yet-logged-in address stays within what it may send back.
pub const AUTH_REQ_MIN_LEN: usize = 512;

/// HKDF-SHA256 salt of every key derived from a session key.
const HKDF_SALT: &[u8] = b"udpchat v2";
/// HKDF info labels: the session id, the client-to-server key, the server-to-client key.
pub const LABEL_SESSION_ID: &[u8] = b"udpchat v2 session id";
/// See [`LABEL_SESSION_ID`].
pub const LABEL_CLIENT_TO_SERVER: &[u8] = b"udpchat v2 client to server";
/// See [`LABEL_SESSION_ID`].
pub const LABEL_SERVER_TO_CLIENT: &[u8] = b"udpchat v2 server to client";

/// Which way a sealed datagram goes (each direction has its own key, so a datagram can't be
/// reflected back to its sender).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the client to the server.
    ToServer,
    /// From the server to the client.
    ToClient,
}

/// What both ends derive from an OPAQUE session key.
///
/// The AEAD is ChaCha20-Poly1305 (RFC 8439) as `ring` implements it rather than the
/// RustCrypto `chacha20poly1305` crate: the same algorithm and wire format, but ring's
/// assembly seals a 75-byte public message in about 0.3 µs where the other took 2.2 µs on
/// our machine (`benches/seal.rs`), and a fan-out pays it once per protected member. ring is
/// well kept, audited, and already here for rustls.
#[derive(Clone)]
pub struct SessionKeys {
    /// Names the session in every sealed datagram.
    pub id: u64,
    to_server: LessSafeKey,
    to_client: LessSafeKey,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKeys")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// The 12-byte nonce of `counter`: four zero bytes, then the counter big-endian. Each key
/// is used in one direction only, and each counter once, so a nonce never repeats.
fn nonce(counter: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&counter.to_be_bytes());
    Nonce::assume_unique_for_key(n)
}

/// A ChaCha20-Poly1305 key from 32 bytes.
fn aead_key(bytes: &[u8; 32]) -> LessSafeKey {
    LessSafeKey::new(
        UnboundKey::new(&CHACHA20_POLY1305, bytes).expect("32 bytes is ChaCha20's key length"),
    )
}

impl SessionKeys {
    /// Derives the session id and both directions' keys from the OPAQUE session key.
    pub fn derive(session_key: &[u8]) -> Self {
        let hk = Hkdf::<Sha256>::new(Some(HKDF_SALT), session_key);
        let expand = |label: &[u8]| {
            let mut okm = [0u8; 32];
            hk.expand(label, &mut okm)
                .expect("32 bytes is a valid HKDF-SHA256 length");
            okm
        };
        let mut id = [0u8; 8];
        hk.expand(LABEL_SESSION_ID, &mut id)
            .expect("8 bytes is a valid HKDF-SHA256 length");
        SessionKeys {
            id: u64::from_be_bytes(id),
            to_server: aead_key(&expand(LABEL_CLIENT_TO_SERVER)),
            to_client: aead_key(&expand(LABEL_SERVER_TO_CLIENT)),
        }
    }

    fn cipher(&self, dir: Direction) -> &LessSafeKey {
        match dir {
            Direction::ToServer => &self.to_server,
            Direction::ToClient => &self.to_client,
        }
    }

    /// Seals the classic datagram `inner` going `dir` with `counter`: `SEALED`, id, counter,
    /// `inner` encrypted, tag.
    pub fn seal(&self, dir: Direction, counter: u64, inner: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(inner.len() + SEAL_OVERHEAD);
        out.extend_from_slice(&code::SEALED.to_be_bytes());
        out.extend_from_slice(&self.id.to_be_bytes());
        out.extend_from_slice(&counter.to_be_bytes());
        out.extend_from_slice(inner);
        let (header, body) = out.split_at_mut(SEAL_HEADER_LEN);
        let tag = self
            .cipher(dir)
            .seal_in_place_separate_tag(nonce(counter), Aad::from(&*header), body)
            .expect("a datagram is far below ChaCha20-Poly1305's length limit");
        out.extend_from_slice(tag.as_ref());
        out
    }

    /// Opens a sealed datagram going `dir`: the classic datagram inside, or `None` when the
    /// tag does not verify under this session's key (checked in constant time).
    pub fn open(&self, dir: Direction, sealed: &Sealed<'_>) -> Option<Vec<u8>> {
        let mut inner = Vec::with_capacity(sealed.ciphertext.len() + TAG_LEN);
        inner.extend_from_slice(sealed.ciphertext);
        inner.extend_from_slice(sealed.tag);
        let len = self
            .cipher(dir)
            .open_in_place(nonce(sealed.counter), Aad::from(sealed.header), &mut inner)
            .ok()?
            .len();
        inner.truncate(len);
        Some(inner)
    }

    /// The server's sender for this session (see [`Sealer`]).
    pub fn sealer(&self) -> Sealer {
        Sealer {
            keys: self.clone(),
            counter: AtomicU64::new(0),
        }
    }
}

/// Seals the client's datagram `inner` with `counter` (client to server).
pub fn seal(keys: &SessionKeys, counter: u64, inner: &[u8]) -> Vec<u8> {
    keys.seal(Direction::ToServer, counter, inner)
}

/// The server's sending side of a protected session: its key and its counter, shared by
/// every thread that sends to the session's user (the worker's replies, the senders'
/// fan-outs, the cluster thread), so each datagram gets a counter of its own.
#[derive(Debug)]
pub struct Sealer {
    keys: SessionKeys,
    counter: AtomicU64,
}

impl Sealer {
    /// The session's id.
    pub fn id(&self) -> u64 {
        self.keys.id
    }

    /// Seals `inner` for the client with the next counter.
    pub fn seal(&self, inner: &[u8]) -> Vec<u8> {
        let n = self.counter.fetch_add(1, Ordering::Relaxed) + 1;
        self.keys.seal(Direction::ToClient, n, inner)
    }
}

/// The parts of a sealed datagram, not yet verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sealed<'a> {
    /// The session it claims.
    pub session: u64,
    /// Its counter.
    pub counter: u64,
    header: &'a [u8],
    ciphertext: &'a [u8],
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
        let (header, ciphertext) = signed.split_at(SEAL_HEADER_LEN);
        let mut id = [0u8; 8];
        id.copy_from_slice(&header[2..10]);
        let mut ctr = [0u8; 8];
        ctr.copy_from_slice(&header[10..18]);
        Ok(Sealed {
            session: u64::from_be_bytes(id),
            counter: u64::from_be_bytes(ctr),
            header,
            ciphertext,
            tag,
        })
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

/// The server's OPAQUE message in `b64`, read with `deserialize`.
///
/// # Errors
/// [`ClientAuthError::Malformed`] when it is not base64 or not such a message.
fn server_message<T>(
    b64: &str,
    deserialize: impl FnOnce(&[u8]) -> Result<T, opaque_ke::errors::ProtocolError>,
) -> Result<T, ClientAuthError> {
    b64_decode(b64)
        .and_then(|b| deserialize(&b).ok())
        .ok_or(ClientAuthError::Malformed)
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

/// The token field of an AUTH_REQ sent before the server has given one (see
/// [`LoginStart::datagram`]).
pub const NO_TOKEN: &str = "-";

/// A password login under way on the client.
pub struct LoginStart {
    state: ClientLogin<Suite>,
    nick: String,
    /// The base64 credential request, kept so that the same request can be sent again
    /// with the server's retry token.
    request: String,
    /// The first AUTH_REQ datagram to send (padded, see [`AUTH_REQ_MIN_LEN`]), without a
    /// token: the server answers it with `AUTH_RETRY`.
    pub datagram: Vec<u8>,
}

/// An AUTH_REQ for `nick` with the credential request `request` and `token`, padded.
fn auth_req(nick: &str, request: &str, token: &str) -> Vec<u8> {
    let mut payload = format!("{nick} {request} {token}");
    let padding = AUTH_REQ_MIN_LEN.saturating_sub(2 + payload.len() + 1);
    if padding > 0 {
        payload.push(' ');
        payload.extend(std::iter::repeat_n('.', padding));
    }
    let mut datagram = Vec::new();
    encode_raw(code::AUTH_REQ, &payload, &mut datagram);
    datagram
}

/// Starts a password login as `nick`: the AUTH_REQ datagram and the state for its answer.
///
/// # Panics
/// Never in practice: OPAQUE's start fails only on an internal hashing error.
pub fn login_start(nick: &str, password: &str) -> LoginStart {
    let started = ClientLogin::<Suite>::start(&mut OsRng, password.as_bytes())
        .expect("OPAQUE login start does not fail");
    let request = b64_encode(&started.message.serialize());
    LoginStart {
        datagram: auth_req(nick, &request, NO_TOKEN),
        state: started.state,
        nick: nick.to_owned(),
        request,
    }
}

/// What a finished client side of a login or registration learned of the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerKey(pub Vec<u8>);

impl ServerKey {
    /// The key in base64, as the client's file of known servers keeps it.
    pub fn to_base64(&self) -> String {
        b64_encode(&self.0)
    }
}

impl LoginStart {
    /// The same AUTH_REQ again, carrying the server's retry `token` (from `AUTH_RETRY`):
    /// the proof that we receive at our address, which the server wants before it spends
    /// anything on the login.
    pub fn with_token(&self, token: &str) -> Vec<u8> {
        auth_req(&self.nick, &self.request, token)
    }

    /// Answers the server's AUTH_CHALLENGE: the AUTH_FINISH datagram, the session keys and
    /// the server's OPAQUE public key (to compare with the one pinned for this server).
    ///
    /// # Errors
    /// [`ClientAuthError::WrongPassword`] when the password does not open the answer,
    /// [`ClientAuthError::Malformed`] when the answer is not an OPAQUE message.
    pub fn finish(
        self,
        password: &str,
        challenge: &str,
    ) -> Result<(Vec<u8>, SessionKeys), ClientAuthError> {
        self.finish_with_key(password, challenge)
            .map(|(d, keys, _)| (d, keys))
    }

    /// As [`finish`](Self::finish), also returning the server's public key.
    ///
    /// # Errors
    /// As [`finish`](Self::finish).
    pub fn finish_with_key(
        self,
        password: &str,
        challenge: &str,
    ) -> Result<(Vec<u8>, SessionKeys, ServerKey), ClientAuthError> {
        let response = server_message(challenge, CredentialResponse::<Suite>::deserialize)?;
        let ksf = argon2();
        let params =
            ClientLoginFinishParameters::new(Some(CONTEXT), Identifiers::default(), Some(&ksf));
        let done = self
            .state
            .finish(&mut OsRng, password.as_bytes(), response, params)
            .map_err(|_| ClientAuthError::WrongPassword)?;
        let datagram = b64_datagram(code::AUTH_FINISH, &done.message.serialize());
        Ok((
            datagram,
            SessionKeys::derive(&done.session_key),
            ServerKey(done.server_s_pk.serialize().to_vec()),
        ))
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
    /// Answers the server's REGISTER_RESP (its payload: the base64 response and the
    /// server's cookie) with the REGISTER_UPLOAD datagram, which carries the cookie back.
    /// This is where Argon2 stretches the password (tens of milliseconds).
    ///
    /// # Errors
    /// [`ClientAuthError::Malformed`] when the answer is not an OPAQUE message.
    pub fn finish(self, password: &str, response: &str) -> Result<Vec<u8>, ClientAuthError> {
        self.finish_with_key(password, response).map(|(d, _)| d)
    }

    /// As [`finish`](Self::finish), also returning the server's OPAQUE public key, which
    /// the client pins (trust on first use) before it sends the upload.
    ///
    /// # Errors
    /// As [`finish`](Self::finish).
    pub fn finish_with_key(
        self,
        password: &str,
        response: &str,
    ) -> Result<(Vec<u8>, ServerKey), ClientAuthError> {
        let (message, cookie) = response.split_once(' ').unwrap_or((response, ""));
        let response = server_message(message, RegistrationResponse::<Suite>::deserialize)?;
        let ksf = argon2();
        let params = ClientRegistrationFinishParameters::new(Identifiers::default(), Some(&ksf));
        let done = self
            .state
            .finish(&mut OsRng, password.as_bytes(), response, params)
            .map_err(|_| ClientAuthError::Malformed)?;
        let mut datagram = Vec::new();
        let payload = format!("{} {cookie}", b64_encode(&done.message.serialize()));
        encode_raw(code::REGISTER_UPLOAD, payload.trim_end(), &mut datagram);
        Ok((datagram, ServerKey(done.server_s_pk.serialize().to_vec())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> SessionKeys {
        SessionKeys::derive(&[7u8; 64])
    }

    #[test]
    fn sealed_datagram_opens_and_any_change_breaks_it() {
        let k = keys();
        let d = seal(&k, 5, b"\x00\x5ahello");
        assert!(
            !d.windows(5).any(|w| w == b"hello"),
            "the inner datagram is encrypted"
        );
        let s = Sealed::parse(&d).unwrap();
        assert_eq!((s.session, s.counter), (k.id, 5));
        assert_eq!(
            k.open(Direction::ToServer, &s).as_deref(),
            Some(&b"\x00\x5ahello"[..])
        );
        for i in 0..d.len() {
            let mut bad = d.clone();
            bad[i] ^= 1;
            let ok = Sealed::parse(&bad)
                .ok()
                .and_then(|s| k.open(Direction::ToServer, &s))
                .is_some();
            assert!(!ok, "flipping byte {i} went unnoticed");
        }
        let other = SessionKeys::derive(&[8u8; 64]);
        assert!(other.open(Direction::ToServer, &s).is_none());
        // A datagram can't be reflected: the other direction's key does not open it.
        assert!(k.open(Direction::ToClient, &s).is_none());
    }

    #[test]
    fn the_server_sealer_counts_up_and_the_client_opens_it() {
        let k = keys();
        let sealer = k.sealer();
        let a = sealer.seal(b"\x00\x1eann");
        let b = sealer.seal(b"\x00\x1eann");
        let (pa, pb) = (Sealed::parse(&a).unwrap(), Sealed::parse(&b).unwrap());
        assert_eq!((pa.counter, pb.counter), (1, 2));
        assert_ne!(a[SEAL_HEADER_LEN..], b[SEAL_HEADER_LEN..]);
        assert_eq!(
            k.open(Direction::ToClient, &pb).as_deref(),
            Some(&b"\x00\x1eann"[..])
        );
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
    fn both_ends_derive_the_same_keys_and_ids_differ_per_session() {
        let a = SessionKeys::derive(&[1u8; 64]);
        let b = SessionKeys::derive(&[1u8; 64]);
        assert_eq!(a.id, b.id);
        assert_ne!(a.id, SessionKeys::derive(&[2u8; 64]).id);
        let d = seal(&a, 1, b"\x00\xc8");
        assert!(b
            .open(Direction::ToServer, &Sealed::parse(&d).unwrap())
            .is_some());
    }

    #[test]
    fn argon2_uses_the_owasp_parameters() {
        let a = argon2();
        let p = a.params();
        assert_eq!((p.m_cost(), p.t_cost(), p.p_cost()), (19456, 2, 1));
    }
}
