//! `BATCH` (part 4): several whole event datagrams in one, each as a big-endian `u16`
//! length and that many bytes; never nested, never empty.

use crate::wire::{code, split_header, DecodeError};

/// Bytes of the BATCH code at the start.
pub const HEADER_LEN: usize = 2;
/// Bytes of each entry's length prefix.
pub const ENTRY_OVERHEAD: usize = 2;
/// The smallest batch size a client may ask for.
pub const MIN_SIZE: usize = 512;
/// The largest batch size a client may ask for.
pub const MAX_SIZE: usize = 65000;
/// The batch size of a plain `batch` cap.
pub const DEFAULT_SIZE: usize = 1200;

/// Bytes a batch holding events of `lens` takes.
pub fn size_of(lens: impl IntoIterator<Item = usize>) -> usize {
    HEADER_LEN + lens.into_iter().map(|l| ENTRY_OVERHEAD + l).sum::<usize>()
}

/// Starts a batch in `out` (which should be empty).
pub fn start(out: &mut Vec<u8>) {
    out.extend_from_slice(&code::BATCH.to_be_bytes());
}

/// Appends `event` (a whole event datagram, at most 65,535 bytes) to the batch in `out`.
///
/// # Panics
/// If `event` is longer than a `u16` can say (no event datagram is).
pub fn push(out: &mut Vec<u8>, event: &[u8]) {
    let len = u16::try_from(event.len()).expect("an event datagram fits a u16 length");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(event);
}

/// One datagram of a [`pack`]ing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packed {
    /// The event at this index of the input, sent as it is: it had nobody to share a
    /// datagram with, or it is too large for a batch of the size asked for.
    Single(usize),
    /// A BATCH in `out[range]` holding `events` events (at least two).
    Batch {
        /// Where the BATCH datagram is in `out`.
        range: std::ops::Range<usize>,
        /// How many events it holds.
        events: usize,
    },
}

/// Packs `events` (whole event datagrams, in order) into datagrams of at most `max`
/// bytes, in one greedy pass that keeps their order: consecutive events share a BATCH
/// while it fits. An event alone in its datagram goes as it is, never as a batch of one,
/// so a client that asked for batches sees exactly what a classic client sees when
/// nothing else is waiting; an event too large for a batch of `max` bytes (or one that
/// could not be an entry: shorter than a code, or itself a BATCH) goes alone as well.
/// BATCH datagrams are appended to `out`; `emit` is called once per datagram, in order.
///
/// This is the one packing routine: the senders use it per member, and a sender to a
/// multicast group can use it per channel.
pub fn pack<'a>(
    events: impl IntoIterator<Item = &'a [u8]>,
    max: usize,
    out: &mut Vec<u8>,
    mut emit: impl FnMut(Packed),
) {
    // The open batch: where it starts in `out`, its first event's index, its count.
    let mut open: Option<(usize, usize, usize)> = None;
    let mut close = |open: &mut Option<(usize, usize, usize)>, out: &mut Vec<u8>| {
        if let Some((start, first, n)) = open.take() {
            if n == 1 {
                out.truncate(start);
                emit(Packed::Single(first));
            } else {
                emit(Packed::Batch {
                    range: start..out.len(),
                    events: n,
                });
            }
        }
    };
    for (i, event) in events.into_iter().enumerate() {
        let entry = ENTRY_OVERHEAD + event.len();
        let batchable = event.len() >= 2
            && event.len() <= usize::from(u16::MAX)
            && !event.starts_with(&code::BATCH.to_be_bytes())
            && HEADER_LEN + entry <= max;
        if !batchable {
            close(&mut open, out);
            // A batch of one, which `close` sends as the event itself.
            open = Some((out.len(), i, 1));
            close(&mut open, out);
            continue;
        }
        match &mut open {
            Some((start, _, n)) if out.len() - *start + entry <= max => {
                push(out, event);
                *n += 1;
            }
            _ => {
                close(&mut open, out);
                let start = out.len();
                self::start(out);
                push(out, event);
                open = Some((start, i, 1));
            }
        }
    }
    close(&mut open, out);
}

/// The events of a BATCH datagram, checked whole first: every entry complete and at least
/// 2 bytes (a code), none a BATCH, at least one.
///
/// # Errors
/// [`DecodeError::Malformed`] (with code BATCH) when the layout is wrong; the other errors
/// of [`split_header`] when it is not a BATCH at all.
pub fn events(datagram: &[u8]) -> Result<Events<'_>, DecodeError> {
    let malformed = DecodeError::Malformed(code::BATCH);
    let (c, mut rest) = split_header(datagram, usize::MAX)?;
    if c != code::BATCH {
        return Err(DecodeError::UnknownCode(c));
    }
    let body = rest;
    let mut n = 0usize;
    while !rest.is_empty() {
        let [hi, lo, tail @ ..] = rest else {
            return Err(malformed);
        };
        let len = usize::from(u16::from_be_bytes([*hi, *lo]));
        let (event, next) = tail.split_at_checked(len).ok_or(malformed)?;
        if len < 2 || event.starts_with(&code::BATCH.to_be_bytes()) {
            return Err(malformed);
        }
        rest = next;
        n += 1;
    }
    if n == 0 {
        return Err(malformed);
    }
    Ok(Events { rest: body })
}

