//! The full-screen client's input line: editing, history (kept across runs in a file),
//! and Tab completion of commands, nicknames and channel titles. Pure state, so every
//! rule is tested without a terminal.

use std::fs;
use std::io::Write as _;
use std::path::PathBuf;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::{command, files};

/// What a key does to the input line, for the keys both raw-mode interfaces share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyAction {
    /// Ctrl-C, or Ctrl-D on an empty line: leave.
    End,
    /// Enter (or Ctrl-J, a line feed): the line is done.
    Submit,
    /// The line was edited (or the key does nothing here).
    Edited,
    /// Not an editing key: the interface's own (Tab, PageUp, Alt-1...).
    Other,
}

/// Lines of history kept.
const HISTORY_MAX: usize = 500;

/// What is being typed, with the cursor.
#[derive(Debug, Default)]
pub(crate) struct InputLine {
    /// The text, as characters so the cursor moves by character.
    chars: Vec<char>,
    /// The cursor, in characters from the start.
    cursor: usize,
    /// Lines typed before, oldest first.
    history: Vec<String>,
    /// While walking the history: the entry shown, and what was being typed before.
    walk: Option<(usize, String)>,
    /// The file the history is kept in.
    file: Option<PathBuf>,
    /// A completion under way: the candidates, the one shown, and where the word starts.
    completing: Option<(Vec<String>, usize, usize)>,
}

impl InputLine {
    /// An empty line whose history is read from (and appended to) `file`, which is made
    /// the user's alone (0600, see `crate::files`) if it was open to others.
    pub(crate) fn with_history(file: Option<PathBuf>) -> InputLine {
        if let Some(path) = &file {
            // Losing history is not worth stopping for; a history open to others is
            // never written to (see `remember`).
            let _ = files::tighten(path);
        }
        let history = file
            .as_ref()
            .and_then(|f| fs::read_to_string(f).ok())
            .map(|text| {
                let lines: Vec<String> = text.lines().map(str::to_string).collect();
                let skip = lines.len().saturating_sub(HISTORY_MAX);
                lines.into_iter().skip(skip).collect()
            })
            .unwrap_or_default();
        InputLine {
            history,
            file,
            ..InputLine::default()
        }
    }

    /// The text typed.
    pub(crate) fn text(&self) -> String {
        self.chars.iter().collect()
    }

    /// The cursor, in characters.
    pub(crate) fn cursor(&self) -> usize {
        self.cursor
    }

    /// Whether nothing is typed.
    pub(crate) fn is_empty(&self) -> bool {
        self.chars.is_empty()
    }

    /// Applies an editing key. `more`: other keys were already waiting (an Enter among
    /// them is inside a paste without marks, and becomes a line end in the text); `chat`:
    /// the chat prompt is up (history and line ends only there).
    pub(crate) fn key(&mut self, k: &KeyEvent, more: bool, chat: bool) -> KeyAction {
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        let alt = k.modifiers.contains(KeyModifiers::ALT);
        let enter = k.code == KeyCode::Enter || (ctrl && k.code == KeyCode::Char('j'));
        match k.code {
            _ if enter && more && chat => self.insert('\n'),
            _ if enter => return KeyAction::Submit,
            KeyCode::Char('c') if ctrl => return KeyAction::End,
            KeyCode::Char('d') if ctrl && self.is_empty() => return KeyAction::End,
            KeyCode::Char('a') if ctrl => self.home(),
            KeyCode::Char('e') if ctrl => self.end(),
            KeyCode::Char('u') if ctrl => self.kill_before(),
            KeyCode::Char('k') if ctrl => self.kill_after(),
            KeyCode::Char('w') if ctrl => self.kill_word(),
            KeyCode::Char(c) if !ctrl && !alt => self.insert(c),
            KeyCode::Backspace => self.backspace(),
            KeyCode::Delete => self.delete(),
            KeyCode::Left => self.left(),
            KeyCode::Right => self.right(),
            KeyCode::Home => self.home(),
            KeyCode::End => self.end(),
            KeyCode::Up if chat => self.up(),
            KeyCode::Down if chat => self.down(),
            _ => return KeyAction::Other,
        }
        KeyAction::Edited
    }

    /// Takes the text typed, leaving the line empty.
    pub(crate) fn take(&mut self) -> String {
        let text = self.text();
        self.chars.clear();
        self.cursor = 0;
        self.walk = None;
        self.completing = None;
        text
    }

    /// Remembers a chat line in the history (and its file, made 0600 in a folder made
    /// 0700). Never called for a line that holds a password (see `Prompt::remember`).
    pub(crate) fn remember(&mut self, line: &str) {
        if line.trim().is_empty() || self.history.last().is_some_and(|l| l == line) {
            return;
        }
        // One line per entry in the file: a pasted block is not history.
        if line.contains(['\n', '\r']) {
            return;
        }
        self.history.push(line.to_string());
        if self.history.len() > HISTORY_MAX {
            self.history.remove(0);
        }
        if let Some(path) = &self.file {
            // Losing history is not worth interrupting a chat for.
            let _ = files::append(path).and_then(|mut f| writeln!(f, "{line}"));
        }
    }

