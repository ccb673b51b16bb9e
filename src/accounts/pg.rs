//! Accounts in PostgreSQL (`--database postgres://...`), so that every server of a cluster
//! sees the same accounts: registered on one, logged in with the password on another.

use parking_lot::Mutex;
use postgres::{Client, NoTls};

use super::{key, Account, AccountStore, StoreError};

/// Accounts in a PostgreSQL database. Every write is one autocommitted statement, durable
/// when it returns (PostgreSQL's default `synchronous_commit`).
pub struct PgStore {
    /// One connection behind a mutex, as for SQLite: account operations are rare
    /// (a registration, a password login, a hot-list edit) and short, so a pool would buy
    /// nothing; the mutex is never held while another lock is taken.
    conn: Mutex<Client>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects to `url` (`postgres://user@host:port/db`) and creates the tables if needed.
    ///
    /// # Errors
    /// When the database can't be reached or the tables can't be made.
    pub fn connect(url: &str) -> Result<Self, StoreError> {
        let mut conn = Client::connect(url, NoTls)?;
        // Two servers starting together may both try to create the tables: IF NOT EXISTS
        // can still race in PostgreSQL, so a failure is retried once after the other won.
        let ddl = "CREATE TABLE IF NOT EXISTS udpchat_meta (
                 name  TEXT PRIMARY KEY,
                 value BYTEA NOT NULL
             );
             CREATE TABLE IF NOT EXISTS udpchat_accounts (
                 key     TEXT PRIMARY KEY,
                 nick    TEXT NOT NULL,
                 record  BYTEA NOT NULL,
                 watch   TEXT NOT NULL DEFAULT '',
                 created BIGINT NOT NULL
             );";
        if conn.batch_execute(ddl).is_err() {
            conn.batch_execute(ddl)?;
        }
        Ok(PgStore {
            conn: Mutex::new(conn),
        })
    }
}

fn split_watch(s: &str) -> Vec<String> {
    s.split(' ')
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

fn account(row: &postgres::Row) -> Account {
    Account {
        nick: row.get(0),
        record: row.get(1),
        watch: split_watch(row.get(2)),
        created: row.get(3),
    }
}

impl AccountStore for PgStore {
    fn server_setup(&self) -> Result<Option<Vec<u8>>, StoreError> {
        let row = self.conn.lock().query_opt(
            "SELECT value FROM udpchat_meta WHERE name = 'opaque_setup'",
            &[],
        )?;
        Ok(row.map(|r| r.get(0)))
    }

    fn save_server_setup(&self, setup: &[u8]) -> Result<(), StoreError> {
        // The first server to save wins; the others must use its setup, or the accounts
        // registered through one would not log in through another. Hence DO NOTHING, and
        // `Accounts::open` reads the setup back.
        self.conn.lock().execute(
            "INSERT INTO udpchat_meta (name, value) VALUES ('opaque_setup', $1)
             ON CONFLICT (name) DO NOTHING",
            &[&setup],
        )?;
        Ok(())
    }

    fn get(&self, key: &str) -> Result<Option<Account>, StoreError> {
        let row = self.conn.lock().query_opt(
            "SELECT nick, record, watch, created FROM udpchat_accounts WHERE key = $1",
            &[&key],
        )?;
        Ok(row.as_ref().map(account))
    }

    fn put(&self, a: &Account) -> Result<(), StoreError> {
        self.conn.lock().execute(
            "INSERT INTO udpchat_accounts (key, nick, record, watch, created)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (key) DO UPDATE SET nick = excluded.nick, record = excluded.record",
            &[
                &key(&a.nick),
                &a.nick,
                &a.record,
                &a.watch.join(" "),
                &a.created,
            ],
        )?;
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .lock()
            .execute("DELETE FROM udpchat_accounts WHERE key = $1", &[&key])?
            > 0)
    }

    fn set_watch(&self, key: &str, watch: &[String]) -> Result<(), StoreError> {
        self.conn.lock().execute(
            "UPDATE udpchat_accounts SET watch = $2 WHERE key = $1",
            &[&key, &watch.join(" ")],
        )?;
        Ok(())
    }

    fn list(&self) -> Result<Vec<Account>, StoreError> {
        let rows = self.conn.lock().query(
            "SELECT nick, record, watch, created FROM udpchat_accounts ORDER BY key",
            &[],
        )?;
        Ok(rows.iter().map(account).collect())
    }

    fn shared(&self) -> bool {
        true
    }
}
