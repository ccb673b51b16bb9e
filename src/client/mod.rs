//! The terminal client: resolves the server, logs in (with retries), then reads commands
//! and shows what the server sends until the user quits.
//!
//! Threads, and why each exists:
//! - the main thread reads input (the line editor on a terminal, plain lines otherwise)
//!   and sends requests;
//! - the receive thread decodes every datagram from the server, renders it and passes the
//!   line on; login answers are also passed to the main thread, which waits for them;
//! - the printer thread is the only one that writes to the screen, so lines never
//!   interleave and, on a terminal, appear above the line being typed;
//! - the keepalive thread sends `STILL_HERE` every 30 s while logged in;
//! - the signal thread logs off on Ctrl-C (outside the editor), SIGTERM and SIGHUP.
//!
//! After a password login every datagram is sealed both ways ([`secure`]): the receive
//! thread opens the server's datagrams and drops unsealed ones, answers path challenges,
//! and the first registration on a server pins its key in the known servers file.
//!
//! Two hidden options exist for tests and scripts (`--login-timeout-ms`, the wait for
//! each login try, 6000 by default, and `--linger-ms`, how long scripted input waits
//! for the server to fall quiet after its last line, 750 by default); see [`Config`].

pub mod command;
pub mod community;
pub mod render;
pub mod secure;
mod term;

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use parking_lot::Mutex;

use crate::auth::{self, ClientAuthError};
use crate::protocol::{code, encode_raw, errors, Event, Request, DEFAULT_PORT, MAX_UDP_PAYLOAD};
use command::Command;
use community::{CatchUp, Intercept};
use secure::{ClientSession, KnownServers, Pin};
use term::{Input, Read, SavedTerminal, Screen};

/// How often a logged-in client says it is still there (the server's idle timeout is
/// 120 s by default, so three keepalives may be lost before it gives up on us).
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// How long the receive thread blocks before it looks at the stop flag.
const RECV_POLL: Duration = Duration::from_millis(100);
/// The longest scripted input waits for answers after its last line, however chatty the
/// server stays.
const LINGER_MAX: Duration = Duration::from_secs(5);
/// Scripted input reads its next line once the server has been quiet this long after a
/// command was sent, so answers show in the order of the commands that asked for them.
const PACE_QUIET: Duration = Duration::from_millis(30);
/// The longest one scripted command waits for that quiet.
const PACE_MAX: Duration = Duration::from_secs(1);
/// Lines waiting for the printer; when full, the receive thread waits, and datagrams
/// arriving meanwhile queue in (or drop from) the socket buffer like any other UDP loss.
const OUTPUT_QUEUE: usize = 1024;

/// What the client is told on its command line.
#[derive(Debug, Clone)]
pub struct Config {
    /// The server's host name or address.
    pub host: String,
    /// The server's UDP port.
    pub port: u16,
    /// The nickname to try first; without one, the user is asked.
    pub nick: Option<String>,
    /// How long each login try waits for an answer.
    pub login_timeout: Duration,
    /// How many login tries before giving up.
    pub login_tries: u32,
    /// Scripted input only: after the last line, wait until the server has been quiet
    /// this long (at most 5 s), so the answers to the last commands are shown.
    pub linger: Duration,
    /// The file of servers' pinned OPAQUE keys (`secure::KnownServers`).
    pub known_servers: std::path::PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            host: "localhost".into(),
            port: DEFAULT_PORT,
            nick: None,
            login_timeout: Duration::from_secs(6),
            login_tries: 5,
            linger: Duration::from_millis(750),
            known_servers: KnownServers::default_path(),
        }
    }
}

/// How a client session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The user quit (or input ended) after logging in.
    Quit,
    /// No login succeeded: the server never answered, or input ended before a nickname
    /// was accepted.
    LoginFailed,
}

