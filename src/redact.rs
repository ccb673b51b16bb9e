//! What may be written to a log: connection URLs with their passwords hidden, and texts
//! users gave with their control characters escaped.
//!
//! Logs are read by more people than the server's secrets should be (log collectors,
//! support tickets, `journalctl` for the `adm` group), and they are read on terminals:
//! a password in `--redis redis://user:PASSWORD@host` must not reach them, nor a kick
//! reason holding `ESC ]` (an OSC sequence that retitles the terminal or writes to the
//! clipboard) or a newline that forges a log line of its own.

use std::borrow::Cow;
use std::fmt::Write as _;

/// What a hidden secret is shown as.
pub const HIDDEN: &str = "***";

/// `url` with every credential in it replaced by [`HIDDEN`]: the password of its user
/// information (`redis://user:***@host`, `postgres://:***@host/db`), the values of query
/// parameters that name a password, secret or token (`?password=***`), and the
/// `password=` of a libpq key-value string (`host=db password=***`). The user name, host,
/// port and database stay, so the line still says where the server connects.
///
/// A text that is not a URL is taken as a key-value string; nothing in it but the
/// password is changed.
pub fn url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return key_values(url);
    };
    // The query starts at the first `?` or `#`; the user information ends at the last
    // `@` before it. A password may hold a raw `/` or `:`, so everything before that `@`
    // is taken as user information, and everything after its first `:` as the password.
    let query_at = rest.find(['?', '#']).unwrap_or(rest.len());
    let (before_query, query) = rest.split_at(query_at);
    let mut out = format!("{scheme}://");
    match before_query.rfind('@') {
        Some(at) => {
            let (userinfo, host) = before_query.split_at(at);
            match userinfo.split_once(':') {
                Some((user, _password)) => {
                    let _ = write!(out, "{user}:{HIDDEN}");
                }
                None => out.push_str(userinfo),
            }
            out.push_str(host);
        }
        None => out.push_str(before_query),
    }
    out.push_str(&query_params(query));
    out
}

/// Whether a parameter named `key` holds a secret.
fn secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["pass", "secret", "token", "key"]
        .iter()
        .any(|word| k.contains(word))
}

/// The query part `?a=b&password=c#frag` with secret values hidden.
fn query_params(query: &str) -> String {
    let mut out = String::with_capacity(query.len());
    let mut rest = query;
    while !rest.is_empty() {
        // Each piece runs to the next separator, which is kept.
        let end = rest[1..]
            .find(['&', '#', ';'])
            .map_or(rest.len(), |i| i + 1);
        let (piece, tail) = rest.split_at(end);
        let (sep, body) = piece.split_at(1);
        out.push_str(sep);
        match body.split_once('=') {
            Some((k, _)) if secret_key(k) => {
                let _ = write!(out, "{k}={HIDDEN}");
            }
            _ => out.push_str(body),
        }
        rest = tail;
    }
    out
}

/// A libpq key-value string (`host=db user=u password='a b'`) with secret values hidden.
fn key_values(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        out.push(c);
        if c != '=' {
            continue;
        }
        // The key is the last word before the `=` (libpq allows spaces around it).
        let key = text[..i].trim_end().rsplit(char::is_whitespace).next();
        if !key.is_some_and(secret_key) {
            continue;
        }
        // Skip the value: spaces after `=` (kept), then a quoted or a bare word.
        while let Some((_, c)) = chars.next_if(|(_, c)| *c == ' ') {
            out.push(c);
        }
        if chars.next_if(|(_, c)| *c == '\'').is_some() {
            while let Some((_, c)) = chars.next() {
                match c {
                    '\\' => {
                        chars.next();
                    }
                    '\'' => break,
                    _ => {}
                }
            }
        } else {
            while chars.next_if(|(_, c)| !c.is_whitespace()).is_some() {}
        }
        out.push_str(HIDDEN);
    }
    out
}

/// Whether `c` may change how a terminal shows what follows, or where a line ends: the
/// control characters (C0, DEL, C1: ESC, BEL, CR, LF, CSI, ...) and the bidirectional
/// formatting characters that reorder a line as it is shown (the "Trojan Source" ones).
pub fn is_unsafe(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every [unsafe](is_unsafe) character written as a visible escape
/// (`\u{1b}`), so that it can be written to a log or a terminal as it is: one line, shown
/// as it reads. Borrowed when there is nothing to escape (the common case).
pub fn controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_unsafe(c) {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_urls_are_hidden_and_the_rest_stays() {
        let cases = [
            (
                "redis://u:secret@127.0.0.1:6379/0",
                "redis://u:***@127.0.0.1:6379/0",
            ),
            ("redis://:secret@host", "redis://:***@host"),
            ("rediss://user:s3:cr@t@host:1", "rediss://user:***@host:1"),
            ("redis://host:6379", "redis://host:6379"),
            ("redis://user@host", "redis://user@host"),
            (
                "postgres://chat:pw/with/slashes@db.example:5432/chat?sslmode=require",
                "postgres://chat:***@db.example:5432/chat?sslmode=require",
            ),
            (
                "postgresql://chat@db/chat?sslmode=require&password=secret",
                "postgresql://chat@db/chat?sslmode=require&password=***",
            ),
            ("redis://h/0?token=abc#x", "redis://h/0?token=***#x"),
            (
                "host=db user=chat password=secret dbname=chat",
                "host=db user=chat password=*** dbname=chat",
            ),
            (
                "host=db password = 'se cr\\'et' dbname=chat",
                "host=db password = *** dbname=chat",
            ),
            ("", ""),
        ];
        for (given, shown) in cases {
            assert_eq!(url(given), shown, "{given}");
            for secret in ["secret", "s3:cr@t", "with/slashes", "abc", "se cr"] {
                assert!(!url(given).contains(secret), "{given}");
            }
        }
    }

    #[test]
    fn control_characters_are_escaped_and_plain_text_is_borrowed() {
        assert!(matches!(controls("plain words, ünïcode"), Cow::Borrowed(_)));
        assert_eq!(
            controls("a\u{1b}]0;owned\u{7}b\r\nc\u{9b}d\u{202e}e"),
            "a\\u{1b}]0;owned\\u{7}b\\u{d}\\u{a}c\\u{9b}d\\u{202e}e"
        );
        assert!(!controls("x\u{1b}[2J\u{0}").chars().any(is_unsafe));
    }
}
