//! Text shaping shared by both interfaces: defusing text from the network before it is
//! shown ([`sanitize`]), splitting a long message into pieces that fit a datagram,
//! splitting pasted text into lines, and wrapping a line on screen with an indent. Pure
//! functions, unit-tested here.

use std::borrow::Cow;
use std::fmt::Write as _;

use unicode_width::UnicodeWidthChar;

/// Makes text from the network safe to write to a terminal.
///
/// Other users choose these bytes, so a raw escape sequence could clear the screen, move
/// the cursor over earlier lines, retitle the window or worse. Control characters become
/// visible caret notation (ESC is `^[`, DEL is `^?`), a tab becomes a space so columns
/// stay aligned, and C1 controls, line separators and bidirectional overrides (which can
/// make text read differently from what was sent) become `<U+XXXX>`. Everything else,
/// accented letters and emoji included, passes unchanged.
pub fn sanitize(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\t' => out.push(' '),
            '\u{0}'..='\u{1f}' => {
                out.push('^');
                out.push(char::from(c as u8 + 0x40));
            }
            '\u{7f}' => out.push_str("^?"),
            c if needs_escape(c) => {
                let _ = write!(out, "<U+{:04X}>", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}'
        | '\u{7f}'..='\u{9f}'
        | '\u{200e}' | '\u{200f}'
        | '\u{2028}'..='\u{202e}'
        | '\u{2066}'..='\u{2069}'
    )
}

/// The lines of what was typed or pasted: split at line ends (`\n`, `\r\n`, or a lone `\r`,
/// which a terminal sends for Enter), without a trailing empty line.
pub(crate) fn lines(text: &str) -> Vec<&str> {
    let mut out: Vec<&str> = text
        .split('\n')
        .flat_map(|l| l.strip_suffix('\r').unwrap_or(l).split('\r'))
        .collect();
    while out.len() > 1 && out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
    out
}

/// Splits `text` into pieces of at most `max` bytes, at a space where it can (the space
/// is dropped), inside a word only when one word alone is too long (never inside a
/// character). Text that fits comes back whole.
pub(crate) fn split_message(text: &str, max: usize) -> Vec<&str> {
    let max = max.max(4);
    let mut out = Vec::new();
    let mut rest = text;
    while rest.len() > max {
        let mut cut = max;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let space = if rest.as_bytes()[cut] == b' ' {
            Some(cut)
        } else {
            rest[..cut].rfind(' ')
        };
        let (piece, next) = match space {
            // A break at a space: the space goes, the words stay whole.
            Some(space) if space > 0 => (&rest[..space], &rest[space + 1..]),
            _ => rest.split_at(cut),
        };
        out.push(piece);
        rest = next;
    }
    if !rest.is_empty() || out.is_empty() {
        out.push(rest);
    }
    out
}

/// Wraps `line` to `width` columns: words are kept whole where they fit, and every
/// continuation line starts with `indent` spaces so a long message reads as one block.
pub(crate) fn wrap(line: &str, width: usize, indent: usize) -> Vec<String> {
    let width = width.max(indent + 8);
    let mut out = Vec::new();
    let mut current = String::new();
    let mut cols = 0usize;
    let mut limit = width;
    for word in split_keep_spaces(line) {
        let w: usize = word.chars().map(|c| c.width().unwrap_or(0)).sum();
        if cols + w > limit && cols > 0 {
            if word.trim().is_empty() {
                // Spaces at a break vanish.
                continue;
            }
            out.push(std::mem::take(&mut current).trim_end().to_string());
            current.push_str(&" ".repeat(indent));
            cols = indent;
            limit = width;
        }
        if cols + w <= limit {
            current.push_str(word);
            cols += w;
            continue;
        }
        // A word longer than a whole line: cut it by columns.
        for c in word.chars() {
            let cw = c.width().unwrap_or(0);
            if cols + cw > limit {
                out.push(std::mem::take(&mut current));
                current.push_str(&" ".repeat(indent));
                cols = indent;
            }
            current.push(c);
            cols += cw;
        }
    }
    out.push(current);
    out
}

