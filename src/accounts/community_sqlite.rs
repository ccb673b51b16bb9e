//! The community's data in an SQLite database beside the accounts' (`community.sqlite3`
//! in the data folder), WAL with `synchronous=FULL` like the accounts: a write is on disk
//! when it returns.

use std::path::Path;

use parking_lot::Mutex;
use rusqlite::{params, Connection, Row};

use super::community::{
    channels_in, from_sql as u, judge, to_sql as i, CommunityStore, HistoryRow, Kept, MailRules,
    RefusalChange, Refusals, Snapshot, StoredAddrBan, StoredBan, StoredChannel, StoredMail,
    StoredMessage, GUEST_SENDER,
};
use super::store::StoreError;

/// The database file inside a data folder.
pub(super) const DB_FILE: &str = "community.sqlite3";

/// The community's data in SQLite.
pub(super) struct SqliteCommunity {
    /// One connection: only the community store thread (and start-up) use it, and its
    /// writes are few (history comes in batches), so a pool would buy nothing.
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for SqliteCommunity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteCommunity").finish_non_exhaustive()
    }
}

impl SqliteCommunity {
    /// Opens (creating if needed) the database in the folder `dir`.
    ///
    /// Kept messages and bans are private like the accounts: the file is made `0600` (its
    /// `-wal` and `-shm` companions too) in a folder that must be `0700`, and one open to
    /// other users is refused.
    ///
    /// # Errors
    /// When the folder can't be made, the database can't be opened or set up, or either is
    /// open to other users.
    pub(super) fn open_dir(dir: &Path) -> Result<Self, StoreError> {
        let conn = super::sqlite::open_private(dir, DB_FILE, SCHEMA)?;
        add_sender_id(&conn)?;
        Ok(SqliteCommunity {
            conn: Mutex::new(conn),
        })
    }
}

/// The community's tables.
const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS channels (
                 key          TEXT PRIMARY KEY,
                 title        TEXT NOT NULL,
                 description  TEXT NOT NULL,
                 founder      TEXT NOT NULL,
                 created_ms   INTEGER NOT NULL,
                 invite_only  INTEGER NOT NULL,
                 moderated    INTEGER NOT NULL,
                 topic_locked INTEGER NOT NULL,
                 member_limit INTEGER
             );
             CREATE TABLE IF NOT EXISTS channel_ops (
                 chan    TEXT NOT NULL,
                 account TEXT NOT NULL,
                 PRIMARY KEY (chan, account)
             );
             CREATE TABLE IF NOT EXISTS channel_bans (
                 chan     TEXT NOT NULL,
                 mask     TEXT NOT NULL,
                 until_ms INTEGER NOT NULL,
                 by_nick  TEXT NOT NULL,
                 reason   TEXT NOT NULL,
                 PRIMARY KEY (chan, mask)
             );
             CREATE TABLE IF NOT EXISTS history (
                 chan TEXT NOT NULL,
                 id   INTEGER NOT NULL,
                 ms   INTEGER NOT NULL,
                 nick TEXT NOT NULL,
                 text TEXT NOT NULL,
                 PRIMARY KEY (chan, id)
             );
             CREATE TABLE IF NOT EXISTS mail (
                 seq       INTEGER PRIMARY KEY AUTOINCREMENT,
                 recipient TEXT NOT NULL,
                 ms        INTEGER NOT NULL,
                 sender    TEXT NOT NULL,
                 text      TEXT NOT NULL,
                 sender_id TEXT NOT NULL DEFAULT ''
             );
             CREATE INDEX IF NOT EXISTS mail_recipient ON mail (recipient);
             CREATE TABLE IF NOT EXISTS mail_refusals (
                 recipient TEXT NOT NULL,
                 mask      TEXT NOT NULL,
                 PRIMARY KEY (recipient, mask)
             );
             CREATE TABLE IF NOT EXISTS addr_bans (
                 net      TEXT PRIMARY KEY,
                 until_ms INTEGER NOT NULL,
                 by_nick  TEXT NOT NULL,
                 reason   TEXT NOT NULL
             );";

/// Every row of `sql` (a query without parameters), each read with `row`.
fn all<T, C: FromIterator<T>>(
    conn: &Connection,
    sql: &str,
    row: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<C> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map([], row)?;
    rows.collect()
}

