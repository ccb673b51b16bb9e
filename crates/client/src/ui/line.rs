//! The classic line mode without raw mode: on a terminal that can't take cursor movement
//! (`TERM=dumb`), plain lines with the classic prompts (a password read without echo);
//! from a pipe or a file, plain lines in and plain lines out, so the client can be
//! scripted. (A capable terminal gets the inline editor, [`super::inline`].)
//!
//! Two threads: the printer (the only writer of the screen: lines, prompts, and the
//! terminal's restoration when a signal ends the client) and a reader, which reads what
//! each [`Ask`] of the session asks for.

use std::io::{self, IsTerminal, Write};
use std::thread;

use crate::session::{Ask, AskKind, Input, Out, Target, UiKind};
use crossbeam_channel::{Receiver, Sender};
use nix::sys::termios::{self, SetArg, Termios};

/// Where output lines go. Only the printer thread holds it, so lines never interleave.
struct Screen(io::Stdout);

/// The line interface, opened.
pub(crate) struct LineUi {
    kind: UiKind,
}

impl LineUi {
    /// The line interface for `kind` ([`UiKind::Plain`] or [`UiKind::Script`]).
    pub(crate) fn open(kind: UiKind) -> LineUi {
        LineUi { kind }
    }

    /// Runs until the session ends; returns the exit status. `outs` is what the session
    /// says, `inbox` where what is typed goes.
    pub(crate) fn run(self, inbox: &Sender<Input>, outs: Receiver<Out>) -> i32 {
        let saved = SavedTerminal::save();
        let kind = self.kind;
        let screen = Screen(io::stdout());
        let (ask_tx, ask_rx) = crossbeam_channel::unbounded::<Ask>();
        let printer = thread::Builder::new()
            .name("printer".into())
            .spawn(move || print(outs, screen, &ask_tx, kind == UiKind::Plain, &saved));
        let Ok(printer) = printer else {
            return 1;
        };
        // The reader may be blocked on a line when the session ends by itself: it is left
        // behind (the process ends with the printer's status) rather than waited for.
        let inbox = inbox.clone();
        let reader = thread::Builder::new()
            .name("reader".into())
            .spawn(move || read(kind, &inbox, &ask_rx));
        if reader.is_err() {
            return 1;
        }
        printer.join().unwrap_or(1)
    }
}

/// The printer thread: shows lines, passes asks on (after the lines before them are out,
/// so a prompt follows what the server said), and ends with the session.
fn print(
    outs: Receiver<Out>,
    mut screen: Screen,
    asks: &Sender<Ask>,
    prompts: bool,
    saved: &SavedTerminal,
) -> i32 {
    for out in outs {
        match out {
            Out::Line(shown) => screen.show(shown.text),
            Out::Ask(ask) => {
                // A terminal shows the classic prompts (the password's comes with its
                // no-echo read); the chat prompt was never one of them.
                if prompts && matches!(ask.kind, AskKind::Nick | AskKind::Confirm) {
                    screen.prompt(&ask.prompt);
                }
                let _ = asks.send(ask);
            }
            Out::Exit(code) => {
                // The reader may be inside a password prompt, echo off.
                let terminal = saved.restore();
                if code >= 128 {
                    // A signal: leave the shell's prompt on a line of its own.
                    if terminal {
                        let _ = io::stdout().write_all(b"\n");
                    }
                    std::process::exit(code);
                }
                return code;
            }
            Out::Status(_) | Out::Members { .. } => {}
        }
    }
    0
}

/// Reads what each ask wants until the session stops asking.
fn read(kind: UiKind, inbox: &Sender<Input>, asks: &Receiver<Ask>) {
    let mut answered = 0;
    loop {
        // The latest ask after the one answered: asks made while a line was typed replace
        // one another, and the session drops answers to any but the latest.
        let Ok(mut ask) = asks.recv() else {
            return;
        };
        while ask.serial <= answered {
            let Ok(next) = asks.recv() else { return };
            ask = next;
        }
        while let Ok(next) = asks.try_recv() {
            ask = next;
        }
        answered = ask.serial;
        let text = match ask.kind {
            AskKind::Secret if kind.interactive() => rpassword::prompt_password(&ask.prompt).ok(),
            _ => read_line(),
        };
        let input = match text {
            Some(text) => Input::Answer {
                serial: ask.serial,
                kind: ask.kind,
                text,
                to: Target::Current,
            },
            None => Input::End,
        };
        if inbox.send(input).is_err() {
            return;
        }
    }
}

/// Reads one line without its line end (`None` at the end of input).
fn read_line() -> Option<String> {
    let mut line = String::new();
    match io::stdin().read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => {
            let len = line.trim_end_matches(['\n', '\r']).len();
            line.truncate(len);
            Some(line)
        }
    }
}

impl Screen {
    /// Shows one line (given without its line end), flushed so a reader sees it at once.
    fn show(&mut self, mut line: String) {
        line.push('\n');
        let mut out = self.0.lock();
        // A closed standard output leaves nobody to tell.
        let _ = out.write_all(line.as_bytes()).and_then(|()| out.flush());
    }

    /// Shows a prompt, without a line end.
    fn prompt(&mut self, prompt: &str) {
        let mut out = self.0.lock();
        let _ = out.write_all(prompt.as_bytes()).and_then(|()| out.flush());
    }
}

/// The terminal settings at start, put back if a signal ends the client while the
/// editor has the terminal in raw mode.
pub(crate) struct SavedTerminal(Option<Termios>);

impl SavedTerminal {
    /// Saves standard input's settings if it is a terminal.
    pub(crate) fn save() -> Self {
        if !io::stdin().is_terminal() {
            return SavedTerminal(None);
        }
        SavedTerminal(termios::tcgetattr(io::stdin()).ok())
    }

    /// Puts the saved settings back; tells whether there were any (a terminal).
    pub(crate) fn restore(&self) -> bool {
        if let Some(t) = &self.0 {
            let _ = termios::tcsetattr(io::stdin(), SetArg::TCSANOW, t);
        }
        self.0.is_some()
    }
}
