//! The texts the load tester publishes and reads back: each carries its send time (and in
//! a fan-out run its publisher), so that whoever receives it can take the latency, and the
//! short path over a PUBLIC_MSG's bytes that the receivers use to find them.

use proto::code;

/// Sender nickname the raw blasters put in their datagrams, so receivers count them apart.
pub(crate) const RAW_SENDER: &str = "~raw";

/// The text of a fan-out message: `seq intended_ns publisher` padded with dots to `size`
/// bytes.
pub(crate) fn message_text(seq: u64, intended_ns: u64, publisher: usize, size: usize) -> String {
    let mut s = format!("{seq} {intended_ns} {publisher} ");
    while s.len() < size {
        s.push('.');
    }
    s
}

/// The text of a soak or steady-user message: `seq sent_ns`, no padding.
pub(crate) fn stamp(seq: u64, sent_ns: u64) -> String {
    format!("{seq} {sent_ns}")
}

/// The send time written in any of these texts (its second field).
pub(crate) fn sent_ns(text: &str) -> Option<u64> {
    text.split(' ').nth(1)?.parse().ok()
}

/// The send time and the publisher's global index in a fan-out message's bytes, without
/// decoding them as UTF-8 first.
pub(crate) fn sent_ns_and_publisher(text: &[u8]) -> Option<(u64, u32)> {
    let mut f = text.split(|&b| b == b' ').skip(1);
    let sent = f.next().and_then(number)?;
    let publisher = u32::try_from(f.next().and_then(number)?).ok()?;
    Some((sent, publisher))
}

/// The send time in a fan-out message's bytes.
pub(crate) fn sent_ns_of(text: &[u8]) -> Option<u64> {
    text.split(|&b| b == b' ').nth(1).and_then(number)
}

/// The title, sender and text of a PUBLIC_MSG datagram (`title sender text`), as bytes.
pub(crate) fn public_fields(d: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let rest = d.strip_prefix(&code::PUBLIC_MSG.to_be_bytes())?;
    let title_end = rest.iter().position(|&b| b == b' ')?;
    let (title, rest) = (&rest[..title_end], &rest[title_end + 1..]);
    let sender_end = rest.iter().position(|&b| b == b' ')?;
    Some((title, &rest[..sender_end], &rest[sender_end + 1..]))
}

/// A decimal number of ASCII digits (the fields of the load tester's texts).
fn number(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + u64::from(b - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::Event;

    #[test]
    fn message_text_round_trips() {
        let t = message_text(7, 123_456_789, 3, 64);
        assert_eq!(t.len(), 64);
        assert_eq!(sent_ns_and_publisher(t.as_bytes()), Some((123_456_789, 3)));
        assert_eq!(sent_ns(&t), Some(123_456_789));
        assert_eq!(sent_ns_of(t.as_bytes()), Some(123_456_789));
        let d = Event::PublicMsg {
            title: "lt0",
            sender: "ann",
            text: &t,
        }
        .to_bytes();
        let (title, sender, text) = public_fields(&d).unwrap();
        assert_eq!(
            (title, sender, text),
            (&b"lt0"[..], &b"ann"[..], t.as_bytes())
        );
        assert_eq!(number(b"123456789"), Some(123_456_789));
        assert_eq!(number(b"12a"), None);
        assert_eq!(number(b""), None);
        assert_eq!(sent_ns_and_publisher(b"garbage"), None);
        assert_eq!(sent_ns(&stamp(7, 123)), Some(123));
        assert_eq!(sent_ns("x"), None);
    }
}