/// Splits into runs of spaces and runs of anything else, keeping both.
fn split_keep_spaces(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut in_space = None;
    for (i, c) in s.char_indices() {
        let space = c == ' ';
        if in_space.is_some_and(|was| was != space) {
            out.push(&s[start..i]);
            start = i;
        }
        in_space = Some(space);
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn splitting_any_text_fits_and_loses_only_break_spaces(
            text in "[a-zé🐈 ]{0,200}",
            max in 4usize..40,
        ) {
            let pieces = split_message(&text, max);
            for p in &pieces {
                prop_assert!(p.len() <= max, "{p:?}");
            }
            let kept: String = pieces.concat().chars().filter(|c| *c != ' ').collect();
            let all: String = text.chars().filter(|c| *c != ' ').collect();
            prop_assert_eq!(kept, all);
        }

        #[test]
        fn wrapping_any_text_fits_the_width(text in "[a-z🐈 ]{0,200}", width in 1usize..60) {
            for row in wrap(&text, width, 4) {
                prop_assert!(unicode_width::UnicodeWidthStr::width(row.as_str()) <= width.max(12));
            }
        }
    }

    #[test]
    fn sanitize_leaves_plain_text_borrowed() {
        assert!(matches!(sanitize("héllo wörld 🐈"), Cow::Borrowed(_)));
    }

    #[test]
    fn sanitize_defuses_escape_sequences_and_controls() {
        assert_eq!(
            sanitize("\u{1b}[2J\u{1b}]0;pwned\u{7}"),
            "^[[2J^[]0;pwned^G"
        );
        assert_eq!(sanitize("a\rb\nc\u{8}\u{7f}\0"), "a^Mb^Jc^H^?^@");
        assert_eq!(sanitize("a\tb"), "a b");
        assert_eq!(sanitize("\u{9b}31m"), "<U+009B>31m");
        assert_eq!(sanitize("abc\u{202e}def"), "abc<U+202E>def");
    }

    #[test]
    fn lines_split_at_any_line_end() {
        assert_eq!(lines("a\nb\r\nc\rd\n"), ["a", "b", "c", "d"]);
        assert_eq!(lines("one"), ["one"]);
        assert_eq!(lines(""), [""]);
        assert_eq!(lines("a\n\nb"), ["a", "", "b"]);
    }

    #[test]
    fn short_messages_stay_whole() {
        assert_eq!(split_message("hello there", 100), ["hello there"]);
        assert_eq!(split_message("", 100), [""]);
    }

    #[test]
    fn long_messages_split_at_spaces_within_the_limit() {
        let text = "aaaa bbbb cccc dddd";
        assert_eq!(split_message(text, 9), ["aaaa bbbb", "cccc dddd"]);
        assert_eq!(split_message(text, 10), ["aaaa bbbb", "cccc dddd"]);
        assert_eq!(split_message(text, 14), ["aaaa bbbb cccc", "dddd"]);
        let long = "word ".repeat(500);
        for piece in split_message(&long, 1000) {
            assert!(piece.len() <= 1000);
            assert!(!piece.starts_with(' '), "{piece:?}");
            assert!(piece.split(' ').all(|w| w.is_empty() || w == "word"));
        }
    }

    #[test]
    fn one_huge_word_is_cut_at_character_boundaries() {
        let word = "é".repeat(10); // 20 bytes
        let pieces = split_message(&word, 7);
        assert_eq!(pieces.concat(), word);
        assert!(pieces.iter().all(|p| p.len() <= 7));
    }

    #[test]
    fn wrapping_keeps_words_and_indents() {
        assert_eq!(
            wrap("bob [Pets]: the quick brown fox jumps", 20, 4),
            ["bob [Pets]: the", "    quick brown fox", "    jumps"]
        );
        assert_eq!(wrap("short", 20, 4), ["short"]);
        let cut = wrap(&"x".repeat(30), 12, 2);
        assert_eq!(cut[0], "x".repeat(12));
        assert!(cut[1..]
            .iter()
            .all(|l| l.starts_with("  ") && l.len() <= 12));
    }
}