    /// Forgets every line of the history that `secret` says holds a password, in memory
    /// and in its file (all of it, lines of earlier runs too), which is then rewritten
    /// without them, keeping its last lines as many as are read back at start. Called
    /// when a password becomes known: lines typed before it was (in this run or an
    /// earlier one) may hold it.
    pub(crate) fn forget(&mut self, secret: impl Fn(&str) -> bool) {
        self.history.retain(|line| !secret(line));
        self.walk = None;
        let Some(path) = &self.file else {
            return;
        };
        let Ok(text) = fs::read_to_string(path) else {
            return;
        };
        let kept: Vec<&str> = text.lines().filter(|line| !secret(line)).collect();
        if kept.len() == text.lines().count() {
            return;
        }
        let skip = kept.len().saturating_sub(HISTORY_MAX);
        // A failure leaves the old file; the lines are still never shown or written again.
        let _ = files::replace(path, kept.into_iter().skip(skip));
    }

    fn edited(&mut self) {
        self.completing = None;
    }

    /// Types `c` at the cursor.
    pub(crate) fn insert(&mut self, c: char) {
        self.chars.insert(self.cursor, c);
        self.cursor += 1;
        self.edited();
    }

    /// Types `s` at the cursor.
    pub(crate) fn insert_str(&mut self, s: &str) {
        for c in s.chars() {
            self.insert(c);
        }
    }

    /// Backspace.
    pub(crate) fn backspace(&mut self) {
        if self.cursor > 0 {
            self.cursor -= 1;
            self.chars.remove(self.cursor);
        }
        self.edited();
    }

    /// Delete.
    pub(crate) fn delete(&mut self) {
        if self.cursor < self.chars.len() {
            self.chars.remove(self.cursor);
        }
        self.edited();
    }

    /// Moves the cursor left.
    pub(crate) fn left(&mut self) {
        self.cursor = self.cursor.saturating_sub(1);
        self.edited();
    }

    /// Moves the cursor right.
    pub(crate) fn right(&mut self) {
        self.cursor = (self.cursor + 1).min(self.chars.len());
        self.edited();
    }

    /// Home.
    pub(crate) fn home(&mut self) {
        self.cursor = 0;
        self.edited();
    }

    /// End.
    pub(crate) fn end(&mut self) {
        self.cursor = self.chars.len();
        self.edited();
    }

    /// Ctrl-U: deletes everything before the cursor.
    pub(crate) fn kill_before(&mut self) {
        self.chars.drain(..self.cursor);
        self.cursor = 0;
        self.edited();
    }

    /// Ctrl-K: deletes everything after the cursor.
    pub(crate) fn kill_after(&mut self) {
        self.chars.truncate(self.cursor);
        self.edited();
    }

    /// Ctrl-W: deletes the word before the cursor.
    pub(crate) fn kill_word(&mut self) {
        let mut start = self.cursor;
        while start > 0 && self.chars[start - 1] == ' ' {
            start -= 1;
        }
        while start > 0 && self.chars[start - 1] != ' ' {
            start -= 1;
        }
        self.chars.drain(start..self.cursor);
        self.cursor = start;
        self.edited();
    }

    fn set(&mut self, text: &str) {
        self.chars = text.chars().collect();
        self.cursor = self.chars.len();
        self.completing = None;
    }

    /// Up: the line typed before the one shown.
    pub(crate) fn up(&mut self) {
        let (at, typed) = match self.walk.take() {
            Some((0, typed)) => (0, typed),
            Some((i, typed)) => (i - 1, typed),
            None if self.history.is_empty() => return,
            None => (self.history.len() - 1, self.text()),
        };
        let line = self.history[at].clone();
        self.set(&line);
        self.walk = Some((at, typed));
    }

    /// Down: the line typed after the one shown, or what was being typed.
    pub(crate) fn down(&mut self) {
        match self.walk.take() {
            Some((i, typed)) if i + 1 >= self.history.len() => self.set(&typed),
            Some((i, typed)) => {
                let line = self.history[i + 1].clone();
                self.set(&line);
                self.walk = Some((i + 1, typed));
            }
            None => {}
        }
    }

    /// Tab: completes the word before the cursor (a command at the start, else a nickname
    /// or a channel title), and on the next Tab offers the next candidate.
    pub(crate) fn complete(&mut self, nicks: &[String], titles: &[String]) {
        if let Some((candidates, shown, start)) = self.completing.take() {
            let next = (shown + 1) % candidates.len();
            self.replace_word(start, &candidates[next]);
            self.completing = Some((candidates, next, start));
            return;
        }
        let before: String = self.chars[..self.cursor].iter().collect();
        let start = before
            .rfind(' ')
            .map_or(0, |i| before[..=i].chars().count());
        let word: String = self.chars[start..self.cursor].iter().collect();
        if word.is_empty() {
            return;
        }
        let lower = word.to_lowercase();
        let matching = |names: &[String]| -> Vec<String> {
            names
                .iter()
                .filter(|n| n.to_lowercase().starts_with(&lower))
                .cloned()
                .collect()
        };
        let candidates: Vec<String> = if start == 0 && word.starts_with('/') {
            command::complete(&word)
                .into_iter()
                .map(|n| format!("{n} "))
                .collect()
        } else {
            let mut found: Vec<String> = matching(nicks)
                .into_iter()
                // A nickname opening the line is addressed: `ann: `.
                .map(|n| {
                    if start == 0 {
                        format!("{n}: ")
                    } else {
                        format!("{n} ")
                    }
                })
                .collect();
            found.extend(matching(titles).into_iter().map(|t| format!("{t} ")));
            found
        };
        if candidates.is_empty() {
            return;
        }
        self.replace_word(start, &candidates[0]);
        self.completing = Some((candidates, 0, start));
    }

