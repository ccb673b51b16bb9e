//! The full-screen client's buffers: the status buffer, one per channel and one per
//! private conversation, each with its scrollback, its activity (new lines, mentions),
//! its nick list and its search. What the session says is routed here; drawing is
//! `draw.rs`'s.

use std::collections::VecDeque;

use crate::session::{Place, Shown, Target};

/// Lines a buffer keeps; older ones are dropped.
const SCROLLBACK: usize = 5000;

/// What a buffer is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Answers, errors, notices: the first buffer.
    Status,
    /// A channel's messages and comings and goings.
    Channel,
    /// A private conversation.
    Private,
}

/// One line of a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// `HH:MM` when it arrived.
    pub(crate) time: String,
    /// The classic line, without its leading tab (network text already defused).
    pub(crate) text: String,
    /// It mentions the user.
    pub(crate) mention: bool,
    /// The client's own line (a notice, a message sent).
    pub(crate) own: bool,
}

/// What came into a buffer while it was not shown: the more telling wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum News {
    /// Nothing new.
    Nothing,
    /// New lines.
    Lines,
    /// New lines, one of them mentioning the user.
    Mention,
}

/// One buffer.
#[derive(Debug, Clone)]
pub(crate) struct Buffer {
    /// Its name: `status`, the channel's title or the other user's nickname.
    pub(crate) name: String,
    /// What it is for.
    pub(crate) kind: Kind,
    /// Its lines, oldest first.
    pub(crate) lines: VecDeque<Entry>,
    /// What arrived while it was not shown.
    pub(crate) news: News,
    /// Screen rows scrolled up from the bottom (0: the newest lines show).
    pub(crate) scroll: usize,
    /// The channel's members, sorted (channels only).
    pub(crate) nicks: Vec<String>,
    /// The line the last search found.
    pub(crate) found: Option<usize>,
}

impl Buffer {
    fn new(name: &str, kind: Kind) -> Buffer {
        Buffer {
            name: name.to_string(),
            kind,
            lines: VecDeque::new(),
            news: News::Nothing,
            scroll: 0,
            nicks: Vec::new(),
            found: None,
        }
    }

    fn push(&mut self, entry: Entry) {
        if self.lines.len() >= SCROLLBACK {
            self.lines.pop_front();
            self.found = self.found.and_then(|i| i.checked_sub(1));
        }
        self.lines.push_back(entry);
    }

    /// Where a message typed in this buffer goes.
    pub(crate) fn target(&self) -> Target {
        match self.kind {
            Kind::Status => Target::Current,
            Kind::Channel => Target::Channel(self.name.clone()),
            Kind::Private => Target::Private(self.name.clone()),
        }
    }

    /// Finds `text` (any case) in a line before the one found last (or the newest);
    /// returns whether it did.
    pub(crate) fn search(&mut self, text: &str) -> bool {
        let needle = text.to_lowercase();
        let before = self.found.unwrap_or(self.lines.len());
        let hit = (0..before)
            .rev()
            .find(|&i| self.lines[i].text.to_lowercase().contains(&needle));
        if hit.is_some() {
            self.found = hit;
        }
        hit.is_some()
    }
}

/// All the buffers and which one is shown.
#[derive(Debug, Clone)]
pub(crate) struct Buffers {
    /// In order of creation; the status buffer first.
    pub(crate) list: Vec<Buffer>,
    /// The one shown.
    pub(crate) active: usize,
}

impl Default for Buffers {
    fn default() -> Self {
        Buffers {
            list: vec![Buffer::new("status", Kind::Status)],
            active: 0,
        }
    }
}

impl Buffers {
    /// The buffer shown.
    pub(crate) fn active(&self) -> &Buffer {
        &self.list[self.active.min(self.list.len() - 1)]
    }

    /// The buffer shown, to change.
    pub(crate) fn active_mut(&mut self) -> &mut Buffer {
        let i = self.active.min(self.list.len() - 1);
        &mut self.list[i]
    }

    /// The index of the buffer `name` of `kind`, made if missing.
    pub(crate) fn find_or_add(&mut self, name: &str, kind: Kind) -> usize {
        if let Some(i) = self
            .list
            .iter()
            .position(|b| b.kind == kind && b.name.eq_ignore_ascii_case(name))
        {
            return i;
        }
        self.list.push(Buffer::new(name, kind));
        self.list.len() - 1
    }

    /// Shows buffer `i` (from 0), if there is one; its activity is seen.
    pub(crate) fn show(&mut self, i: usize) -> bool {
        if i >= self.list.len() {
            return false;
        }
        self.active = i;
        let b = &mut self.list[i];
        b.news = News::Nothing;
        true
    }

    /// Shows the next buffer (`step` 1) or the one before (`step` -1), wrapping around.
    pub(crate) fn cycle(&mut self, forward: bool) {
        let n = self.list.len();
        let next = if forward {
            (self.active + 1) % n
        } else {
            (self.active + n - 1) % n
        };
        self.show(next);
    }

