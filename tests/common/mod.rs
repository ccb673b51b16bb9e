//! Test helpers: an in-process server on 127.0.0.1:0 and a raw-datagram client with
//! read timeouts, so a lost datagram fails a test instead of hanging it (its datagrams
//! sealed once it logs in with a password), with the users, waits and metrics the tests
//! share. Beside it: `services` (Redis and PostgreSQL of the test's own), `cluster`
//! (servers sharing Redis), `script` and `pty` (the real client through pipes or in a
//! terminal), and `req` (requests of several fields in short).
#![allow(dead_code)]

pub mod load;
pub mod pty;
pub mod services;

// Cluster nodes, requests in short, and scripted clients.
pub mod cluster;
pub mod req;
pub mod script;

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

/// What the client prints for `/channels` on a server with the classic channels, nobody in
/// them.
pub const CHANNEL_LINES: [&str; 5] = [
    "\t[CurrentEvents]     Discussion of current events            0 users",
    "\t[Weather]           Talk about the weather                  0 users",
    "\t[Gardening]         For those with the green thumb          0 users",
    "\t[Hobbies]           For hobbyists of all types              0 users",
    "\t[Pets]              For our furry and feathered friends     0 users",
];

/// How long a test waits for an expected datagram.
pub const WAIT: Duration = Duration::from_secs(5);
/// How long a test listens to be sure nothing more arrives.
pub const QUIET: Duration = Duration::from_millis(300);

/// A password the terminal clients' tests register and then type into commands and
/// messages, to see the client hold it back.
pub const PW: &str = "Tulpen4711";