/// Runs the client until the user quits.
///
/// # Errors
/// The host does not resolve, or no UDP socket can be opened.
pub fn run(config: Config) -> anyhow::Result<Outcome> {
    let server = resolve(&config.host, config.port)?;
    let local: SocketAddr = if server.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local).context("cannot open a UDP socket")?;
    // Connected, so datagrams from anyone but the server are dropped by the kernel.
    socket
        .connect(server)
        .with_context(|| format!("cannot reach {server}"))?;
    socket.set_read_timeout(Some(RECV_POLL))?;

    let shared = Arc::new(Shared {
        socket,
        nick: Mutex::new(None),
        last_traffic: Mutex::new(Instant::now()),
        stop: AtomicBool::new(false),
        session: Mutex::new(None),
        catch_up: Mutex::new(CatchUp::default()),
        hello_pending: AtomicBool::new(false),
        reconnecting: AtomicBool::new(false),
    });
    let known = KnownServers::new(config.known_servers.clone());
    let server_name = format!("{}:{}", config.host, config.port);
    let saved_terminal = SavedTerminal::save();
    let (input, screen) = term::open();

    let (line_tx, line_rx) = crossbeam_channel::bounded::<Print>(OUTPUT_QUEUE);
    let printer = thread::Builder::new()
        .name("printer".into())
        .spawn(move || print_lines(line_rx, screen))?;
    let (login_tx, login_rx) = crossbeam_channel::bounded(16);
    let receiver = {
        let shared = Arc::clone(&shared);
        let out = Output(line_tx.clone());
        thread::Builder::new()
            .name("receive".into())
            .spawn(move || receive(&shared, &out, &login_tx))?
    };
    let (keepalive_stop, keepalive_rx) = crossbeam_channel::bounded::<()>(0);
    let keepalive = {
        let shared = Arc::clone(&shared);
        thread::Builder::new()
            .name("keepalive".into())
            .spawn(move || keep_alive(&shared, &keepalive_rx, KEEPALIVE_INTERVAL))?
    };
    watch_signals(Arc::clone(&shared), saved_terminal)?;

    let mut session = Session {
        shared: Arc::clone(&shared),
        out: Output(line_tx),
        input,
        login_rx,
        config,
        known,
        server_name,
    };
    let outcome = session.run();
    if outcome == Outcome::Quit && !session.input.is_editor() {
        session.linger();
    }
    shared.logoff();

    // Shut down by dropping senders and joining: the printer ends once every line is out.
    shared.stop.store(true, Ordering::Relaxed);
    drop(keepalive_stop);
    drop(session);
    let _ = keepalive.join();
    let _ = receiver.join();
    let _ = printer.join();
    Ok(outcome)
}

