//! Test helpers: an in-process server on 127.0.0.1:0 and a raw-datagram client with
//! read timeouts, so a lost datagram fails a test instead of hanging it.
#![allow(dead_code)]

pub mod load;
pub mod pty;
pub mod services;

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub use nix::sys::signal::Signal;
use nix::unistd::Pid;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use proto::{code, Event, Request};
use udpchat::server::{RunningServer, Server, ServerConfig};

/// How long a test waits for an expected datagram.
pub const WAIT: Duration = Duration::from_secs(5);
/// How long a test listens to be sure nothing more arrives.
pub const QUIET: Duration = Duration::from_millis(300);

/// The path of the workspace's binary `name`, built first if it is not this package's.
///
/// Cargo gives a test `CARGO_BIN_EXE_<name>` for its own package's binaries only:
/// `chat-server` is ours, but `chat-client` (udpchat-client) and `load-tester` and `soak`
/// (load-tester) are other crates of the workspace, kept apart so that neither builds the
/// server's dependencies. They are built here, once per test process, by the cargo that
/// runs the tests, with its profile and target folder (a no-op when `cargo test
/// --workspace` has built them already).
pub fn bin(name: &str) -> PathBuf {
    static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let package = match name {
        "chat-server" => return PathBuf::from(env!("CARGO_BIN_EXE_chat-server")),
        "chat-client" => "udpchat-client",
        "load-tester" | "soak" => "load-tester",
        other => panic!("no binary {other} in the workspace"),
    };
    // This test runs as <target>/[<triple>/]<profile>/deps/<test>-<hash>.
    let exe = std::env::current_exe().expect("the test's own path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("<profile>/deps/<test>");
    let path = profile_dir.join(name);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !built.iter().any(|b| b == name) {
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["build", "--quiet", "--package", package, "--bin", name]);
        let profile = profile_dir
            .file_name()
            .and_then(|p| p.to_str())
            .unwrap_or("debug");
        match profile {
            "debug" => {}
            "release" => {
                cmd.arg("--release");
            }
            other => {
                cmd.args(["--profile", other]);
            }
        }
        let mut target_dir = profile_dir.parent().expect("<target>/<profile>");
        if !target_dir.join("CACHEDIR.TAG").exists() {
            // <target>/<triple>/<profile>: built for a target triple.
            let triple = target_dir
                .file_name()
                .and_then(|t| t.to_str())
                .unwrap_or_default();
            cmd.args(["--target", triple]);
            target_dir = target_dir.parent().expect("<target>/<triple>");
        }
        cmd.arg("--target-dir").arg(target_dir);
        cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
        let status = cmd.status().expect("run cargo build");
        assert!(
            status.success(),
            "cargo build -p {package} --bin {name} failed"
        );
        built.push(name.to_owned());
    }
    path
}

/// Sends `signal` to the process `pid` (a child the test started).
pub fn signal(pid: u32, signal: Signal) {
    let pid = Pid::from_raw(i32::try_from(pid).expect("a process id"));
    nix::sys::signal::kill(pid, signal).expect("signal the child");
}

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
        proto::encode_raw(code, payload, &mut v);
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

// ---- accounts and protected sessions ----

use proto::auth::{self, SessionKeys};
use proto::session::ClientSession;

