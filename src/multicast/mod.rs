//! Multicast channels (part 4 of the protocol): one group per channel, so an event reaches
//! all of a channel's confirmed members with one datagram however many they are.
//!
//! - [`range`]: the `--multicast` range and the stable choice of each channel's group.
//! - [`group`]: a channel's group (address, key, sequence) and who hears it; the table of
//!   a server's groups.
//! - here: the tag (HMAC-SHA256 keyed by the channel key, first 16 bytes), the server's
//!   multicast settings, and the discovery group.
//!
//! What the tag does and does not do: it stops anyone without the key from *injecting*
//! events into a channel (a forged or altered CHANNEL_DATA fails the check, a replayed one
//! fails the sequence check). It does not stop anyone from *listening*: whoever can join
//! the group on the LAN reads the channel, exactly as with the classic protocol's unicast
//! datagrams on a shared network. The key reaches clients in `MCAST_GROUP`, over the
//! unicast session.

pub mod group;
pub mod range;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub use group::{ChannelGroup, Groups, ListenerCounts};
pub use range::{GroupRange, RangeError};

use crate::config::ChannelSpec;
use crate::protocol::channel_data::{ChannelData, TAG_LEN};
use crate::state::ChannelId;

/// Bytes of a channel key.
pub const KEY_LEN: usize = 32;
/// The group a client looking for servers sends DISCOVER to, on the chat port.
pub const DISCOVERY_GROUP: Ipv4Addr = Ipv4Addr::new(239, 255, 77, 77);
/// How often an active group is probed, so its listeners can tell they still hear it.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(2);
/// How often a group with members waiting to confirm is probed: they confirm on the first
/// CHANNEL_DATA they hear, and the probe that follows MCAST_GROUP usually leaves before the
/// client has joined the group.
pub const PENDING_PROBE_INTERVAL: Duration = Duration::from_millis(250);
/// A client that has heard nothing valid on a group for this long (a few probes missed)
/// takes it as lost and asks for unicast with MCAST_LEFT.
pub const LOST_AFTER: Duration = Duration::from_secs(7);
/// Hop limit of group datagrams unless set otherwise: this LAN only.
pub const DEFAULT_TTL: u32 = 1;

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

/// The server's multicast settings (`--multicast`, `--multicast-if`, `--multicast-ttl`,
/// `--multicast-port`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MulticastConfig {
    /// The groups to hand out.
    pub range: GroupRange,
    /// The local address of the interface to send group traffic from; `None`: the address
    /// the server is bound to if it is one, else the interface the kernel routes the group
    /// to (the default route's).
    pub interface: Option<IpAddr>,
    /// Hop limit (IPv4 TTL) of group datagrams; 1 keeps them on this LAN.
    pub ttl: u32,
    /// The groups' port; `None`: the chat port + 1 (the chat port itself would be heard by
    /// the server's own socket when it and a client share a machine).
    pub port: Option<u16>,
}

impl MulticastConfig {
    /// Settings for `range` with every other setting at its default.
    pub fn new(range: GroupRange) -> Self {
        MulticastConfig {
            range,
            interface: None,
            ttl: DEFAULT_TTL,
            port: None,
        }
    }

    /// The groups' port for a server on `chat_port`.
    pub fn group_port(&self, chat_port: u16) -> u16 {
        self.port.unwrap_or(if chat_port < u16::MAX {
            chat_port + 1
        } else {
            chat_port - 1
        })
    }

    /// A group, with a fresh key, for each channel that allows multicast, channels in file
    /// order (ids are positions in `channels`).
    pub fn groups(&self, channels: &[ChannelSpec], chat_port: u16) -> Groups {
        let port = self.group_port(chat_port);
        let groups = Groups::new();
        let eligible: Vec<(usize, &ChannelSpec)> = channels
            .iter()
            .enumerate()
            .filter(|(_, c)| c.multicast)
            .collect();
        let addrs = self
            .range
            .assign(eligible.iter().map(|(_, c)| c.title.as_str()));
        for ((id, spec), ip) in eligible.into_iter().zip(addrs) {
            groups.insert(
                id as ChannelId,
                ChannelGroup::with_random_key(&spec.title, SocketAddr::new(ip, port)),
            );
        }
        groups
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::channel_data;

    #[test]
    fn tags_verify_under_their_key_only() {
        let d = channel_data::encode(3, b"\x02\x62Pets", |s| tag(&[1; 32], s));
        let parsed = channel_data::parse(&d).unwrap();
        assert!(verify(&mac(&[1; 32]), &parsed));
        assert!(!verify(&mac(&[2; 32]), &parsed));
        let mut forged = d.clone();
        forged[12] ^= 1;
        assert!(!verify(
            &mac(&[1; 32]),
            &channel_data::parse(&forged).unwrap()
        ));
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
                datagram[..2].copy_from_slice(&crate::protocol::code::CHANNEL_DATA.to_be_bytes());
                datagram[10..12].copy_from_slice(&crate::protocol::code::BATCH.to_be_bytes());
            }
            if let Ok(cd) = channel_data::parse(&datagram) {
                proptest::prop_assert_eq!(cd.signed.len() + cd.tag.len(), datagram.len());
                proptest::prop_assert!(!verify(&mac(&[7; 32]), &cd));
                if let Ok(events) = crate::protocol::batch::events(cd.inner) {
                    for e in events {
                        let _ = crate::protocol::Event::decode(e);
                    }
                }
            }
        }
    }

    #[test]
    fn channels_that_refuse_multicast_get_no_group() {
        let mut channels = crate::config::classic_channels();
        channels[1].multicast = false;
        let cfg = MulticastConfig::new("239.77.0.0/24".parse().unwrap());
        let groups = cfg.groups(&channels, 2027);
        assert!(groups.get(1).is_none());
        let all = groups.all();
        assert_eq!(all.len(), 4);
        assert!(all.iter().all(|(_, g)| g.addr.port() == 2028));
        assert_eq!(groups.get(4).unwrap().title.as_ref(), "Pets");
        assert_eq!(cfg.group_port(u16::MAX), u16::MAX - 1);
    }
}
