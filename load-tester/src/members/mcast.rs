//! Multicast members (`--multicast`): each one that asked for the cap opens a group socket
//! when the server tells it its channel's group (MCAST_GROUP), confirms with MCAST_JOINED
//! on the first CHANNEL_DATA that checks out, and from then on counts the channel's
//! events from the group exactly as unicast ones are counted.
//!
//! A member keeps one group socket: the one of the channel it joined last (a sweep moves
//! members to a new channel per step), so sockets stay at two per member.
//!
//! The receivers check the tag of every CHANNEL_DATA until the member has confirmed, then
//! of one in [`CHECK_EVERY`] (by sequence number), and the sequence of every one. A real
//! client checks every tag; here the receivers are the measuring instrument, and an HMAC
//! per delivery would make them, not the server, the bottleneck of the measurement. A
//! sequence more than [`MAX_SEQ_JUMP`] above the last one is always checked, so one
//! datagram that is not the server's can't make the rest look old. The raw multicast
//! blaster's datagrams (sender `~raw`) are counted without checks, as the raw unicast
//! blaster's are.
//!
//! When the server changes a channel's key (a member left), MCAST_GROUP names the new key
//! and its first sequence: the old key stays good below it, as for the real client.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use proto::channel_data::{mac, verify, ChannelMac};
use proto::{batch, channel_data, code, Event, Request};
use socket2::{Domain, Protocol, Socket, Type};
use udp::{RecvBatch, MAX_BATCH};

use super::count::{one_event, Tally, Via};
use super::shared::{GroupInfo, Shared, CONFIRMED};
use crate::hist::Hists;
use crate::sys::now_ns;
use crate::text::{public_fields, RAW_SENDER};

/// One CHANNEL_DATA in this many (by sequence number) has its tag checked once the member
/// has confirmed; see the module docs.
const CHECK_EVERY: u64 = 32;
/// A sequence further than this above the last one is checked whatever [`CHECK_EVERY`]
/// says (the client's bound, `chat-client`'s `MAX_SEQ_JUMP`).
const MAX_SEQ_JUMP: u64 = 1 << 16;

/// A member's group socket and what it has heard there.
struct GroupSock {
    sock: UdpSocket,
    title: String,
    key: Vec<u8>,
    mac: ChannelMac,
    /// The first sequence `mac` seals.
    from: u64,
    /// The key before the last change, and the sequence it stopped at.
    old: Option<(ChannelMac, u64)>,
    last: u64,
    confirmed: bool,
}

/// The group sockets of the members one receiver thread reads, by local member index.
pub(super) struct GroupSocks {
    /// Members in the process: group socket of member `i` is polled as token `n + i`.
    n: usize,
    rcvbuf: usize,
    socks: HashMap<usize, GroupSock>,
    /// One `recvmmsg` takes everything queued on a socket: a socket that returns fewer than
    /// a full batch is empty, so draining it costs one system call, not a read and a
    /// `WouldBlock` (the receivers are the instrument; see the module docs).
    recv: RecvBatch,
}

/// A socket bound to `group` that joined it on loopback (the load tester's world).
fn open(group: SocketAddr, rcvbuf: usize) -> io::Result<UdpSocket> {
    let SocketAddr::V4(g) = group else {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "the load tester joins IPv4 groups on loopback only",
        ));
    };
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    s.set_nonblocking(true)?;
    if rcvbuf > 0 {
        let _ = s.set_recv_buffer_size(rcvbuf);
    }
    s.bind(&group.into())?;
    s.join_multicast_v4(g.ip(), &Ipv4Addr::LOCALHOST)?;
    Ok(s.into())
}

impl GroupSocks {
    /// Group sockets for a process of `n` members, reading datagrams of up to `largest`
    /// bytes.
    pub(super) fn new(n: usize, rcvbuf: usize, largest: usize) -> Self {
        GroupSocks {
            n,
            rcvbuf,
            socks: HashMap::new(),
            recv: RecvBatch::new(largest.max(2048) + 1),
        }
    }

    /// The member whose group socket `token` is, if it is one.
    pub(super) fn member_of(&self, token: Token) -> Option<usize> {
        token.0.checked_sub(self.n)
    }

