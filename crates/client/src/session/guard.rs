//! Small judgements about text the session makes before it sends or shows anything: does
//! this line hold a password typed earlier (then nothing of it goes out, nor into the
//! input history, nor shows in clear while it is typed), does this message mention me, is
//! this nickname acceptable to send.

use std::collections::BTreeSet;

use rand::RngCore;
use sha2::{Digest, Sha256};

/// Passwords shorter than this (in characters) are found inside a line only as a word of
/// their own: `abc` holds back `/nick abc` and `it is abc.`, not `abcde`.
pub(crate) const WORD_ONLY_BELOW: usize = 4;

/// Remembers the passwords typed in this run as salted hashes, so that a password typed
/// at the wrong prompt (after a prompt changed, or typed ahead) or inside a line (`/msg
/// bob hunter2`, `/nick hunter2`, "my password is hunter2") is recognised: such a line is
/// never sent, never kept in the input history, and the password never shows in clear on
/// the input line. Only hashes are kept, under a salt made at start, and the passwords'
/// lengths (which their stars show anyway), so the memory holds nothing a password could
/// be read back from.
///
/// Matching is exact (case-sensitive, as the password is), on every stretch of a line
/// whose length is that of a password. A password shorter than [`WORD_ONLY_BELOW`]
/// characters counts inside a line only as a word of its own, so that a short one (or a
/// slip of one key at a password prompt) does not hold back every line with those letters.
pub(crate) struct SecretGuard {
    salt: [u8; 16],
    hashes: Vec<[u8; 32]>,
    /// The length of each password, in characters: the stretches of a line to look at.
    lengths: BTreeSet<usize>,
}

impl Default for SecretGuard {
    fn default() -> Self {
        let mut salt = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut salt);
        SecretGuard {
            salt,
            hashes: Vec::new(),
            lengths: BTreeSet::new(),
        }
    }
}

impl SecretGuard {
    fn hash(&self, text: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.salt);
        h.update(text.trim().as_bytes());
        h.finalize().into()
    }

    /// Remembers `secret` (blank ones are not worth guarding: they are never sent anyway).
    /// Returns whether it is new to the guard (then lines kept before may hold it).
    pub(crate) fn add(&mut self, secret: &str) -> bool {
        if secret.trim().is_empty() {
            return false;
        }
        let h = self.hash(secret);
        if self.hashes.contains(&h) {
            return false;
        }
        self.hashes.push(h);
        self.lengths.insert(secret.trim().chars().count());
        true
    }

    /// Whether `line` is (apart from white space around it) a password typed before.
    pub(crate) fn holds(&self, line: &str) -> bool {
        !line.trim().is_empty() && self.hashes.contains(&self.hash(line))
    }

    /// Whether a password typed before is anywhere in `text` (a short one as a word of its
    /// own, see [`WORD_ONLY_BELOW`]): then nothing of `text` may go out or be kept.
    pub(crate) fn found_in(&self, text: &str) -> bool {
        if self.hashes.is_empty() {
            return false;
        }
        let chars: Vec<char> = text.chars().collect();
        let word = |at: Option<&char>| at.is_some_and(|c| c.is_alphanumeric());
        self.stretches(text).any(|(first, len)| {
            let before = first.checked_sub(1).and_then(|i| chars.get(i));
            let after = chars.get(first + len);
            len >= WORD_ONLY_BELOW || !(word(before) || word(after))
        })
    }

    /// `text` as the input line may show it: every stretch of it that is a password typed
    /// before becomes stars, one a character.
    pub(crate) fn mask(&self, text: &str) -> String {
        let mut hidden = vec![false; text.chars().count()];
        for (first, len) in self.stretches(text) {
            hidden[first..first + len].fill(true);
        }
        text.chars()
            .zip(hidden)
            .map(|(c, hide)| if hide { '*' } else { c })
            .collect()
    }

    /// The stretches of `text` that are a password typed before, as (first character,
    /// length in characters).
    fn stretches<'t>(&'t self, text: &'t str) -> impl Iterator<Item = (usize, usize)> + 't {
        let starts: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
        let count = starts.len();
        self.lengths.iter().flat_map(move |&len| {
            let starts = starts.clone();
            (0..(count + 1).saturating_sub(len)).filter_map(move |first| {
                let end = starts.get(first + len).copied().unwrap_or(text.len());
                let stretch = &text[starts[first]..end];
                // The white space around a password is not part of it.
                (stretch.trim().len() == stretch.len() && self.holds(stretch))
                    .then_some((first, len))
            })
        })
    }
}

