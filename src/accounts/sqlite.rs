//! Accounts in an SQLite database file in the server's data folder: the default store,
//! embedded, with nothing to set up.

use std::path::Path;

use std::sync::atomic::{AtomicI64, Ordering};

use parking_lot::Mutex;
use rusqlite::{params, Connection, OptionalExtension};

use super::store::{key, split_watch, Account, AccountStore, StoreError};

/// The database file inside a data folder.
pub(super) const DB_FILE: &str = "accounts.sqlite3";

/// Accounts in an SQLite database file, in WAL mode with `synchronous=FULL`: a write is on
/// disk when it returns, and a crash never loses a committed account.
#[derive(Debug)]
pub struct SqliteStore {
    /// One connection; writes are rare (registrations, password changes, hot lists) and
    /// short, and only the server's store thread uses it, so a mutex is simpler than a
    /// pool and costs nothing measurable.
    conn: Mutex<Connection>,
    /// `PRAGMA data_version` when last asked: it changes when another connection (the
    /// operator's `chat-server accounts`) commits, never for this one's own writes.
    seen_version: AtomicI64,
}

impl SqliteStore {
    /// Opens (creating if needed) the database in the folder `dir`, creating the folder too.
    ///
    /// The database holds the server's OPRF seed and private key, so the folder is made
    /// `0700` and the file `0600` (its `-wal` and `-shm` companions too); an existing folder
    /// or file that group or others may read is refused rather than used.
    ///
    /// # Errors
    /// When the folder can't be made, the database can't be opened or set up, or either is
    /// open to other users ([`StoreError::Permissions`]).
    pub fn open_dir(dir: &Path) -> Result<Self, StoreError> {
        let conn = open_private(dir, DB_FILE, SCHEMA)?;
        migrate(&conn)?;
        let version = data_version(&conn)?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
            seen_version: AtomicI64::new(version),
        })
    }

    /// The result of `PRAGMA integrity_check` ("ok" when the file is sound).
    ///
    /// # Errors
    /// When the check can't run.
    pub fn integrity_check(&self) -> Result<String, StoreError> {
        integrity(&self.conn.lock())
    }
}

/// Opening a new file `0600`.
trait ModePrivate {
    fn mode_private(&mut self) -> &mut Self;
}

impl ModePrivate for std::fs::OpenOptions {
    fn mode_private(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.mode(0o600)
    }
}

/// The accounts' tables.
const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS meta (
         name  TEXT PRIMARY KEY,
         value BLOB NOT NULL
     );
     CREATE TABLE IF NOT EXISTS accounts (
         key     TEXT PRIMARY KEY,
         nick    TEXT NOT NULL,
         record  BLOB NOT NULL,
         watch   TEXT NOT NULL DEFAULT '',
         created INTEGER NOT NULL,
         operator INTEGER NOT NULL DEFAULT 0
     );";

/// Brings a database made by an older server up to [`SCHEMA`]: the `operator` column
/// (0 for every account there: an account registered over the network, as every older
/// one was, is not an operator's until the operator says so with `chat-server accounts
/// set NICK --operator`).
fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let has_operator = conn
        .prepare("SELECT 1 FROM pragma_table_info('accounts') WHERE name = 'operator'")?
        .exists([])?;
    if !has_operator {
        conn.execute_batch("ALTER TABLE accounts ADD COLUMN operator INTEGER NOT NULL DEFAULT 0")?;
    }
    Ok(())
}

/// `PRAGMA data_version` of `conn`.
fn data_version(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row("PRAGMA data_version", [], |r| r.get(0))?)
}

