//! Storage of what a community server keeps beside accounts (part 5): registered
//! channels, their lasting operators and bans, channel history (when kept), private
//! messages for users who are away, and address bans. A sibling of [`AccountStore`],
//! with the same three homes: memory (tests), SQLite (`community.sqlite3` in the data
//! folder) and PostgreSQL (the same database as the accounts, shared by a cluster).
//!
//! Like the account stores, these are used only by threads that may block: the server's
//! community store thread and start-up.
//!
//! [`AccountStore`]: super::AccountStore

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;

pub use crate::outbox::community::{
    StoredAddrBan, StoredBan, StoredChannel, StoredMail, StoredMessage,
};

use super::{StoreError, StoreKind};

/// What the server loads at start: everything but history and mail.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Registered channels.
    pub channels: Vec<StoredChannel>,
    /// Lasting operators: (channel key, account key).
    pub ops: Vec<(String, String)>,
    /// Channel bans: (channel key, ban).
    pub bans: Vec<(String, StoredBan)>,
    /// Address bans.
    pub addr_bans: Vec<StoredAddrBan>,
}

/// Durable storage of the community's data. Channel keys are lower-cased titles, account
/// and recipient keys nickname keys. Every write is durable when it returns.
pub trait CommunityStore: Send + Sync {
    /// Registered channels, operators, bans and address bans.
    ///
    /// # Errors
    /// When the store fails.
    fn snapshot(&self) -> Result<Snapshot, StoreError>;
    /// The last `limit` messages kept of channel `chan`, oldest first.
    ///
    /// # Errors
    /// When the store fails.
    fn history(&self, chan: &str, limit: usize) -> Result<Vec<StoredMessage>, StoreError>;
    /// Creates or updates a registered channel (its creation time stays as first stored).
    ///
    /// # Errors
    /// When the store fails.
    fn save_channel(&self, channel: &StoredChannel) -> Result<(), StoreError>;
    /// Forgets a registered channel with its operators, bans and history.
    ///
    /// # Errors
    /// When the store fails.
    fn delete_channel(&self, key: &str) -> Result<(), StoreError>;
    /// Makes `account` a lasting operator of `chan`, or no longer.
    ///
    /// # Errors
    /// When the store fails.
    fn set_op(&self, chan: &str, account: &str, on: bool) -> Result<(), StoreError>;
    /// Stores a ban (replacing one of the same mask).
    ///
    /// # Errors
    /// When the store fails.
    fn save_ban(&self, chan: &str, ban: &StoredBan) -> Result<(), StoreError>;
    /// Forgets a ban.
    ///
    /// # Errors
    /// When the store fails.
    fn delete_ban(&self, chan: &str, mask: &str) -> Result<(), StoreError>;
    /// Appends messages (channel key, message), in one transaction, then keeps only the
    /// last `keep` of each channel written to.
    ///
    /// # Errors
    /// When the store fails.
    fn append_history(
        &self,
        rows: &[(String, StoredMessage)],
        keep: usize,
    ) -> Result<(), StoreError>;
    /// Keeps a private message unless `max` are kept for its recipient already; returns
    /// whether it was kept.
    ///
    /// # Errors
    /// When the store fails.
    fn store_mail(&self, mail: &StoredMail, max: usize) -> Result<bool, StoreError>;
    /// Reads and deletes, in one transaction, the private messages kept for `key`,
    /// oldest first.
    ///
    /// # Errors
    /// When the store fails (then nothing is deleted).
    fn take_mail(&self, key: &str) -> Result<Vec<StoredMail>, StoreError>;
    /// Stores an address ban (replacing one of the same network).
    ///
    /// # Errors
    /// When the store fails.
    fn save_addr_ban(&self, ban: &StoredAddrBan) -> Result<(), StoreError>;
    /// Forgets an address ban.
    ///
    /// # Errors
    /// When the store fails.
    fn delete_addr_ban(&self, net: &str) -> Result<(), StoreError>;
}

impl StoreKind {
    /// Opens the community store that goes with these accounts.
    ///
    /// # Errors
    /// When the folder, file or database can't be opened or set up.
    pub fn open_community(&self) -> Result<Arc<dyn CommunityStore>, StoreError> {
        self.open_community_with(&crate::tls::Trust::default())
    }

