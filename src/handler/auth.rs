//! Accounts and protected sessions in the state machine: registration, password login
//! (OPAQUE), sealed datagrams and the move of a session to a new address.
//!
//! The server side of OPAQUE is cheap (an OPRF evaluation and a triple Diffie-Hellman, well
//! under a millisecond); the Argon2 stretching runs on the client. Account writes go to the
//! [`AccountStore`] and are durable before the client hears of them; they are rare (a
//! registration, a password change, a hot-list edit), so they run inline in the worker.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::{DashMap, DashSet};
use opaque_ke::{
    CredentialFinalization, CredentialRequest, RegistrationRequest, RegistrationUpload,
    ServerLogin, ServerLoginParameters, ServerRegistration, ServerSetup,
};
use rand::rngs::OsRng;

use super::{valid_nick, Handler, Outbox};
use crate::accounts::{key, Account, AccountStore, MemoryStore, StoreError};
use crate::auth::{b64_decode, b64_encode, Sealed, SessionKeys, Suite};
use crate::protocol::{errors, Event};
use crate::state::Session;

/// How long a password login may take between AUTH_REQ and AUTH_FINISH.
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Password logins one account may start per [`ATTEMPT_WINDOW`].
pub const MAX_ATTEMPTS: u32 = 5;
/// The window of [`MAX_ATTEMPTS`].
pub const ATTEMPT_WINDOW: Duration = Duration::from_secs(60);
/// Password logins under way at once, over all addresses.
pub const MAX_PENDING: usize = 4096;

/// A password login between its two messages.
struct Pending {
    state: ServerLogin<Suite>,
    nick: String,
    started: Instant,
}

/// The accounts side of the server: the store, the OPAQUE setup, and logins under way.
pub struct Accounts {
    store: Arc<dyn AccountStore>,
    setup: ServerSetup<Suite>,
    /// Lower-cased registered nicknames, so a classic login needs no database read.
    registered: DashSet<Box<str>>,
    /// Password logins under way, by address; bounded by [`MAX_PENDING`].
    pending: DashMap<SocketAddr, Pending>,
    /// Recent login attempts per account: window start and count.
    attempts: DashMap<Box<str>, (Instant, u32)>,
}