/// Resolves the server, preferring IPv4 as classic clients did (`localhost` then reaches
/// a server bound to 127.0.0.1).
fn resolve(host: &str, port: u16) -> anyhow::Result<SocketAddr> {
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

/// What the threads share.
struct Shared {
    /// Connected to the server; `UdpSocket` sends and receives through `&self`, so the
    /// threads share it without a lock.
    socket: UdpSocket,
    /// The nickname logged in as: LOGOFF carries it (classic servers expect it), and
    /// keepalives are due only while it is set. A mutex, as it is touched only on login,
    /// logoff and every 30 s.
    nick: Mutex<Option<String>>,
    /// When a datagram last went out or came in, so scripted input knows when the
    /// answers to its last commands are in.
    last_traffic: Mutex<Instant>,
    /// Tells the receive thread to end; it looks every [`RECV_POLL`].
    stop: AtomicBool,
    /// After a password login: the protected session. Every datagram is then sealed both
    /// ways, so nobody who merely forges an address can speak for us or for the server.
    session: Mutex<Option<ClientSession>>,
    /// Part 5: the channels the client is in and what it saw there, to catch up after
    /// logging in again. Touched by the receive thread for each event.
    catch_up: Mutex<CatchUp>,
    /// A HELLO went out and is not answered yet: a classic server's
    /// `ERROR unimplemented event code` for it is not shown.
    hello_pending: AtomicBool,
    /// `/reconnect` logged off a session the server may have dropped already: its
    /// `ERROR please log in` for that LOGOFF is no news (and no answer to the login).
    reconnecting: AtomicBool,
}

impl Shared {
    fn send(&self, request: &Request<'_>) -> io::Result<()> {
        self.send_bytes(&request.to_bytes())
    }

    fn send_bytes(&self, datagram: &[u8]) -> io::Result<()> {
        *self.last_traffic.lock() = Instant::now();
        let sealed = self.session.lock().as_mut().map(|s| s.seal(datagram));
        match self.socket.send(sealed.as_deref().unwrap_or(datagram)) {
            // An ICMP port-unreachable from an earlier datagram: nobody listens yet, which
            // the login retries and the user find out by the missing answers.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => Ok(()),
            other => other.map(drop),
        }
    }

    /// Sends LOGOFF if logged in, and forgets the nickname.
    fn logoff(&self) {
        if let Some(nick) = self.nick.lock().take() {
            let mut datagram = Vec::new();
            encode_raw(code::LOGOFF, &nick, &mut datagram);
            let _ = self.send_bytes(&datagram);
        }
        *self.session.lock() = None;
    }
}

/// A handle to the printer thread.
struct Output(Sender<Print>);

/// What the printer thread is asked to do.
enum Print {
    /// Show a line.
    Line(String),
    /// Say when every line queued before has been shown (before a prompt that writes to
    /// the terminal itself, such as the password prompt).
    Flush(Sender<()>),
}

impl Output {
    fn line(&self, line: impl Into<String>) {
        // Fails only once the printer is gone, at shutdown, when nobody is looking.
        let _ = self.0.send(Print::Line(line.into()));
    }

    /// Waits until the lines queued so far are on the screen.
    fn flush(&self) {
        let (done, shown) = crossbeam_channel::bounded(1);
        if self.0.send(Print::Flush(done)).is_ok() {
            let _ = shown.recv_timeout(Duration::from_secs(1));
        }
    }
}

fn print_lines(jobs: Receiver<Print>, mut screen: Screen) {
    for job in jobs {
        match job {
            Print::Line(line) => screen.show(line),
            Print::Flush(done) => {
                let _ = done.send(());
            }
        }
    }
}

/// What the server said to a login or an account request; the main thread waits for
/// these while the receive thread shows everything else.
#[derive(Debug, Clone, PartialEq, Eq)]
enum LoginAnswer {
    Accepted,
    Refused(String),
    Retry(String),
    Challenge(String),
    RegisterResponse(String),
    AccountDone,
}

fn receive(shared: &Shared, out: &Output, login: &Sender<LoginAnswer>) {
    let mut buf = vec![0u8; MAX_UDP_PAYLOAD + 1];
    while !shared.stop.load(Ordering::Relaxed) {
        let len = match shared.socket.recv(&mut buf) {
            Ok(len) => len,
            Err(e) => {
                if !matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                        | io::ErrorKind::ConnectionRefused
                ) {
                    // Unexpected, and possibly lasting: don't spin on it.
                    thread::sleep(RECV_POLL);
                }
                continue;
            }
        };
        *shared.last_traffic.lock() = Instant::now();
        // A protected session opens what is sealed for it and drops the rest.
        let opened = match shared.session.lock().as_mut() {
            Some(session) => session.open(&buf[..len]).map(|b| b.into_owned()),
            None => Some(buf[..len].to_vec()),
        };
        let Some(bytes) = opened else {
            continue;
        };
        // Codes this client does not know (later extensions) and malformed datagrams
        // are skipped: a server may speak more than part 1.
        let Ok(event) = Event::decode(&bytes) else {
            continue;
        };
        if let Event::PathChallenge { data } = event {
            // Our address changed (NAT rebinding): prove we receive here. Sealed, as
            // everything is in a session; a challenge reaches us only in one.
            let _ = shared.send(&Request::PathResponse { data });
            continue;
        }
        if let Event::LoginAck { nick } = event {
            // Known as logged in before the line is shown: a signal right after it must
            // still log off.
            *shared.nick.lock() = Some(nick.to_string());
        }
        match event {
            Event::HelloAck { .. } => shared.hello_pending.store(false, Ordering::Relaxed),
            Event::LoginAck { .. } => shared.reconnecting.store(false, Ordering::Relaxed),
            Event::Error { message }
                if message == errors::PLEASE_LOG_IN
                    && shared.reconnecting.swap(false, Ordering::Relaxed) =>
            {
                continue;
            }
            // A classic server does not know HELLO: that is no news to the user.
            Event::Error { message }
                if message == errors::UNIMPLEMENTED
                    && shared.hello_pending.swap(false, Ordering::Relaxed) =>
            {
                continue;
            }
            _ => {}
        }
        // History asked for after a new login is held until its end, then only what was
        // missed is shown.
        match shared.catch_up.lock().intercept(&event) {
            Intercept::Pass => {}
            Intercept::Hold => continue,
            Intercept::Release(lines) => {
                for line in lines {
                    out.line(line);
                }
                continue;
            }
        }
        if render::shown(&event) {
            out.line(render::render(&event));
        }
        let answer = match event {
            Event::LoginAck { .. } => Some(LoginAnswer::Accepted),
            Event::Error { message } => Some(LoginAnswer::Refused(message.to_string())),
            Event::AuthChallenge { message } => Some(LoginAnswer::Challenge(message.into())),
            Event::AuthRetry { token } => Some(LoginAnswer::Retry(token.into())),
            Event::RegisterResp { message } => Some(LoginAnswer::RegisterResponse(message.into())),
            Event::AccountAck { .. } => Some(LoginAnswer::AccountDone),
            _ => None,
        };
        if let Some(answer) = answer {
            // Nobody waits outside a login; then the queue fills and the rest is dropped.
            let _ = login.try_send(answer);
        }
    }
}