    fn replace_word(&mut self, start: usize, with: &str) {
        self.chars.drain(start..self.cursor);
        let new: Vec<char> = with.chars().collect();
        let n = new.len();
        self.chars.splice(start..start, new);
        self.cursor = start + n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(s: &str) -> InputLine {
        let mut l = InputLine::default();
        l.insert_str(s);
        l
    }

    #[test]
    fn editing_moves_by_characters() {
        let mut l = typed("héllo");
        l.left();
        l.left();
        l.backspace();
        assert_eq!(l.text(), "hélo");
        l.home();
        l.delete();
        assert_eq!(l.text(), "élo");
        l.end();
        l.insert('!');
        assert_eq!(l.text(), "élo!");
        let mut w = typed("one two  ");
        w.kill_word();
        assert_eq!(w.text(), "one ");
        assert_eq!(w.take(), "one ");
        assert!(w.is_empty());
    }

    #[test]
    fn history_walks_and_comes_back_to_what_was_typed() {
        let mut l = InputLine::default();
        l.remember("first");
        l.remember("second");
        l.remember("second");
        l.insert_str("draft");
        l.up();
        assert_eq!(l.text(), "second");
        l.up();
        assert_eq!(l.text(), "first");
        l.up();
        assert_eq!(l.text(), "first");
        l.down();
        assert_eq!(l.text(), "second");
        l.down();
        assert_eq!(l.text(), "draft");
    }

    #[test]
    fn history_is_kept_across_runs() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sub").join("history");
        let mut l = InputLine::with_history(Some(file.clone()));
        l.remember("/join Pets");
        l.remember("two\nlines");
        let mut again = InputLine::with_history(Some(file));
        again.up();
        assert_eq!(again.text(), "/join Pets");
    }

    #[test]
    fn the_history_file_is_the_users_alone() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("state").join("udpchat");
        let file = folder.join("history");
        let mut l = InputLine::with_history(Some(file.clone()));
        l.remember("/join Pets");
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(&folder), 0o700);
        assert_eq!(mode(&dir.path().join("state")), 0o700);
        // One an older client left open to others is tightened when it is opened.
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        let _again = InputLine::with_history(Some(file.clone()));
        assert_eq!(mode(&file), 0o600);
    }

    #[test]
    fn lines_holding_a_password_are_forgotten_from_memory_and_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("history");
        // An earlier run's lines, one of them with the password.
        fs::write(&file, "old one\n/msg bob tulip42\nold two\n").unwrap();
        let mut l = InputLine::with_history(Some(file.clone()));
        l.remember("/nick tulip42");
        l.remember("hello");
        l.forget(|line| line.contains("tulip42"));
        assert_eq!(
            fs::read_to_string(&file).unwrap(),
            "old one\nold two\nhello\n"
        );
        let mut seen = Vec::new();
        for _ in 0..4 {
            l.up();
            seen.push(l.text());
        }
        assert_eq!(seen, ["hello", "old two", "old one", "old one"]);
        // Nothing to forget: the file is left alone.
        let before = fs::metadata(&file).unwrap().modified().unwrap();
        l.forget(|line| line.contains("nothing"));
        assert_eq!(fs::metadata(&file).unwrap().modified().unwrap(), before);
    }

    #[test]
    fn tab_completes_commands_nicks_and_titles_and_cycles() {
        let nicks = vec!["ann".to_string(), "anna".to_string(), "bob".to_string()];
        let titles = vec!["Pets".to_string(), "Weather".to_string()];
        let mut l = typed("/jo");
        l.complete(&nicks, &titles);
        assert_eq!(l.text(), "/join ");
        l.insert_str("pe");
        l.complete(&nicks, &titles);
        assert_eq!(l.text(), "/join Pets ");
        let mut n = typed("an");
        n.complete(&nicks, &titles);
        assert_eq!(n.text(), "ann: ");
        n.complete(&nicks, &titles);
        assert_eq!(n.text(), "anna: ");
        n.complete(&nicks, &titles);
        assert_eq!(n.text(), "ann: ");
        let mut m = typed("hi B");
        m.complete(&nicks, &titles);
        assert_eq!(m.text(), "hi bob ");
        let mut none = typed("zz");
        none.complete(&nicks, &titles);
        assert_eq!(none.text(), "zz");
    }
}
