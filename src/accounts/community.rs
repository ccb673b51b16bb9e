//! Storage of what a community server keeps beside accounts (part 5): registered
//! channels, their lasting operators and bans, channel history (when kept), private
//! messages for users who are away, and address bans, as the records here. A sibling of
//! [`AccountStore`], with the same three homes: memory (tests, here), SQLite
//! (`community.sqlite3` in the data folder) and PostgreSQL (the same database as the
//! accounts, shared by a cluster).
//!
//! Like the account stores, these are used only by threads that may block: the server's
//! community store thread and start-up.
//!
//! [`AccountStore`]: super::AccountStore

use std::collections::BTreeMap;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::store::StoreError;

/// A registered channel as it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredChannel {
    /// The title as created.
    pub title: String,
    /// The description (topic).
    pub description: String,
    /// The account that created it (its key).
    pub founder: String,
    /// When it was created, milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// Mode `i`.
    pub invite_only: bool,
    /// Mode `m`.
    pub moderated: bool,
    /// Mode `t`.
    pub topic_locked: bool,
    /// Mode `l`: the member limit.
    pub limit: Option<u32>,
}

/// A channel ban as it is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredBan {
    /// `account:KEY` or a lower-cased nickname pattern.
    pub mask: String,
    /// When it ends, milliseconds since the Unix epoch; 0 for never.
    pub until_ms: u64,
    /// Who set it.
    pub by: String,
    /// Why.
    pub reason: String,
}

/// A public message as history keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// Its id (see `State::next_message_id`).
    pub id: u64,
    /// When it was sent, milliseconds since the Unix epoch.
    pub ms: u64,
    /// The sender.
    pub nick: String,
    /// The text.
    pub text: String,
}

/// A private message kept for a registered user who was away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMail {
    /// The recipient's nickname key.
    pub to: String,
    /// When it was sent, milliseconds since the Unix epoch.
    pub ms: u64,
    /// The sender.
    pub from: String,
    /// Who the sender counts as for [`MailLimits::per_sender`]: [`account_sender`] for a
    /// password session, [`guest_sender`] for a guest (every guest of one network counts as
    /// one sender, since a guest's nickname costs nothing to change). Empty in messages
    /// kept before this was recorded.
    pub sender_id: String,
    /// The text.
    pub text: String,
}

/// The [`StoredMail::sender_id`] of the holder of account `key`.
pub fn account_sender(key: &str) -> String {
    format!("account:{key}")
}

/// The [`StoredMail::sender_id`] of a guest of network `prefix` (as `limits::Prefix`
/// shows one: `198.51.100.0/24`, `2001:db8:0:1::/64`).
pub fn guest_sender(prefix: impl std::fmt::Display) -> String {
    format!("{GUEST_SENDER}{prefix}")
}

/// How every guest's [`StoredMail::sender_id`] starts.
pub const GUEST_SENDER: &str = "net:";

/// How many messages a recipient's box keeps, by whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailLimits {
    /// In all.
    pub max: usize,
    /// From one sender ([`StoredMail::sender_id`]).
    pub per_sender: usize,
    /// From all guests together, so that guests from many networks can't fill the box
    /// and shut out senders with accounts.
    pub guests: usize,
}

/// What decides whether a message is kept ([`CommunityStore::store_mail`]).
#[derive(Clone, Copy)]
pub struct MailRules<'a> {
    /// How many the box keeps, by whom.
    pub limits: MailLimits,
    /// Whether the recipient's refused masks refuse the sender.
    pub refused: RefusedBy<'a>,
}

/// What became of a message to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    /// It is kept.
    Kept,
    /// The recipient's box holds as many as it may (in all, or from guests for a guest).
    Full,
    /// The box holds as many from this sender as one may leave.
    SenderFull,
    /// The recipient refuses this sender (`MAIL_REFUSE`).
    Refused,
}

/// A change to the senders a recipient refuses ([`CommunityStore::set_refusal`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefusalChange<'a> {
    /// A nickname pattern or `account:NAME`.
    pub mask: &'a str,
    /// Refuse it (`true`), or accept it again.
    pub on: bool,
    /// The most masks the list may hold after an addition.
    pub max: usize,
}

/// The answer to a change of a recipient's refusals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusals {
    /// The masks refused now, sorted.
    List(Vec<String>),
    /// The list holds as many masks as it may: nothing was added.
    Full,
}

/// What [`CommunityStore::store_mail`] makes of the recipient's refused masks: whether
/// one of them covers the sender.
pub type RefusedBy<'a> = &'a dyn Fn(&[String]) -> bool;