fn keep_alive(shared: &Shared, stop: &Receiver<()>, every: Duration) {
    while let Err(RecvTimeoutError::Timeout) = stop.recv_timeout(every) {
        if shared.nick.lock().is_some() {
            let _ = shared.send(&Request::StillHere);
        }
    }
}

/// Logs off and leaves when a signal asks the client to end. Inside the line editor,
/// Ctrl-C is a key (the editor turns signals off) and ends the session the ordinary way.
fn watch_signals(shared: Arc<Shared>, terminal: SavedTerminal) -> io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                shared.logoff();
                if terminal.restore() {
                    // Leave the shell's prompt on a line of its own.
                    let _ = io::Write::write_all(&mut io::stdout(), b"\n");
                }
                std::process::exit(128 + signal);
            }
        })?;
    Ok(())
}

/// Why a nickname typed at the prompt is refused before it is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NickError {
    /// Nothing but white space: ask again.
    Empty,
    /// White space inside the nickname.
    WhiteSpace,
}

/// Checks a nickname as typed, trimming white space around it. The server judges the
/// rest (length, control characters, uniqueness).
///
/// # Errors
/// [`NickError`] when it is empty or holds white space.
pub fn check_nick(typed: &str) -> Result<&str, NickError> {
    let nick = typed.trim();
    if nick.is_empty() {
        Err(NickError::Empty)
    } else if nick.contains(char::is_whitespace) {
        Err(NickError::WhiteSpace)
    } else {
        Ok(nick)
    }
}

/// How a password login ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Auth {
    Accepted,
    WrongPassword,
    /// The server refused (the error is shown).
    Refused,
    Unanswered,
}

/// How a login attempt ended.
enum Login {
    Accepted,
    /// Every try went unanswered.
    Unanswered,
    /// Input ended while a nickname was asked for.
    NoInput,
}

struct Session {
    shared: Arc<Shared>,
    out: Output,
    input: Input,
    login_rx: Receiver<LoginAnswer>,
    config: Config,
    /// The pinned keys of servers.
    known: KnownServers,
    /// This server's name in `known`: `host:port` as given.
    server_name: String,
}