/// Whether `text` mentions `nick` as a word of its own (any case): `ann:` and `@ann`
/// do, `annex` does not.
pub(crate) fn mentions(text: &str, nick: &str) -> bool {
    if nick.is_empty() {
        return false;
    }
    let word = |c: char| c.is_alphanumeric() || c == '_';
    let lower = text.to_lowercase();
    let nick = nick.to_lowercase();
    lower.match_indices(&nick).any(|(i, m)| {
        let before = lower[..i].chars().next_back();
        let after = lower[i + m.len()..].chars().next();
        !before.is_some_and(word) && !after.is_some_and(word)
    })
}

/// Why a nickname typed at the prompt is refused before it is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NickError {
    /// Nothing but white space: ask again.
    Empty,
    /// White space inside the nickname.
    WhiteSpace,
}

/// Checks a nickname as typed, trimming white space around it. The server judges the
/// rest (length, control characters, uniqueness).
///
/// # Errors
/// [`NickError`] when it is empty or holds white space.
pub(crate) fn check_nick(typed: &str) -> Result<&str, NickError> {
    let nick = typed.trim();
    if nick.is_empty() {
        Err(NickError::Empty)
    } else if nick.contains(char::is_whitespace) {
        Err(NickError::WhiteSpace)
    } else {
        Ok(nick)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nicknames_with_white_space_are_refused() {
        assert_eq!(check_nick("ann"), Ok("ann"));
        assert_eq!(check_nick("  ann \r"), Ok("ann"));
        assert_eq!(check_nick("a b"), Err(NickError::WhiteSpace));
        assert_eq!(check_nick("a\tb"), Err(NickError::WhiteSpace));
        assert_eq!(check_nick("   "), Err(NickError::Empty));
        assert_eq!(check_nick(""), Err(NickError::Empty));
    }

    #[test]
    fn the_guard_knows_passwords_typed_before_and_nothing_else() {
        let mut g = SecretGuard::default();
        g.add("hunter2");
        g.add("   ");
        assert!(g.holds("hunter2"));
        assert!(g.holds("  hunter2 "));
        assert!(!g.holds("hunter"));
        assert!(!g.holds(""));
        assert!(!g.holds("   "));
    }

    #[test]
    fn a_password_is_found_anywhere_in_a_line_in_its_own_case() {
        let mut g = SecretGuard::default();
        assert!(!g.found_in("hunter2"), "nothing known yet");
        assert!(g.add("hunter2"));
        assert!(!g.add(" hunter2 "), "known already");
        for line in [
            "hunter2",
            "/msg bob hunter2",
            "/nick hunter2",
            "/create hunter2 a den",
            "/create Den hunter2",
            "/topic Den it is hunter2!",
            "my password is hunter2, really",
            "xhunter2x",
            "/join hunter2hunter2",
        ] {
            assert!(g.found_in(line), "{line}");
        }
        for line in ["Hunter2", "hunter 2", "hunter", "/msg bob hi", ""] {
            assert!(!g.found_in(line), "{line}");
        }
        // A password with a space inside is found whole.
        g.add("pass phrase");
        assert!(g.found_in("/wall pass phrase"));
        assert!(!g.found_in("/wall pass  phrase"));
    }

    #[test]
    fn a_short_password_is_found_only_as_a_word() {
        let mut g = SecretGuard::default();
        g.add("abc");
        for line in ["abc", "/nick abc", "it is abc.", "/msg bob abc"] {
            assert!(g.found_in(line), "{line}");
        }
        for line in ["abcde", "xabc", "/nick abc1"] {
            assert!(!g.found_in(line), "{line}");
        }
        assert_eq!(WORD_ONLY_BELOW, 4);
        g.add("abcd");
        assert!(g.found_in("xabcdx"));
    }

    #[test]
    fn passwords_in_a_line_show_as_stars() {
        let mut g = SecretGuard::default();
        assert_eq!(g.mask("hunter2"), "hunter2");
        g.add("hunter2");
        g.add(" pässwort ");
        assert_eq!(g.mask("my hunter2 is pässwort!"), "my ******* is ********!");
        assert_eq!(g.mask("hunter2hunter2"), "**************");
        assert_eq!(g.mask("hunter"), "hunter");
        assert_eq!(g.mask(""), "");
    }

    #[test]
    fn mentions_are_whole_words_in_any_case() {
        assert!(mentions("hi ann!", "ann"));
        assert!(mentions("ANN: look", "ann"));
        assert!(mentions("@ann", "ann"));
        assert!(!mentions("annex", "ann"));
        assert!(!mentions("joann", "ann"));
        assert!(mentions("joann and ann", "ann"));
        assert!(!mentions("anything", ""));
    }
}
