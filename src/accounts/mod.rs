//! Accounts: the OPAQUE service the state machine uses ([`Service`]: the server's setup,
//! the set of registered nicknames, password logins under way, attempt counts; no I/O),
//! and the stores that keep accounts ([`store`]: the trait and memory, [`sqlite`], [`pg`]).
//! Beside them, the community's data (registered channels, bans, history, kept private
//! messages) in [`community`], with the same three homes.
//!
//! The server side of OPAQUE is cheap (an OPRF evaluation and a triple Diffie-Hellman, well
//! under a millisecond); the Argon2 stretching runs on the client. Reads and writes of the
//! store are effects carried out by the server's store thread, never by a worker.

pub mod community;
pub mod community_pg;
pub mod community_sqlite;
pub mod pg;
pub mod sqlite;
pub mod store;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use dashmap::{DashMap, DashSet};
use opaque_ke::{
    CredentialFinalization, CredentialRequest, RegistrationRequest, RegistrationUpload,
    ServerLogin, ServerLoginParameters, ServerRegistration, ServerSetup,
};
use rand::rngs::OsRng;

pub use sqlite::SqliteStore;
pub use store::{Account, AccountStore, MemoryStore, StoreError, StoreKind};

use crate::auth::{b64_decode, b64_encode, SessionKeys, Suite};

/// How long a password login may take between AUTH_REQ and AUTH_FINISH.
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Password logins one account may start per [`ATTEMPT_WINDOW`].
pub const MAX_ATTEMPTS: u32 = 5;
/// The window of [`MAX_ATTEMPTS`].
pub const ATTEMPT_WINDOW: Duration = Duration::from_secs(60);
/// Password logins under way at once, over all addresses.
pub const MAX_PENDING: usize = 4096;

/// The key of a nickname in the store (the same as everywhere: `state::nick_key`).
pub fn key(nick: &str) -> String {
    crate::state::nick_key(nick)
}

/// Why a step of a password login failed, as the client is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginError {
    /// The message does not parse.
    Malformed,
    /// No login under way, too late, or the finalization does not verify.
    Failed,
    /// The stored record does not parse.
    BadRecord,
}

/// A password login between its two messages.
struct Pending {
    state: ServerLogin<Suite>,
    nick: String,
    watch: Vec<String>,
    started: Instant,
}

/// A finished password login.
#[derive(Debug, Clone)]
pub struct LoggedIn {
    /// The nickname as registered.
    pub nick: String,
    /// The session's keys.
    pub keys: SessionKeys,
    /// The hot list kept with the account.
    pub watch: Vec<String>,
}

