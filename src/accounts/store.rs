//! Account storage behind a small trait: SQLite (embedded, the default), PostgreSQL (shared
//! by the servers of a cluster) and memory (for tests, here). Another database only has to
//! implement [`AccountStore`]. Which one a server uses is one `StoreKind` (`kind.rs`), for
//! the server and for `chat-server accounts` alike.
//!
//! An account keeps the nickname as registered, the OPAQUE registration record (never a
//! password), the user's hot list, and whether it is a server operator's (set only by
//! `chat-server accounts`, never over the network). Keys are nickname keys (`state::nick_key`). Every
//! write returns only once it is durable, so "registered" is said only after the commit.
//!
//! Stores are used only by threads that may block (the server's store thread, the command
//! line, start-up), never by the state machine.

use std::collections::BTreeMap;
use std::time::Duration;

use parking_lot::Mutex;

/// The key of a nickname in the store: the same as everywhere (a PRECIS fold,
/// `proto::nick`), so that an account is found whatever the case it is typed in.
pub fn key(nick: &str) -> String {
    proto::nick::key(nick)
}

/// An account as it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The nickname as registered.
    pub nick: String,
    /// The serialized OPAQUE registration record.
    pub record: Vec<u8>,
    /// Nickname keys on the hot list.
    pub watch: Vec<String>,
    /// Seconds since the Unix epoch when the account was registered.
    pub created: i64,
    /// Whether it is a server operator's account: set by whoever runs
    /// `chat-server accounts add --operator` or `accounts set --operator` on the server's
    /// store, never by a registration over the network. A nickname in the configuration's
    /// `operators` is a server operator only while logged in to such an account.
    pub operator: bool,
}

/// Why storage failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The SQLite database failed.
    #[error("account database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The PostgreSQL database failed.
    #[error("account database: {0}")]
    Postgres(#[from] postgres::Error),
    /// The data folder could not be made.
    #[error("data folder {path}: {source}")]
    Folder {
        /// The folder.
        path: String,
        /// What the system said.
        source: std::io::Error,
    },
    /// The stored OPAQUE setup does not parse, or is missing while accounts exist.
    #[error("account database: {0}")]
    Setup(String),
    /// The data folder or the database file can be read by other users.
    #[error("{path} is readable by other users (mode {mode:o}); it holds the server's secret keys: run `chmod {want:o} {path}`")]
    Permissions {
        /// The folder or file.
        path: String,
        /// Its mode.
        mode: u32,
        /// The mode it should have.
        want: u32,
    },
}

/// A change another server (or `chat-server accounts`) made to the shared store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The account under this key exists now (made, or its password changed).
    Registered(String),
    /// The account under this key is gone.
    Deleted(String),
    /// The account under this key is a server operator's now, or no longer.
    Operator(String, bool),
}

/// Changes to a shared store as they happen, so that a server's in-memory set of
/// registered nicknames follows registrations made through other servers.
pub trait ChangeFeed: Send {
    /// The changes that arrive within `wait` (empty when none did).
    ///
    /// # Errors
    /// When the feed's connection fails; the caller opens a new feed later.
    fn next(&mut self, wait: Duration) -> Result<Vec<Change>, StoreError>;
}

