//! Small judgements about text the session makes before it sends or shows anything: is
//! this line a password typed earlier (then it must never go out as a message), does this
//! message mention me, is this nickname acceptable to send.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// Remembers the passwords typed in this run as salted hashes, so that a password typed
/// at the wrong prompt (after a prompt changed, or typed ahead) is recognised and never
/// sent as a message or a nickname. Only hashes are kept, under a salt made at start, so
/// the memory holds nothing a password could be read back from.
pub struct SecretGuard {
    salt: [u8; 16],
    hashes: Vec<[u8; 32]>,
}

impl Default for SecretGuard {
    fn default() -> Self {
        let mut salt = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut salt);
        SecretGuard {
            salt,
            hashes: Vec::new(),
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
    pub fn add(&mut self, secret: &str) {
        if secret.trim().is_empty() {
            return;
        }
        let h = self.hash(secret);
        if !self.hashes.contains(&h) {
            self.hashes.push(h);
        }
    }

    /// Whether `line` is (apart from white space around it) a password typed before.
    pub fn holds(&self, line: &str) -> bool {
        !line.trim().is_empty() && self.hashes.contains(&self.hash(line))
    }
}

/// Whether `text` mentions `nick` as a word of its own (any case): `ann:` and `@ann`
/// do, `annex` does not.
pub fn mentions(text: &str, nick: &str) -> bool {
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
pub enum NickError {
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
pub fn check_nick(typed: &str) -> Result<&str, NickError> {
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
