//! The client's network layer: one UDP socket connected to the server, the sealing of a
//! protected session's datagrams, and the receive thread that turns what arrives into
//! [`NetEvent`]s for the session.
//!
//! Everything that depends on how bytes travel lives here, so the session sees only whole
//! event datagrams: a protected session's datagrams are opened (and forgeries dropped), a
//! path challenge is answered, a `BATCH` is unpacked into its events, and an ICMP
//! "port unreachable" (which a *connected* UDP socket reports as `ECONNREFUSED`) becomes
//! [`NetEvent::Unreachable`], the fastest sign that no server listens.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use anyhow::Context as _;
use crossbeam_channel::Sender;
use parking_lot::Mutex;

use super::groups::{read_again, Deliver, Groups};
use proto::auth::SessionKeys;
use proto::session::ClientSession;
use proto::{batch, code, Event, Request, MAX_UDP_PAYLOAD};

/// How long the receive thread blocks before it looks at the stop flag.
const RECV_POLL: Duration = Duration::from_millis(100);

/// What the receive thread hands to the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NetEvent {
    /// One whole event datagram from the server (code and payload), not yet decoded.
    Datagram(Vec<u8>),
    /// The server's address answered with ICMP "port unreachable": nobody listens there.
    Unreachable,
    /// A datagram heard on a multicast group (see [`crate::groups`]), not yet
    /// checked: the session verifies its tag and sequence.
    Group {
        /// The group (address and port) it was heard on.
        group: SocketAddr,
        /// The whole datagram, as heard.
        datagram: Vec<u8>,
    },
}

/// The socket and what sending needs; shared by the session thread and the receive
/// thread.
pub(crate) struct Net {
    /// Connected to the server, so the kernel drops datagrams from anyone else and reports
    /// ICMP errors. `UdpSocket` sends and receives through `&self`: no lock needed.
    socket: UdpSocket,
    /// The server as resolved.
    server: SocketAddr,
    /// After a password login: the protected session. Every datagram is then sealed both
    /// ways, so nobody who merely forges an address can speak for us or for the server
    /// (see [`crate::secure`]).
    session: Mutex<Option<ClientSession>>,
    /// Tells the receive thread to end; it looks every [`RECV_POLL`].
    stop: AtomicBool,
    /// The multicast groups listened to.
    groups: Groups,
    /// Where group threads hand what they hear: the receive thread's receiver, once
    /// [`Net::spawn_receiver`] has run.
    deliver: Mutex<Option<Deliver>>,
}

impl Net {
    /// Resolves `host` (preferring IPv4, as classic clients did: `localhost` then reaches
    /// a server bound to 127.0.0.1) and opens a socket connected to it.
    ///
    /// # Errors
    /// The host does not resolve, or no UDP socket can be opened or connected.
    pub(crate) fn open(host: &str, port: u16) -> anyhow::Result<Net> {
        let server = resolve(host, port)?;
        let local: SocketAddr = if server.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(local).context("cannot open a UDP socket")?;
        socket
            .connect(server)
            .with_context(|| format!("cannot reach {server}"))?;
        Ok(Self::with_socket(socket, server))
    }

    /// Wraps a socket already connected to `server`.
    fn with_socket(socket: UdpSocket, server: SocketAddr) -> Net {
        // A read timeout lets the receive thread notice the stop flag.
        let _ = socket.set_read_timeout(Some(RECV_POLL));
        Net {
            socket,
            server,
            session: Mutex::new(None),
            stop: AtomicBool::new(false),
            groups: Groups::default(),
            deliver: Mutex::new(None),
        }
    }

    /// The server's address.
    pub(crate) fn server(&self) -> SocketAddr {
        self.server
    }

    /// Sends one request (sealed in a protected session).
    ///
    /// # Errors
    /// The socket refused it (an unreachable server is not an error here: see
    /// [`NetEvent::Unreachable`]).
    pub(crate) fn send(&self, request: &Request<'_>) -> io::Result<()> {
        self.send_bytes(&request.to_bytes())
    }

    /// Sends one datagram given as bytes (sealed in a protected session).
    ///
    /// # Errors
    /// As [`Net::send`].
    pub(crate) fn send_bytes(&self, datagram: &[u8]) -> io::Result<()> {
        let sealed = self.session.lock().as_mut().map(|s| s.seal(datagram));
        self.send_raw(sealed.as_deref().unwrap_or(datagram))
    }

    /// Sends one datagram as it is, even in a protected session: the AUTH_FINISH that
    /// opens it, sent after its keys are in place.
    ///
    /// # Errors
    /// As [`Net::send`].
    pub(crate) fn send_unsealed(&self, datagram: &[u8]) -> io::Result<()> {
        self.send_raw(datagram)
    }

    fn send_raw(&self, datagram: &[u8]) -> io::Result<()> {
        match self.socket.send(datagram) {
            // An ICMP error from an earlier datagram, reported here instead of to the
            // receive thread; the next receive (or the missing answers) tells the session.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => Ok(()),
            other => other.map(drop),
        }
    }

