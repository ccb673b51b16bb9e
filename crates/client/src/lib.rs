//! The terminal client. Two layers, so that each interface is only a way of showing the
//! same session:
//!
//! - the network and session layer: [`net`] (the socket, the receive thread that opens
//!   sealed datagrams, answers path challenges, unpacks batches and reports ICMP errors),
//!   [`secure`] (the pinned server keys), `groups` (the multicast group sockets),
//!   `session` (logging in and again after a lost connection, channels, keepalives, the
//!   account dialogs, multicast channels: it decides, and does no I/O) and `shell` (the
//!   session thread, which carries out what the session decides);
//! - the interfaces in `ui`: the classic line mode (the line editor, a plain terminal,
//!   or a script through pipes) and the full-screen client; they read keys and draw.
//!
//! [`command`] (what a typed line means), `render` (the classic line for each server
//! event) and `community` (part 5: its events in words, history and kept private
//! messages marked apart, what to ask to catch up) are the vocabulary both interfaces
//! share; [`text`] splits, wraps and defuses text.
//! [`discover`] finds servers on the LAN (`--discover`) before any of this starts.
//! `files` makes the files the client writes (history, pinned keys) the user's alone.
//!
//! Threads: the receive thread, the session thread, the interface (the caller's thread,
//! plus the line mode's printer or the full-screen client's key reader), and a signal
//! thread that asks the session to log off on SIGINT (outside raw mode), SIGTERM and SIGHUP.
//!
//! Hidden options exist for tests (`--login-timeout-ms`, `--linger-ms`, `--keepalive-ms`,
//! `--pong-wait-ms`); see [`Options`].

#![warn(missing_docs)]

pub mod command;
mod community;
pub mod discover;
mod files;
mod groups;
pub mod net;
mod render;
pub mod secure;
mod session;
pub mod settings;
mod shell;
pub mod text;
mod ui;

use std::io::{self, IsTerminal};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread;

use crossbeam_channel::Sender;

use net::Net;
use session::{Input, Out, UiKind};

pub use session::Options;

/// What the session may have queued for the interface; when full, the session waits.
const OUTPUT_QUEUE: usize = 1024;

/// What the client is told on its command line and in its settings file.
#[derive(Debug, Clone)]
pub struct Config {
    /// The session: the server, the nickname, the channels, the timings.
    pub session: Options,
    /// The classic line mode even on a terminal that could take the full screen.
    pub line: bool,
    /// The full-screen client shows the time before each line.
    pub timestamps: bool,
    /// Where the raw-mode interfaces keep typed lines across runs (`None`: nowhere).
    pub history: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            session: Options::default(),
            line: false,
            timestamps: true,
            history: None,
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
    let net = Arc::new(Net::open(&config.session.host, config.session.port)?);
    let kind = ui_kind(&config);
    let (inbox_tx, inbox) = crossbeam_channel::unbounded::<Input>();
    let (out_tx, outs) = crossbeam_channel::bounded::<Out>(OUTPUT_QUEUE);
    let receiver = net.spawn_receiver(inbox_tx.clone())?;
    watch_signals(inbox_tx.clone())?;
    let start_session = || {
        shell::spawn(
            Arc::clone(&net),
            config.session.clone(),
            kind,
            out_tx,
            inbox,
        )
    };

    let code = match kind {
        UiKind::FullScreen => {
            let mut screen = ui::tui::Tui::open(config.timestamps, config.history.clone())?;
            let session = start_session()?;
            let code = screen.run(&inbox_tx, &outs);
            drop(screen);
            let _ = session.join();
            code
        }
        UiKind::Editor => {
            let mut editor = ui::inline::Inline::open(config.history.clone())?;
            let session = start_session()?;
            let code = editor.run(&inbox_tx, &outs);
            drop(editor);
            let _ = session.join();
            code
        }
        UiKind::Plain | UiKind::Script => {
            let session = start_session()?;
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