impl Peer {
    /// The next datagram's raw bytes, or `None` after `within`.
    pub fn recv_raw_within(&self, within: Duration) -> Option<Vec<u8>> {
        let mut buf = [0u8; 65536];
        self.sock
            .set_read_timeout(Some(within.max(Duration::from_millis(1))))
            .unwrap();
        match self.sock.recv_from(&mut buf) {
            Ok((n, _)) => Some(buf[..n].to_vec()),
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

    /// Asserts that no datagram at all (sealed or not) arrives for [`QUIET`].
    #[track_caller]
    pub fn expect_no_datagram(&self) {
        if let Some(got) = self.recv_raw_within(QUIET) {
            panic!("expected nothing, got {got:?}");
        }
    }
}

/// Registers the nickname `peer` is logged in under (as a guest) with `password`; returns
/// the ACCOUNT_ACK payload.
pub fn register(peer: &Peer, password: &str) -> String {
    let start = auth::register_start(password);
    peer.send_raw(&start.datagram);
    let (c, response) = peer.recv();
    assert_eq!(c, code::REGISTER_RESP, "{response}");
    peer.send_raw(&start.finish(password, &response).unwrap());
    let (c, ack) = peer.recv();
    assert_eq!(c, code::ACCOUNT_ACK, "{ack}");
    ack
}

/// Sends AUTH_REQ for `start` from `peer`: first without a token, then with the token of
/// the AUTH_RETRY it gets. Returns the answer to the second.
pub fn auth_req(peer: &Peer, start: &auth::LoginStart) -> (u16, String) {
    peer.send_raw(&start.datagram);
    let (c, token) = peer.recv();
    assert_eq!(c, code::AUTH_RETRY, "{token}");
    peer.send_raw(&start.with_token(&token));
    peer.recv()
}

/// A password login from `peer`: AUTH_REQ (with its retry token), AUTH_FINISH, and the
/// sealed LOGIN_ACK. Returns the client's session.
pub fn password_login(peer: &Peer, nick: &str, password: &str) -> Protected {
    let start = auth::login_start(nick, password);
    let (c, challenge) = auth_req(peer, &start);
    assert_eq!(c, code::AUTH_CHALLENGE, "{challenge}");
    let (finish, keys) = start.finish(password, &challenge).expect("right password");
    peer.send_raw(&finish);
    let mut p = Protected::new(keys);
    p.expect(peer, code::LOGIN_ACK, nick);
    p
}

/// The client side of a protected session in a test.
pub struct Protected {
    pub keys: SessionKeys,
    pub session: ClientSession,
}

impl Protected {
    pub fn new(keys: SessionKeys) -> Self {
        Protected {
            session: ClientSession::new(keys.clone()),
            keys,
        }
    }

    /// Sends `req` sealed (next counter) from `peer`; returns the datagram.
    pub fn send(&mut self, peer: &Peer, req: Request<'_>) -> Vec<u8> {
        self.send_raw(peer, &req.to_bytes())
    }

    /// Sends the classic datagram `inner` sealed from `peer`; returns the datagram.
    pub fn send_raw(&mut self, peer: &Peer, inner: &[u8]) -> Vec<u8> {
        let d = self.session.seal(inner);
        peer.send_raw(&d);
        d
    }

    /// The next datagram `peer` gets that opens for this session, as (code, payload);
    /// datagrams that do not open are skipped (and returned in the count). `None` after
    /// `within`.
    pub fn recv_within(&mut self, peer: &Peer, within: Duration) -> Option<(u16, String)> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let raw = peer.recv_raw_within(left)?;
            assert_eq!(
                &raw[..2],
                &code::SEALED.to_be_bytes(),
                "a protected user was sent an unsealed datagram: {raw:?}"
            );
            if let Some(inner) = self.session.open(&raw) {
                Event::decode(&inner).expect("a well-formed sealed event");
                let c = u16::from_be_bytes([inner[0], inner[1]]);
                return Some((c, String::from_utf8(inner[2..].to_vec()).unwrap()));
            }
        }
    }

    /// The next sealed datagram; fails the test if none comes within [`WAIT`].
    #[track_caller]
    pub fn recv(&mut self, peer: &Peer) -> (u16, String) {
        self.recv_within(peer, WAIT)
            .expect("expected a sealed datagram from the server")
    }

    /// Asserts the next sealed datagram is exactly `code payload`.
    #[track_caller]
    pub fn expect(&mut self, peer: &Peer, code: u16, payload: &str) {
        assert_eq!(self.recv(peer), (code, payload.to_string()));
    }
}

/// The protocol number of a raw IPv4 socket whose datagrams carry the header written here.
const IPPROTO_RAW: i32 = 255;

/// Sends one forged UDP datagram claiming to come from `from`, through a raw IPv4 socket
/// (needs root, as CI runs). Returns false if raw sockets are not allowed here.
pub fn spoof(from: SocketAddr, to: SocketAddr, payload: &[u8]) -> bool {
    let (SocketAddr::V4(from), SocketAddr::V4(to)) = (from, to) else {
        panic!("IPv4 only");
    };
    let Ok(sock) = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(IPPROTO_RAW))) else {
        return false;
    };
    let total = 20 + 8 + payload.len();
    let mut p = Vec::with_capacity(total);
    p.extend_from_slice(&[
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        0,
        0,
        0,
        64,
        17,
        0,
        0,
    ]);
    p.extend_from_slice(&from.ip().octets());
    p.extend_from_slice(&to.ip().octets());
    p.extend_from_slice(&from.port().to_be_bytes());
    p.extend_from_slice(&to.port().to_be_bytes());
    p.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0]); // no UDP checksum (allowed over IPv4)
    p.extend_from_slice(payload);
    let dst = SockAddr::from(SocketAddr::new((*to.ip()).into(), 0));
    sock.send_to(&p, &dst).is_ok_and(|n| n == p.len())
}

impl Peer {
    /// A peer whose socket is bound to `ip` (a loopback address such as 127.0.1.5, so that
    /// it is in another network prefix than 127.0.0.1).
    pub fn at(server: &RunningServer, ip: [u8; 4]) -> Peer {
        let sock = UdpSocket::bind(SocketAddr::from((ip, 0))).unwrap();
        Peer {
            sock,
            server: server.addr(),
        }
    }
}
