//! The community's data in PostgreSQL, in the accounts' database, so that every server of a
//! cluster sees the same registered channels, operators, bans and kept messages. Changes
//! reach the other servers' memory through the cluster's Redis events; the database is
//! what a server loads at start.

use parking_lot::Mutex;
use postgres::Client;

use crate::tls::Trust;

use super::community::{
    channels_in, from_sql as u, judge, to_sql as i, CommunityStore, HistoryRow, Kept, MailRules,
    RefusalChange, Refusals, Snapshot, StoredAddrBan, StoredBan, StoredChannel, StoredMail,
    StoredMessage, GUEST_SENDER,
};
use super::store::StoreError;

/// The community's data in PostgreSQL.
pub(super) struct PgCommunity {
    /// One connection: only the community store thread and start-up use it.
    conn: Mutex<Client>,
}

impl std::fmt::Debug for PgCommunity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgCommunity").finish_non_exhaustive()
    }
}

const DDL: &str = "CREATE TABLE IF NOT EXISTS udpchat_channels (
         key          TEXT PRIMARY KEY,
         title        TEXT NOT NULL,
         description  TEXT NOT NULL,
         founder      TEXT NOT NULL,
         created_ms   BIGINT NOT NULL,
         invite_only  BOOLEAN NOT NULL,
         moderated    BOOLEAN NOT NULL,
         topic_locked BOOLEAN NOT NULL,
         member_limit BIGINT
     );
     CREATE TABLE IF NOT EXISTS udpchat_channel_ops (
         chan    TEXT NOT NULL,
         account TEXT NOT NULL,
         PRIMARY KEY (chan, account)
     );
     CREATE TABLE IF NOT EXISTS udpchat_channel_bans (
         chan     TEXT NOT NULL,
         mask     TEXT NOT NULL,
         until_ms BIGINT NOT NULL,
         by_nick  TEXT NOT NULL,
         reason   TEXT NOT NULL,
         PRIMARY KEY (chan, mask)
     );
     CREATE TABLE IF NOT EXISTS udpchat_history (
         chan TEXT NOT NULL,
         id   BIGINT NOT NULL,
         ms   BIGINT NOT NULL,
         nick TEXT NOT NULL,
         text TEXT NOT NULL,
         PRIMARY KEY (chan, id)
     );
     CREATE TABLE IF NOT EXISTS udpchat_mail (
         seq       BIGSERIAL PRIMARY KEY,
         recipient TEXT NOT NULL,
         ms        BIGINT NOT NULL,
         sender    TEXT NOT NULL,
         text      TEXT NOT NULL
     );
     ALTER TABLE udpchat_mail ADD COLUMN IF NOT EXISTS sender_id TEXT NOT NULL DEFAULT '';
     CREATE INDEX IF NOT EXISTS udpchat_mail_recipient ON udpchat_mail (recipient);
     CREATE TABLE IF NOT EXISTS udpchat_mail_refusals (
         recipient TEXT NOT NULL,
         mask      TEXT NOT NULL,
         PRIMARY KEY (recipient, mask)
     );
     CREATE TABLE IF NOT EXISTS udpchat_addr_bans (
         net      TEXT PRIMARY KEY,
         until_ms BIGINT NOT NULL,
         by_nick  TEXT NOT NULL,
         reason   TEXT NOT NULL
     );";

impl PgCommunity {
    /// Connects to `url` and creates the tables if needed; a TLS server (the URL's
    /// `sslmode=require`) is verified with `trust`, as for the accounts.
    ///
    /// # Errors
    /// When the database can't be reached, TLS can't be set up or does not verify, or the
    /// tables can't be made.
    pub(super) fn connect(url: &str, trust: &Trust) -> Result<Self, StoreError> {
        let tls = trust
            .postgres()
            .map_err(|e| StoreError::Setup(e.to_string()))?;
        let mut conn = Client::connect(url, tls)?;
        // Servers starting together may race on CREATE ... IF NOT EXISTS: retry once.
        if conn.batch_execute(DDL).is_err() {
            conn.batch_execute(DDL)?;
        }
        Ok(PgCommunity {
            conn: Mutex::new(conn),
        })
    }
}