    /// MCAST_GROUP for member `i`: opens (or keeps) its group socket and registers it.
    pub(super) fn told(
        &mut self,
        shared: &Shared,
        registry: &Registry,
        i: usize,
        event: &Event<'_>,
    ) {
        let Event::McastGroup {
            title,
            group,
            port,
            key,
            from,
        } = event
        else {
            return;
        };
        use base64::Engine as _;
        let (Ok(ip), Ok(key)) = (
            group.parse::<std::net::IpAddr>(),
            base64::engine::general_purpose::STANDARD.decode(key),
        ) else {
            shared.counters.garbage.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let addr = SocketAddr::new(ip, *port);
        if let Ok(mut g) = shared.groups.lock() {
            g.entry(title.to_lowercase()).or_insert_with(|| GroupInfo {
                addr,
                key: key.clone(),
            });
        }
        if let Some(g) = self.socks.get_mut(&i) {
            if g.sock.local_addr().ok() == Some(addr) && g.title == *title {
                if g.key != key {
                    // A new key from `from` on: confirm again under it (the server sends
                    // by unicast too until then).
                    let old = std::mem::replace(&mut g.mac, mac(&key));
                    g.old = Some((old, *from));
                    g.key = key;
                    g.from = *from;
                    g.last = g.last.min(from.saturating_sub(1));
                    g.confirmed = false;
                }
                return;
            }
        }
        if let Some(old) = self.socks.remove(&i) {
            let _ = registry.deregister(&mut SourceFd(&old.sock.as_raw_fd()));
        }
        let token = Token(self.n + i);
        let opened = open(addr, self.rcvbuf).and_then(|sock| {
            registry.register(&mut SourceFd(&sock.as_raw_fd()), token, Interest::READABLE)?;
            Ok(sock)
        });
        let Ok(sock) = opened else {
            shared
                .counters
                .group
                .group_errors
                .fetch_add(1, Ordering::Relaxed);
            return;
        };
        self.socks.insert(
            i,
            GroupSock {
                sock,
                title: title.to_string(),
                mac: mac(&key),
                key,
                from: *from,
                old: None,
                last: from.saturating_sub(1),
                confirmed: false,
            },
        );
    }

    /// Reads member `i`'s group socket until it is empty.
    pub(super) fn read(&mut self, shared: &Shared, i: usize, tally: &mut Tally, hists: &mut Hists) {
        let Some(g) = self.socks.get_mut(&i) else {
            return;
        };
        loop {
            let n = match self.recv.recv(&g.sock) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // Empty (WouldBlock), or an error that reading again won't cure.
                Err(_) => break,
            };
            for (_, datagram) in self.recv.iter() {
                g.one(shared, i, datagram, tally, hists);
            }
            if n < MAX_BATCH {
                break;
            }
        }
    }
}

impl GroupSock {
    /// One datagram heard on the group socket of member `i`.
    fn one(
        &mut self,
        shared: &Shared,
        i: usize,
        datagram: &[u8],
        tally: &mut Tally,
        hists: &mut Hists,
    ) {
        let c = &shared.counters;
        let Ok(data) = channel_data::parse(datagram) else {
            c.garbage.fetch_add(1, Ordering::Relaxed);
            return;
        };
        // One event, or a BATCH of them: the first decides whether it is the raw
        // blaster's (no checks) or the server's (checked), without allocating.
        let batch = if data.inner.starts_with(&code::BATCH.to_be_bytes()) {
            match batch::events(data.inner) {
                Ok(e) => Some(e),
                Err(_) => {
                    c.garbage.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        } else {
            None
        };
        let mut rest = batch.clone().into_iter().flatten();
        let first_bytes = match &batch {
            Some(_) => rest.next().unwrap_or_default(),
            None => data.inner,
        };
        if public_fields(first_bytes).is_some_and(|(_, sender, _)| sender == RAW_SENDER.as_bytes())
        {
            tally.raw += 1 + rest.count() as u64;
            return;
        }
        if data.seq <= self.last {
            c.group.old_sequence.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let check = !self.confirmed
            || data.seq % CHECK_EVERY == 0
            || data.seq - self.last > MAX_SEQ_JUMP
            || data.seq < self.from;
        if check && !verify(&self.mac, &data) {
            // Below the new key's first sequence, the old key's tag is good.
            let old = self
                .old
                .as_ref()
                .is_some_and(|(m, below)| data.seq < *below && verify(m, &data));
            if !old {
                c.group.bad_tag.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        self.last = data.seq;
        c.group.group_datagrams.fetch_add(1, Ordering::Relaxed);
        if !self.confirmed && data.seq >= self.from {
            self.confirmed = true;
            let joined = Request::McastJoined { title: &self.title }.to_bytes();
            let _ = shared.send(i, &joined);
            shared.status[i].fetch_or(CONFIRMED, Ordering::Relaxed);
        }
        // Counted as a unicast datagram is: one clock reading for all its events, and
        // one datagram if it carried deliveries.
        let (now, before) = (now_ns(), tally.public);
        one_event(shared, i, first_bytes, now, tally, hists, Via::Group);
        for e in rest {
            one_event(shared, i, e, now, tally, hists, Via::Group);
        }
        if tally.public > before {
            tally.public_datagrams += 1;
        }
    }
}
