//! Nickname comparison: the key under which a nickname is unique and looked up, and the
//! skeleton that tells look-alikes apart from registered accounts.
//!
//! - The key is the nickname prepared as RFC 8266 (PRECIS Nickname profile) enforces it
//!   (width mapping, non-ASCII spaces, NFKC) and then case-mapped with Unicode's
//!   toLowerCase, as RFC 8266 section 2.3 compares nicknames. `Bob`, `BOB` and the
//!   full-width `Ｂｏｂ` are one key; `é` composed and decomposed are one key. The
//!   `precis-profiles` crate does the PRECIS part: it implements RFC 8264-8266 with the
//!   Unicode tables they need, which nobody should write by hand. The Nickname profile
//!   (not UsernameCaseMapped, which Ergo uses for account names) is chosen because it
//!   accepts the symbols classic nicknames may hold, so no nickname that logged in before
//!   is refused now. A string the profile refuses (unassigned code points) keys as its
//!   plain lower case.
//! - The skeleton is Unicode's confusable skeleton (UTS #39, the `unicode-security` crate,
//!   from the unicode-rs project) of the key: `аlice` with a Cyrillic а, `a1ice` and
//!   `alice` share one, and so do `b0b` and `bob` (the skeleton is taken again lower-cased,
//!   since keys are). Registered accounts reserve their skeleton: a guest can't log in
//!   under, and nobody can register, a nickname that looks like a registered one.
//!
//! ASCII nicknames, the common case, take a fast path with the same result.

use precis_profiles::precis_core::profile::PrecisFastInvocation;
use precis_profiles::Nickname;

/// The key of a nickname; see the module docs.
pub fn key(nick: &str) -> String {
    if nick.is_ascii() && !nick.contains(' ') {
        return nick.to_ascii_lowercase();
    }
    match Nickname::enforce(nick) {
        Ok(prepared) => prepared.to_lowercase(),
        Err(_) => nick.to_lowercase(),
    }
}

/// The confusable skeleton of a nickname key; see the module docs.
///
/// Some prototypes of the confusables table are capitals (`0` and `о` map to `O`), which
/// a key, lower-cased, never holds: so the skeleton is lower-cased and taken again, and
/// `b0b` meets `bob`.
pub fn skeleton(key: &str) -> String {
    use unicode_security::confusable_detection::skeleton as uts39;
    let once: String = uts39(key).collect();
    if !once.chars().any(char::is_uppercase) {
        return once;
    }
    uts39(&once.to_lowercase()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_ignore_case_width_and_normalization() {
        assert_eq!(key("Bob"), "bob");
        assert_eq!(key("ＢＯＢ"), "bob");
        assert_eq!(key("Ren\u{e9}"), key("Rene\u{301}"));
        assert_eq!(key("ÉCOLE"), "école");
        assert_ne!(key("ann"), key("anne"));
        // Symbols classic nicknames may hold still have a key of their own.
        assert_eq!(key("☃snow"), "☃snow");
    }

    #[test]
    fn look_alikes_share_a_skeleton() {
        let alice = skeleton(&key("alice"));
        assert_eq!(skeleton(&key("\u{430}lice")), alice, "Cyrillic a");
        assert_eq!(skeleton(&key("a1ice")), alice);
        assert_eq!(skeleton(&key("b0b")), skeleton(&key("bob")), "a zero");
        assert_eq!(
            skeleton(&key("b\u{43e}b")),
            skeleton(&key("bob")),
            "a Cyrillic o"
        );
        assert_eq!(skeleton(&key("ALICE")), alice);
        assert_ne!(skeleton(&key("alicia")), alice);
    }
}
