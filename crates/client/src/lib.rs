//! The terminal client. Two layers, so that each interface is only a way of showing the
//! same session:
//!
//! - the network and session layer: [`net`] (the socket, the receive thread that opens
//!   sealed datagrams, answers path challenges, unpacks batches and reports ICMP errors),
//!   [`secure`] (a protected session's sealing both ways, the pinned server keys) and
//!   [`session`] (logging in and again after a
//!   lost connection, channels, keepalives, the account dialogs, multicast channels; it
//!   decides, on a thread of its own), and [`groups`] (the multicast group sockets);
//! - the interfaces in [`ui`]: the classic line mode (the line editor, a plain terminal,
//!   or a script through pipes) and the full-screen client; they read keys and draw.
//!
//! [`command`] (what a typed line means), [`render`] (the classic line for each server
//! event) and [`community`] (part 5: its events in words, history and kept private
//! messages marked apart, what to ask to catch up) are the vocabulary both interfaces
//! share; [`text`] splits and wraps text.
//! [`discover`] finds servers on the LAN (`--discover`) before any of this starts.
//!
//! Threads: the receive thread, the session thread, the interface (the caller's thread,
//! plus the line mode's printer or the full-screen client's key reader), and a signal
//! thread that asks the session to log off on SIGINT (outside raw mode), SIGTERM and SIGHUP.
//!
//! Hidden options exist for tests (`--login-timeout-ms`, `--linger-ms`, `--keepalive-ms`,
//! `--pong-wait-ms`); see [`Config`].

#![warn(missing_docs)]

pub mod command;
pub mod community;
pub mod discover;
pub mod groups;
pub mod net;
pub mod render;
pub mod secure;
pub mod session;
pub mod settings;
pub mod text;
pub mod ui;

use std::io::{self, IsTerminal};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crossbeam_channel::Sender;

use net::Net;
use proto::DEFAULT_PORT;
use session::{Input, Options, Out, SecretGuard, Session, UiKind};

pub use session::{check_nick, NickError};

/// How often a logged-in client shows it is still there (the server's idle timeout is
/// 120 s by default, so three keepalives may be lost before it gives up on us).
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// What the session may have queued for the interface; when full, the session waits.
const OUTPUT_QUEUE: usize = 1024;

/// What the client is told on its command line and in its settings file.
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
    /// How often to show the server we are there (and, with part 4, to check it is).
    pub keepalive: Duration,
    /// How long a PING may go unanswered before it is sent again.
    pub pong_wait: Duration,
    /// The classic line mode even on a terminal that could take the full screen.
    pub line: bool,
    /// Channels to join after logging in.
    pub channels: Vec<String>,
    /// The full-screen client shows the time before each line.
    pub timestamps: bool,
    /// Where the full-screen client keeps typed lines across runs (`None`: nowhere).
    pub history: Option<PathBuf>,
    /// The file of servers' pinned OPAQUE keys ([`secure::KnownServers`]).
    pub known_servers: PathBuf,
    /// Ask for multicast channels (the server decides whether to offer them).
    pub multicast: bool,
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
            keepalive: KEEPALIVE_INTERVAL,
            pong_wait: Duration::from_secs(3),
            line: false,
            channels: Vec::new(),
            timestamps: true,
            history: None,
            known_servers: secure::KnownServers::default_path(),
            multicast: true,
        }
    }
}

/// Which interface fits where the client runs: scripts get plain lines; a terminal the
/// full screen unless told `--line` or it is a dumb one.
fn ui_kind(config: &Config) -> UiKind {
    let term = std::env::var("TERM").unwrap_or_default();
    let dumb = term.is_empty() || term == "dumb";
    if !io::stdin().is_terminal() {
        UiKind::Script
    } else if !io::stdout().is_terminal() || dumb {
        UiKind::Plain
    } else if config.line {
        UiKind::Editor
    } else {
        UiKind::FullScreen
    }
}

/// Runs the client until the user quits; returns the exit status (0 after a quit, 1 when
/// no login succeeded, 128 + the signal's number after a signal).
///
/// # Errors
/// The host does not resolve, no UDP socket can be opened, or a thread can't be started.
pub fn run(config: Config) -> anyhow::Result<i32> {
    let net = Arc::new(Net::open(&config.host, config.port)?);
    let kind = ui_kind(&config);
    let (inbox_tx, inbox) = crossbeam_channel::unbounded::<Input>();
    let (out_tx, outs) = crossbeam_channel::bounded::<Out>(OUTPUT_QUEUE);
    let receiver = net.spawn_receiver(inbox_tx.clone())?;
    watch_signals(inbox_tx.clone())?;

    let options = Options {
        host: config.host.clone(),
        port: config.port,
        nick: config.nick.clone(),
        login_timeout: config.login_timeout,
        login_tries: config.login_tries,
        linger: config.linger,
        ui: kind,
        keepalive: config.keepalive,
        pong_wait: config.pong_wait,
        autojoin: config.channels.clone(),
        known: secure::KnownServers::new(config.known_servers.clone()),
        max_datagram: proto::DEFAULT_MAX_DATAGRAM,
        multicast: config.multicast,
    };
    let guard = Arc::new(parking_lot::Mutex::new(SecretGuard::default()));
    let start_session = |options: Options, out_tx: Sender<Out>| {
        let net = Arc::clone(&net);
        let guard = Arc::clone(&guard);
        thread::Builder::new()
            .name("session".into())
            .spawn(move || Session::with_guard(net, out_tx, options, guard).run(&inbox))
    };

    let code = match kind {
        UiKind::FullScreen => {
            let mut screen = ui::tui::Tui::open(&config, Arc::clone(&guard))?;
            let session = start_session(options, out_tx)?;
            let code = screen.run(&inbox_tx, &outs);
            drop(screen);
            let _ = session.join();
            code
        }
        UiKind::Editor => {
            let mut editor = ui::inline::Inline::open(Arc::clone(&guard), config.history.clone())?;
            let session = start_session(options, out_tx)?;
            let code = editor.run(&inbox_tx, &outs);
            drop(editor);
            let _ = session.join();
            code
        }
        UiKind::Plain | UiKind::Script => {
            let session = start_session(options, out_tx)?;
            let code = ui::line::LineUi::open(kind).run(&inbox_tx, outs);
            let _ = session.join();
            code
        }
    };
    net.stop();
    let _ = receiver.join();
    Ok(code)
}

/// Asks the session to log off and end when a signal says so. In raw mode (the editor, the
/// full screen) Ctrl-C is a key instead and ends the session the ordinary way.
fn watch_signals(inbox: Sender<Input>) -> io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                let _ = inbox.send(Input::Signal(128 + signal));
            }
        })?;
    Ok(())
}
