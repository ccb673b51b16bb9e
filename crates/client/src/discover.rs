//! Finding servers on the local network without being told where (`chat-client
//! --discover`): `DISCOVER` to the broadcast addresses and to the discovery group
//! 239.255.77.77 on the chat port, out of every interface that is up, and whoever answers
//! `SERVER_HERE` is a server (its address is where the answer came from, its port what
//! the answer says).
//!
//! Nothing proves an answer comes from a real server: anyone on the LAN can answer, as
//! anyone on the LAN can read the classic protocol's traffic. A password login (OPAQUE)
//! still fails against an impostor, who learns nothing from it.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use socket2::SockRef;

use proto::DISCOVERY_GROUP;
use proto::{Event, Request};
use udp::interfaces;

/// Rounds of DISCOVER sent, spread over the wait (UDP may lose one).
const ROUNDS: u32 = 3;

/// A server that answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Where to log in: the answer's source address and the port it names.
    pub addr: SocketAddr,
    /// The name it gives.
    pub name: String,
    /// Users logged in there.
    pub users: u64,
}

/// Asks for servers on `port` and collects the answers for up to `wait`; with `first`,
/// returns as soon as one answers. Each server is listed once per address it answered
/// from, in the order the answers came.
///
/// # Errors
/// No UDP socket could be opened. (A DISCOVER that can't be sent one way, say for want
/// of a route for broadcasts, is skipped.)
pub fn discover(port: u16, wait: Duration, first: bool) -> io::Result<Vec<Found>> {
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
    socket.set_broadcast(true)?;
    let sock = SockRef::from(&socket);
    sock.set_multicast_loop_v4(true)?;
    let locals: Vec<(Ipv4Addr, Option<Ipv4Addr>)> = interfaces()
        .unwrap_or_default()
        .into_iter()
        .filter(|i| i.up)
        .filter_map(|i| match i.addr {
            IpAddr::V4(a) => Some((a, i.broadcast)),
            IpAddr::V6(_) => None,
        })
        .collect();
    let ask = Request::Discover.to_bytes();
    let mut found: Vec<Found> = Vec::new();
    let start = Instant::now();
    let mut buf = [0u8; 2048];
    for round in 0..ROUNDS {
        let _ = socket.send_to(&ask, (Ipv4Addr::BROADCAST, port));
        for (local, broadcast) in &locals {
            if let Some(b) = broadcast {
                let _ = socket.send_to(&ask, (*b, port));
            }
            if sock.set_multicast_if_v4(local).is_ok() {
                let _ = socket.send_to(&ask, (DISCOVERY_GROUP, port));
            }
        }
        let until = start + wait * (round + 1) / ROUNDS;
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            socket.set_read_timeout(Some(left.max(Duration::from_millis(1))))?;
            let Ok((n, from)) = socket.recv_from(&mut buf) else {
                break;
            };
            let Ok(Event::ServerHere { port, name, users }) = Event::decode(&buf[..n]) else {
                continue;
            };
            let addr = SocketAddr::new(from.ip(), port);
            if !found.iter().any(|f| f.addr == addr) {
                found.push(Found {
                    addr,
                    name: name.to_string(),
                    users,
                });
                if first {
                    return Ok(found);
                }
            }
        }
    }
    Ok(found)
}