    /// Adds a line where it belongs; returns whether it mentions the user (for the bell).
    pub(crate) fn add(&mut self, shown: &Shown, time: String) -> bool {
        let i = match &shown.place {
            Place::Active => self.active,
            Place::Channel(title) => self.find_or_add(title, Kind::Channel),
            Place::Private(nick) => self.find_or_add(nick, Kind::Private),
        };
        let text = shown.text.strip_prefix('\t').unwrap_or(&shown.text);
        self.list[i].push(Entry {
            time,
            text: text.to_string(),
            mention: shown.mention,
            own: shown.own,
        });
        if shown.focus {
            self.show(i);
        } else if i != self.active && !shown.own {
            let news = if shown.mention {
                News::Mention
            } else {
                News::Lines
            };
            self.list[i].news = self.list[i].news.max(news);
        }
        shown.mention
    }

    /// The members of channel `title` are now `nicks`.
    pub(crate) fn members(&mut self, title: &str, nicks: Vec<String>) {
        let found = self
            .list
            .iter()
            .position(|b| b.kind == Kind::Channel && b.name.eq_ignore_ascii_case(title));
        // The members of a channel just joined come before its first line.
        let i = match found {
            Some(i) => i,
            None if nicks.is_empty() => return,
            None => self.find_or_add(title, Kind::Channel),
        };
        self.list[i].nicks = nicks;
    }

    /// The activity: numbers (from 1) of the buffers with new lines, and whether each
    /// holds a mention.
    pub(crate) fn activity(&self) -> Vec<(usize, bool)> {
        self.list
            .iter()
            .enumerate()
            .filter(|(_, b)| b.news != News::Nothing)
            .map(|(i, b)| (i + 1, b.news == News::Mention))
            .collect()
    }

    /// Nicknames and channel titles known, for completion.
    pub(crate) fn names(&self) -> (Vec<String>, Vec<String>) {
        let mut nicks: Vec<String> = self.active().nicks.clone();
        let mut titles = Vec::new();
        for b in &self.list {
            match b.kind {
                Kind::Channel => {
                    titles.push(b.name.clone());
                    nicks.extend(b.nicks.iter().cloned());
                }
                Kind::Private => nicks.push(b.name.clone()),
                Kind::Status => {}
            }
            // The classic `/channels` lines: `[Title]` first.
            for e in &b.lines {
                if let Some(rest) = e.text.strip_prefix('[') {
                    if let Some((title, _)) = rest.split_once(']') {
                        titles.push(title.to_string());
                    }
                }
            }
        }
        dedup(&mut nicks);
        dedup(&mut titles);
        (nicks, titles)
    }
}

/// Sorts and drops repeats (without regard to case), keeping the first spelling.
fn dedup(names: &mut Vec<String>) {
    let mut seen = std::collections::BTreeSet::new();
    names.retain(|n| seen.insert(n.to_lowercase()));
    names.sort_by_key(|n| n.to_lowercase());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(text: &str, place: Place) -> Shown {
        Shown {
            text: text.into(),
            place,
            mention: false,
            focus: false,
            own: false,
        }
    }

    #[test]
    fn lines_go_to_their_buffer_and_count_as_activity_elsewhere() {
        let mut b = Buffers::default();
        b.add(
            &shown("\tbob [Pets]: hi", Place::Channel("Pets".into())),
            "10:00".into(),
        );
        assert_eq!(b.list.len(), 2);
        assert_eq!(b.list[1].name, "Pets");
        assert_eq!(b.list[1].lines[0].text, "bob [Pets]: hi");
        assert_eq!(b.activity(), [(2, false)]);
        let mut m = shown("\tcarl [**private**]: ann?", Place::Private("carl".into()));
        m.mention = true;
        assert!(b.add(&m, "10:01".into()));
        assert_eq!(b.activity(), [(2, false), (3, true)]);
        b.show(2);
        assert_eq!(b.activity(), [(2, false)]);
        b.add(&shown("\t** ERROR: x **", Place::Active), "10:02".into());
        assert_eq!(b.list[2].lines.len(), 2);
        b.cycle(true);
        assert_eq!(b.active, 0);
        b.cycle(false);
        assert_eq!(b.active, 2);
    }

    #[test]
    fn a_focused_line_shows_its_buffer() {
        let mut b = Buffers::default();
        let mut s = shown(
            "\tWelcome to the Pets Channel (1 users)",
            Place::Channel("Pets".into()),
        );
        s.focus = true;
        b.add(&s, "10:00".into());
        assert_eq!(b.active, 1);
        assert!(b.activity().is_empty());
    }

    #[test]
    fn search_walks_back_through_matches() {
        let mut b = Buffers::default();
        for t in ["apple", "pear", "Apple pie", "plum"] {
            b.add(&shown(t, Place::Active), "10:00".into());
        }
        let s = b.active_mut();
        assert!(s.search("APPLE"));
        assert_eq!(s.found, Some(2));
        assert!(s.search("apple"));
        assert_eq!(s.found, Some(0));
        assert!(!s.search("apple"));
        assert_eq!(s.found, Some(0));
    }

    #[test]
    fn names_for_completion_come_from_members_and_channel_lists() {
        let mut b = Buffers::default();
        b.add(&shown("\tx", Place::Channel("Pets".into())), "10:00".into());
        b.members("pets", vec!["ann".into(), "Bob".into()]);
        b.add(
            &shown("\t[Weather]           Talk", Place::Active),
            "10:00".into(),
        );
        b.add(&shown("\tx", Place::Private("carl".into())), "10:00".into());
        let (nicks, titles) = b.names();
        assert_eq!(nicks, ["ann", "Bob", "carl"]);
        assert_eq!(titles, ["Pets", "Weather"]);
    }
}