    /// Opens the community store; a PostgreSQL server with TLS is verified with `trust`.
    ///
    /// # Errors
    /// As [`open_community`](Self::open_community).
    pub fn open_community_with(
        &self,
        trust: &crate::tls::Trust,
    ) -> Result<Arc<dyn CommunityStore>, StoreError> {
        Ok(match self {
            StoreKind::Memory => Arc::new(MemoryCommunity::default()),
            StoreKind::Sqlite(dir) => {
                Arc::new(super::community_sqlite::SqliteCommunity::open_dir(dir)?)
            }
            StoreKind::Postgres(url) => {
                Arc::new(super::community_pg::PgCommunity::connect(url, trust)?)
            }
        })
    }
}

/// The community's data in memory (tests, and servers without storage).
#[derive(Debug, Default)]
pub struct MemoryCommunity {
    inner: Mutex<Memory>,
}

#[derive(Debug, Default)]
struct Memory {
    channels: BTreeMap<String, StoredChannel>,
    ops: Vec<(String, String)>,
    bans: Vec<(String, StoredBan)>,
    history: BTreeMap<String, Vec<StoredMessage>>,
    mail: Vec<StoredMail>,
    addr_bans: Vec<StoredAddrBan>,
}

impl CommunityStore for MemoryCommunity {
    fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let m = self.inner.lock();
        Ok(Snapshot {
            channels: m.channels.values().cloned().collect(),
            ops: m.ops.clone(),
            bans: m.bans.clone(),
            addr_bans: m.addr_bans.clone(),
        })
    }
    fn history(&self, chan: &str, limit: usize) -> Result<Vec<StoredMessage>, StoreError> {
        let m = self.inner.lock();
        let all = m.history.get(chan).map(Vec::as_slice).unwrap_or(&[]);
        Ok(all[all.len().saturating_sub(limit)..].to_vec())
    }
    fn save_channel(&self, c: &StoredChannel) -> Result<(), StoreError> {
        let mut m = self.inner.lock();
        let key = c.title.to_lowercase();
        let created_ms = m.channels.get(&key).map_or(c.created_ms, |o| o.created_ms);
        m.channels.insert(
            key,
            StoredChannel {
                created_ms,
                ..c.clone()
            },
        );
        Ok(())
    }
    fn delete_channel(&self, key: &str) -> Result<(), StoreError> {
        let mut m = self.inner.lock();
        m.channels.remove(key);
        m.ops.retain(|(c, _)| c != key);
        m.bans.retain(|(c, _)| c != key);
        m.history.remove(key);
        Ok(())
    }
    fn set_op(&self, chan: &str, account: &str, on: bool) -> Result<(), StoreError> {
        let mut m = self.inner.lock();
        m.ops.retain(|(c, a)| !(c == chan && a == account));
        if on {
            m.ops.push((chan.to_owned(), account.to_owned()));
        }
        Ok(())
    }
    fn save_ban(&self, chan: &str, ban: &StoredBan) -> Result<(), StoreError> {
        let mut m = self.inner.lock();
        m.bans.retain(|(c, b)| !(c == chan && b.mask == ban.mask));
        m.bans.push((chan.to_owned(), ban.clone()));
        Ok(())
    }
    fn delete_ban(&self, chan: &str, mask: &str) -> Result<(), StoreError> {
        self.inner
            .lock()
            .bans
            .retain(|(c, b)| !(c == chan && b.mask == mask));
        Ok(())
    }
    fn append_history(
        &self,
        rows: &[(String, StoredMessage)],
        keep: usize,
    ) -> Result<(), StoreError> {
        let mut m = self.inner.lock();
        for (chan, msg) in rows {
            let h = m.history.entry(chan.clone()).or_default();
            h.push(msg.clone());
            let excess = h.len().saturating_sub(keep);
            h.drain(..excess);
        }
        Ok(())
    }
    fn store_mail(&self, mail: &StoredMail, max: usize) -> Result<bool, StoreError> {
        let mut m = self.inner.lock();
        if m.mail.iter().filter(|x| x.to == mail.to).count() >= max {
            return Ok(false);
        }
        m.mail.push(mail.clone());
        Ok(true)
    }
    fn take_mail(&self, key: &str) -> Result<Vec<StoredMail>, StoreError> {
        let mut m = self.inner.lock();
        let (mine, rest): (Vec<_>, Vec<_>) = m.mail.drain(..).partition(|x| x.to == key);
        m.mail = rest;
        Ok(mine)
    }
    fn save_addr_ban(&self, ban: &StoredAddrBan) -> Result<(), StoreError> {
        let mut m = self.inner.lock();
        m.addr_bans.retain(|b| b.net != ban.net);
        m.addr_bans.push(ban.clone());
        Ok(())
    }
    fn delete_addr_ban(&self, net: &str) -> Result<(), StoreError> {
        self.inner.lock().addr_bans.retain(|b| b.net != net);
        Ok(())
    }
}

