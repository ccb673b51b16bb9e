//! Accounts in PostgreSQL (`--database postgres://...`), so that every server of a cluster
//! sees the same accounts: registered on one, logged in with the password on another.
//!
//! Every registration, deletion and change of the operator flag also sends a `NOTIFY` on
//! [`CHANNEL`] in the same transaction; each server `LISTEN`s on its own connection
//! ([`AccountStore::changes`]), so its in-memory set of registered nicknames (and of
//! operators' accounts) follows the others' and `chat-server accounts` within
//! milliseconds, and no classic login has to ask the database.

use std::time::Duration;

use fallible_iterator::FallibleIterator;
use parking_lot::Mutex;
use postgres::{Client, Transaction};

use crate::tls::Trust;

use super::store::{key, split_watch, Account, AccountStore, Change, ChangeFeed, StoreError};

/// The notification channel of account changes; payloads are `+key` (registered), `-key`
/// (deleted), `op+key` and `op-key` (made or unmade a server operator's account). A server
/// of an older version ignores the last two (it logs them at debug level).
pub const CHANNEL: &str = "udpchat_accounts";

/// Accounts in a PostgreSQL database. Every write is one transaction, durable when it
/// returns (PostgreSQL's default `synchronous_commit`).
pub struct PgStore {
    /// One connection behind a mutex, as for SQLite: account operations are rare
    /// (a registration, a password login, a hot-list edit) and short, and only the
    /// server's store thread uses it, so a pool would buy nothing.
    conn: Mutex<Client>,
    /// For opening the notification connection.
    url: String,
    /// The certificates a TLS connection (`sslmode=require` in the URL) is verified with.
    trust: Trust,
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
        Self::connect_with(url, Trust::default())
    }

    /// Connects as [`connect`](Self::connect) does, verifying a TLS server (the URL's
    /// `sslmode=require`, or the default `prefer` with a server that has TLS) with `trust`.
    ///
    /// # Errors
    /// As [`connect`](Self::connect), and when TLS can't be set up or the server's
    /// certificate does not verify.
    pub fn connect_with(url: &str, trust: Trust) -> Result<Self, StoreError> {
        let mut conn = open(url, &trust)?;
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
             );
             -- Added with the operator flag; FALSE for accounts older servers made.
             ALTER TABLE udpchat_accounts
                 ADD COLUMN IF NOT EXISTS operator BOOLEAN NOT NULL DEFAULT FALSE;";
        if conn.batch_execute(ddl).is_err() {
            conn.batch_execute(ddl)?;
        }
        Ok(PgStore {
            conn: Mutex::new(conn),
            url: url.to_owned(),
            trust,
        })
    }
}

/// A connection to `url`, a TLS one verified with `trust` where the URL asks for it.
fn open(url: &str, trust: &Trust) -> Result<Client, StoreError> {
    let tls = trust
        .postgres()
        .map_err(|e| StoreError::Setup(e.to_string()))?;
    Ok(Client::connect(url, tls)?)
}

/// Writes `a` under its key `k` in `tx`, `on_conflict` saying what an existing row of
/// that key gets; how many rows were written.
fn insert(
    tx: &mut Transaction<'_>,
    k: &str,
    a: &Account,
    on_conflict: &str,
) -> Result<u64, postgres::Error> {
    tx.execute(
        &format!(
            "INSERT INTO udpchat_accounts (key, nick, record, watch, created, operator)
             VALUES ($1, $2, $3, $4, $5, $6) {on_conflict}"
        ),
        &[
            &k,
            &a.nick,
            &a.record,
            &a.watch.join(" "),
            &a.created,
            &a.operator,
        ],
    )
}

/// Sends `payload` on [`CHANNEL`] when `tx` commits.
fn notify(tx: &mut Transaction<'_>, payload: &str) -> Result<(), postgres::Error> {
    tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload])?;
    Ok(())
}

fn account(row: &postgres::Row) -> Account {
    Account {
        nick: row.get(0),
        record: row.get(1),
        watch: split_watch(row.get(2)),
        created: row.get(3),
        operator: row.get(4),
    }
}

/// The `LISTEN` side: its own connection, read with a timeout.
struct PgFeed {
    client: Client,
}

impl ChangeFeed for PgFeed {
    fn next(&mut self, wait: Duration) -> Result<Vec<Change>, StoreError> {
        let mut changes = Vec::new();
        let mut notes = self.client.notifications();
        let mut iter = notes.timeout_iter(wait);
        while let Some(n) = iter.next()? {
            let p = n.payload();
            match parse_change(p) {
                Some(change) => changes.push(change),
                None => tracing::debug!(
                    payload = %crate::redact::controls(p),
                    "ignored a malformed account notification"
                ),
            }
            if changes.len() >= 1024 {
                break;
            }
        }
        Ok(changes)
    }
}