/// Opens (creating if needed) the database file `name` in the folder `dir`, creating the
/// folder too, and sets up `schema`; the accounts and the community both keep theirs so.
///
/// The folder is made `0700` and the file `0600` (its `-wal` and `-shm` companions too);
/// an existing folder or file that group or others may read is refused rather than used.
///
/// # Errors
/// When the folder can't be made, the database can't be opened or set up, or either is
/// open to other users ([`StoreError::Permissions`]).
pub(super) fn open_private(dir: &Path, name: &str, schema: &str) -> Result<Connection, StoreError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let folder_err = |source| StoreError::Folder {
        path: dir.display().to_string(),
        source,
    };
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(folder_err)?;
    }
    private(dir, 0o700)?;
    let file = dir.join(name);
    if !file.exists() {
        // Made empty with the right mode before SQLite opens it, so it is never readable.
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode_private()
            .open(&file)
            .map_err(folder_err)?;
    }
    private(&file, 0o600)?;
    let conn = connect(&file, schema)?;
    for companion in ["-wal", "-shm"] {
        let p = dir.join(format!("{name}{companion}"));
        if p.exists() {
            let _ = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600));
        }
    }
    Ok(conn)
}

/// A connection to the database at `path` as every store here wants it (write-ahead log,
/// a full sync per commit, 5 s of waiting for a lock), with `schema` set up.
///
/// # Errors
/// When the database can't be opened or set up.
pub(super) fn connect(path: &Path, schema: &str) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch(schema)?;
    Ok(conn)
}

/// The result of `PRAGMA integrity_check` on `conn` ("ok" when the file is sound).
pub(super) fn integrity(conn: &Connection) -> Result<String, StoreError> {
    Ok(conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?)
}

/// Refuses `path` if group or others have any permission on it.
pub(super) fn private(path: &Path, want: u32) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|source| StoreError::Folder {
        path: path.display().to_string(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(StoreError::Permissions {
            path: path.display().to_string(),
            mode,
            want,
        });
    }
    Ok(())
}

/// Writes `a` under its key, `on_conflict` saying what an existing row of that key gets;
/// how many rows were written.
fn insert(conn: &Connection, a: &Account, on_conflict: &str) -> rusqlite::Result<usize> {
    conn.execute(
        &format!(
            "INSERT INTO accounts (key, nick, record, watch, created, operator)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) {on_conflict}"
        ),
        params![
            key(&a.nick),
            a.nick,
            a.record,
            a.watch.join(" "),
            a.created,
            a.operator
        ],
    )
}

