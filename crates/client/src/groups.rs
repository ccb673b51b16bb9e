//! The client's multicast sockets (part 4): one socket per channel group, bound to the
//! group's address and port (so it hears that group only) and joined on every interface
//! that is up (so it hears the group whichever interface the server sends it from), each
//! read by a thread of its own that hands what it hears on (to [`crate::net`], which
//! makes it an event for the session). A client is in a few channels, not thousands.
//!
//! Only I/O lives here: which groups to join and leave, and what a datagram heard on one
//! means (tag, sequence, confirming), is the session's to decide
//! (`session::mcast`).

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use parking_lot::Mutex;
use socket2::{Domain, Protocol, Socket, Type};

use udp::interfaces;

/// How long a group socket's thread blocks before it looks at its stop flag.
const GROUP_POLL: Duration = Duration::from_millis(100);

/// Where a group thread hands what it hears (the group, the datagram); `false` once
/// nobody listens.
pub(crate) type Deliver = Arc<dyn Fn(SocketAddr, Vec<u8>) -> bool + Send + Sync>;

/// Whether a read that failed with `e` only timed out or was interrupted: nothing is
/// wrong, read again.
pub(crate) fn read_again(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// The groups listened to, each with its thread's stop flag.
#[derive(Default)]
pub(crate) struct Groups {
    listening: Mutex<HashMap<SocketAddr, Arc<AtomicBool>>>,
}

impl Groups {
    /// Listens to `group` (nothing to do if already listening), handing each datagram
    /// heard to `deliver`.
    ///
    /// # Errors
    /// The socket could not be opened or bound, or the group joined on no interface.
    pub(crate) fn join(&self, group: SocketAddr, deliver: Deliver) -> io::Result<()> {
        let mut listening = self.listening.lock();
        if listening.contains_key(&group) {
            return Ok(());
        }
        let socket = listen(group)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        thread::Builder::new()
            .name(format!("group {group}"))
            .spawn(move || read_group(&socket, group, &flag, &deliver))?;
        listening.insert(group, stop);
        Ok(())
    }

    /// Stops listening to `group` (its socket closes, which leaves the group, within
    /// [`GROUP_POLL`]).
    pub(crate) fn leave(&self, group: SocketAddr) {
        if let Some(stop) = self.listening.lock().remove(&group) {
            stop.store(true, Ordering::Relaxed);
        }
    }

    /// Stops listening to every group.
    pub(crate) fn leave_all(&self) {
        for (_, stop) in self.listening.lock().drain() {
            stop.store(true, Ordering::Relaxed);
        }
    }
}

/// A socket bound to `group` that joined it on every interface that is up (module docs).
fn listen(group: SocketAddr) -> io::Result<UdpSocket> {
    let v6 = group.is_ipv6();
    let s = Socket::new(
        if v6 { Domain::IPV6 } else { Domain::IPV4 },
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    // Other clients of this machine listen to the same group and port.
    s.set_reuse_address(true)?;
    s.set_read_timeout(Some(GROUP_POLL))?;
    s.bind(&group.into())?;
    let mut joined = 0;
    let mut last_error = None;
    let mut indexes = Vec::new();
    for iface in interfaces()?.into_iter().filter(|i| i.up) {
        let result = match (group.ip(), iface.addr) {
            (IpAddr::V4(g), IpAddr::V4(local)) => s.join_multicast_v4(&g, &local),
            // IPv6 joins by interface index, whatever addresses it has (a fresh link may
            // not have its link-local address yet).
            (IpAddr::V6(g), _) if iface.index != 0 && !indexes.contains(&iface.index) => {
                indexes.push(iface.index);
                s.join_multicast_v6(&g, iface.index)
            }
            _ => continue,
        };
        match result {
            Ok(()) => joined += 1,
            Err(e) => last_error = Some(e),
        }
    }
    if joined == 0 {
        return Err(last_error
            .unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no interface is up")));
    }
    Ok(s.into())
}

/// A group socket's thread: reads until told to stop or nobody listens.
fn read_group(socket: &UdpSocket, group: SocketAddr, stop: &AtomicBool, deliver: &Deliver) {
    let mut buf = vec![0u8; 65536];
    while !stop.load(Ordering::Relaxed) {
        match socket.recv(&mut buf) {
            Ok(n) => {
                if !deliver(group, buf[..n].to_vec()) {
                    return;
                }
            }
            Err(e) if read_again(&e) => {}
            // Unexpected and possibly lasting: don't spin on it.
            Err(_) => thread::sleep(GROUP_POLL),
        }
    }
}
