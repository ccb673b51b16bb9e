//! Fuzz target for the datagram decoders: arbitrary bytes never make `Request::decode` or
//! `Event::decode` panic, every error agrees with the input, and whatever decodes
//! re-encodes to a datagram that decodes to the same value under the same size limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::{DecodeError, Event, Request, DEFAULT_MAX_DATAGRAM, MAX_UDP_PAYLOAD};

/// Limits around the interesting edges: below the header, at it, small, the server's
/// default and the UDP maximum. Inputs are short, so the small ones are where `TooLong`
/// and a re-encoding that grows past the limit can show.
const LIMITS: [usize; 7] = [0, 1, 2, 3, 16, DEFAULT_MAX_DATAGRAM, MAX_UDP_PAYLOAD];

fuzz_target!(|data: &[u8]| {
    for max in LIMITS {
        match Request::decode(data, max) {
            Ok(req) => {
                assert!(
                    data.len() <= max,
                    "{} bytes accepted under {max}",
                    data.len()
                );
                let again = req.to_bytes();
                assert_eq!(
                    Request::decode(&again, max),
                    Ok(req),
                    "re-encoded {again:?} of {data:?} under {max}"
                );
            }
            Err(DecodeError::TooShort) => assert!(data.len() < 2),
            Err(DecodeError::TooLong { len, max: limit }) => {
                assert_eq!((len, limit), (data.len(), max));
                assert!(len > max);
            }
            Err(DecodeError::UnknownCode(code))
            | Err(DecodeError::InvalidText(code))
            | Err(DecodeError::Malformed(code)) => {
                assert_eq!(code, u16::from_be_bytes([data[0], data[1]]));
            }
        }
    }
    if let Ok(event) = Event::decode(data) {
        let again = event.to_bytes();
        assert_eq!(
            Event::decode(&again),
            Ok(event),
            "re-encoded {again:?} of {data:?}"
        );
    }
});