/// The accounts side of the state machine; see the module docs.
pub struct Service {
    setup: ServerSetup<Suite>,
    /// Registered nickname keys: the only thing a classic login looks at, so that no
    /// request from a forgeable address reaches the database. The store thread keeps it
    /// current with other servers' changes (shared stores) and the operator's.
    registered: DashSet<Box<str>>,
    /// Password logins under way, by address; bounded by [`MAX_PENDING`].
    pending: DashMap<SocketAddr, Pending>,
    /// Recent login attempts per account: window start and count.
    attempts: DashMap<Box<str>, (Instant, u32)>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("registered", &self.registered.len())
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl Service {
    /// The service for the accounts of `store`: reads (or makes and saves, on first use)
    /// the server's OPAQUE setup and the registered nicknames. Runs at start-up.
    ///
    /// # Errors
    /// When the store fails, holds a setup that does not parse, or holds accounts but no
    /// setup (a new setup would lock every account out).
    pub fn open(store: &dyn AccountStore) -> Result<Self, StoreError> {
        let parse = |bytes: &[u8]| {
            ServerSetup::<Suite>::deserialize(bytes)
                .map_err(|e| StoreError::Setup(format!("stored OPAQUE setup does not parse: {e}")))
        };
        let keys = store.keys()?;
        let setup = match store.server_setup()? {
            Some(bytes) => parse(&bytes)?,
            None if !keys.is_empty() => {
                return Err(StoreError::Setup(format!(
                    "the server's OPAQUE setup is missing while {} accounts exist; \
                     restore it from a backup (a new one would lock every account out)",
                    keys.len()
                )))
            }
            None => {
                let setup = ServerSetup::<Suite>::new(&mut OsRng);
                store.save_server_setup(&setup.serialize())?;
                // In a shared store another server may have saved its setup first: all must
                // use the one that was stored.
                match store.server_setup()? {
                    Some(bytes) if store.shared() => parse(&bytes)?,
                    _ => setup,
                }
            }
        };
        Ok(Service {
            setup,
            registered: keys.into_iter().map(Into::into).collect(),
            pending: DashMap::new(),
            attempts: DashMap::new(),
        })
    }

    /// A service with a fresh setup and no accounts (tests, and servers without storage).
    pub fn in_memory() -> Self {
        Service {
            setup: ServerSetup::<Suite>::new(&mut OsRng),
            registered: DashSet::new(),
            pending: DashMap::new(),
            attempts: DashMap::new(),
        }
    }

    /// Whether `nick` (any case) has an account, as far as this server knows.
    pub fn is_registered(&self, nick: &str) -> bool {
        self.registered.contains(key(nick).as_str())
    }

    /// Records that the account under `key` exists (or not).
    pub fn set_registered(&self, key: &str, registered: bool) {
        if registered {
            self.registered.insert(key.into());
        } else {
            self.registered.remove(key);
        }
    }

    /// Replaces the registered set with `keys` (a periodic re-read of the store).
    pub fn refresh(&self, keys: Vec<String>) {
        let fresh: std::collections::HashSet<&str> = keys.iter().map(String::as_str).collect();
        self.registered.retain(|k| fresh.contains(&**k));
        for k in &keys {
            self.registered.insert(k.as_str().into());
        }
    }

    /// Registered nicknames known.
    pub fn registered_count(&self) -> usize {
        self.registered.len()
    }

    /// Forgets logins under way and attempt counts older than their windows.
    pub fn housekeeping(&self, now: Instant) {
        self.pending
            .retain(|_, p| now.saturating_duration_since(p.started) < LOGIN_TIMEOUT);
        self.attempts
            .retain(|_, (start, _)| now.saturating_duration_since(*start) < ATTEMPT_WINDOW);
    }

    /// Counts a login attempt for the account `key`; returns whether it is within the limit.
    pub fn attempt(&self, key: &str, now: Instant) -> bool {
        let mut entry = self.attempts.entry(key.into()).or_insert((now, 0));
        if now.saturating_duration_since(entry.0) >= ATTEMPT_WINDOW {
            *entry = (now, 0);
        }
        entry.1 += 1;
        entry.1 <= MAX_ATTEMPTS
    }

    /// Whether another password login may start (after purging expired ones).
    pub fn has_room(&self, now: Instant) -> bool {
        if self.pending.len() < MAX_PENDING {
            return true;
        }
        self.housekeeping(now);
        self.pending.len() < MAX_PENDING
    }

    /// Decodes a base64 credential request (AUTH_REQ), to check it before the account is
    /// read.
    pub fn credential_request(message: &str) -> Option<Vec<u8>> {
        let bytes = b64_decode(message)?;
        CredentialRequest::<Suite>::deserialize(&bytes).ok()?;
        Some(bytes)
    }

    /// The server's answer to a registration request for `nick` (REGISTER_REQ → base64
    /// REGISTER_RESP).
    ///
    /// # Errors
    /// When the request does not parse.
    pub fn registration_response(&self, nick: &str, message: &str) -> Result<String, LoginError> {
        let request = b64_decode(message)
            .and_then(|b| RegistrationRequest::<Suite>::deserialize(&b).ok())
            .ok_or(LoginError::Malformed)?;
        let r = ServerRegistration::<Suite>::start(&self.setup, request, key(nick).as_bytes())
            .map_err(|_| LoginError::Malformed)?;
        Ok(b64_encode(&r.message.serialize()))
    }

    /// The record to store from a registration upload (REGISTER_UPLOAD).
    ///
    /// # Errors
    /// When the upload does not parse.
    pub fn registration_record(message: &str) -> Result<Vec<u8>, LoginError> {
        let upload = b64_decode(message)
            .and_then(|b| RegistrationUpload::<Suite>::deserialize(&b).ok())
            .ok_or(LoginError::Malformed)?;
        Ok(ServerRegistration::<Suite>::finish(upload)
            .serialize()
            .to_vec())
    }

    /// Starts the password login of `from` into `account` with the credential request
    /// `request` (from [`credential_request`](Self::credential_request)); returns the base64
    /// AUTH_CHALLENGE.
    ///
    /// # Errors
    /// When the record or the request does not parse.
    pub fn login_start(
        &self,
        from: SocketAddr,
        account: Account,
        request: &[u8],
        now: Instant,
    ) -> Result<String, LoginError> {
        let record = ServerRegistration::<Suite>::deserialize(&account.record)
            .map_err(|_| LoginError::BadRecord)?;
        let request =
            CredentialRequest::<Suite>::deserialize(request).map_err(|_| LoginError::Malformed)?;
        let started = ServerLogin::start(
            &mut OsRng,
            &self.setup,
            Some(record),
            request,
            key(&account.nick).as_bytes(),
            ServerLoginParameters::default(),
        )
        .map_err(|_| LoginError::Malformed)?;
        self.pending.insert(
            from,
            Pending {
                state: started.state,
                nick: account.nick,
                watch: account.watch,
                started: now,
            },
        );
        Ok(b64_encode(&started.message.serialize()))
    }

    /// Finishes the password login of `from` with its AUTH_FINISH.
    ///
    /// # Errors
    /// [`LoginError::Failed`] with no login under way, after [`LOGIN_TIMEOUT`], or when the
    /// finalization does not verify; [`LoginError::Malformed`] when it does not parse.
    pub fn login_finish(
        &self,
        from: SocketAddr,
        message: &str,
        now: Instant,
    ) -> Result<LoggedIn, LoginError> {
        let (_, pending) = self.pending.remove(&from).ok_or(LoginError::Failed)?;
        if now.saturating_duration_since(pending.started) > LOGIN_TIMEOUT {
            return Err(LoginError::Failed);
        }
        let finalization = b64_decode(message)
            .and_then(|b| CredentialFinalization::<Suite>::deserialize(&b).ok())
            .ok_or(LoginError::Malformed)?;
        let done = pending
            .state
            .finish(finalization, ServerLoginParameters::default())
            .map_err(|_| LoginError::Failed)?;
        Ok(LoggedIn {
            nick: pending.nick,
            keys: SessionKeys::derive(&done.session_key),
            watch: pending.watch,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_with_accounts_but_no_setup_is_refused() {
        let store = MemoryStore::default();
        store
            .put(&Account {
                nick: "ann".into(),
                record: vec![1],
                watch: vec![],
                created: 0,
            })
            .unwrap();
        let err = Service::open(&store).unwrap_err();
        assert!(err.to_string().contains("setup is missing"), "{err}");
    }

    #[test]
    fn a_bad_setup_is_reported_as_such() {
        let store = MemoryStore::default();
        store.save_server_setup(b"junk").unwrap();
        let err = Service::open(&store).unwrap_err();
        assert!(matches!(err, StoreError::Setup(_)), "{err}");
    }

    #[test]
    fn refresh_follows_the_store() {
        let s = Service::in_memory();
        s.set_registered("ann", true);
        s.set_registered("bob", true);
        s.refresh(vec!["bob".into(), "cid".into()]);
        assert!(!s.is_registered("Ann") && s.is_registered("BOB") && s.is_registered("cid"));
    }
}