impl std::fmt::Debug for Accounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accounts")
            .field("registered", &self.registered.len())
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl Accounts {
    /// Accounts kept by `store`; makes and saves the server's OPAQUE setup on first use.
    ///
    /// # Errors
    /// When the store fails, or holds a setup that does not parse.
    pub fn open(store: Arc<dyn AccountStore>) -> Result<Self, StoreError> {
        let setup = match store.server_setup()? {
            Some(bytes) => ServerSetup::<Suite>::deserialize(&bytes).map_err(|e| {
                StoreError::Sqlite(rusqlite::Error::InvalidParameterName(format!(
                    "stored OPAQUE setup does not parse: {e}"
                )))
            })?,
            None => {
                let setup = ServerSetup::<Suite>::new(&mut OsRng);
                store.save_server_setup(&setup.serialize())?;
                setup
            }
        };
        let registered = store
            .list()?
            .into_iter()
            .map(|a| key(&a.nick).into())
            .collect();
        Ok(Accounts {
            store,
            setup,
            registered,
            pending: DashMap::new(),
            attempts: DashMap::new(),
        })
    }

    /// Accounts in memory (tests, and servers without a data folder).
    pub fn in_memory() -> Self {
        Self::open(Arc::new(MemoryStore::default())).expect("the memory store does not fail")
    }

    /// Whether `nick` (any case) has an account. The in-memory set answers "no" alone;
    /// a "yes" is confirmed with the store, so an account an operator deleted with
    /// `chat-server accounts delete` while the server runs is free at once.
    pub fn is_registered(&self, nick: &str) -> bool {
        let k = key(nick);
        if !self.registered.contains(k.as_str()) {
            return false;
        }
        match self.store.get(&k) {
            Ok(None) => {
                self.registered.remove(k.as_str());
                false
            }
            // On a storage error, err on the side of protecting the account.
            Ok(Some(_)) | Err(_) => true,
        }
    }

    /// Forgets logins under way and attempt counts older than their windows.
    pub fn housekeeping(&self, now: Instant) {
        self.pending
            .retain(|_, p| now.saturating_duration_since(p.started) < LOGIN_TIMEOUT);
        self.attempts
            .retain(|_, (start, _)| now.saturating_duration_since(*start) < ATTEMPT_WINDOW);
    }

    /// Counts a login attempt for `k`; returns whether it is within the limit.
    fn attempt(&self, k: &str, now: Instant) -> bool {
        let mut entry = self.attempts.entry(k.into()).or_insert((now, 0));
        if now.saturating_duration_since(entry.0) >= ATTEMPT_WINDOW {
            *entry = (now, 0);
        }
        entry.1 += 1;
        entry.1 <= MAX_ATTEMPTS
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Handler {
    /// Verifies a sealed datagram: known session, right MAC, fresh counter. Moves the
    /// session to `from` if it came from elsewhere. Returns the user's address, the inner
    /// datagram and the session, or `None` (counted) when it must be dropped.
    pub(super) fn open_sealed<'a>(
        &self,
        from: SocketAddr,
        datagram: &'a [u8],
        out: &mut Outbox,
    ) -> Option<(SocketAddr, &'a [u8], u64)> {
        let reject = || {
            self.state.auth_rejected.fetch_add(1, Ordering::Relaxed);
            None
        };
        if datagram.len() > self.max_datagram + crate::auth::SEAL_OVERHEAD {
            return reject();
        }
        let Ok(sealed) = Sealed::parse(datagram) else {
            return reject();
        };
        let at = {
            let Some(mut s) = self.state.sessions.get_mut(&sealed.session) else {
                return reject();
            };
            // MAC first: the window must only move for genuine datagrams.
            if !sealed.verify(&s.keys) || !s.window.accept(sealed.counter) {
                drop(s);
                return reject();
            }
            let at = s.addr;
            if at != from {
                s.addr = from;
            }
            at
        };
        if at != from {
            self.rebind(at, from, out);
        }
        Some((from, sealed.inner, sealed.session))
    }

    /// Moves the user at `old` to `new` after its session spoke from `new` (NAT rebinding).
    fn rebind(&self, old: SocketAddr, new: SocketAddr, out: &mut Outbox) {
        if self.state.users.contains_key(&new) {
            // The address was reassigned: whoever held it is gone.
            self.logoff(new, out);
        }
        if self.state.move_user(old, new) {
            tracing::debug!(%old, %new, "session moved to a new address");
        }
    }

    /// Stores the hot list of a password-logged-in user whose account exists.
    pub(super) fn save_hot_list(&self, addr: SocketAddr) {
        let Some((nick, watching, protected)) = self.state.users.get(&addr).map(|u| {
            let w: Vec<String> = u.watching.iter().map(|w| w.to_string()).collect();
            (u.nick.clone(), w, u.session.is_some())
        }) else {
            return;
        };
        if protected && self.accounts.is_registered(&nick) {
            if let Err(e) = self.accounts.store.set_watch(&key(&nick), &watching) {
                tracing::warn!(error = %e, "saving a hot list failed");
            }
        }
    }

    /// May the user at `from` change the account of its nickname? Guests may create one;
    /// only a password session may change or delete an existing one.
    fn account_owner(
        &self,
        from: SocketAddr,
        session: Option<u64>,
        out: &mut Outbox,
    ) -> Option<Box<str>> {
        let nick = self.state.users.get(&from).map(|u| u.nick.clone())?;
        if self.accounts.is_registered(&nick) && session.is_none() {
            out.error(from, errors::NEEDS_PASSWORD_LOGIN);
            return None;
        }
        Some(nick)
    }

    pub(super) fn register_start(
        &self,
        from: SocketAddr,
        message: &str,
        session: Option<u64>,
        out: &mut Outbox,
    ) {
        let Some(nick) = self.account_owner(from, session, out) else {
            return;
        };
        let request =
            b64_decode(message).and_then(|b| RegistrationRequest::<Suite>::deserialize(&b).ok());
        let Some(request) = request else {
            return out.error(from, errors::BAD_AUTH_MESSAGE);
        };
        match ServerRegistration::<Suite>::start(
            &self.accounts.setup,
            request,
            key(&nick).as_bytes(),
        ) {
            Ok(r) => out.send(
                from,
                &Event::RegisterResp {
                    message: &b64_encode(&r.message.serialize()),
                },
            ),
            Err(_) => out.error(from, errors::BAD_AUTH_MESSAGE),
        }
    }

    pub(super) fn register_finish(
        &self,
        from: SocketAddr,
        message: &str,
        session: Option<u64>,
        _now: Instant,
        out: &mut Outbox,
    ) {
        let Some(nick) = self.account_owner(from, session, out) else {
            return;
        };
        let upload =
            b64_decode(message).and_then(|b| RegistrationUpload::<Suite>::deserialize(&b).ok());
        let Some(upload) = upload else {
            return out.error(from, errors::BAD_AUTH_MESSAGE);
        };
        let record = ServerRegistration::<Suite>::finish(upload).serialize();
        let existed = self.accounts.is_registered(&nick);
        let watch: Vec<String> = self
            .state
            .users
            .get(&from)
            .map(|u| u.watching.iter().map(|w| w.to_string()).collect())
            .unwrap_or_default();
        let account = Account {
            nick: nick.to_string(),
            record: record.to_vec(),
            watch: watch.clone(),
            created: unix_now(),
        };
        let stored = self
            .accounts
            .store
            .put(&account)
            .and_then(|()| self.accounts.store.set_watch(&key(&nick), &watch));
        if let Err(e) = stored {
            tracing::warn!(error = %e, "storing an account failed");
            return out.error(from, errors::STORAGE_FAILED);
        }
        self.accounts.registered.insert(key(&nick).into());
        let what = if existed { "changed" } else { "registered" };
        out.send(from, &Event::AccountAck { what, nick: &nick });
    }

    pub(super) fn unregister(&self, from: SocketAddr, session: Option<u64>, out: &mut Outbox) {
        let Some(nick) = self.state.users.get(&from).map(|u| u.nick.clone()) else {
            return;
        };
        if session.is_none() || !self.accounts.is_registered(&nick) {
            return out.error(from, errors::NEEDS_PASSWORD_LOGIN);
        }
        if let Err(e) = self.accounts.store.delete(&key(&nick)) {
            tracing::warn!(error = %e, "deleting an account failed");
            return out.error(from, errors::STORAGE_FAILED);
        }
        self.accounts.registered.remove(key(&nick).as_str());
        out.send(
            from,
            &Event::AccountAck {
                what: "unregistered",
                nick: &nick,
            },
        );
    }

    pub(super) fn auth_start(
        &self,
        from: SocketAddr,
        nick: &str,
        message: &str,
        now: Instant,
        out: &mut Outbox,
    ) {
        if !valid_nick(nick) {
            return out.error(from, errors::INVALID_NICK);
        }
        let k = key(nick);
        if !self.accounts.is_registered(&k) {
            return out.error(from, errors::NO_ACCOUNT);
        }
        let request =
            b64_decode(message).and_then(|b| CredentialRequest::<Suite>::deserialize(&b).ok());
        let Some(request) = request else {
            return out.error(from, errors::BAD_AUTH_MESSAGE);
        };
        if !self.accounts.attempt(&k, now) {
            return out.error(from, errors::TOO_MANY_ATTEMPTS);
        }
        if self.accounts.pending.len() >= MAX_PENDING {
            self.accounts.housekeeping(now);
            if self.accounts.pending.len() >= MAX_PENDING {
                return out.error(from, errors::TOO_MANY_ATTEMPTS);
            }
        }
        let account = match self.accounts.store.get(&k) {
            Ok(Some(a)) => a,
            Ok(None) => return out.error(from, errors::NO_ACCOUNT),
            Err(e) => {
                tracing::warn!(error = %e, "reading an account failed");
                return out.error(from, errors::STORAGE_FAILED);
            }
        };
        let Ok(record) = ServerRegistration::<Suite>::deserialize(&account.record) else {
            tracing::error!(nick = %account.nick, "stored OPAQUE record does not parse");
            return out.error(from, errors::STORAGE_FAILED);
        };
        let started = ServerLogin::start(
            &mut OsRng,
            &self.accounts.setup,
            Some(record),
            request,
            k.as_bytes(),
            ServerLoginParameters::default(),
        );
        let Ok(started) = started else {
            return out.error(from, errors::BAD_AUTH_MESSAGE);
        };
        self.accounts.pending.insert(
            from,
            Pending {
                state: started.state,
                nick: account.nick,
                started: now,
            },
        );
        out.send(
            from,
            &Event::AuthChallenge {
                message: &b64_encode(&started.message.serialize()),
            },
        );
    }

    pub(super) fn auth_finish(
        &self,
        from: SocketAddr,
        message: &str,
        now: Instant,
        out: &mut Outbox,
    ) {
        let Some((_, pending)) = self.accounts.pending.remove(&from) else {
            return out.error(from, errors::LOGIN_FAILED);
        };
        if now.saturating_duration_since(pending.started) > LOGIN_TIMEOUT {
            return out.error(from, errors::LOGIN_FAILED);
        }
        let finalization =
            b64_decode(message).and_then(|b| CredentialFinalization::<Suite>::deserialize(&b).ok());
        let Some(finalization) = finalization else {
            return out.error(from, errors::BAD_AUTH_MESSAGE);
        };
        let Ok(done) = pending
            .state
            .finish(finalization, ServerLoginParameters::default())
        else {
            return out.error(from, errors::LOGIN_FAILED);
        };
        let keys = SessionKeys::derive(&done.session_key);
        if self.state.sessions.contains_key(&keys.id) {
            return out.error(from, errors::LOGIN_FAILED);
        }
        let nick = pending.nick;
        let k = key(&nick);
        let held = self
            .state
            .users
            .get(&from)
            .map(|u| (u.nick.to_lowercase(), u.session));
        let upgrade = match held {
            Some((held_key, old_session)) if held_key == k => {
                // The guest that holds this nickname proves it owns it: same user, now
                // protected, channels kept.
                if let Some(old) = old_session {
                    self.state.sessions.remove(&old);
                }
                true
            }
            Some(_) => {
                self.logoff(from, out);
                false
            }
            None => false,
        };
        if !upgrade {
            match self.state.claim(from, &nick, now) {
                Ok(()) => {}
                Err(crate::state::ClaimError::InUse) => {
                    return out.error(from, errors::NICK_IN_USE)
                }
                Err(crate::state::ClaimError::Full) => return out.error(from, errors::SERVER_FULL),
            }
        }
        self.state.sessions.insert(
            keys.id,
            Session {
                keys: keys.clone(),
                addr: from,
                window: Default::default(),
            },
        );
        let stored_watch = self
            .accounts
            .store
            .get(&k)
            .ok()
            .flatten()
            .map(|a| a.watch)
            .unwrap_or_default();
        if let Some(mut u) = self.state.users.get_mut(&from) {
            u.session = Some(keys.id);
        }
        out.send(from, &Event::LoginAck { nick: &nick });
        if !upgrade {
            for watcher in self.state.watchers_of(&nick) {
                out.send(watcher, &Event::UserOnline { nick: &nick });
            }
        }
        if !stored_watch.is_empty() {
            // Restore the hot list kept with the account (answers USER_ONLINE as WATCH does).
            self.watch(from, &stored_watch.join(" "), out);
        }
    }
}
