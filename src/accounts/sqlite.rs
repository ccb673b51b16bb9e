//! Accounts in an SQLite database file in the server's data folder: the default store,
//! embedded, with nothing to set up.

use std::path::Path;

use parking_lot::Mutex;
use rusqlite::{params, Connection, OptionalExtension};

use super::key;
use super::store::{split_watch, Account, AccountStore, StoreError};

/// The database file inside a data folder.
pub const DB_FILE: &str = "accounts.sqlite3";

/// Accounts in an SQLite database file, in WAL mode with `synchronous=FULL`: a write is on
/// disk when it returns, and a crash never loses a committed account.
pub struct SqliteStore {
    /// One connection; writes are rare (registrations, password changes, hot lists) and
    /// short, and only the server's store thread uses it, so a mutex is simpler than a
    /// pool and costs nothing measurable.
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

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

fn account(r: &rusqlite::Row<'_>) -> rusqlite::Result<Account> {
    Ok(Account {
        nick: r.get(0)?,
        record: r.get(1)?,
        watch: split_watch(&r.get::<_, String>(2)?),
        created: r.get(3)?,
    })
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
                account,
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
        let rows = stmt.query_map([], account)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn keys(&self) -> Result<Vec<String>, StoreError> {
        let conn = self.conn.lock();
        let mut stmt = conn.prepare("SELECT key FROM accounts ORDER BY key")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_store_keeps_accounts_across_reopening() {
        let dir = tempfile::tempdir().unwrap();
        super::super::store::exercise(&SqliteStore::open_dir(dir.path()).unwrap());
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