/// Runs the checks every community store must pass (shared by the stores' tests, and by
/// the PostgreSQL test, which needs a server).
///
/// # Panics
/// When the store fails a check.
pub fn exercise(store: &dyn CommunityStore) {
    let chan = StoredChannel {
        title: "Den".into(),
        description: "mine".into(),
        founder: "ann".into(),
        created_ms: 5,
        invite_only: false,
        moderated: true,
        topic_locked: true,
        limit: Some(9),
    };
    store.save_channel(&chan).unwrap();
    store
        .save_channel(&StoredChannel {
            description: "ours".into(),
            created_ms: 99,
            ..chan.clone()
        })
        .unwrap();
    store.set_op("den", "ann", true).unwrap();
    store.set_op("den", "bob", true).unwrap();
    store.set_op("den", "bob", false).unwrap();
    let ban = StoredBan {
        mask: "spam*".into(),
        until_ms: 0,
        by: "ann".into(),
        reason: "ads".into(),
    };
    store.save_ban("den", &ban).unwrap();
    store
        .save_ban(
            "den",
            &StoredBan {
                reason: "more ads".into(),
                ..ban.clone()
            },
        )
        .unwrap();
    let snap = store.snapshot().unwrap();
    assert_eq!(snap.channels.len(), 1);
    assert_eq!(
        (
            snap.channels[0].description.as_str(),
            snap.channels[0].created_ms
        ),
        ("ours", 5)
    );
    assert_eq!(snap.channels[0].limit, Some(9));
    assert_eq!(snap.ops, vec![("den".to_string(), "ann".to_string())]);
    assert_eq!(snap.bans.len(), 1);
    assert_eq!(snap.bans[0].1.reason, "more ads");
    let msg = |id: u64| StoredMessage {
        id,
        ms: id / 1000,
        nick: "ann".into(),
        text: format!("m{id}"),
    };
    let rows: Vec<(String, StoredMessage)> = (1..=5).map(|i| ("den".to_string(), msg(i))).collect();
    store.append_history(&rows, 3).unwrap();
    let h = store.history("den", 10).unwrap();
    assert_eq!(h.iter().map(|m| m.id).collect::<Vec<_>>(), vec![3, 4, 5]);
    assert_eq!(store.history("den", 2).unwrap()[0].id, 4);
    let mail = |text: &str| StoredMail {
        to: "bob".into(),
        ms: 7,
        from: "ann".into(),
        text: text.into(),
    };
    assert!(store.store_mail(&mail("one"), 2).unwrap());
    assert!(store.store_mail(&mail("two"), 2).unwrap());
    assert!(
        !store.store_mail(&mail("three"), 2).unwrap(),
        "the box is full"
    );
    let got = store.take_mail("bob").unwrap();
    assert_eq!(
        got.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(),
        ["one", "two"]
    );
    assert!(store.take_mail("bob").unwrap().is_empty(), "delivered once");
    let ab = StoredAddrBan {
        net: "10.0.0.0/8".into(),
        until_ms: 0,
        by: "op".into(),
        reason: "spam".into(),
    };
    store.save_addr_ban(&ab).unwrap();
    assert_eq!(store.snapshot().unwrap().addr_bans, vec![ab]);
    store.delete_addr_ban("10.0.0.0/8").unwrap();
    store.delete_ban("den", "spam*").unwrap();
    store.delete_channel("den").unwrap();
    let snap = store.snapshot().unwrap();
    assert!(snap.channels.is_empty() && snap.ops.is_empty() && snap.bans.is_empty());
    assert!(snap.addr_bans.is_empty());
    assert!(store.history("den", 10).unwrap().is_empty());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_community_store_keeps_everything() {
        exercise(&MemoryCommunity::default());
    }
}