/// The change a notification's payload says (see [`CHANNEL`]).
fn parse_change(payload: &str) -> Option<Change> {
    let nonempty = |k: &str| (!k.is_empty()).then(|| k.to_owned());
    if let Some(k) = payload.strip_prefix("op+") {
        return Some(Change::Operator(nonempty(k)?, true));
    }
    if let Some(k) = payload.strip_prefix("op-") {
        return Some(Change::Operator(nonempty(k)?, false));
    }
    if let Some(k) = payload.strip_prefix('+') {
        return Some(Change::Registered(nonempty(k)?));
    }
    Some(Change::Deleted(nonempty(payload.strip_prefix('-')?)?))
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
        // the caller reads the setup back.
        self.conn.lock().execute(
            "INSERT INTO udpchat_meta (name, value) VALUES ('opaque_setup', $1)
             ON CONFLICT (name) DO NOTHING",
            &[&setup],
        )?;
        Ok(())
    }

    fn get(&self, key: &str) -> Result<Option<Account>, StoreError> {
        let row = self.conn.lock().query_opt(
            "SELECT nick, record, watch, created, operator FROM udpchat_accounts WHERE key = $1",
            &[&key],
        )?;
        Ok(row.as_ref().map(account))
    }

    fn put(&self, a: &Account) -> Result<(), StoreError> {
        let k = key(&a.nick);
        let mut conn = self.conn.lock();
        let mut tx = conn.transaction()?;
        insert(
            &mut tx,
            &k,
            a,
            "ON CONFLICT (key) DO UPDATE SET nick = excluded.nick, record = excluded.record",
        )?;
        notify(&mut tx, &format!("+{k}"))?;
        // A new account may be an operator's (made by `chat-server accounts add`); an
        // existing one keeps its flag, which the others know already.
        let operator: bool = tx
            .query_one(
                "SELECT operator FROM udpchat_accounts WHERE key = $1",
                &[&k],
            )?
            .get(0);
        if operator {
            notify(&mut tx, &format!("op+{k}"))?;
        }
        tx.commit()?;
        Ok(())
    }

    fn create(&self, a: &Account) -> Result<bool, StoreError> {
        let k = key(&a.nick);
        let mut conn = self.conn.lock();
        let mut tx = conn.transaction()?;
        let n = insert(&mut tx, &k, a, "ON CONFLICT (key) DO NOTHING")?;
        if n > 0 {
            notify(&mut tx, &format!("+{k}"))?;
            if a.operator {
                notify(&mut tx, &format!("op+{k}"))?;
            }
        }
        tx.commit()?;
        Ok(n > 0)
    }

    fn delete(&self, key: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn.lock();
        let mut tx = conn.transaction()?;
        let n = tx.execute("DELETE FROM udpchat_accounts WHERE key = $1", &[&key])?;
        notify(&mut tx, &format!("-{key}"))?;
        tx.commit()?;
        Ok(n > 0)
    }

    fn set_operator(&self, key: &str, operator: bool) -> Result<bool, StoreError> {
        let mut conn = self.conn.lock();
        let mut tx = conn.transaction()?;
        let n = tx.execute(
            "UPDATE udpchat_accounts SET operator = $2 WHERE key = $1",
            &[&key, &operator],
        )?;
        let sign = if operator { '+' } else { '-' };
        notify(&mut tx, &format!("op{sign}{key}"))?;
        tx.commit()?;
        Ok(n > 0)
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
            "SELECT nick, record, watch, created, operator FROM udpchat_accounts ORDER BY key",
            &[],
        )?;
        Ok(rows.iter().map(account).collect())
    }

    fn keys(&self) -> Result<Vec<String>, StoreError> {
        let rows = self
            .conn
            .lock()
            .query("SELECT key FROM udpchat_accounts ORDER BY key", &[])?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    fn operator_keys(&self) -> Result<Vec<String>, StoreError> {
        let rows = self.conn.lock().query(
            "SELECT key FROM udpchat_accounts WHERE operator ORDER BY key",
            &[],
        )?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    fn shared(&self) -> bool {
        true
    }

    fn changes(&self) -> Result<Option<Box<dyn ChangeFeed>>, StoreError> {
        let mut client = open(&self.url, &self.trust)?;
        client.batch_execute(&format!("LISTEN {CHANNEL}"))?;
        Ok(Some(Box::new(PgFeed { client })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notification_payloads_parse_and_junk_is_ignored() {
        let k = |s: &str| s.to_owned();
        assert_eq!(parse_change("+ann"), Some(Change::Registered(k("ann"))));
        assert_eq!(parse_change("-ann"), Some(Change::Deleted(k("ann"))));
        assert_eq!(
            parse_change("op+ann"),
            Some(Change::Operator(k("ann"), true))
        );
        assert_eq!(
            parse_change("op-ann"),
            Some(Change::Operator(k("ann"), false))
        );
        // A key that starts with "op" is still a key.
        assert_eq!(parse_change("+opal"), Some(Change::Registered(k("opal"))));
        for junk in ["", "+", "-", "op+", "ann", "op"] {
            assert_eq!(parse_change(junk), None, "{junk:?}");
        }
    }
}