/// The refusals of `key`, sorted, read inside the transaction `tx`.
fn refusals_of(tx: &mut postgres::Transaction<'_>, key: &str) -> Result<Vec<String>, StoreError> {
    let rows = tx.query(
        "SELECT mask FROM udpchat_mail_refusals WHERE recipient = $1 ORDER BY mask COLLATE \"C\"",
        &[&key],
    )?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

impl CommunityStore for PgCommunity {
    fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let mut conn = self.conn.lock();
        let mut snap = Snapshot::default();
        for r in conn.query(
            "SELECT title, description, founder, created_ms, invite_only, moderated,
                    topic_locked, member_limit FROM udpchat_channels ORDER BY created_ms, key",
            &[],
        )? {
            snap.channels.push(StoredChannel {
                title: r.get(0),
                description: r.get(1),
                founder: r.get(2),
                created_ms: u(r.get(3)),
                invite_only: r.get(4),
                moderated: r.get(5),
                topic_locked: r.get(6),
                limit: r
                    .get::<_, Option<i64>>(7)
                    .map(|n| n.clamp(0, u32::MAX as i64) as u32),
            });
        }
        for r in conn.query(
            "SELECT chan, account FROM udpchat_channel_ops ORDER BY chan, account",
            &[],
        )? {
            snap.ops.push((r.get(0), r.get(1)));
        }
        for r in conn.query(
            "SELECT chan, mask, until_ms, by_nick, reason FROM udpchat_channel_bans ORDER BY chan",
            &[],
        )? {
            snap.bans.push((
                r.get(0),
                StoredBan {
                    mask: r.get(1),
                    until_ms: u(r.get(2)),
                    by: r.get(3),
                    reason: r.get(4),
                },
            ));
        }
        for r in conn.query(
            "SELECT net, until_ms, by_nick, reason FROM udpchat_addr_bans",
            &[],
        )? {
            snap.addr_bans.push(StoredAddrBan {
                net: r.get(0),
                until_ms: u(r.get(1)),
                by: r.get(2),
                reason: r.get(3),
            });
        }
        Ok(snap)
    }

    fn history(&self, chan: &str, limit: usize) -> Result<Vec<StoredMessage>, StoreError> {
        let rows = self.conn.lock().query(
            "SELECT id, ms, nick, text FROM udpchat_history WHERE chan = $1
             ORDER BY id DESC LIMIT $2",
            &[&chan, &i(limit as u64)],
        )?;
        let mut out: Vec<StoredMessage> = rows
            .iter()
            .map(|r| StoredMessage {
                id: u(r.get(0)),
                ms: u(r.get(1)),
                nick: r.get(2),
                text: r.get(3),
            })
            .collect();
        out.reverse();
        Ok(out)
    }

    fn save_channel(&self, c: &StoredChannel) -> Result<(), StoreError> {
        self.conn.lock().execute(
            "INSERT INTO udpchat_channels (key, title, description, founder, created_ms,
                 invite_only, moderated, topic_locked, member_limit)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (key) DO UPDATE SET description = excluded.description,
                 invite_only = excluded.invite_only, moderated = excluded.moderated,
                 topic_locked = excluded.topic_locked, member_limit = excluded.member_limit",
            &[
                &c.title.to_lowercase(),
                &c.title,
                &c.description,
                &c.founder,
                &i(c.created_ms),
                &c.invite_only,
                &c.moderated,
                &c.topic_locked,
                &c.limit.map(i64::from),
            ],
        )?;
        Ok(())
    }

    fn delete_channel(&self, key: &str) -> Result<(), StoreError> {
        let mut conn = self.conn.lock();
        let mut tx = conn.transaction()?;
        for table in [
            "udpchat_channels WHERE key",
            "udpchat_channel_ops WHERE chan",
            "udpchat_channel_bans WHERE chan",
            "udpchat_history WHERE chan",
        ] {
            tx.execute(&format!("DELETE FROM {table} = $1"), &[&key])?;
        }
        tx.commit()?;
        Ok(())
    }

    fn set_op(&self, chan: &str, account: &str, on: bool) -> Result<(), StoreError> {
        let sql = if on {
            "INSERT INTO udpchat_channel_ops (chan, account) VALUES ($1, $2)
             ON CONFLICT DO NOTHING"
        } else {
            "DELETE FROM udpchat_channel_ops WHERE chan = $1 AND account = $2"
        };
        self.conn.lock().execute(sql, &[&chan, &account])?;
        Ok(())
    }

    fn save_ban(&self, chan: &str, b: &StoredBan) -> Result<(), StoreError> {
        self.conn.lock().execute(
            "INSERT INTO udpchat_channel_bans (chan, mask, until_ms, by_nick, reason)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (chan, mask) DO UPDATE SET until_ms = excluded.until_ms,
                 by_nick = excluded.by_nick, reason = excluded.reason",
            &[&chan, &b.mask, &i(b.until_ms), &b.by, &b.reason],
        )?;
        Ok(())
    }

    fn delete_ban(&self, chan: &str, mask: &str) -> Result<(), StoreError> {
        self.conn.lock().execute(
            "DELETE FROM udpchat_channel_bans WHERE chan = $1 AND mask = $2",
            &[&chan, &mask],
        )?;
        Ok(())
    }

    fn append_history(&self, rows: &[HistoryRow], keep: usize) -> Result<(), StoreError> {
        let mut conn = self.conn.lock();
        let mut tx = conn.transaction()?;
        for (chan, m) in rows {
            tx.execute(
                "INSERT INTO udpchat_history (chan, id, ms, nick, text) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT DO NOTHING",
                &[chan, &i(m.id), &i(m.ms), &m.nick, &m.text],
            )?;
        }
        for chan in channels_in(rows) {
            tx.execute(
                "DELETE FROM udpchat_history WHERE chan = $1 AND id NOT IN
                     (SELECT id FROM udpchat_history WHERE chan = $1 ORDER BY id DESC LIMIT $2)",
                &[&chan, &i(keep as u64)],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn store_mail(&self, m: &StoredMail, rules: MailRules<'_>) -> Result<Kept, StoreError> {
        let MailRules { limits, refused } = rules;
        let mut conn = self.conn.lock();
        let mut tx = conn.transaction()?;
        // Two servers keeping mail for one recipient at once: the lock on the recipient
        // keeps the counts honest (and a refusal made meanwhile waits for it too).
        tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&m.to])?;
        if refused(&refusals_of(&mut tx, &m.to)?) {
            return Ok(Kept::Refused);
        }
        let row = tx.query_one(
            "SELECT COUNT(*), COUNT(*) FILTER (WHERE sender_id = $2),
                    COUNT(*) FILTER (WHERE starts_with(sender_id, $3))
             FROM udpchat_mail WHERE recipient = $1",
            &[&m.to, &m.sender_id, &GUEST_SENDER],
        )?;
        let count = |n: i64| usize::try_from(n).unwrap_or(0);
        let (all, same, guests) = (count(row.get(0)), count(row.get(1)), count(row.get(2)));
        let kept = judge(m, limits, all, same, guests);
        if kept == Kept::Kept {
            tx.execute(
                "INSERT INTO udpchat_mail (recipient, ms, sender, text, sender_id)
                 VALUES ($1, $2, $3, $4, $5)",
                &[&m.to, &i(m.ms), &m.from, &m.text, &m.sender_id],
            )?;
            tx.commit()?;
        }
        Ok(kept)
    }

    fn refusals(&self, key: &str) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn.lock();
        let mut tx = conn.transaction()?;
        let list = refusals_of(&mut tx, key)?;
        tx.commit()?;
        Ok(list)
    }

    fn set_refusal(&self, key: &str, change: RefusalChange<'_>) -> Result<Refusals, StoreError> {
        let RefusalChange { mask, on, max } = change;
        let mut conn = self.conn.lock();
        let mut tx = conn.transaction()?;
        // The same lock as keeping a message: the list is changed and counted by one
        // server at a time.
        tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&key])?;
        let now = refusals_of(&mut tx, key)?;
        if on && !now.iter().any(|x| x == mask) {
            if now.len() >= max {
                return Ok(Refusals::Full);
            }
            tx.execute(
                "INSERT INTO udpchat_mail_refusals (recipient, mask) VALUES ($1, $2)
                 ON CONFLICT DO NOTHING",
                &[&key, &mask],
            )?;
        } else if !on {
            tx.execute(
                "DELETE FROM udpchat_mail_refusals WHERE recipient = $1 AND mask = $2",
                &[&key, &mask],
            )?;
        }
        let after = refusals_of(&mut tx, key)?;
        tx.commit()?;
        Ok(Refusals::List(after))
    }

    fn take_mail(&self, key: &str) -> Result<Vec<StoredMail>, StoreError> {
        let mut conn = self.conn.lock();
        let mut tx = conn.transaction()?;
        let rows = tx.query(
            "DELETE FROM udpchat_mail WHERE recipient = $1
             RETURNING seq, ms, sender, text, sender_id",
            &[&key],
        )?;
        tx.commit()?;
        let mut mail: Vec<(i64, StoredMail)> = rows
            .iter()
            .map(|r| {
                (
                    r.get(0),
                    StoredMail {
                        to: key.to_owned(),
                        ms: u(r.get(1)),
                        from: r.get(2),
                        text: r.get(3),
                        sender_id: r.get(4),
                    },
                )
            })
            .collect();
        mail.sort_by_key(|(seq, _)| *seq);
        Ok(mail.into_iter().map(|(_, m)| m).collect())
    }

    fn save_addr_ban(&self, b: &StoredAddrBan) -> Result<(), StoreError> {
        self.conn.lock().execute(
            "INSERT INTO udpchat_addr_bans (net, until_ms, by_nick, reason) VALUES ($1, $2, $3, $4)
             ON CONFLICT (net) DO UPDATE SET until_ms = excluded.until_ms,
                 by_nick = excluded.by_nick, reason = excluded.reason",
            &[&b.net, &i(b.until_ms), &b.by, &b.reason],
        )?;
        Ok(())
    }

    fn delete_addr_ban(&self, net: &str) -> Result<(), StoreError> {
        self.conn
            .lock()
            .execute("DELETE FROM udpchat_addr_bans WHERE net = $1", &[&net])?;
        Ok(())
    }
}
