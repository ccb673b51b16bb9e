//! The OPAQUE service the state machine uses ([`Service`]): the server's setup, the set of
//! registered nicknames (and their confusable skeletons), password logins under way, and
//! the limits on logins and registrations. No I/O: the stores are read and written by the
//! server's store thread, which keeps this service's view current.
//!
//! The server side of OPAQUE is cheap (an OPRF evaluation and a triple Diffie-Hellman, well
//! under a millisecond); the Argon2 stretching runs on the client.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use dashmap::{DashMap, DashSet};
#[cfg(test)]
use opaque_ke::CredentialResponse;
use opaque_ke::{
    CredentialFinalization, CredentialRequest, RegistrationRequest, RegistrationUpload,
    ServerLogin, ServerLoginParameters, ServerRegistration, ServerSetup,
};
use parking_lot::RwLock;
use rand::rngs::OsRng;

use super::limits::{LoginLimits, Prefix, Refusal, RegisterLimits};
use super::store::{key, Account, AccountStore, Change, StoreError};
use super::tokens::{Purpose, Tokens};
use proto::auth::{b64_decode, b64_encode, SessionKeys, Suite, CONTEXT};

/// How long a password login may take between AUTH_REQ and AUTH_FINISH.
pub(super) const LOGIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Password logins under way at once, over all addresses.
pub(super) const MAX_PENDING: usize = 4096;
/// Password logins under way at once from one network prefix (`limits::Prefix`).
pub(super) const MAX_PENDING_PER_PREFIX: usize = 16;

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
    /// The credential request it answers and the answer, so that the same AUTH_REQ again
    /// (a retry, or someone replaying it) gets the same answer and changes nothing.
    request: Vec<u8>,
    challenge: String,
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
    /// Keys of the registered accounts marked as server operators' in the store (by
    /// `chat-server accounts`), kept current as `registered` is: a delete or a demotion
    /// ends the rights of a session logged in to the account at its next request.
    operators: DashSet<Box<str>>,
    /// Confusable skeleton (`proto::nick`) of each registered key → that key, so that a
    /// look-alike of a registered nickname is refused.
    skeletons: DashMap<String, Box<str>>,
    /// Confusable skeletons of the nicknames the configuration names as server operators'
    /// (`operators`), replaced at start and at each reload: neither those nor a look-alike
    /// of one may be taken by a guest or registered over the network, whether or not
    /// their accounts exist yet.
    reserved: RwLock<HashSet<String>>,
    /// Password logins under way, by address; bounded by [`MAX_PENDING`] and
    /// [`MAX_PENDING_PER_PREFIX`].
    pending: DashMap<SocketAddr, Pending>,
    /// Password logins under way per network prefix.
    pending_per_prefix: DashMap<Prefix, usize>,
    /// How often logins may start (`limits`).
    logins: LoginLimits,
    /// How often registrations may be made.
    registrations: RegisterLimits,
    /// Retry tokens and registration cookies (`tokens`).
    tokens: Tokens,
    /// Whether this server keeps accounts at all (`--accounts-off` clears it).
    enabled: bool,
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
        let s = Service::with_setup(setup);
        s.refresh(keys, store.operator_keys()?);
        Ok(s)
    }

    fn with_setup(setup: ServerSetup<Suite>) -> Self {
        Service {
            setup,
            registered: DashSet::new(),
            operators: DashSet::new(),
            skeletons: DashMap::new(),
            reserved: RwLock::default(),
            pending: DashMap::new(),
            pending_per_prefix: DashMap::new(),
            logins: LoginLimits::default(),
            registrations: RegisterLimits::default(),
            tokens: Tokens::new(),
            enabled: true,
        }
    }

    /// A service with a fresh setup and no accounts (tests, and servers without storage).
    pub fn in_memory() -> Self {
        Service::with_setup(ServerSetup::<Suite>::new(&mut OsRng))
    }

    /// A service that keeps no accounts: registrations and password logins are refused
    /// (a cluster run without a shared account store, `--accounts-off`).
    pub fn disabled() -> Self {
        Service {
            enabled: false,
            ..Service::in_memory()
        }
    }

    /// The same service allowing `per_prefix` new registrations per network prefix an hour.
    pub fn with_register_limit(mut self, per_prefix: u32) -> Self {
        self.registrations = RegisterLimits::new(per_prefix);
        self
    }

    /// Whether accounts are on.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The server's OPAQUE public key (what clients pin), in base64.
    pub fn public_key(&self) -> String {
        b64_encode(&self.setup.keypair().public().serialize())
    }

    /// Whether `nick` (any case) has an account, as far as this server knows.
    pub fn is_registered(&self, nick: &str) -> bool {
        self.registered.contains(key(nick).as_str())
    }

    /// Whether `nick` is not registered but looks like a registered nickname (same
    /// confusable skeleton, `proto::nick`).
    pub fn looks_registered(&self, nick: &str) -> bool {
        if self.skeletons.is_empty() {
            return false;
        }
        let k = key(nick);
        self.skeletons
            .get(&proto::nick::skeleton(&k))
            .is_some_and(|owner| **owner != *k)
    }

    /// Reserves the nicknames `keys` (and their look-alikes) for server operators,
    /// replacing those reserved before.
    pub fn reserve(&self, keys: &[String]) {
        *self.reserved.write() = keys.iter().map(|k| proto::nick::skeleton(k)).collect();
    }

    /// Whether `nick` (any case) is a nickname [reserved](Self::reserve) for a server
    /// operator, or looks like one.
    pub fn is_reserved(&self, nick: &str) -> bool {
        let reserved = self.reserved.read();
        !reserved.is_empty() && reserved.contains(&proto::nick::skeleton(&key(nick)))
    }

    /// Whether the account under `key` (a nickname key) exists and is marked as a server
    /// operator's in the store, as far as this server knows.
    pub fn is_operator_account(&self, key: &str) -> bool {
        self.operators.contains(key)
    }

    /// Records that the account under `key` exists (or not: then it is no operator's
    /// either).
    pub fn set_registered(&self, key: &str, registered: bool) {
        let skeleton = proto::nick::skeleton(key);
        if registered {
            self.registered.insert(key.into());
            self.skeletons.entry(skeleton).or_insert_with(|| key.into());
        } else {
            self.registered.remove(key);
            self.operators.remove(key);
            self.skeletons
                .remove_if(&skeleton, |_, owner| **owner == *key);
        }
    }

    /// Records that the account under `key` is a server operator's (or not).
    pub fn set_operator(&self, key: &str, operator: bool) {
        if operator && self.registered.contains(key) {
            self.operators.insert(key.into());
        } else {
            self.operators.remove(key);
        }
    }

    /// Applies a change another server or `chat-server accounts` made to the store.
    pub(crate) fn apply(&self, change: Change) {
        match change {
            Change::Registered(k) => self.set_registered(&k, true),
            Change::Deleted(k) => self.set_registered(&k, false),
            Change::Operator(k, on) => self.set_operator(&k, on),
        }
    }

    /// Replaces the registered set with `keys`, and the operators' accounts with
    /// `operators` (a re-read of the store).
    pub fn refresh(&self, keys: Vec<String>, operators: Vec<String>) {
        let fresh: HashSet<&str> = keys.iter().map(String::as_str).collect();
        self.registered.retain(|k| fresh.contains(&**k));
        self.skeletons.retain(|_, owner| fresh.contains(&**owner));
        for k in &keys {
            self.set_registered(k, true);
        }
        let ops: HashSet<&str> = operators.iter().map(String::as_str).collect();
        self.operators
            .retain(|k| ops.contains(&**k) && fresh.contains(&**k));
        for k in operators.iter().filter(|k| fresh.contains(k.as_str())) {
            self.operators.insert(k.as_str().into());
        }
    }

    /// A token for `purpose` sent to `to` about nickname key `key` at `wall_secs`.
    pub fn issue_token(
        &self,
        purpose: Purpose,
        to: SocketAddr,
        key: &str,
        wall_secs: u64,
    ) -> String {
        self.tokens.issue(purpose, to, key, wall_secs)
    }

    /// Whether `token` proves that `from` received a token for `purpose` and `key` lately.
    pub fn check_token(
        &self,
        purpose: Purpose,
        from: SocketAddr,
        key: &str,
        token: &str,
        wall_secs: u64,
    ) -> bool {
        self.tokens.check(purpose, from, key, token, wall_secs)
    }

    /// Counts a login start of `key` from `from` (after its address is proven).
    ///
    /// # Errors
    /// The limit it is over (`limits`).
    pub fn login_allowed(&self, key: &str, from: SocketAddr, now: Instant) -> Result<(), Refusal> {
        self.logins.start(key, from, now)
    }

    /// Counts a new registration from `from`; whether it may go ahead.
    pub fn registration_allowed(&self, from: SocketAddr, now: Instant) -> bool {
        self.registrations.take(from, now)
    }

    /// The challenge already sent to `from` for exactly this credential request, if a
    /// login with it is under way (a retry or a replay of the same AUTH_REQ).
    pub fn pending_challenge(&self, from: SocketAddr, request: &[u8]) -> Option<String> {
        self.pending
            .get(&from)
            .filter(|p| p.request == request)
            .map(|p| p.challenge.clone())
    }

    /// Registered nicknames known.
    pub fn registered_count(&self) -> usize {
        self.registered.len()
    }

    /// Forgets logins under way and limit windows that are over.
    pub fn housekeeping(&self, now: Instant) {
        let mut gone = Vec::new();
        self.pending.retain(|addr, p| {
            let keep = now.saturating_duration_since(p.started) < LOGIN_TIMEOUT;
            if !keep {
                gone.push(*addr);
            }
            keep
        });
        for addr in gone {
            self.pending_gone(addr);
        }
        self.logins.housekeeping(now);
    }

    fn pending_gone(&self, addr: SocketAddr) {
        let prefix = Prefix::of(addr);
        if let dashmap::mapref::entry::Entry::Occupied(mut e) =
            self.pending_per_prefix.entry(prefix)
        {
            *e.get_mut() -= 1;
            if *e.get() == 0 {
                e.remove();
            }
        }
    }

    /// Whether another password login may start from `from` (after purging expired ones):
    /// room in the table, and in its prefix's share of it. A login already under way from
    /// `from` is replaced, so it always has room.
    pub fn has_room(&self, from: SocketAddr, now: Instant) -> bool {
        if self.pending.contains_key(&from) {
            return true;
        }
        let fits = |s: &Self| {
            s.pending.len() < MAX_PENDING
                && s.pending_per_prefix
                    .get(&Prefix::of(from))
                    .is_none_or(|n| *n < MAX_PENDING_PER_PREFIX)
        };
        if fits(self) {
            return true;
        }
        self.housekeeping(now);
        fits(self)
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
        let request_bytes = request.serialize().to_vec();
        let started = ServerLogin::start(
            &mut OsRng,
            &self.setup,
            Some(record),
            request,
            key(&account.nick).as_bytes(),
            server_parameters(),
        )
        .map_err(|_| LoginError::Malformed)?;
        let challenge = b64_encode(&started.message.serialize());
        let old = self.pending.insert(
            from,
            Pending {
                state: started.state,
                nick: account.nick,
                watch: account.watch,
                started: now,
                request: request_bytes,
                challenge: challenge.clone(),
            },
        );
        if old.is_none() {
            *self.pending_per_prefix.entry(Prefix::of(from)).or_insert(0) += 1;
        }
        Ok(challenge)
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
        self.pending_gone(from);
        if now.saturating_duration_since(pending.started) > LOGIN_TIMEOUT {
            return Err(LoginError::Failed);
        }
        let finalization = b64_decode(message)
            .and_then(|b| CredentialFinalization::<Suite>::deserialize(&b).ok())
            .ok_or(LoginError::Malformed)?;
        let done = pending
            .state
            .finish(finalization, server_parameters())
            .map_err(|_| LoginError::Failed)?;
        self.logins.succeeded(&key(&pending.nick), from);
        Ok(LoggedIn {
            nick: pending.nick,
            keys: SessionKeys::derive(&done.session_key),
            watch: pending.watch,
        })
    }
}