impl Session {
    fn run(&mut self) -> Outcome {
        match self.login(self.config.nick.clone()) {
            Login::Accepted => self.chat(),
            Login::Unanswered | Login::NoInput => Outcome::LoginFailed,
        }
    }

    /// Logs in, asking for nicknames until the server accepts one, input ends, or a
    /// nickname's tries all go unanswered.
    fn login(&mut self, mut nick: Option<String>) -> Login {
        loop {
            let nick = match nick.take() {
                Some(nick) => match check_nick(&nick) {
                    Ok(nick) => nick.to_string(),
                    Err(problem) => {
                        self.refuse_nick(problem);
                        continue;
                    }
                },
                None => match self.ask_nick() {
                    Some(nick) => nick,
                    None => return Login::NoInput,
                },
            };
            // Answers to an earlier nickname's tries must not count for this one.
            while self.login_rx.try_recv().is_ok() {}
            match self.try_login(&nick) {
                Some(LoginAnswer::Accepted) => {
                    *self.shared.nick.lock() = Some(nick);
                    self.hello();
                    return Login::Accepted;
                }
                Some(LoginAnswer::Refused(message)) if message == errors::NICK_REGISTERED => {
                    match self.password_login(&nick) {
                        Some(Login::Accepted) => return Login::Accepted,
                        Some(other) => return other,
                        // Wrong passwords or a refusal: ask for a nickname again.
                        None => {}
                    }
                }
                // The receive thread has shown the error; ask for another nickname.
                Some(_) => {}
                None => {
                    self.out.line("Can't log in.");
                    return Login::Unanswered;
                }
            }
        }
    }

    /// Sends LOGIN_REQ up to the configured number of times, waiting for an answer
    /// after each; `None` if none came.
    fn try_login(&self, nick: &str) -> Option<LoginAnswer> {
        let request = Request::Login { nick };
        for n in 1..=self.config.login_tries {
            self.out.line(format!("trying to log in ({n})..."));
            if let Err(e) = self.shared.send(&request) {
                self.out.line(format!("cannot send: {e}"));
            }
            let deadline = Instant::now() + self.config.login_timeout;
            if let Ok(answer) = self.login_rx.recv_deadline(deadline) {
                return Some(answer);
            }
        }
        None
    }

    /// Logs in as the registered `nick`, asking for its password (up to three times).
    /// `None` when every password was wrong or the server refused: ask for a nickname.
    fn password_login(&mut self, nick: &str) -> Option<Login> {
        for _ in 0..3 {
            let password = self.ask_password("Password: ")?;
            match self.authenticate(nick, &password) {
                Auth::Accepted => {
                    *self.shared.nick.lock() = Some(nick.to_string());
                    self.hello();
                    return Some(Login::Accepted);
                }
                Auth::WrongPassword => self.out.line("\t** ERROR: wrong password **"),
                Auth::Refused => return None,
                Auth::Unanswered => {
                    self.out.line("Can't log in.");
                    return Some(Login::Unanswered);
                }
            }
        }
        None
    }