/// Adds the column `mail.sender_id` to a database made before it existed (SQLite has no
/// `ADD COLUMN IF NOT EXISTS`).
fn add_sender_id(conn: &Connection) -> Result<(), StoreError> {
    let has: i64 = conn.query_row(
        "SELECT COUNT(*) FROM pragma_table_info('mail') WHERE name = 'sender_id'",
        [],
        |r| r.get(0),
    )?;
    if has == 0 {
        conn.execute_batch("ALTER TABLE mail ADD COLUMN sender_id TEXT NOT NULL DEFAULT ''")?;
    }
    Ok(())
}

/// The refusals of `key`, sorted, read inside `conn`'s transaction.
fn refusals_of(conn: &Connection, key: &str) -> Result<Vec<String>, StoreError> {
    let mut stmt =
        conn.prepare("SELECT mask FROM mail_refusals WHERE recipient = ?1 ORDER BY mask")?;
    let rows = stmt.query_map(params![key], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

impl CommunityStore for SqliteCommunity {
    fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let conn = self.conn.lock();
        Ok(Snapshot {
            channels: all(
                &conn,
                "SELECT title, description, founder, created_ms, invite_only, moderated,
                    topic_locked, member_limit FROM channels ORDER BY created_ms, key",
                |r| {
                    Ok(StoredChannel {
                        title: r.get(0)?,
                        description: r.get(1)?,
                        founder: r.get(2)?,
                        created_ms: u(r.get(3)?),
                        invite_only: r.get(4)?,
                        moderated: r.get(5)?,
                        topic_locked: r.get(6)?,
                        limit: r
                            .get::<_, Option<i64>>(7)?
                            .map(|n| n.clamp(0, u32::MAX as i64) as u32),
                    })
                },
            )?,
            ops: all(
                &conn,
                "SELECT chan, account FROM channel_ops ORDER BY chan, account",
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?,
            bans: all(
                &conn,
                "SELECT chan, mask, until_ms, by_nick, reason FROM channel_bans ORDER BY chan",
                |r| {
                    Ok((
                        r.get(0)?,
                        StoredBan {
                            mask: r.get(1)?,
                            until_ms: u(r.get(2)?),
                            by: r.get(3)?,
                            reason: r.get(4)?,
                        },
                    ))
                },
            )?,
            addr_bans: all(
                &conn,
                "SELECT net, until_ms, by_nick, reason FROM addr_bans",
                |r| {
                    Ok(StoredAddrBan {
                        net: r.get(0)?,
                        until_ms: u(r.get(1)?),
                        by: r.get(2)?,
                        reason: r.get(3)?,
                    })
                },
            )?,
        })
    }

    fn history(&self, chan: &str, limit: usize) -> Result<Vec<StoredMessage>, StoreError> {
        let conn = self.conn.lock();
        let mut stmt = conn.prepare(
            "SELECT id, ms, nick, text FROM history WHERE chan = ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let mut rows: Vec<StoredMessage> = stmt
            .query_map(params![chan, i(limit as u64)], |r| {
                Ok(StoredMessage {
                    id: u(r.get(0)?),
                    ms: u(r.get(1)?),
                    nick: r.get(2)?,
                    text: r.get(3)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        rows.reverse();
        Ok(rows)
    }

    fn save_channel(&self, c: &StoredChannel) -> Result<(), StoreError> {
        self.conn.lock().execute(
            "INSERT INTO channels (key, title, description, founder, created_ms, invite_only,
                                   moderated, topic_locked, member_limit)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT(key) DO UPDATE SET description = excluded.description,
                 invite_only = excluded.invite_only, moderated = excluded.moderated,
                 topic_locked = excluded.topic_locked, member_limit = excluded.member_limit",
            params![
                c.title.to_lowercase(),
                c.title,
                c.description,
                c.founder,
                i(c.created_ms),
                c.invite_only,
                c.moderated,
                c.topic_locked,
                c.limit.map(i64::from)
            ],
        )?;
        Ok(())
    }

    fn delete_channel(&self, key: &str) -> Result<(), StoreError> {
        let mut conn = self.conn.lock();
        let tx = conn.transaction()?;
        for table in [
            "channels WHERE key",
            "channel_ops WHERE chan",
            "channel_bans WHERE chan",
            "history WHERE chan",
        ] {
            tx.execute(&format!("DELETE FROM {table} = ?1"), params![key])?;
        }
        tx.commit()?;
        Ok(())
    }

    fn set_op(&self, chan: &str, account: &str, on: bool) -> Result<(), StoreError> {
        let sql = if on {
            "INSERT OR IGNORE INTO channel_ops (chan, account) VALUES (?1, ?2)"
        } else {
            "DELETE FROM channel_ops WHERE chan = ?1 AND account = ?2"
        };
        self.conn.lock().execute(sql, params![chan, account])?;
        Ok(())
    }

    fn save_ban(&self, chan: &str, b: &StoredBan) -> Result<(), StoreError> {
        self.conn.lock().execute(
            "INSERT OR REPLACE INTO channel_bans (chan, mask, until_ms, by_nick, reason)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![chan, b.mask, i(b.until_ms), b.by, b.reason],
        )?;
        Ok(())
    }

    fn delete_ban(&self, chan: &str, mask: &str) -> Result<(), StoreError> {
        self.conn.lock().execute(
            "DELETE FROM channel_bans WHERE chan = ?1 AND mask = ?2",
            params![chan, mask],
        )?;
        Ok(())
    }

    fn append_history(&self, rows: &[HistoryRow], keep: usize) -> Result<(), StoreError> {
        let mut conn = self.conn.lock();
        let tx = conn.transaction()?;
        for (chan, m) in rows {
            tx.execute(
                "INSERT OR IGNORE INTO history (chan, id, ms, nick, text) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![chan, i(m.id), i(m.ms), m.nick, m.text],
            )?;
        }
        for chan in channels_in(rows) {
            tx.execute(
                "DELETE FROM history WHERE chan = ?1 AND id NOT IN
                     (SELECT id FROM history WHERE chan = ?1 ORDER BY id DESC LIMIT ?2)",
                params![chan, i(keep as u64)],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn store_mail(&self, m: &StoredMail, rules: MailRules<'_>) -> Result<Kept, StoreError> {
        let MailRules { limits, refused } = rules;
        let mut conn = self.conn.lock();
        let tx = conn.transaction()?;
        if refused(&refusals_of(&tx, &m.to)?) {
            return Ok(Kept::Refused);
        }
        let (all, same, guests): (i64, i64, i64) = tx.query_row(
            "SELECT COUNT(*), COALESCE(SUM(sender_id = ?2), 0),
                    COALESCE(SUM(substr(sender_id, 1, length(?3)) = ?3), 0)
             FROM mail WHERE recipient = ?1",
            params![m.to, m.sender_id, GUEST_SENDER],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let count = |n: i64| usize::try_from(n).unwrap_or(0);
        let kept = judge(m, limits, count(all), count(same), count(guests));
        if kept == Kept::Kept {
            tx.execute(
                "INSERT INTO mail (recipient, ms, sender, text, sender_id)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![m.to, i(m.ms), m.from, m.text, m.sender_id],
            )?;
            tx.commit()?;
        }
        Ok(kept)
    }

    fn refusals(&self, key: &str) -> Result<Vec<String>, StoreError> {
        refusals_of(&self.conn.lock(), key)
    }

    fn set_refusal(&self, key: &str, change: RefusalChange<'_>) -> Result<Refusals, StoreError> {
        let RefusalChange { mask, on, max } = change;
        let mut conn = self.conn.lock();
        let tx = conn.transaction()?;
        let now = refusals_of(&tx, key)?;
        if on && !now.iter().any(|x| x == mask) {
            if now.len() >= max {
                return Ok(Refusals::Full);
            }
            tx.execute(
                "INSERT INTO mail_refusals (recipient, mask) VALUES (?1, ?2)",
                params![key, mask],
            )?;
        } else if !on {
            tx.execute(
                "DELETE FROM mail_refusals WHERE recipient = ?1 AND mask = ?2",
                params![key, mask],
            )?;
        }
        let after = refusals_of(&tx, key)?;
        tx.commit()?;
        Ok(Refusals::List(after))
    }

    fn take_mail(&self, key: &str) -> Result<Vec<StoredMail>, StoreError> {
        let mut conn = self.conn.lock();
        let tx = conn.transaction()?;
        let mail: Vec<StoredMail> = {
            let mut stmt = tx.prepare(
                "SELECT ms, sender, text, sender_id FROM mail WHERE recipient = ?1 ORDER BY seq",
            )?;
            let rows = stmt.query_map(params![key], |r| {
                Ok(StoredMail {
                    to: key.to_owned(),
                    ms: u(r.get(0)?),
                    from: r.get(1)?,
                    text: r.get(2)?,
                    sender_id: r.get(3)?,
                })
            })?;
            rows.collect::<Result<_, _>>()?
        };
        tx.execute("DELETE FROM mail WHERE recipient = ?1", params![key])?;
        tx.commit()?;
        Ok(mail)
    }

    fn save_addr_ban(&self, b: &StoredAddrBan) -> Result<(), StoreError> {
        self.conn.lock().execute(
            "INSERT OR REPLACE INTO addr_bans (net, until_ms, by_nick, reason) VALUES (?1, ?2, ?3, ?4)",
            params![b.net, i(b.until_ms), b.by, b.reason],
        )?;
        Ok(())
    }

    fn delete_addr_ban(&self, net: &str) -> Result<(), StoreError> {
        self.conn
            .lock()
            .execute("DELETE FROM addr_bans WHERE net = ?1", params![net])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::sqlite::tests::{data_dir, mode};
    use crate::accounts::MailLimits;

    #[test]
    fn sqlite_community_store_keeps_everything_across_reopening() {
        let (_parent, dir) = data_dir();
        crate::accounts::exercise_community(&SqliteCommunity::open_dir(&dir).unwrap());
        let s = SqliteCommunity::open_dir(&dir).unwrap();
        s.set_op("pets", "ann", true).unwrap();
        drop(s);
        let s = SqliteCommunity::open_dir(&dir).unwrap();
        assert_eq!(s.snapshot().unwrap().ops.len(), 1);
        assert_eq!(
            super::super::sqlite::integrity(&s.conn.lock()).unwrap(),
            "ok"
        );
        // Private like the accounts.
        use std::os::unix::fs::PermissionsExt;
        assert_eq!((mode(&dir), mode(&dir.join(DB_FILE))), (0o700, 0o600));
        std::fs::set_permissions(dir.join(DB_FILE), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        assert!(
            SqliteCommunity::open_dir(&dir).is_err(),
            "a file open to others"
        );
    }

    #[test]
    fn a_database_made_before_senders_were_recorded_gets_the_column_and_keeps_its_mail() {
        let (_parent, dir) = data_dir();
        // The mail table as it was, with one message in it.
        drop(SqliteCommunity::open_dir(&dir).unwrap());
        let old = Connection::open(dir.join(DB_FILE)).unwrap();
        old.execute_batch(
            "DROP TABLE mail;
             CREATE TABLE mail (seq INTEGER PRIMARY KEY AUTOINCREMENT, recipient TEXT NOT NULL,
                 ms INTEGER NOT NULL, sender TEXT NOT NULL, text TEXT NOT NULL);
             INSERT INTO mail (recipient, ms, sender, text) VALUES ('bob', 1, 'ann', 'old');",
        )
        .unwrap();
        drop(old);
        let s = SqliteCommunity::open_dir(&dir).unwrap();
        let limits = MailLimits {
            max: 5,
            per_sender: 5,
            guests: 5,
        };
        let new = StoredMail {
            to: "bob".into(),
            ms: 2,
            from: "cid".into(),
            sender_id: "account:cid".into(),
            text: "new".into(),
        };
        assert_eq!(
            s.store_mail(
                &new,
                MailRules {
                    limits,
                    refused: &|_| false,
                },
            )
            .unwrap(),
            Kept::Kept
        );
        let got = s.take_mail("bob").unwrap();
        let texts: Vec<(&str, &str)> = got
            .iter()
            .map(|m| (m.text.as_str(), m.sender_id.as_str()))
            .collect();
        assert_eq!(texts, [("old", ""), ("new", "account:cid")]);
        // Opening again finds the column there.
        drop(s);
        SqliteCommunity::open_dir(&dir).unwrap();
    }
}