/// Durable storage of accounts and of the server's OPAQUE setup.
pub trait AccountStore: Send + Sync {
    /// The server's serialized OPAQUE setup, if one was saved.
    ///
    /// # Errors
    /// When the store fails.
    fn server_setup(&self) -> Result<Option<Vec<u8>>, StoreError>;
    /// Saves the server's OPAQUE setup (once, at first start).
    ///
    /// # Errors
    /// When the store fails.
    fn save_server_setup(&self, setup: &[u8]) -> Result<(), StoreError>;
    /// The account under `key` (a nickname key).
    ///
    /// # Errors
    /// When the store fails.
    fn get(&self, key: &str) -> Result<Option<Account>, StoreError>;
    /// Creates the account or replaces its record (keeping its hot list and, for an
    /// account that exists, its operator flag: a password change over the network never
    /// makes or unmakes an operator); durable on return.
    ///
    /// # Errors
    /// When the store fails.
    fn put(&self, account: &Account) -> Result<(), StoreError>;
    /// Creates the account, flag and hot list as given, unless there is one under its
    /// key already; returns whether it made it. Durable on return. A registration over
    /// the network and `chat-server accounts add` both create this way, so neither can
    /// overwrite an account the other made a moment before (a guest's upload can't
    /// replace the password of an operator's account made while it was under way).
    ///
    /// # Errors
    /// When the store fails.
    fn create(&self, account: &Account) -> Result<bool, StoreError>;
    /// Deletes the account under `key`; returns whether there was one.
    ///
    /// # Errors
    /// When the store fails.
    fn delete(&self, key: &str) -> Result<bool, StoreError>;
    /// Replaces the hot list of the account under `key`.
    ///
    /// # Errors
    /// When the store fails.
    fn set_watch(&self, key: &str, watch: &[String]) -> Result<(), StoreError>;
    /// Every account, by key.
    ///
    /// # Errors
    /// When the store fails.
    fn list(&self) -> Result<Vec<Account>, StoreError>;
    /// Marks the account under `key` as a server operator's, or not; returns whether
    /// there is such an account.
    ///
    /// # Errors
    /// When the store fails.
    fn set_operator(&self, key: &str, operator: bool) -> Result<bool, StoreError>;
    /// Every account's key (cheaper than [`list`](Self::list)).
    ///
    /// # Errors
    /// When the store fails.
    fn keys(&self) -> Result<Vec<String>, StoreError> {
        Ok(self.list()?.into_iter().map(|a| key(&a.nick)).collect())
    }
    /// The keys of the accounts marked as server operators'.
    ///
    /// # Errors
    /// When the store fails.
    fn operator_keys(&self) -> Result<Vec<String>, StoreError> {
        Ok(self
            .list()?
            .into_iter()
            .filter(|a| a.operator)
            .map(|a| key(&a.nick))
            .collect())
    }
    /// Whether someone else (another process on the same database: `chat-server
    /// accounts`) changed the accounts since the last call. Cheap enough to ask a few
    /// times a second; a store that can't tell says `false` and is re-read now and then.
    ///
    /// # Errors
    /// When the store fails.
    fn changed_elsewhere(&self) -> Result<bool, StoreError> {
        Ok(false)
    }
    /// Whether other servers write to the same store while this one runs (then the
    /// server follows their changes through [`changes`](Self::changes)).
    fn shared(&self) -> bool {
        false
    }
    /// A feed of changes made by others, for a shared store.
    ///
    /// # Errors
    /// When the feed can't be opened.
    fn changes(&self) -> Result<Option<Box<dyn ChangeFeed>>, StoreError> {
        Ok(None)
    }
}

/// Accounts in memory: for tests, and for servers started without a data folder.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Memory>,
}

/// The server setup and the accounts by key.
#[derive(Debug, Default)]
struct Memory(Option<Vec<u8>>, BTreeMap<String, Account>);

impl AccountStore for MemoryStore {
    fn server_setup(&self) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.inner.lock().0.clone())
    }
    fn save_server_setup(&self, setup: &[u8]) -> Result<(), StoreError> {
        self.inner.lock().0 = Some(setup.to_vec());
        Ok(())
    }
    fn get(&self, key: &str) -> Result<Option<Account>, StoreError> {
        Ok(self.inner.lock().1.get(key).cloned())
    }
    fn put(&self, account: &Account) -> Result<(), StoreError> {
        let mut inner = self.inner.lock();
        let k = key(&account.nick);
        let (watch, operator) = inner.1.get(&k).map_or((Vec::new(), account.operator), |a| {
            (a.watch.clone(), a.operator)
        });
        inner.1.insert(
            k,
            Account {
                watch,
                operator,
                ..account.clone()
            },
        );
        Ok(())
    }
    fn create(&self, account: &Account) -> Result<bool, StoreError> {
        match self.inner.lock().1.entry(key(&account.nick)) {
            std::collections::btree_map::Entry::Occupied(_) => Ok(false),
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(account.clone());
                Ok(true)
            }
        }
    }
    fn set_operator(&self, key: &str, operator: bool) -> Result<bool, StoreError> {
        Ok(self
            .inner
            .lock()
            .1
            .get_mut(key)
            .map(|a| a.operator = operator)
            .is_some())
    }
    fn delete(&self, key: &str) -> Result<bool, StoreError> {
        Ok(self.inner.lock().1.remove(key).is_some())
    }
    fn set_watch(&self, key: &str, watch: &[String]) -> Result<(), StoreError> {
        if let Some(a) = self.inner.lock().1.get_mut(key) {
            a.watch = watch.to_vec();
        }
        Ok(())
    }
    fn list(&self) -> Result<Vec<Account>, StoreError> {
        Ok(self.inner.lock().1.values().cloned().collect())
    }
}

/// Splits a stored hot list (keys separated by spaces).
pub(super) fn split_watch(s: &str) -> Vec<String> {
    s.split(' ')
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}
