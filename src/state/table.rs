//! The channel table: channels by id and by title, created and destroyed while the server
//! runs.
//!
//! A read-write lock over two maps: every request reads it once to find its channel (one
//! uncontended read lock, then an `Arc` clone), and only a creation or a destruction writes
//! it. Fan-out never touches it: it reads the member snapshot of the channel it already
//! holds. Ids are never reused ([`ChannelId`]), so a stale id finds nothing rather than
//! another channel.
//!
//! Titles are unique without regard to case, and the titles users give are also kept apart
//! from look-alikes: the table indexes each title's confusable skeleton (UTS #39, as for
//! nicknames: `proto::nick`), so `Реts` with a Cyrillic Р and е is refused beside `Pets`
//! ([`Channels::insert_unlike`]), checked and inserted under the one write lock.
//!
//! Destroying a channel takes two steps, never two locks at once: the channel is marked
//! closed under its member lock if it has no members (a join racing with it either got in
//! first, and the channel stays, or finds it closed), then it leaves the table.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;

use super::channel::{Channel, ChannelId};
use super::community::{Kind, Meta};
use super::remote::RemoteUsers;
use crate::config::ChannelSpec;

/// The channels by id, by lower-cased title and by the skeleton of their title.
#[derive(Debug, Default)]
struct Table {
    by_id: HashMap<ChannelId, Arc<Channel>>,
    by_title: HashMap<Box<str>, ChannelId>,
    /// Title skeleton → the channels that have it: usually one, but configured channels
    /// and those of other servers are taken as they come, so a few may share one.
    by_skeleton: HashMap<Box<str>, Vec<ChannelId>>,
}

/// The channel table and its id counter.
#[derive(Debug, Default)]
pub(super) struct Channels {
    table: RwLock<Table>,
    next: AtomicU64,
}

/// A channel of that title exists already.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a channel of that title exists")]
pub struct Exists;

/// Why a title users give can't be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TitleTaken {
    /// A channel of that title (any case) exists.
    #[error("a channel of that title exists")]
    Exists,
    /// A channel whose title looks the same exists: its title.
    #[error("the title looks like channel {0}")]
    LooksLike(Box<str>),
}

/// The confusable skeleton of a title.
fn skeleton(title: &str) -> Box<str> {
    proto::nick::skeleton(&proto::nick::key(title)).into()
}

impl Channels {
    /// The table holding the configured channels, in order.
    pub(super) fn with(specs: &[ChannelSpec]) -> Self {
        let c = Channels::default();
        for s in specs {
            // Titles of a checked configuration are unique; a repeat is skipped.
            let _ = c.insert(&s.title, Meta::configured(&s.description));
        }
        c
    }

    /// Creates channel `title` with `meta`.
    ///
    /// # Errors
    /// [`Exists`] when a channel of that title (any case) exists.
    pub(super) fn insert(&self, title: &str, meta: Meta) -> Result<Arc<Channel>, Exists> {
        self.insert_checked(title, meta, false).map_err(|_| Exists)
    }

    /// Creates channel `title` with `meta` unless a channel of that title or of one that
    /// looks like it (the same confusable skeleton) exists.
    ///
    /// # Errors
    /// [`TitleTaken`]: which of the two.
    pub(super) fn insert_unlike(
        &self,
        title: &str,
        meta: Meta,
    ) -> Result<Arc<Channel>, TitleTaken> {
        self.insert_checked(title, meta, true)
    }

