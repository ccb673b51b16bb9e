//! The client's side of protected sessions: sealing what it sends, opening (and otherwise
//! refusing) what it receives once a session exists, and pinning each server's OPAQUE
//! public key the first time it registers there (trust on first use, as SSH does with
//! host keys).
//!
//! After a password login every datagram in both directions is sealed. The client opens
//! the server's with the session's server-to-client key and accepts each counter once
//! (a replay window as on the server); an unsealed datagram is dropped, so nobody who
//! merely forges the server's address can show the user a message, an error or a login.
//! Between AUTH_FINISH and the sealed LOGIN_ACK the session is *tentative*: sealed
//! datagrams are opened, and an unsealed `ERROR` still passes (the server refusing the
//! finish has no session to seal with), but nothing else unsealed does.

use std::borrow::Cow;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::auth::{Direction, ReplayWindow, Sealed, ServerKey, SessionKeys};
use crate::protocol::code;

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

/// What the pinned key of a server says about the key it showed now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pin {
    /// First time: the key is pinned now.
    New,
    /// The same key as pinned.
    Same,
    /// Another key than the one pinned (base64): someone may be impersonating the server.
    Changed(String),
}

/// The file of servers' pinned OPAQUE public keys: one `SERVER KEY` line each, `SERVER`
/// being `host:port` as the user gave them and `KEY` the key in base64.
#[derive(Debug, Clone)]
pub struct KnownServers {
    path: PathBuf,
}

impl KnownServers {
    /// The file at `path` (made, with its folder, when a first key is pinned).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        KnownServers { path: path.into() }
    }

    /// `$XDG_CONFIG_HOME/udpchat/known_servers`, else `$HOME/.config/udpchat/known_servers`,
    /// else `.udpchat_known_servers` in the current folder.
    pub fn default_path() -> PathBuf {
        let base = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".config")));
        match base {
            Some(b) => b.join("udpchat").join("known_servers"),
            None => PathBuf::from(".udpchat_known_servers"),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The key pinned for `server`, if any.
    pub fn get(&self, server: &str) -> Option<String> {
        let text = std::fs::read_to_string(&self.path).ok()?;
        text.lines().find_map(|l| {
            let (s, k) = l.split_once(' ')?;
            (s == server).then(|| k.trim().to_owned())
        })
    }

    /// Compares `key` with the key pinned for `server`; pins it if there is none yet.
    ///
    /// # Errors
    /// When a new pin can't be written.
    pub fn check(&self, server: &str, key: &ServerKey) -> std::io::Result<Pin> {
        let shown = key.to_base64();
        match self.get(server) {
            Some(pinned) if pinned == shown => Ok(Pin::Same),
            Some(pinned) => Ok(Pin::Changed(pinned)),
            None => {
                if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)?;
                }
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)?;
                writeln!(f, "{server} {shown}")?;
                Ok(Pin::New)
            }
        }
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

    #[test]
    fn a_server_key_is_pinned_on_first_use_and_a_change_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let known = KnownServers::new(dir.path().join("sub").join("known"));
        let a = ServerKey(vec![1, 2, 3]);
        let b = ServerKey(vec![4, 5, 6]);
        assert_eq!(known.check("chat:2027", &a).unwrap(), Pin::New);
        assert_eq!(known.check("chat:2027", &a).unwrap(), Pin::Same);
        assert_eq!(
            known.check("chat:2027", &b).unwrap(),
            Pin::Changed(a.to_base64())
        );
        assert_eq!(known.check("other:2027", &b).unwrap(), Pin::New);
    }
}