/// The server's OPAQUE login parameters: udpchat's context string, default identifiers.
fn server_parameters() -> ServerLoginParameters<'static, 'static> {
    ServerLoginParameters {
        context: Some(CONTEXT),
        identifiers: opaque_ke::Identifiers::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::accounts::store::MemoryStore;

    #[test]
    fn a_store_with_accounts_but_no_setup_is_refused() {
        let store = MemoryStore::default();
        store
            .put(&Account {
                nick: "ann".into(),
                record: vec![1],
                watch: vec![],
                created: 0,
                operator: false,
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
    fn a_login_under_another_context_string_fails() {
        use opaque_ke::{ClientLogin, ClientLoginFinishParameters};
        let s = Service::in_memory();
        let ksf = proto::auth::argon2();
        // Registered as our client does.
        let start = proto::auth::register_start("pw");
        let request = std::str::from_utf8(&start.datagram[2..]).unwrap();
        let response = s.registration_response("ann", request).unwrap();
        let upload = start.finish("pw", &response).unwrap();
        let record =
            Service::registration_record(std::str::from_utf8(&upload[2..]).unwrap()).unwrap();
        let account = Account {
            nick: "ann".into(),
            record,
            watch: vec![],
            created: 0,
            operator: false,
        };
        let from: SocketAddr = "127.0.0.1:9".parse().unwrap();
        // A client that binds the login to another context (or none) can't finish it.
        let login = ClientLogin::<Suite>::start(&mut OsRng, b"pw").unwrap();
        let challenge = s
            .login_start(from, account, &login.message.serialize(), Instant::now())
            .unwrap();
        let response =
            CredentialResponse::<Suite>::deserialize(&b64_decode(&challenge).unwrap()).unwrap();
        let finished = login.state.finish(
            &mut OsRng,
            b"pw",
            response,
            ClientLoginFinishParameters::new(
                Some(b"another protocol"),
                opaque_ke::Identifiers::default(),
                Some(&ksf),
            ),
        );
        assert!(
            finished.is_err(),
            "the server's answer verified under another context"
        );
    }

    #[test]
    fn refresh_follows_the_store() {
        let s = Service::in_memory();
        s.set_registered("ann", true);
        s.set_registered("bob", true);
        s.set_operator("ann", true);
        s.refresh(
            vec!["bob".into(), "cid".into()],
            vec!["cid".into(), "dan".into()],
        );
        // An operator flag counts only for an account that exists.
        assert!(!s.is_operator_account("ann") && !s.is_operator_account("dan"));
        assert!(s.is_operator_account("cid") && !s.is_operator_account("bob"));
        assert!(!s.is_registered("Ann") && s.is_registered("BOB") && s.is_registered("cid"));
        // Look-alikes of registered names are caught; the names themselves are not.
        assert!(s.looks_registered("b\u{43e}b"), "Cyrillic o");
        assert!(s.looks_registered("\u{441}id"), "Cyrillic es");
        assert!(!s.looks_registered("cid") && !s.looks_registered("ann"));
        s.set_registered("cid", false);
        assert!(!s.looks_registered("\u{441}id"));
        assert!(
            !s.is_operator_account("cid"),
            "deleted: no longer an operator"
        );
        s.apply(Change::Registered("cid".into()));
        assert!(s.is_registered("cid") && !s.is_operator_account("cid"));
        s.apply(Change::Operator("cid".into(), true));
        assert!(s.is_operator_account("cid"));
        s.apply(Change::Operator("cid".into(), false));
        assert!(!s.is_operator_account("cid"));
        s.apply(Change::Operator("cid".into(), true));
        s.apply(Change::Deleted("cid".into()));
        assert!(!s.is_registered("cid") && !s.is_operator_account("cid"));
    }

    #[test]
    fn operator_nicknames_and_their_look_alikes_are_reserved_until_unlisted() {
        let s = Service::in_memory();
        assert!(!s.is_reserved("root"));
        s.reserve(&["root".into(), "ann".into()]);
        for taken in ["root", "ROOT", "r\u{43e}\u{43e}t", "\u{430}nn"] {
            assert!(s.is_reserved(taken), "{taken:?}");
        }
        assert!(!s.is_reserved("rooty") && !s.is_reserved("bob"));
        s.reserve(&["ann".into()]);
        assert!(!s.is_reserved("root") && s.is_reserved("Ann"));
    }
}