fn account(r: &rusqlite::Row<'_>) -> rusqlite::Result<Account> {
    Ok(Account {
        nick: r.get(0)?,
        record: r.get(1)?,
        watch: split_watch(&r.get::<_, String>(2)?),
        created: r.get(3)?,
        operator: r.get(4)?,
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
                "SELECT nick, record, watch, created, operator FROM accounts WHERE key = ?1",
                params![key],
                account,
            )
            .optional()?)
    }

    fn put(&self, a: &Account) -> Result<(), StoreError> {
        insert(
            &self.conn.lock(),
            a,
            "ON CONFLICT(key) DO UPDATE SET nick = excluded.nick, record = excluded.record",
        )?;
        Ok(())
    }

    fn create(&self, a: &Account) -> Result<bool, StoreError> {
        Ok(insert(&self.conn.lock(), a, "ON CONFLICT(key) DO NOTHING")? > 0)
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
        let mut stmt = conn
            .prepare("SELECT nick, record, watch, created, operator FROM accounts ORDER BY key")?;
        let rows = stmt.query_map([], account)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn set_operator(&self, key: &str, operator: bool) -> Result<bool, StoreError> {
        Ok(self.conn.lock().execute(
            "UPDATE accounts SET operator = ?2 WHERE key = ?1",
            params![key, operator],
        )? > 0)
    }

    fn keys(&self) -> Result<Vec<String>, StoreError> {
        let conn = self.conn.lock();
        let mut stmt = conn.prepare("SELECT key FROM accounts ORDER BY key")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn operator_keys(&self) -> Result<Vec<String>, StoreError> {
        let conn = self.conn.lock();
        let mut stmt = conn.prepare("SELECT key FROM accounts WHERE operator ORDER BY key")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn changed_elsewhere(&self) -> Result<bool, StoreError> {
        let now = data_version(&self.conn.lock())?;
        Ok(self.seen_version.swap(now, Ordering::Relaxed) != now)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A data folder that does not exist yet, in a temporary folder that lives as long as
    /// the guard returned with it.
    pub(crate) fn data_dir() -> (tempfile::TempDir, std::path::PathBuf) {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("data");
        (parent, dir)
    }

    /// The permission bits of the file or folder `p`.
    pub(crate) fn mode(p: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn sqlite_store_keeps_accounts_across_reopening() {
        let (_parent, dir) = data_dir();
        crate::accounts::exercise_accounts(&SqliteStore::open_dir(&dir).unwrap());
        let s = SqliteStore::open_dir(&dir).unwrap();
        s.put(&Account {
            nick: "Bob".into(),
            record: vec![4],
            watch: vec![],
            created: 1,
            operator: false,
        })
        .unwrap();
        drop(s);
        let s = SqliteStore::open_dir(&dir).unwrap();
        assert_eq!(s.get("bob").unwrap().unwrap().nick, "Bob");
        assert_eq!(s.server_setup().unwrap().as_deref(), Some(&b"setup"[..]));
        assert_eq!(s.integrity_check().unwrap(), "ok");
    }

    #[test]
    fn a_database_of_an_older_server_gets_the_operator_flag_cleared() {
        let (_parent, dir) = data_dir();
        std::fs::create_dir(&dir).unwrap();
        {
            // The accounts table as servers before the operator flag made it.
            let old = "CREATE TABLE accounts (key TEXT PRIMARY KEY, nick TEXT NOT NULL,
                 record BLOB NOT NULL, watch TEXT NOT NULL DEFAULT '', created INTEGER NOT NULL);
                 INSERT INTO accounts VALUES ('alice', 'alice', x'01', '', 1);";
            connect(&dir.join(DB_FILE), old).unwrap();
            std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
                .unwrap();
            std::fs::set_permissions(
                dir.join(DB_FILE),
                std::os::unix::fs::PermissionsExt::from_mode(0o600),
            )
            .unwrap();
        }
        let s = SqliteStore::open_dir(&dir).unwrap();
        let alice = s.get("alice").unwrap().unwrap();
        assert!(
            !alice.operator,
            "a claimed name is no operator's after the upgrade"
        );
        assert!(s.set_operator("alice", true).unwrap());
        assert!(!s.set_operator("nobody", true).unwrap());
        assert_eq!(s.operator_keys().unwrap(), ["alice"]);
        // Opening it again changes nothing.
        drop(s);
        let s = SqliteStore::open_dir(&dir).unwrap();
        assert!(s.get("alice").unwrap().unwrap().operator);
    }

    #[test]
    fn a_change_by_another_connection_is_noticed_and_our_own_are_not() {
        let (_parent, dir) = data_dir();
        let server = SqliteStore::open_dir(&dir).unwrap();
        let bob = Account {
            nick: "bob".into(),
            record: vec![1],
            watch: vec![],
            created: 1,
            operator: false,
        };
        server.put(&bob).unwrap();
        assert!(!server.changed_elsewhere().unwrap());
        let cli = SqliteStore::open_dir(&dir).unwrap();
        assert!(cli.delete("bob").unwrap());
        assert!(server.changed_elsewhere().unwrap());
        assert!(!server.changed_elsewhere().unwrap(), "told once");
        assert_eq!(server.keys().unwrap(), Vec::<String>::new());
    }

    #[test]
    fn the_data_folder_and_database_are_private_and_open_ones_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let (_parent, dir) = data_dir();
        drop(SqliteStore::open_dir(&dir).unwrap());
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(DB_FILE)), 0o600);
        std::fs::set_permissions(dir.join(DB_FILE), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        let err = SqliteStore::open_dir(&dir).unwrap_err().to_string();
        assert!(
            err.contains("readable by other users") && err.contains("chmod 600"),
            "{err}"
        );
        std::fs::set_permissions(dir.join(DB_FILE), std::fs::Permissions::from_mode(0o600))
            .unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = SqliteStore::open_dir(&dir).unwrap_err().to_string();
        assert!(err.contains("chmod 700"), "{err}");
    }
}