/// The events of a checked batch, in order.
#[derive(Debug, Clone)]
pub struct Events<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Events<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let [hi, lo, tail @ ..] = self.rest else {
            return None;
        };
        let len = usize::from(u16::from_be_bytes([*hi, *lo]));
        let (event, next) = tail.split_at_checked(len)?;
        self.rest = next;
        Some(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Event;

    #[test]
    fn batches_pack_and_unpack_in_order() {
        let a = Event::PublicMsg {
            title: "Pets",
            sender: "ann",
            text: "hi",
        }
        .to_bytes();
        let b = Event::UserJoins {
            title: "Pets",
            nick: "bob",
        }
        .to_bytes();
        let mut d = Vec::new();
        start(&mut d);
        push(&mut d, &a);
        push(&mut d, &b);
        assert_eq!(d.len(), size_of([a.len(), b.len()]));
        assert_eq!(&d[..2], &code::BATCH.to_be_bytes());
        let got: Vec<&[u8]> = events(&d).unwrap().collect();
        assert_eq!(got, vec![&a[..], &b[..]]);
        // Neither decoder takes a batch whole: a client unpacks it first.
        assert_eq!(
            Event::decode(&d),
            Err(DecodeError::UnknownCode(code::BATCH))
        );
    }

    #[test]
    fn malformed_batches_are_refused_whole() {
        let bad = DecodeError::Malformed(code::BATCH);
        let one = |entry: &[u8]| {
            let mut d = code::BATCH.to_be_bytes().to_vec();
            d.extend_from_slice(entry);
            d
        };
        // Empty; a length past the end; a lone length byte; an entry without a code; a
        // nested batch.
        assert_eq!(events(&one(b"")).map(|_| ()), Err(bad));
        assert_eq!(events(&one(b"\x00\x09\x00\x64ab")).map(|_| ()), Err(bad));
        assert_eq!(events(&one(b"\x00")).map(|_| ()), Err(bad));
        assert_eq!(events(&one(b"\x00\x01x")).map(|_| ()), Err(bad));
        let mut inner = Vec::new();
        start(&mut inner);
        push(&mut inner, b"\x00\x0aok");
        let mut nested = code::BATCH.to_be_bytes().to_vec();
        nested.extend_from_slice(&(inner.len() as u16).to_be_bytes());
        nested.extend_from_slice(&inner);
        assert_eq!(events(&nested).map(|_| ()), Err(bad));
        assert_eq!(
            events(b"\x00\x0a").map(|_| ()),
            Err(DecodeError::UnknownCode(code::ERROR))
        );
    }

    #[test]
    fn pack_keeps_order_and_size_and_sends_lone_or_huge_events_as_they_are() {
        let events: Vec<Vec<u8>> = (0..30)
            .map(|i| {
                let text = if i == 12 {
                    "z".repeat(600)
                } else {
                    "x".repeat(i)
                };
                Event::PublicMsg {
                    title: "Pets",
                    sender: "ann",
                    text: &text,
                }
                .to_bytes()
            })
            .collect();
        let mut out = Vec::new();
        let mut got: Vec<Vec<u8>> = Vec::new();
        let mut packed = Vec::new();
        pack(events.iter().map(|e| &e[..]), 512, &mut out, |p| {
            packed.push(p)
        });
        for p in &packed {
            match p {
                Packed::Single(i) => got.push(events[*i].clone()),
                Packed::Batch { range, events: n } => {
                    let d = &out[range.clone()];
                    assert!(d.len() <= 512 && *n >= 2);
                    let inner: Vec<&[u8]> = super::events(d).unwrap().collect();
                    assert_eq!(inner.len(), *n);
                    got.extend(inner.iter().map(|e| e.to_vec()));
                }
            }
        }
        assert_eq!(got, events);
        // The 600-byte event can't share a 512-byte batch: it goes alone, as it is.
        assert!(packed.contains(&Packed::Single(12)));
        // One event alone is never wrapped.
        let mut out = Vec::new();
        let mut one = Vec::new();
        pack([&events[0][..]], 1200, &mut out, |p| one.push(p));
        assert_eq!((one, out.len()), (vec![Packed::Single(0)], 0));
    }
}