    /// Runs the OPAQUE login as `nick`; on success the session keys seal every datagram,
    /// both ways, from then on.
    ///
    /// The first AUTH_REQ is answered with a retry token (the server wants to know we
    /// receive at our address before it spends anything); the same request goes again with
    /// it. After AUTH_FINISH the session is tentative until the sealed LOGIN_ACK; if that
    /// is lost, a sealed LOGIN_REQ asks for it again (the server re-acknowledges a held
    /// nickname), instead of leaving us stranded.
    fn authenticate(&self, nick: &str, password: &str) -> Auth {
        for n in 1..=self.config.login_tries {
            self.out.line(format!("trying to log in ({n})..."));
            while self.login_rx.try_recv().is_ok() {}
            let start = auth::login_start(nick, password);
            let _ = self.shared.send_bytes(&start.datagram);
            let mut challenge = None;
            for _ in 0..3 {
                let deadline = Instant::now() + self.config.login_timeout;
                match self.login_rx.recv_deadline(deadline) {
                    Ok(LoginAnswer::Retry(token)) => {
                        let _ = self.shared.send_bytes(&start.with_token(&token));
                    }
                    Ok(LoginAnswer::Challenge(c)) => {
                        challenge = Some(c);
                        break;
                    }
                    Ok(LoginAnswer::Refused(_)) => return Auth::Refused,
                    _ => break,
                }
            }
            let Some(challenge) = challenge else {
                continue;
            };
            let (finish, keys, server_key) = match start.finish_with_key(password, &challenge) {
                Ok(done) => done,
                Err(ClientAuthError::WrongPassword) => return Auth::WrongPassword,
                Err(ClientAuthError::Malformed) => return Auth::Refused,
            };
            if let Ok(Pin::Changed(old)) = self.known.check(&self.server_name, &server_key) {
                self.warn_key_changed(&old, &server_key.to_base64());
            }
            let _ = self.shared.send_bytes(&finish);
            *self.shared.session.lock() = Some(ClientSession::new(keys));
            for _ in 0..self.config.login_tries {
                let deadline = Instant::now() + self.config.login_timeout;
                match self.login_rx.recv_deadline(deadline) {
                    Ok(LoginAnswer::Accepted) => return Auth::Accepted,
                    Ok(LoginAnswer::Refused(_)) => {
                        *self.shared.session.lock() = None;
                        return Auth::Refused;
                    }
                    Ok(_) => {}
                    // The LOGIN_ACK was lost (or the finish was): ask again, sealed.
                    Err(_) => {
                        let _ = self.shared.send(&Request::Login { nick });
                    }
                }
            }
            *self.shared.session.lock() = None;
            return Auth::Unanswered;
        }
        Auth::Unanswered
    }

    /// Tells the user, loudly, that the server's OPAQUE key is not the one pinned.
    fn warn_key_changed(&self, pinned: &str, shown: &str) {
        for line in [
            "\t@@@ WARNING: THE SERVER'S KEY HAS CHANGED @@@".to_string(),
            format!(
                "\tThe key of {} is not the one pinned in {}.",
                render::sanitize(&self.server_name),
                self.known.path().display()
            ),
            format!("\tpinned: {pinned}"),
            format!("\tshown:  {shown}"),
            "\tSomeone may be impersonating the server. If its operator really replaced it,"
                .to_string(),
            "\tdelete its line from that file.".to_string(),
        ] {
            self.out.line(line);
        }
    }

    /// Reads a password: without echo on a terminal, as the next line otherwise.
    fn ask_password(&mut self, prompt: &str) -> Option<String> {
        // The prompt must follow whatever the server said before (say, that the nickname
        // is registered), not cut into it.
        self.out.flush();
        if self.input.is_editor() {
            return rpassword::prompt_password(prompt).ok();
        }
        match self.input.read(prompt, false) {
            Read::Line(line) => Some(line),
            Read::End => None,
        }
    }

