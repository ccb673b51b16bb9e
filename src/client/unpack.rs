//! The client's reading of what arrives from the server: a datagram is one event, or a
//! `BATCH` (part 4 of the protocol) of several, handled as if they had come one by one.

use crate::protocol::{batch, code, Event};

/// The events of a datagram from the server, in order: the datagram itself, or each entry
/// of a BATCH. A datagram or entry that does not decode (a code this client does not know,
/// or malformed) is skipped, and a malformed BATCH is dropped whole, as the protocol asks.
pub fn unpack(datagram: &[u8]) -> Vec<Event<'_>> {
    if datagram.starts_with(&code::BATCH.to_be_bytes()) {
        match batch::events(datagram) {
            Ok(entries) => entries.filter_map(|e| Event::decode(e).ok()).collect(),
            Err(_) => Vec::new(),
        }
    } else {
        Event::decode(datagram).into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_its_events_in_order_and_a_bad_one_is_nothing() {
        let a = Event::UserJoins {
            title: "Pets",
            nick: "bob",
        };
        let b = Event::PublicMsg {
            title: "Pets",
            sender: "bob",
            text: "hi there",
        };
        let mut d = Vec::new();
        batch::start(&mut d);
        batch::push(&mut d, &a.to_bytes());
        batch::push(&mut d, &[0x27, 0x0f, b'?']); // code 9999: unknown, skipped
        batch::push(&mut d, &b.to_bytes());
        assert_eq!(unpack(&d), vec![a, b]);
        assert_eq!(unpack(&b.to_bytes()), vec![b]);
        d.push(0); // a length byte cut off: the whole batch goes
        assert!(unpack(&d).is_empty());
        assert!(unpack(b"\x02\x08").is_empty(), "an empty batch");
    }
}
