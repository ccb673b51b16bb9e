//! Multicast channels (part 4 of the protocol): one group per channel, so an event reaches
//! all of a channel's confirmed members with one datagram however many they are.
//!
//! - [`range`]: the `--multicast` range and the stable choice of each channel's group.
//! - [`group`]: a channel's group (address, key, sequence) and who hears it; the table of
//!   a server's groups.
//! - here: the server's multicast settings. The CHANNEL_DATA layout and its tag are
//!   `proto::channel_data`, which clients share.
//!
//! What the tag does and does not do: it stops anyone without the key from *injecting*
//! events into a channel (a forged or altered CHANNEL_DATA fails the check, a replayed one
//! fails the sequence check). It does not stop anyone from *listening*: whoever can join
//! the group on the LAN reads the channel, exactly as with the classic protocol's unicast
//! datagrams on a shared network. The key reaches clients in `MCAST_GROUP`, over the
//! unicast session, and changes when a member that knew it leaves (`group`, new keys), so
//! a member that is gone can no longer inject.

pub(crate) mod group;
pub(crate) mod range;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

pub use group::{Announcement, ChannelGroup, Groups, ListenerCounts, REKEY_EVERY};
pub use range::{GroupRange, RangeError};

use crate::config::ChannelSpec;
use crate::state::ChannelId;

/// How often a group with members waiting to confirm is probed: they confirm on the first
/// CHANNEL_DATA they hear, and the probe that follows MCAST_GROUP usually leaves before the
/// client has joined the group.
pub const PENDING_PROBE_INTERVAL: Duration = Duration::from_millis(250);
/// Hop limit of group datagrams unless set otherwise: this LAN only.
pub const DEFAULT_TTL: u32 = 1;

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