    /// `/register` (no account yet) and `/passwd` (logged in with the password): asks for
    /// the password twice and runs the OPAQUE registration. A guest that registers is then
    /// logged in with the new password, so its session is protected from then on.
    fn register(&mut self) {
        let Some(password) = self.ask_password("New password: ") else {
            return;
        };
        if password.is_empty() {
            return self.out.line("\tThe password must not be empty.");
        }
        if self.ask_password("Repeat it: ").as_deref() != Some(password.as_str()) {
            return self.out.line("\tThe passwords do not match.");
        }
        while self.login_rx.try_recv().is_ok() {}
        let start = auth::register_start(&password);
        let _ = self.shared.send_bytes(&start.datagram);
        let deadline = Instant::now() + self.config.login_timeout;
        let response = match self.login_rx.recv_deadline(deadline) {
            Ok(LoginAnswer::RegisterResponse(r)) => r,
            Ok(LoginAnswer::Refused(_)) => return,
            _ => return self.out.line("\t** ERROR: no answer from the server **"),
        };
        let Ok((upload, server_key)) = start.finish_with_key(&password, &response) else {
            return self
                .out
                .line("\t** ERROR: malformed answer from the server **");
        };
        match self.known.check(&self.server_name, &server_key) {
            Ok(Pin::Same) => {}
            Ok(Pin::New) => self.out.line(format!(
                "\tPinned the server's key in {} (first use).",
                self.known.path().display()
            )),
            Ok(Pin::Changed(old)) => {
                self.warn_key_changed(&old, &server_key.to_base64());
                return self
                    .out
                    .line("\t** ERROR: not registering with a server whose key changed **");
            }
            Err(e) => self
                .out
                .line(format!("\t** cannot pin the server's key: {e} **")),
        }
        let _ = self.shared.send_bytes(&upload);
        match self
            .login_rx
            .recv_deadline(Instant::now() + self.config.login_timeout)
        {
            Ok(LoginAnswer::AccountDone) => {}
            Ok(_) => return,
            Err(_) => return self.out.line("\t** ERROR: no answer from the server **"),
        }
        let guest = self.shared.session.lock().is_none();
        let nick = self.shared.nick.lock().clone();
        if let (true, Some(nick)) = (guest, nick) {
            if self.authenticate(&nick, &password) != Auth::Accepted {
                self.out
                    .line("\t** ERROR: registered, but the password login failed **");
            }
        }
    }

    /// Says HELLO (part 5), so the server sends its message of the day and part-5
    /// notices; a classic server's refusal is not shown.
    fn hello(&self) {
        self.shared.hello_pending.store(true, Ordering::Relaxed);
        let _ = self.shared.send(&Request::Hello {
            client: concat!("chat-client/", env!("CARGO_PKG_VERSION")),
        });
    }

    /// `/reconnect`: logs off and in again under the same nickname (as after a network
    /// change), then [`catch_up`](Self::catch_up).
    fn reconnect(&mut self) -> Option<Outcome> {
        let channels = self.shared.catch_up.lock().channels();
        let nick = self.shared.nick.lock().clone();
        self.shared.reconnecting.store(true, Ordering::Relaxed);
        self.shared.logoff();
        match self.login(nick) {
            Login::Accepted => {
                self.catch_up(&channels);
                None
            }
            Login::Unanswered | Login::NoInput => Some(Outcome::LoginFailed),
        }
    }

    /// After a new login: joins `channels` again and asks each for what was said since
    /// the client last saw it; the receive thread shows only what it missed, marked as
    /// history. A client that reconnects on its own calls this after logging in.
    pub fn catch_up(&mut self, channels: &[String]) {
        for title in channels {
            let _ = self.shared.send(&Request::Join { title });
            let mut buf = String::new();
            let request = {
                let mut c = self.shared.catch_up.lock();
                c.expect_answer(title);
                c.request_for(title, &mut buf).to_bytes()
            };
            let _ = self.shared.send_bytes(&request);
            if !self.input.is_editor() {
                self.wait_for_quiet(PACE_QUIET, PACE_MAX);
            }
        }
    }

    fn ask_nick(&mut self) -> Option<String> {
        loop {
            let Read::Line(line) = self.input.read("Your nickname: ", false) else {
                return None;
            };
            match check_nick(&line) {
                Ok(nick) => return Some(nick.to_string()),
                Err(problem) => self.refuse_nick(problem),
            }
        }
    }

    fn refuse_nick(&self, problem: NickError) {
        if problem == NickError::WhiteSpace {
            self.out.line("Invalid nickname. Must contain no spaces.");
        }
    }

