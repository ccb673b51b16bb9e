//! Account storage behind a small trait: SQLite (embedded, the default) and memory (for
//! tests). Another database only has to implement [`AccountStore`].
//!
//! An account keeps the nickname as registered, the OPAQUE registration record (never a
//! password), and the user's hot list. Keys are lower-cased nicknames. Every write returns
//! only once it is durable, so "registered" is said only after the commit.

use std::collections::BTreeMap;
use std::path::Path;

use parking_lot::Mutex;
use rusqlite::{params, Connection, OptionalExtension};

/// A stored account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The nickname as registered.
    pub nick: String,
    /// The serialized OPAQUE registration record.
    pub record: Vec<u8>,
    /// Lower-cased nicknames on the hot list.
    pub watch: Vec<String>,
    /// Seconds since the Unix epoch when the account was registered.
    pub created: i64,
}

/// Why storage failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The SQLite database failed.
    #[error("account database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The data folder could not be made.
    #[error("data folder {path}: {source}")]
    Folder {
        /// The folder.
        path: String,
        /// What the system said.
        source: std::io::Error,
    },
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
    /// The account under `key` (a lower-cased nickname).
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
}

/// The lower-cased key of a nickname.
pub fn key(nick: &str) -> String {
    nick.to_lowercase()
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

/// Accounts in an SQLite database file, in WAL mode with `synchronous=FULL`: a write is on
/// disk when it returns, and a crash never loses a committed account.
pub struct SqliteStore {
    /// One connection; writes are rare (registrations, password changes, hot lists) and
    /// short, so a mutex is simpler than a pool and costs nothing measurable.
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

/// The database file inside a data folder.
pub const DB_FILE: &str = "accounts.sqlite3";

impl SqliteStore {
    /// Opens (creating if needed) the database in the folder `dir`, creating the folder too.
    ///
    /// # Errors
    /// When the folder can't be made or the database can't be opened or set up.
    pub fn open_dir(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Folder {
            path: dir.display().to_string(),
            source,
        })?;
        Self::open(&dir.join(DB_FILE))
    }

    /// Opens (creating if needed) the database file at `path`.
    ///
    /// # Errors
    /// When the database can't be opened or set up.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS meta (
                 name  TEXT PRIMARY KEY,
                 value BLOB NOT NULL
             );
             CREATE TABLE IF NOT EXISTS accounts (
                 key     TEXT PRIMARY KEY,
                 nick    TEXT NOT NULL,
                 record  BLOB NOT NULL,
                 watch   TEXT NOT NULL DEFAULT '',
                 created INTEGER NOT NULL
             );",
        )?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
        })
    }

    /// The result of `PRAGMA integrity_check` ("ok" when the file is sound).
    ///
    /// # Errors
    /// When the check can't run.
    pub fn integrity_check(&self) -> Result<String, StoreError> {
        Ok(self
            .conn
            .lock()
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))?)
    }
}

fn split_watch(s: String) -> Vec<String> {
    s.split(' ')
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

impl AccountStore for SqliteStore {
    fn server_setup(&self) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .conn
            .lock()
            .query_row(
                "SELECT value FROM meta WHERE name = 'opaque_setup'",
                [],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn save_server_setup(&self, setup: &[u8]) -> Result<(), StoreError> {
        self.conn.lock().execute(
            "INSERT OR REPLACE INTO meta (name, value) VALUES ('opaque_setup', ?1)",
            params![setup],
        )?;
        Ok(())
    }

    fn get(&self, key: &str) -> Result<Option<Account>, StoreError> {
        Ok(self
            .conn
            .lock()
            .query_row(
                "SELECT nick, record, watch, created FROM accounts WHERE key = ?1",
                params![key],
                |r| {
                    Ok(Account {
                        nick: r.get(0)?,
                        record: r.get(1)?,
                        watch: split_watch(r.get(2)?),
                        created: r.get(3)?,
                    })
                },
            )
            .optional()?)
    }

    fn put(&self, a: &Account) -> Result<(), StoreError> {
        self.conn.lock().execute(
            "INSERT INTO accounts (key, nick, record, watch, created) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(key) DO UPDATE SET nick = excluded.nick, record = excluded.record",
            params![key(&a.nick), a.nick, a.record, a.watch.join(" "), a.created],
        )?;
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .lock()
            .execute("DELETE FROM accounts WHERE key = ?1", params![key])?
            > 0)
    }

    fn set_watch(&self, key: &str, watch: &[String]) -> Result<(), StoreError> {
        self.conn.lock().execute(
            "UPDATE accounts SET watch = ?2 WHERE key = ?1",
            params![key, watch.join(" ")],
        )?;
        Ok(())
    }

    fn list(&self) -> Result<Vec<Account>, StoreError> {
        let conn = self.conn.lock();
        let mut stmt =
            conn.prepare("SELECT nick, record, watch, created FROM accounts ORDER BY key")?;
        let rows = stmt.query_map([], |r| {
            Ok(Account {
                nick: r.get(0)?,
                record: r.get(1)?,
                watch: split_watch(r.get(2)?),
                created: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exercise(store: &dyn AccountStore) {
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
        assert!(store.delete("ann").unwrap());
        assert!(!store.delete("ann").unwrap());
        assert_eq!(store.get("ann").unwrap(), None);
    }

    #[test]
    fn memory_store_keeps_accounts() {
        exercise(&MemoryStore::default());
    }

    #[test]
    fn sqlite_store_keeps_accounts_across_reopening() {
        let dir = tempfile::tempdir().unwrap();
        exercise(&SqliteStore::open_dir(dir.path()).unwrap());
        let s = SqliteStore::open_dir(dir.path()).unwrap();
        s.put(&Account {
            nick: "Bob".into(),
            record: vec![4],
            watch: vec![],
            created: 1,
        })
        .unwrap();
        drop(s);
        let s = SqliteStore::open_dir(dir.path()).unwrap();
        assert_eq!(s.get("bob").unwrap().unwrap().nick, "Bob");
        assert_eq!(s.server_setup().unwrap().as_deref(), Some(&b"setup"[..]));
        assert_eq!(s.integrity_check().unwrap(), "ok");
    }
}