/// A ban of an address or network, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAddrBan {
    /// The network, `ADDRESS/BITS`.
    pub net: String,
    /// When it ends, milliseconds since the Unix epoch; 0 for never.
    pub until_ms: u64,
    /// The operator who set it.
    pub by: String,
    /// Why.
    pub reason: String,
}

/// A message of a channel's history as written: the channel's key and the message.
pub type HistoryRow = (String, StoredMessage);

/// The channels `rows` write to, each once, in order: those whose history is pruned after.
pub(super) fn channels_in(rows: &[HistoryRow]) -> Vec<&str> {
    let mut chans: Vec<&str> = Vec::new();
    for (chan, _) in rows {
        if !chans.contains(&chan.as_str()) {
            chans.push(chan);
        }
    }
    chans
}

/// Milliseconds and ids are `u64` in the program and signed 64-bit integers in SQL; every
/// value the server makes fits.
pub(super) fn to_sql(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A `u64` read back from SQL (a negative value, which the server never writes, is 0).
pub(super) fn from_sql(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Whether a message from `mail`'s sender fits a box that holds `all` messages, `same`
/// from that sender and `guests` from guests; the one rule every store applies.
pub(super) fn judge(
    mail: &StoredMail,
    limits: MailLimits,
    all: usize,
    same: usize,
    guests: usize,
) -> Kept {
    if all >= limits.max || (mail.sender_id.starts_with(GUEST_SENDER) && guests >= limits.guests) {
        Kept::Full
    } else if same >= limits.per_sender {
        Kept::SenderFull
    } else {
        Kept::Kept
    }
}

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
    fn append_history(&self, rows: &[HistoryRow], keep: usize) -> Result<(), StoreError>;
    /// Keeps a private message unless its recipient refuses the sender (`refused`, asked
    /// of the recipient's masks) or the `limits` are reached, in one transaction; returns
    /// what became of it. Guests are told apart by their [`StoredMail::sender_id`]
    /// ([`GUEST_SENDER`]).
    ///
    /// # Errors
    /// When the store fails.
    fn store_mail(&self, mail: &StoredMail, rules: MailRules<'_>) -> Result<Kept, StoreError>;
    /// The masks recipient `key` refuses kept messages from, sorted.
    ///
    /// # Errors
    /// When the store fails.
    fn refusals(&self, key: &str) -> Result<Vec<String>, StoreError>;
    /// Adds (`on`) or removes `mask` from the refusals of `key`; an addition that would
    /// make more than `max` is not made ([`Refusals::Full`]). Returns the list after.
    ///
    /// # Errors
    /// When the store fails.
    fn set_refusal(&self, key: &str, change: RefusalChange<'_>) -> Result<Refusals, StoreError>;
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
    /// Recipient key → refused masks.
    refusals: BTreeMap<String, Vec<String>>,
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
    fn append_history(&self, rows: &[HistoryRow], keep: usize) -> Result<(), StoreError> {
        let mut m = self.inner.lock();
        for (chan, msg) in rows {
            let h = m.history.entry(chan.clone()).or_default();
            h.push(msg.clone());
            let excess = h.len().saturating_sub(keep);
            h.drain(..excess);
        }
        Ok(())
    }
    fn store_mail(&self, mail: &StoredMail, rules: MailRules<'_>) -> Result<Kept, StoreError> {
        let MailRules { limits, refused } = rules;
        let mut m = self.inner.lock();
        if m.refusals.get(&mail.to).is_some_and(|r| refused(r)) {
            return Ok(Kept::Refused);
        }
        let boxed = m.mail.iter().filter(|x| x.to == mail.to);
        let (mut all, mut same, mut guests) = (0, 0, 0);
        for x in boxed {
            all += 1;
            same += usize::from(x.sender_id == mail.sender_id);
            guests += usize::from(x.sender_id.starts_with(GUEST_SENDER));
        }
        let kept = judge(mail, limits, all, same, guests);
        if kept == Kept::Kept {
            m.mail.push(mail.clone());
        }
        Ok(kept)
    }
    fn refusals(&self, key: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .inner
            .lock()
            .refusals
            .get(key)
            .cloned()
            .unwrap_or_default())
    }
    fn set_refusal(&self, key: &str, change: RefusalChange<'_>) -> Result<Refusals, StoreError> {
        let RefusalChange { mask, on, max } = change;
        let mut m = self.inner.lock();
        let list = m.refusals.entry(key.to_owned()).or_default();
        let has = list.iter().any(|x| x == mask);
        if on && !has {
            if list.len() >= max {
                return Ok(Refusals::Full);
            }
            list.push(mask.to_owned());
            list.sort();
        } else if !on {
            list.retain(|x| x != mask);
        }
        let list = list.clone();
        if list.is_empty() {
            m.refusals.remove(key);
        }
        Ok(Refusals::List(list))
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