    fn insert_checked(
        &self,
        title: &str,
        meta: Meta,
        unlike: bool,
    ) -> Result<Arc<Channel>, TitleTaken> {
        let key: Box<str> = title.to_lowercase().into();
        let skeleton = skeleton(title);
        let mut t = self.table.write();
        if t.by_title.contains_key(&key) {
            return Err(TitleTaken::Exists);
        }
        if unlike {
            let like = t.by_skeleton.get(&skeleton).and_then(|ids| ids.first());
            if let Some(other) = like.and_then(|id| t.by_id.get(id)) {
                return Err(TitleTaken::LooksLike(other.title.clone()));
            }
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let ch = Arc::new(Channel::new(id, title, meta));
        t.by_title.insert(key, id);
        t.by_skeleton.entry(skeleton).or_default().push(id);
        t.by_id.insert(id, ch.clone());
        Ok(ch)
    }

    /// The channel titled `title`, ignoring case.
    pub(super) fn id(&self, title: &str) -> Option<ChannelId> {
        let t = self.table.read();
        if let Some(&id) = t.by_title.get(title) {
            return Some(id);
        }
        t.by_title.get(title.to_lowercase().as_str()).copied()
    }

    /// The channel with this id, unless it was destroyed.
    pub(super) fn get(&self, id: ChannelId) -> Option<Arc<Channel>> {
        self.table.read().by_id.get(&id).cloned()
    }

    /// The channel titled `title`, ignoring case.
    pub(super) fn by_title(&self, title: &str) -> Option<Arc<Channel>> {
        self.id(title).and_then(|id| self.get(id))
    }

    /// Every channel, in listing order: configured ones first, then by creation.
    pub(super) fn all(&self) -> Vec<Arc<Channel>> {
        let mut all: Vec<Arc<Channel>> = self.table.read().by_id.values().cloned().collect();
        all.sort_by_key(|c| c.id);
        all
    }

    /// How many channels exist.
    pub(super) fn count(&self) -> usize {
        self.table.read().by_id.len()
    }

    /// Destroys channel `id` if it is temporary and has no members here nor, in a
    /// cluster, on another server. Returns the channel if it was destroyed now.
    pub(super) fn destroy_if_empty(
        &self,
        id: ChannelId,
        remote: &RemoteUsers,
    ) -> Option<Arc<Channel>> {
        let ch = self.get(id)?;
        if ch.with_meta(|m| m.kind) != Kind::Temporary || remote.count(id) > 0 {
            return None;
        }
        if !ch.close_if_empty() {
            return None;
        }
        self.remove_channel(&ch);
        Some(ch)
    }

    /// Destroys channel `id` whatever its kind, if it has no members. Returns whether it
    /// is gone.
    pub(super) fn destroy_now(&self, id: ChannelId) -> bool {
        let Some(ch) = self.get(id) else {
            return true;
        };
        if !ch.close_if_empty() {
            return false;
        }
        self.remove_channel(&ch);
        true
    }

    /// Makes the configured channels those of `specs` (a configuration reload): new
    /// titles are created, descriptions follow the file, a created channel named in the
    /// file becomes configured, and a configured channel the file no longer names becomes
    /// temporary (gone once empty). Returns what changed, one line each.
    pub(super) fn reconcile(&self, specs: &[ChannelSpec], remote: &RemoteUsers) -> Vec<String> {
        let mut changes = Vec::new();
        for spec in specs {
            match self.by_title(&spec.title) {
                Some(ch) => ch.with_meta(|m| {
                    if m.kind != Kind::Configured {
                        m.kind = Kind::Configured;
                        changes.push(format!("channel {} is configured now", ch.title));
                    }
                    if *m.description != *spec.description {
                        m.description = spec.description.as_str().into();
                        changes.push(format!("channel {} has a new description", ch.title));
                    }
                }),
                None => {
                    if self
                        .insert(&spec.title, Meta::configured(&spec.description))
                        .is_ok()
                    {
                        changes.push(format!("channel {} added", spec.title));
                    }
                }
            }
        }
        for ch in self.all() {
            let named = specs.iter().any(|s| {
                s.title.eq_ignore_ascii_case(&ch.title)
                    || s.title.to_lowercase() == ch.title.to_lowercase()
            });
            if named {
                continue;
            }
            let demoted = ch.with_meta(|m| {
                let was = m.kind == Kind::Configured;
                if was {
                    m.kind = Kind::Temporary;
                }
                was
            });
            if demoted {
                changes.push(format!(
                    "channel {} is no longer configured; it goes when empty",
                    ch.title
                ));
                self.destroy_if_empty(ch.id, remote);
            }
        }
        changes
    }

    fn remove_channel(&self, ch: &Channel) {
        let mut t = self.table.write();
        if t.by_id.remove(&ch.id).is_some() {
            t.by_title.remove(ch.title.to_lowercase().as_str());
            let skeleton = skeleton(&ch.title);
            if let Some(ids) = t.by_skeleton.get_mut(&skeleton) {
                ids.retain(|&id| id != ch.id);
                if ids.is_empty() {
                    t.by_skeleton.remove(&skeleton);
                }
            }
        }
    }
}
