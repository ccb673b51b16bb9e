//! `CHANNEL_DATA` (part 4): what a server sends to a channel's multicast group: a `u64`
//! sequence, one event datagram or one BATCH, and a 16-byte tag over everything before it.
//! Here are the layout and the tag (HMAC-SHA256 keyed by the channel key, first 16 bytes),
//! which clients check and servers make.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::wire::{code, DecodeError};

/// Bytes of the tag at the end.
pub const TAG_LEN: usize = 16;
/// Bytes before the inner datagram: code and sequence.
pub const HEADER_LEN: usize = 2 + 8;

/// The parts of a CHANNEL_DATA datagram, not yet verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelData<'a> {
    /// The channel's sequence number.
    pub seq: u64,
    /// The event datagram or BATCH inside.
    pub inner: &'a [u8],
    /// Everything the tag covers.
    pub signed: &'a [u8],
    /// The tag.
    pub tag: &'a [u8],
}

/// Splits a CHANNEL_DATA datagram into its parts.
///
/// # Errors
/// [`DecodeError::Malformed`] (with code CHANNEL_DATA) when it is too short to hold a
/// sequence, a 2-byte inner code and a tag, or is not CHANNEL_DATA.
pub fn parse(datagram: &[u8]) -> Result<ChannelData<'_>, DecodeError> {
    let malformed = DecodeError::Malformed(code::CHANNEL_DATA);
    if datagram.len() < HEADER_LEN + 2 + TAG_LEN
        || datagram[..2] != code::CHANNEL_DATA.to_be_bytes()
    {
        return Err(malformed);
    }
    let (signed, tag) = datagram.split_at(datagram.len() - TAG_LEN);
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&signed[2..HEADER_LEN]);
    Ok(ChannelData {
        seq: u64::from_be_bytes(seq),
        inner: &signed[HEADER_LEN..],
        signed,
        tag,
    })
}

/// The datagram for sequence `seq` and `inner`, with the tag `tag` computes over the
/// bytes before it.
pub fn encode(seq: u64, inner: &[u8], tag: impl FnOnce(&[u8]) -> [u8; TAG_LEN]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + inner.len() + TAG_LEN);
    out.extend_from_slice(&code::CHANNEL_DATA.to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(inner);
    let t = tag(&out);
    out.extend_from_slice(&t);
    out
}

/// Bytes of a channel key.
pub const KEY_LEN: usize = 32;
/// How often an active group is probed, so its listeners can tell they still hear it.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(2);
/// A client that has heard nothing valid on a group for this long (a few probes missed)
/// takes it as lost and asks for unicast with MCAST_LEFT.
pub const LOST_AFTER: Duration = Duration::from_secs(7);

/// HMAC-SHA256 keyed with a channel key.
pub type ChannelMac = Hmac<Sha256>;

/// The tag of `signed` (everything of a CHANNEL_DATA before its tag) under `mac`.
pub fn tag_with(mac: &ChannelMac, signed: &[u8]) -> [u8; TAG_LEN] {
    let mut mac = mac.clone();
    mac.update(signed);
    let full = mac.finalize().into_bytes();
    let mut tag = [0u8; TAG_LEN];
    tag.copy_from_slice(&full[..TAG_LEN]);
    tag
}

/// The tag of `signed` under `key`.
pub fn tag(key: &[u8], signed: &[u8]) -> [u8; TAG_LEN] {
    tag_with(&mac(key), signed)
}

/// HMAC-SHA256 keyed with `key`.
pub fn mac(key: &[u8]) -> ChannelMac {
    ChannelMac::new_from_slice(key).expect("HMAC takes a key of any length")
}

/// Whether a parsed CHANNEL_DATA carries the right tag for `mac` (compared in constant
/// time). The sequence is the caller's to check.
pub fn verify(mac: &ChannelMac, data: &ChannelData<'_>) -> bool {
    let mut mac = mac.clone();
    mac.update(data.signed);
    mac.verify_truncated_left(data.tag).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Event;

    #[test]
    fn channel_data_layout() {
        let inner = Event::McastProbe { title: "Pets" }.to_bytes();
        let d = encode(7, &inner, |signed| {
            let mut t = [0u8; 16];
            t[0] = signed.len() as u8;
            t
        });
        assert_eq!(&d[..2], &code::CHANNEL_DATA.to_be_bytes());
        assert_eq!(&d[2..10], &7u64.to_be_bytes());
        let cd = parse(&d).unwrap();
        assert_eq!((cd.seq, cd.inner), (7, &inner[..]));
        assert_eq!(cd.tag[0] as usize, d.len() - TAG_LEN);
        assert!(parse(&d[..20]).is_err());
        assert_eq!(
            Event::decode(cd.inner),
            Ok(Event::McastProbe { title: "Pets" })
        );
    }

    #[test]
    fn tags_verify_under_their_key_only() {
        let d = super::encode(3, b"\x02\x62Pets", |s| tag(&[1; 32], s));
        let parsed = super::parse(&d).unwrap();
        assert!(verify(&mac(&[1; 32]), &parsed));
        assert!(!verify(&mac(&[2; 32]), &parsed));
        let mut forged = d.clone();
        forged[12] ^= 1;
        assert!(!verify(&mac(&[1; 32]), &super::parse(&forged).unwrap()));
    }

    proptest::proptest! {
        /// What a client reads from a group is anyone's bytes: parsing never panics, what
        /// parses splits back into the datagram, a BATCH inside is read without panicking,
        /// and nothing verifies without the key.
        #[test]
        fn any_bytes_on_a_group_parse_safely_and_never_verify(
            data in proptest::collection::vec(proptest::num::u8::ANY, 0..96),
            batch_inside in proptest::bool::ANY,
        ) {
            let mut datagram = data;
            if batch_inside && datagram.len() >= 12 {
                datagram[..2].copy_from_slice(&crate::code::CHANNEL_DATA.to_be_bytes());
                datagram[10..12].copy_from_slice(&crate::code::BATCH.to_be_bytes());
            }
            if let Ok(cd) = super::parse(&datagram) {
                proptest::prop_assert_eq!(cd.signed.len() + cd.tag.len(), datagram.len());
                proptest::prop_assert!(!verify(&mac(&[7; 32]), &cd));
                if let Ok(events) = crate::batch::events(cd.inner) {
                    for e in events {
                        let _ = crate::Event::decode(e);
                    }
                }
            }
        }
    }
}