    /// Listens to a channel's multicast `group`; what it hears comes as
    /// [`NetEvent::Group`] (once the receive thread runs: before that, nothing is joined).
    ///
    /// # Errors
    /// The group could not be joined (see [`Groups::join`]).
    pub(crate) fn join_group(&self, group: SocketAddr) -> io::Result<()> {
        let Some(deliver) = self.deliver.lock().clone() else {
            return Err(io::Error::other("no receive thread"));
        };
        self.groups.join(group, deliver)
    }

    /// Stops listening to `group`.
    pub(crate) fn leave_group(&self, group: SocketAddr) {
        self.groups.leave(group);
    }

    /// Seals every later datagram with `keys` and opens the server's with them (a password
    /// login finished: the session is tentative until the server's sealed LOGIN_ACK), or
    /// stops sealing (`None`: the session is over).
    pub(crate) fn set_session(&self, keys: Option<SessionKeys>) {
        *self.session.lock() = keys.map(ClientSession::new);
    }

    /// Starts the receive thread: every datagram from the server goes to `to` as
    /// [`NetEvent`]s until [`Net::stop`] or until nobody listens.
    ///
    /// # Errors
    /// The thread could not be started.
    pub(crate) fn spawn_receiver<T: From<NetEvent> + Send + 'static>(
        self: &Arc<Self>,
        to: Sender<T>,
    ) -> io::Result<thread::JoinHandle<()>> {
        let net = Arc::clone(self);
        let to_groups = to.clone();
        *self.deliver.lock() = Some(Arc::new(move |group, datagram| {
            to_groups
                .send(NetEvent::Group { group, datagram }.into())
                .is_ok()
        }));
        thread::Builder::new()
            .name("receive".into())
            .spawn(move || net.receive(&to))
    }

    /// Ends the receive thread (within [`RECV_POLL`]).
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        self.groups.leave_all();
    }

    fn receive<T: From<NetEvent>>(&self, to: &Sender<T>) {
        let mut buf = vec![0u8; MAX_UDP_PAYLOAD + 1];
        while !self.stop.load(Ordering::Relaxed) {
            let len = match self.socket.recv(&mut buf) {
                Ok(len) => len,
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    if to.send(NetEvent::Unreachable.into()).is_err() {
                        return;
                    }
                    continue;
                }
                Err(e) => {
                    if !read_again(&e) {
                        // Unexpected, and possibly lasting: don't spin on it.
                        thread::sleep(RECV_POLL);
                    }
                    continue;
                }
            };
            // A protected session opens what is sealed for it and drops the rest.
            let opened = match self.session.lock().as_mut() {
                Some(session) => session.open(&buf[..len]).map(|b| b.into_owned()),
                None => Some(buf[..len].to_vec()),
            };
            let Some(opened) = opened else {
                continue;
            };
            for event in unpack(&opened) {
                if let Ok(Event::PathChallenge { data }) = Event::decode(event) {
                    // Our address changed (NAT rebinding): prove we receive here. Sealed,
                    // as everything is in a session; a challenge reaches us only in one.
                    let _ = self.send(&Request::PathResponse { data });
                    continue;
                }
                if to.send(NetEvent::Datagram(event.to_vec()).into()).is_err() {
                    return;
                }
            }
        }
    }
}

/// The event datagrams in one received datagram: the events of a `BATCH` in order, or the
/// datagram itself. A malformed batch is dropped whole, as the protocol asks.
pub fn unpack(datagram: &[u8]) -> Vec<&[u8]> {
    if datagram.starts_with(&code::BATCH.to_be_bytes()) {
        return batch::events(datagram)
            .map(Iterator::collect)
            .unwrap_or_default();
    }
    vec![datagram]
}

/// Resolves the server, preferring IPv4.
///
/// # Errors
/// The host does not resolve or has no address.
pub(crate) fn resolve(host: &str, port: u16) -> anyhow::Result<SocketAddr> {
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {host}"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .with_context(|| format!("{host} has no address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_prefers_ipv4() {
        let addr = resolve("localhost", 2027).unwrap();
        assert!(addr.is_ipv4(), "{addr}");
        assert_eq!(addr.port(), 2027);
        assert_eq!(
            resolve("::1", 9).unwrap(),
            "[::1]:9".parse::<SocketAddr>().unwrap()
        );
    }

    #[test]
    fn batches_are_unpacked_in_order_and_malformed_ones_dropped() {
        let mut b = Vec::new();
        batch::start(&mut b);
        batch::push(&mut b, b"\x00\x1eann");
        batch::push(&mut b, b"\x00\x0aoops");
        assert_eq!(unpack(&b), [&b"\x00\x1eann"[..], &b"\x00\x0aoops"[..]]);
        b.pop();
        assert!(unpack(&b).is_empty());
        assert_eq!(unpack(b"\x00\x1ebob"), [&b"\x00\x1ebob"[..]]);
    }

    #[test]
    fn a_closed_port_is_reported_as_unreachable() {
        // Bind and drop: the port is (almost certainly) closed now.
        let port = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let net = Arc::new(Net::open("127.0.0.1", port).unwrap());
        let (tx, rx) = crossbeam_channel::bounded::<NetEvent>(4);
        let thread = net.spawn_receiver(tx).unwrap();
        net.send(&Request::Login { nick: "ann" }).unwrap();
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(5)),
            Ok(NetEvent::Unreachable)
        );
        net.stop();
        thread.join().unwrap();
    }
}
