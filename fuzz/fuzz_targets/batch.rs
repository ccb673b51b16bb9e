//! Fuzz target for BATCH (part 4): the client's reading of a datagram
//! (`client::net::unpack`) and the layout check under it (`protocol::batch::events`)
//! never panic on arbitrary bytes; a batch they accept is exactly its entries re-packed;
//! and whatever events the server packs (`protocol::batch::pack`, any size limit) unpack to
//! the same events, in order, in datagrams within the limit.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use udpchat_client::net::unpack;
use proto::{batch, code, Event};

/// Events for the packing half: short ones, so that many fit a batch.
#[derive(Arbitrary, Debug)]
struct Packing {
    max: u16,
    events: Vec<Vec<u8>>,
}

fuzz_target!(|data: &[u8]| {
    // The client's reading: what it returns is the datagram itself or a batch's entries,
    // and whatever of that decodes encodes back to the same event.
    for entry in unpack(data) {
        if let Ok(event) = Event::decode(entry) {
            assert_eq!(Event::decode(&event.to_bytes()), Ok(event));
        }
    }
    if let Ok(entries) = batch::events(data) {
        let entries: Vec<&[u8]> = entries.collect();
        assert!(!entries.is_empty(), "an empty batch accepted");
        let mut again = Vec::new();
        batch::start(&mut again);
        for e in &entries {
            assert!(e.len() >= 2, "an entry without a code");
            assert!(!e.starts_with(&code::BATCH.to_be_bytes()), "a nested batch");
            batch::push(&mut again, e);
        }
        assert_eq!(again, data, "not exactly its entries");
        assert_eq!(unpack(data), entries, "the client reads other entries");
    }

    // The server's packing, with the same bytes read as events and a size limit.
    let Ok(p) = Packing::arbitrary(&mut Unstructured::new(data)) else {
        return;
    };
    let max = usize::from(p.max);
    let mut out = Vec::new();
    let mut got: Vec<Vec<u8>> = Vec::new();
    let mut spans = Vec::new();
    batch::pack(p.events.iter().map(|e| &e[..]), max, &mut out, |d| spans.push(d));
    for d in spans {
        match d {
            batch::Packed::Single(i) => got.push(p.events[i].clone()),
            batch::Packed::Batch { range, events } => {
                let bytes = &out[range];
                assert!(bytes.len() <= max, "{} bytes over {max}", bytes.len());
                let inner: Vec<&[u8]> = batch::events(bytes).expect("own batch").collect();
                assert!(events >= 2 && inner.len() == events);
                got.extend(inner.iter().map(|e| e.to_vec()));
            }
        }
    }
    assert_eq!(got, p.events, "packing lost or reordered events");
});
