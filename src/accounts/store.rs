//! Account storage behind a small trait: SQLite (embedded, the default), PostgreSQL (shared
//! by the servers of a cluster) and memory (for tests). Another database only has to
//! implement [`AccountStore`]. Which one a server uses is one [`StoreKind`], for the
//! server and for `chat-server accounts` alike.
//!
//! An account keeps the nickname as registered, the OPAQUE registration record (never a
//! password), and the user's hot list. Keys are nickname keys (`state::nick_key`). Every
//! write returns only once it is durable, so "registered" is said only after the commit.
//!
//! Stores are used only by threads that may block (the server's store thread, the command
//! line, start-up), never by the state machine.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

pub use crate::outbox::AccountData as Account;

use super::key;

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

/// A change another server made to the shared store: a nickname key and whether it is
/// registered now.
pub type Change = (String, bool);

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
    /// Creates the account or replaces its record (keeping its hot list); durable on return.
    ///
    /// # Errors
    /// When the store fails.
    fn put(&self, account: &Account) -> Result<(), StoreError>;
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
    /// Every account's key (cheaper than [`list`](Self::list)).
    ///
    /// # Errors
    /// When the store fails.
    fn keys(&self) -> Result<Vec<String>, StoreError> {
        Ok(self.list()?.into_iter().map(|a| key(&a.nick)).collect())
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

/// Where accounts are kept: one choice for the server and the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreKind {
    /// In memory, gone when the process ends (tests).
    Memory,
    /// An SQLite database in this data folder (made if missing).
    Sqlite(PathBuf),
    /// A PostgreSQL database (`postgres://...`), shared by the servers of a cluster.
    Postgres(String),
}

impl StoreKind {
    /// Opens the store.
    ///
    /// # Errors
    /// When the folder, file or database can't be opened or set up.
    pub fn open(&self) -> Result<Arc<dyn AccountStore>, StoreError> {
        self.open_with(&crate::tls::Trust::default())
    }

    /// Opens the store; a PostgreSQL server with TLS is verified with `trust`.
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub fn open_with(
        &self,
        trust: &crate::tls::Trust,
    ) -> Result<Arc<dyn AccountStore>, StoreError> {
        Ok(match self {
            StoreKind::Memory => Arc::new(MemoryStore::default()),
            StoreKind::Sqlite(dir) => Arc::new(super::sqlite::SqliteStore::open_dir(dir)?),
            StoreKind::Postgres(url) => {
                Arc::new(super::pg::PgStore::connect_with(url, trust.clone())?)
            }
        })
    }
}

impl std::fmt::Display for StoreKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreKind::Memory => f.write_str("memory"),
            StoreKind::Sqlite(dir) => write!(f, "SQLite in {}", dir.display()),
            // The URL may hold a password: show only that it is PostgreSQL.
            StoreKind::Postgres(_) => f.write_str("PostgreSQL"),
        }
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
        let watch = inner.1.get(&k).map(|a| a.watch.clone()).unwrap_or_default();
        inner.1.insert(
            k,
            Account {
                watch,
                ..account.clone()
            },
        );
        Ok(())
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

/// Runs the checks every store must pass (shared by the stores' tests).
#[cfg(test)]
pub(super) fn exercise(store: &dyn AccountStore) {
    assert_eq!(store.server_setup().unwrap(), None);
    store.save_server_setup(b"setup").unwrap();
    assert_eq!(
        store.server_setup().unwrap().as_deref(),
        Some(&b"setup"[..])
    );
    let a = Account {
        nick: "Ann".into(),
        record: vec![1, 2, 3],
        watch: vec![],
        created: 100,
    };
    store.put(&a).unwrap();
    store
        .set_watch("ann", &["bob".into(), "cid".into()])
        .unwrap();
    let got = store.get("ann").unwrap().unwrap();
    assert_eq!(got.watch, vec!["bob", "cid"]);
    // A new record (password change) keeps the hot list.
    store
        .put(&Account {
            record: vec![9],
            ..a.clone()
        })
        .unwrap();
    let got = store.get("ann").unwrap().unwrap();
    assert_eq!((got.record, got.watch.len()), (vec![9], 2));
    assert_eq!(store.list().unwrap().len(), 1);
    assert_eq!(store.keys().unwrap(), vec!["ann".to_string()]);
    assert!(store.delete("ann").unwrap());
    assert!(!store.delete("ann").unwrap());
    assert_eq!(store.get("ann").unwrap(), None);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_store_keeps_accounts() {
        exercise(&MemoryStore::default());
    }
}