    /// Reads and carries out commands until the user quits or input ends.
    fn chat(&mut self) -> Outcome {
        let mut scratch = String::new();
        loop {
            let Read::Line(line) = self.input.read("> ", true) else {
                return Outcome::Quit;
            };
            let command = command::parse(&line);
            match command {
                Command::Nothing => {}
                Command::Quit => return Outcome::Quit,
                Command::Help => {
                    for line in command::HELP {
                        self.out.line(format!("\t{line}"));
                    }
                }
                Command::Usage(usage) => self.out.line(format!("\tUsage: {usage}")),
                Command::Unknown(name) => self
                    .out
                    .line(format!("\t{}: unknown command", render::sanitize(name))),
                Command::Register => self.register(),
                Command::Reconnect => {
                    if let Some(outcome) = self.reconnect() {
                        return outcome;
                    }
                }
                Command::Login(nick) => {
                    // Log off first, so a refused new nickname leaves no half-state.
                    self.shared.logoff();
                    match self.login(nick.map(str::to_string)) {
                        Login::Accepted => {}
                        Login::Unanswered | Login::NoInput => return Outcome::LoginFailed,
                    }
                }
                _ => {
                    if let Some(request) = command.request(&mut scratch) {
                        if let Err(e) = self.shared.send(&request) {
                            self.out.line(format!("\t** cannot send: {e} **"));
                        } else if !self.input.is_editor() {
                            self.wait_for_quiet(PACE_QUIET, PACE_MAX);
                        }
                    }
                }
            }
        }
    }

    /// Scripted input has ended: waits for the server to fall quiet, so the answers to
    /// the last commands are shown before the client leaves.
    fn linger(&self) {
        self.wait_for_quiet(self.config.linger, LINGER_MAX);
    }

    /// Waits until no datagram has gone out or come in for `quiet`, or `max` has passed.
    fn wait_for_quiet(&self, quiet: Duration, max: Duration) {
        let start = Instant::now();
        loop {
            let silent = self.shared.last_traffic.lock().elapsed();
            if silent >= quiet || start.elapsed() >= max {
                return;
            }
            thread::sleep((quiet - silent).min(Duration::from_millis(10)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nicknames_with_white_space_are_refused() {
        assert_eq!(check_nick("ann"), Ok("ann"));
        assert_eq!(check_nick("  ann \r"), Ok("ann"));
        assert_eq!(check_nick("a b"), Err(NickError::WhiteSpace));
        assert_eq!(check_nick("a\tb"), Err(NickError::WhiteSpace));
        assert_eq!(check_nick("   "), Err(NickError::Empty));
        assert_eq!(check_nick(""), Err(NickError::Empty));
    }

    #[test]
    fn keepalives_go_out_only_while_logged_in() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.connect(server.local_addr().unwrap()).unwrap();
        let shared = Arc::new(Shared {
            socket,
            nick: Mutex::new(None),
            last_traffic: Mutex::new(Instant::now()),
            stop: AtomicBool::new(false),
            session: Mutex::new(None),
            catch_up: Mutex::new(CatchUp::default()),
            hello_pending: AtomicBool::new(false),
            reconnecting: AtomicBool::new(false),
        });
        let (stop, stop_rx) = crossbeam_channel::bounded::<()>(0);
        let every = Duration::from_millis(20);
        let thread = {
            let shared = Arc::clone(&shared);
            thread::spawn(move || keep_alive(&shared, &stop_rx, every))
        };
        let mut buf = [0u8; 64];
        server.set_read_timeout(Some(every * 5)).unwrap();
        assert!(server.recv(&mut buf).is_err(), "no keepalive before login");
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        *shared.nick.lock() = Some("ann".into());
        for _ in 0..2 {
            let len = server.recv(&mut buf).expect("a keepalive");
            assert_eq!(&buf[..len], &Request::StillHere.to_bytes()[..]);
        }
        shared.logoff();
        let len = server.recv(&mut buf).unwrap();
        // Any STILL_HERE sent before the logoff comes first; then LOGOFF with the nickname.
        let mut logoff = Vec::new();
        encode_raw(code::LOGOFF, "ann", &mut logoff);
        let mut got = buf[..len].to_vec();
        while got != logoff {
            assert_eq!(got, Request::StillHere.to_bytes());
            let len = server.recv(&mut buf).unwrap();
            got = buf[..len].to_vec();
        }
        server.set_read_timeout(Some(every * 5)).unwrap();
        assert!(server.recv(&mut buf).is_err(), "no keepalive after logoff");
        drop(stop);
        thread.join().unwrap();
    }

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
}
