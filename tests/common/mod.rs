//! Test helpers: an in-process server on 127.0.0.1:0 and a raw-datagram client with
//! read timeouts, so a lost datagram fails a test instead of hanging it.
#![allow(dead_code)]

pub mod pty;
pub mod services;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use udpchat::protocol::{code, Event, Request};
use udpchat::server::{RunningServer, Server, ServerConfig};

/// How long a test waits for an expected datagram.
pub const WAIT: Duration = Duration::from_secs(5);
/// How long a test listens to be sure nothing more arrives.
pub const QUIET: Duration = Duration::from_millis(300);

/// A server with the classic channels on a free loopback port.
pub fn server() -> RunningServer {
    server_with(|_| {})
}

/// A server on a free loopback port, configured by `f`.
pub fn server_with(f: impl FnOnce(&mut ServerConfig)) -> RunningServer {
    let mut cfg = ServerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        ..ServerConfig::default()
    };
    f(&mut cfg);
    Server::bind(cfg).expect("bind test server").spawn()
}

/// One simulated client: a UDP socket of its own.
pub struct Peer {
    pub sock: UdpSocket,
    pub server: SocketAddr,
}

impl Peer {
    pub fn new(server: &RunningServer) -> Peer {
        Self::to(server.addr())
    }

    pub fn to(server: SocketAddr) -> Peer {
        let any: SocketAddr = if server.is_ipv6() {
            "[::1]:0".parse().unwrap()
        } else {
            "127.0.0.1:0".parse().unwrap()
        };
        let sock = UdpSocket::bind(any).unwrap();
        Peer { sock, server }
    }

    pub fn addr(&self) -> SocketAddr {
        self.sock.local_addr().unwrap()
    }

    pub fn send_raw(&self, bytes: &[u8]) {
        self.sock.send_to(bytes, self.server).unwrap();
    }

    pub fn send(&self, req: Request<'_>) {
        self.send_raw(&req.to_bytes());
    }

    pub fn send_code(&self, code: u16, payload: &str) {
        let mut v = Vec::new();
        udpchat::protocol::encode_raw(code, payload, &mut v);
        self.send_raw(&v);
    }

    /// The next datagram as (code, payload text), or `None` after `within`.
    pub fn recv_within(&self, within: Duration) -> Option<(u16, String)> {
        let deadline = Instant::now() + within;
        let mut buf = [0u8; 65536];
        let left = deadline.checked_duration_since(Instant::now())?;
        self.sock
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match self.sock.recv_from(&mut buf) {
            Ok((n, _)) => {
                assert!(n >= 2, "server sent a datagram of {n} bytes");
                let code = u16::from_be_bytes([buf[0], buf[1]]);
                let text = String::from_utf8(buf[2..n].to_vec()).expect("server sent UTF-8");
                // Every datagram the server sends must decode as an event.
                Event::decode(&buf[..n]).expect("server sent a well-formed event");
                Some((code, text))
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                None
            }
            Err(e) => panic!("recv: {e}"),
        }
    }

    /// The next datagram; fails the test if none comes within [`WAIT`].
    pub fn recv(&self) -> (u16, String) {
        self.recv_within(WAIT)
            .expect("expected a datagram from the server")
    }

    /// Asserts the next datagram is exactly `code payload`.
    #[track_caller]
    pub fn expect(&self, code: u16, payload: &str) {
        assert_eq!(self.recv(), (code, payload.to_string()));
    }

    #[track_caller]
    pub fn expect_error(&self, message: &str) {
        self.expect(code::ERROR, message);
    }

    /// Asserts nothing arrives for [`QUIET`].
    #[track_caller]
    pub fn expect_nothing(&self) {
        if let Some(got) = self.recv_within(QUIET) {
            panic!("expected nothing, got {got:?}");
        }
    }

    /// The next `n` datagrams.
    pub fn recv_n(&self, n: usize) -> Vec<(u16, String)> {
        (0..n).map(|_| self.recv()).collect()
    }

    /// Sends `bytes` again and again, as a client retrying over a lossy network would,
    /// until the server answers; returns the answer and how many sends it took.
    ///
    /// Addresses that are not logged in are never sent more bytes than they sent, so a
    /// short request from a stranger is answered only once enough bytes have arrived.
    pub fn retry_until_answered(&self, bytes: &[u8]) -> ((u16, String), usize) {
        for tries in 1..=64 {
            self.send_raw(bytes);
            if let Some(answer) = self.recv_within(Duration::from_millis(150)) {
                return (answer, tries);
            }
        }
        panic!("no answer after 64 tries");
    }

    /// Logs in as `nick` and checks the ACK.
    pub fn login(&self, nick: &str) {
        self.send(Request::Login { nick });
        self.expect(code::LOGIN_ACK, nick);
    }

    /// Joins `title` and returns the JOIN_ACK payload.
    pub fn join(&self, title: &str) -> String {
        self.send(Request::Join { title });
        let (c, p) = self.recv();
        assert_eq!(c, code::JOIN_ACK, "JOIN_ACK expected, got {c} {p}");
        p
    }
}

/// A logged-in peer.
pub fn user(server: &RunningServer, nick: &str) -> Peer {
    let p = Peer::new(server);
    p.login(nick);
    p
}

/// Waits (up to [`WAIT`]) for `cond`, which another thread of the server makes true.
#[track_caller]
pub fn wait_until(mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "condition not met in time");
        std::thread::sleep(Duration::from_millis(5));
    }
}