/// Writes `text` to the file `path` and gives it the mode bits `mode`.
pub fn write_with_mode(path: &Path, text: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Where the terminal client keeps its line history when its home folder is `home`
/// (`XDG_STATE_HOME` is `home/state`).
pub fn history_file(home: &Path) -> PathBuf {
    home.join("state/udpchat/history")
}

/// The mode bits of `path` for user, group and others.
pub fn file_mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

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
        // Cargo gives integration tests <target>/tmp, whatever the target folder is.
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let target_dir = tmp.parent().expect("<target>/tmp");
        let above = profile_dir.parent().expect("<target>/<profile>");
        let same = |a: &Path, b: &Path| a.canonicalize().ok() == b.canonicalize().ok();
        if !same(above, target_dir) {
            // <target>/<triple>/<profile>: built for a target triple.
            let triple = above
                .file_name()
                .and_then(|t| t.to_str())
                .unwrap_or_default();
            cmd.args(["--target", triple]);
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

/// A server with the classic channels, and `nick` logged in to it.
pub fn server_and_user(nick: &str) -> (RunningServer, Peer) {
    let s = server();
    let p = user(&s, nick);
    (s, p)
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
    /// Once the peer logged in with a password ([`Peer::with_password`]): the session its
    /// requests are sealed in, and every datagram it gets must be sealed in.
    session: Option<std::cell::RefCell<Protected>>,
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
        Peer {
            sock,
            server,
            session: None,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.sock.local_addr().unwrap()
    }

    /// Sends `bytes` as they are (never sealed).
    pub fn send_raw(&self, bytes: &[u8]) {
        self.sock.send_to(bytes, self.server).unwrap();
    }

    /// Sends the classic datagram `d`, sealed if the peer logged in with a password.
    fn send_datagram(&self, d: &[u8]) {
        match &self.session {
            Some(keys) => {
                keys.borrow_mut().send_raw(self, d);
            }
            None => self.send_raw(d),
        }
    }

    pub fn send(&self, req: Request<'_>) {
        self.send_datagram(&req.to_bytes());
    }

    pub fn send_code(&self, code: u16, payload: &str) {
        let mut v = Vec::new();
        proto::encode_raw(code, payload, &mut v);
        self.send_datagram(&v);
    }

    /// The next datagram as (code, payload text), or `None` after `within`.
    pub fn recv_within(&self, within: Duration) -> Option<(u16, String)> {
        match &self.session {
            Some(keys) => next_event(self, Some(&mut keys.borrow_mut().session), within),
            None => next_event(self, None, within),
        }
    }

    /// The next datagram; fails the test if none comes within [`WAIT`].
    pub fn recv(&self) -> (u16, String) {
        self.recv_within(WAIT)
            .expect("expected a datagram from the server")
    }

    /// The payload of the next datagram, which must have code `code`.
    #[track_caller]
    pub fn recv_code(&self, code: u16) -> String {
        let (c, payload) = self.recv();
        assert_eq!(c, code, "{payload}");
        payload
    }

    /// Asserts the next datagram is exactly `code payload`.
    #[track_caller]
    pub fn expect(&self, code: u16, payload: &str) {
        assert_eq!(self.recv(), (code, payload.to_string()));
    }

    /// Asserts the next datagrams are `expected`, in any order (they come from different
    /// threads of the server).
    #[track_caller]
    pub fn expect_in_any_order(&self, expected: &[(u16, &str)]) {
        let mut got = self.recv_n(expected.len());
        let mut want: Vec<(u16, String)> =
            expected.iter().map(|&(c, p)| (c, p.to_string())).collect();
        got.sort();
        want.sort();
        assert_eq!(got, want);
    }

    /// Asserts the next datagram is a USER_ITEM of `nick` whose channels (most recent
    /// first) end with `channels`; returns it.
    #[track_caller]
    pub fn expect_user_item(&self, nick: &str, channels: &str) -> String {
        let item = self.recv_code(code::USER_ITEM);
        assert!(
            item.starts_with(&format!("{nick} ")) && item.ends_with(&format!(" {channels}")),
            "{item}"
        );
        item
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

    /// Says HELLO, as a part-5 client does, and checks the HELLO_ACK.
    #[track_caller]
    pub fn hello(&self) {
        self.send(Request::Hello { client: "test" });
        self.recv_code(code::HELLO_ACK);
    }

    /// Proves the guest's address, as our client does after a guest login: PROVE_REQ,
    /// then PROVE with the token, answered with PROVED.
    #[track_caller]
    pub fn prove(&self) {
        self.send(Request::ProveReq);
        let token = self.recv_code(code::PROVE_TOKEN);
        self.send(Request::Prove { token: &token });
        self.recv_code(code::PROVED);
    }
}

/// Asserts that each of `peers` gets `code payload` next.
#[track_caller]
pub fn expect_all(peers: &[&Peer], code: u16, payload: &str) {
    for p in peers {
        p.expect(code, payload);
    }
}

/// A logged-in peer.
pub fn user(server: &RunningServer, nick: &str) -> Peer {
    let p = Peer::new(server);
    p.login(nick);
    p
}

/// A logged-in peer that joined `title` (and was told nothing else yet).
pub fn joined(server: &RunningServer, nick: &str, title: &str) -> Peer {
    let p = user(server, nick);
    p.join(title);
    p
}

/// A logged-in peer that said HELLO: a part-5 client.
pub fn part5(server: &RunningServer, nick: &str) -> Peer {
    let p = user(server, nick);
    p.hello();
    p
}

/// Waits until the guest logged in as `nick` (a client binary's, whose socket the test
/// does not hold) has proved its address by itself, as our client does after every guest
/// login (PROVE_REQ, PROVE).
pub fn wait_proved(server: &RunningServer, nick: &str) {
    let state = server.state();
    wait_for(
        &format!("{nick} to prove its address"),
        Duration::from_secs(10),
        || state.address_of(nick).is_some_and(|a| state.is_proved(a)),
    );
}

/// A part-5 guest that proved its address ([`Peer::prove`]): it may create channels.
pub fn proved(server: &RunningServer, nick: &str) -> Peer {
    let p = part5(server, nick);
    p.prove();
    p
}

/// Users `nicks`, logged in one after the other and each joined to `title`; each has been
/// told of those who joined after it (and nothing else is waiting for anyone).
#[track_caller]
pub fn in_channel<const N: usize>(
    server: &RunningServer,
    title: &str,
    nicks: [&str; N],
) -> [Peer; N] {
    let mut shown = String::new();
    let peers = nicks.map(|nick| {
        let p = user(server, nick);
        // The title as the server shows it, whatever its case here.
        shown = p
            .join(title)
            .split(' ')
            .next()
            .unwrap_or_default()
            .to_owned();
        p
    });
    for (i, p) in peers.iter().enumerate() {
        for later in &nicks[i + 1..] {
            p.expect(code::USER_JOINS, &format!("{shown} {later}"));
        }
    }
    peers
}

/// Waits up to `within` for `cond`, which another thread (of the server, or a process)
/// makes true; fails the test with `what` if it never does.
#[track_caller]
pub fn wait_for(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits (up to [`WAIT`]) for `cond`, which another thread of the server makes true.
#[track_caller]
pub fn wait_until(cond: impl FnMut() -> bool) {
    wait_for("condition not met in time", WAIT, cond);
}

/// Waits until the server has no user left (a LOGOFF is handled on the server's own
/// threads, a moment after it was sent).
#[track_caller]
pub fn wait_no_users(server: &RunningServer) {
    wait_for("users still logged in", Duration::from_secs(20), || {
        server.state().user_count() == 0
    });
}

/// The server's metrics page (it must have `metrics` on), status line and all.
pub fn metrics_page(server: &RunningServer) -> String {
    use std::io::{Read, Write};
    let addr = server.metrics_addr().expect("metrics enabled");
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(WAIT)).unwrap();
    tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut page = String::new();
    tcp.read_to_string(&mut page).unwrap();
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    page
}

/// The value of the series `series` (a name with its labels) on a metrics page.
#[track_caller]
pub fn metric(page: &str, series: &str) -> u64 {
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{page}"))
}

/// A child process (a server binary, say) killed and reaped on drop, so a test that fails
/// half-way leaves none behind.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
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
    let response = peer.recv_code(code::REGISTER_RESP);
    peer.send_raw(&start.finish(password, &response).unwrap());
    peer.recv_code(code::ACCOUNT_ACK)
}

/// Makes a server operator's account for `nick` with `password` in the SQLite database
/// of the data folder `data`, as `chat-server accounts add NICK --operator` does: the
/// only way to one (a server with `nick` in `operators` refuses it to guests and to
/// registrations). Before the server starts, or while it runs (it notices within a
/// second).
pub fn operator_account(data: &Path, nick: &str, password: &str) {
    let store = udpchat::accounts::SqliteStore::open_dir(data).unwrap();
    udpchat::accounts::add_account(&store, nick, password, true, 0).unwrap();
}

/// Registers `nick` with `password` from a guest session, then logs it off: a registered
/// account nobody is logged in to.
pub fn registered(server: &RunningServer, nick: &str, password: &str) {
    let p = user(server, nick);
    assert_eq!(register(&p, password), format!("registered {nick}"));
    p.send(Request::Logoff);
    wait_until(|| server.state().address_of(nick).is_none());
}

/// A guest `nick` that registered its nickname with `password` and then logged in with it
/// from the same socket: the socket and the session.
pub fn registered_session(server: &RunningServer, nick: &str, password: &str) -> (Peer, Protected) {
    let p = user(server, nick);
    register(&p, password);
    let keys = password_login(&p, nick, password);
    (p, keys)
}

/// Sends AUTH_REQ for `start` from `peer`: first without a token, then with the token of
/// the AUTH_RETRY it gets. Returns the answer to the second.
pub fn auth_req(peer: &Peer, start: &auth::LoginStart) -> (u16, String) {
    peer.send_raw(&start.datagram);
    let token = peer.recv_code(code::AUTH_RETRY);
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

/// The next datagram `peer` gets as (code, payload text), checked to be a well-formed event;
/// with `session`, only sealed datagrams count, and of those only the ones that open for it
/// (the others are skipped). `None` after `within`.
fn next_event(
    peer: &Peer,
    mut session: Option<&mut ClientSession>,
    within: Duration,
) -> Option<(u16, String)> {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        let raw = peer.recv_raw_within(left)?;
        let d = match session.as_deref_mut() {
            None => raw,
            Some(session) => {
                assert_eq!(
                    &raw[..2],
                    &code::SEALED.to_be_bytes(),
                    "a protected user was sent an unsealed datagram: {raw:?}"
                );
                match session.open(&raw) {
                    Some(inner) => inner.into_owned(),
                    None => continue,
                }
            }
        };
        let n = d.len();
        assert!(n >= 2, "server sent a datagram of {n} bytes");
        let text = String::from_utf8(d[2..].to_vec()).expect("server sent UTF-8");
        // Every datagram the server sends must decode as an event.
        Event::decode(&d).expect("server sent a well-formed event");
        return Some((u16::from_be_bytes([d[0], d[1]]), text));
    }
}

/// A peer logged in as `nick` with `password` from a socket of its own: its datagrams are
/// sealed both ways. (A test that moves a session between sockets uses [`Protected`] with
/// the sockets instead.)
pub fn protected(server: &RunningServer, nick: &str, password: &str) -> Peer {
    Peer::new(server).with_password(nick, password)
}

impl Peer {
    /// This peer, once it logged in as `nick` with `password` (see [`password_login`]):
    /// from now on its requests are sealed, and it takes only sealed datagrams.
    pub fn with_password(mut self, nick: &str, password: &str) -> Peer {
        let keys = password_login(&self, nick, password);
        self.session = Some(std::cell::RefCell::new(keys));
        self
    }
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
    /// datagrams that do not open are skipped. `None` after `within`.
    pub fn recv_within(&mut self, peer: &Peer, within: Duration) -> Option<(u16, String)> {
        next_event(peer, Some(&mut self.session), within)
    }

    /// The next sealed datagram; fails the test if none comes within [`WAIT`].
    #[track_caller]
    pub fn recv(&mut self, peer: &Peer) -> (u16, String) {
        self.recv_within(peer, WAIT)
            .expect("expected a sealed datagram from the server")
    }

    /// The payload of the next sealed datagram, which must have code `code`.
    #[track_caller]
    pub fn recv_code(&mut self, peer: &Peer, code: u16) -> String {
        let (c, payload) = self.recv(peer);
        assert_eq!(c, code, "{payload}");
        payload
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
            session: None,
        }
    }
}
