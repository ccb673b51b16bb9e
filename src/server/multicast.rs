//! The server's multicast sockets and its prober thread.
//!
//! - The *group socket* sends every CHANNEL_DATA (the sender pool holds clones of it). It
//!   is not the chat socket: it carries the interface (`--multicast-if`) and hop limit
//!   (`--multicast-ttl`) of group traffic, loops group datagrams back to clients on the
//!   same machine, and is IPv6 when the range is, whatever the chat socket is.
//! - *Discovery*: a server bound to a wildcard address (the default, `0.0.0.0`) hears
//!   broadcast DISCOVERs on its chat socket anyway, and that socket joins the discovery
//!   group 239.255.77.77 on every interface. A server bound to one address hears neither
//!   there, so a second socket bound to the discovery group on the chat port joins it on
//!   that address's interface and feeds what it hears to the workers like the chat
//!   socket. Either way the answer leaves from the chat socket: from the address and port
//!   to log in on.
//! - The *prober* sends MCAST_PROBE to every active group every
//!   [`PROBE_INTERVAL`](proto::channel_data::PROBE_INTERVAL), and every
//!   [`PENDING_PROBE_INTERVAL`](crate::multicast::PENDING_PROBE_INTERVAL) while somebody
//!   waits to confirm; it forgets pending members that never confirmed. Probes go through
//!   the sender pool under the channel's key like any other group datagram, so their
//!   sequence numbers fall in line. It also makes the channel key rotations that were
//!   batched (at most one a second per channel, `multicast::group`), as it holds the clock.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use super::send::SenderPool;
use crate::multicast::{Groups, MulticastConfig, PENDING_PROBE_INTERVAL};
use crate::outbox::Fanout;
use crate::state::ChannelId;
use proto::channel_data::PROBE_INTERVAL;
use proto::Event;
use proto::DISCOVERY_GROUP;
use udp::{interfaces, Interface};

/// How often the prober looks at the groups.
const PROBER_TICK: Duration = Duration::from_millis(100);

/// The interface index of local address `addr` (0 if it is not one).
fn index_of(addr: IpAddr, all: &[Interface]) -> u32 {
    all.iter().find(|i| i.addr == addr).map_or(0, |i| i.index)
}

/// The socket group traffic leaves from; see the module docs. `bound` is the chat socket's
/// address: when `--multicast-if` is not given and the server is bound to one address of
/// the range's family, that address's interface is used.
///
/// # Errors
/// The socket can't be made, bound, or given the interface (not a local address).
pub(crate) fn group_socket(
    cfg: &MulticastConfig,
    bound: SocketAddr,
    sndbuf: usize,
) -> io::Result<Socket> {
    let v6 = cfg.range.is_ipv6();
    let socket = Socket::new(
        if v6 { Domain::IPV6 } else { Domain::IPV4 },
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    let _ = socket.set_send_buffer_size(sndbuf);
    let interface = cfg.interface.or_else(|| {
        let ip = bound.ip();
        (!ip.is_unspecified() && ip.is_ipv6() == v6).then_some(ip)
    });
    if v6 {
        let index = match interface {
            Some(ip) => {
                let all = interfaces()?;
                // An IPv4 address names its interface too.
                let index = index_of(ip, &all);
                if index == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::AddrNotAvailable,
                        format!("{ip} is not an address of this machine"),
                    ));
                }
                index
            }
            None => 0,
        };
        socket.bind(&SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)).into())?;
        if index != 0 {
            socket.set_multicast_if_v6(index)?;
        }
        socket.set_multicast_hops_v6(cfg.ttl)?;
        socket.set_multicast_loop_v6(true)?;
    } else {
        let local = match interface {
            Some(IpAddr::V4(a)) => a,
            Some(IpAddr::V6(a)) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("IPv4 groups need an IPv4 interface address, not {a}"),
                ))
            }
            None => Ipv4Addr::UNSPECIFIED,
        };
        // Bound to the interface's address, so group datagrams carry it as their source.
        socket.bind(&SocketAddr::from((local, 0)).into())?;
        if !local.is_unspecified() {
            socket.set_multicast_if_v4(&local)?;
        }
        socket.set_multicast_ttl_v4(cfg.ttl)?;
        socket.set_multicast_loop_v4(true)?;
    }
    Ok(socket)
}

/// Makes the server hear DISCOVER on the discovery group (module docs). Returns the extra
/// socket to read when the chat socket can't hear it itself. Failures to join on one
/// interface are logged and skipped: discovery is a convenience.
///
/// # Errors
/// The extra socket can't be made or bound (another program holds the port on the group
/// without sharing it).
pub(crate) fn discovery_socket(chat: &Socket, bound: SocketAddr) -> io::Result<Option<Socket>> {
    let all = interfaces().unwrap_or_default();
    let v4_up: Vec<Ipv4Addr> = all
        .iter()
        .filter(|i| i.up)
        .filter_map(|i| match i.addr {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        })
        .collect();
    if bound.ip().is_unspecified() {
        for local in &v4_up {
            if let Err(e) = chat.join_multicast_v4(&DISCOVERY_GROUP, local) {
                tracing::debug!(%local, error = %e, "cannot join the discovery group here");
            }
        }
        return Ok(None);
    }
    let IpAddr::V4(local) = bound.ip() else {
        // A server bound to one IPv6 address: DISCOVER is IPv4 broadcast and multicast.
        return Ok(None);
    };
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    // Several servers of one machine, each bound to its own address, share the group.
    socket.set_reuse_address(true)?;
    socket.set_read_timeout(Some(Duration::from_millis(100)))?;
    socket.bind(&SocketAddr::from((DISCOVERY_GROUP, bound.port())).into())?;
    socket.join_multicast_v4(&DISCOVERY_GROUP, &local)?;
    Ok(Some(socket))
}

/// The prober's loop (module docs); runs until `stop` is set.
pub(crate) fn run_prober(groups: Arc<Groups>, senders: SenderPool, stop: Arc<AtomicBool>) {
    let mut last: HashMap<ChannelId, Instant> = HashMap::new();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(PROBER_TICK);
        let now = Instant::now();
        for (id, g) in groups.all() {
            // A new key batched since the last one (`multicast::group`, new keys).
            if let Some(a) = g.tick(now).filter(|a| !a.members.is_empty()) {
                if !senders.dispatch(Fanout::announcement(id, a)) {
                    return;
                }
                // Probed at once below: the members put back to pending confirm on it.
                last.remove(&id);
            }
            let waiting = g.expire_pending(now);
            if !g.active() {
                continue;
            }
            let every = if waiting {
                PENDING_PROBE_INTERVAL
            } else {
                PROBE_INTERVAL
            };
            if last
                .get(&id)
                .is_some_and(|t| now.saturating_duration_since(*t) < every)
            {
                continue;
            }
            last.insert(id, now);
            let probe = Event::McastProbe { title: &g.title }.to_bytes();
            let fanout = Fanout {
                payload: probe.into(),
                members: Arc::from([]),
                key: id,
                group: Some(g),
            };
            if !senders.dispatch(fanout) {
                return;
            }
        }
    }
}
