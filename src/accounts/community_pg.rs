//! The community's data in PostgreSQL, in the accounts' database, so that every server of a
//! cluster sees the same registered channels, operators, bans and kept messages. Changes
//! reach the other servers' memory through the cluster's Redis events; the database is
//! what a server loads at start.

use parking_lot::Mutex;
use postgres::Client;

use crate::tls::Trust;

use super::community::{
    channels_in, from_sql as u, to_sql as i, CommunityStore, HistoryRow, Snapshot, StoredAddrBan,
    StoredBan, StoredChannel, StoredMail, StoredMessage,
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
     CREATE INDEX IF NOT EXISTS udpchat_mail_recipient ON udpchat_mail (recipient);
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

    fn store_mail(&self, m: &StoredMail, max: usize) -> Result<bool, StoreError> {
        let mut conn = self.conn.lock();
        let mut tx = conn.transaction()?;
        // Two servers keeping mail for one recipient at once: the lock on the recipient
        // keeps the count honest.
        tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&m.to])?;
        let kept: i64 = tx
            .query_one(
                "SELECT COUNT(*) FROM udpchat_mail WHERE recipient = $1",
                &[&m.to],
            )?
            .get(0);
        if u(kept) >= max as u64 {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO udpchat_mail (recipient, ms, sender, text) VALUES ($1, $2, $3, $4)",
            &[&m.to, &i(m.ms), &m.from, &m.text],
        )?;
        tx.commit()?;
        Ok(true)
    }

    fn take_mail(&self, key: &str) -> Result<Vec<StoredMail>, StoreError> {
        let mut conn = self.conn.lock();
        let mut tx = conn.transaction()?;
        let rows = tx.query(
            "DELETE FROM udpchat_mail WHERE recipient = $1 RETURNING seq, ms, sender, text",
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
