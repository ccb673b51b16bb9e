//! The classic line interface: on a terminal, a line editor with history whose external
//! printer shows incoming lines above the line being typed; on a terminal the editor
//! can't drive (`TERM=dumb`), plain lines with the classic prompts; from a pipe or a file,
//! plain lines in and plain lines out, so the client can be scripted.
//!
//! Two threads: the printer (the only writer of the screen: lines, prompts of the plain
//! terminal, and the terminal's restoration when a signal ends the client) and the
//! caller's thread, which reads what each [`Ask`] of the session asks for.

use std::io::{self, IsTerminal, Write};
use std::thread;

use crossbeam_channel::{Receiver, Sender};
use rustyline::completion::Completer;
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{Context, Editor, ExternalPrinter, Helper};

use crate::client::command;
use crate::client::session::{Ask, AskKind, Input, Out, Target, UiKind};

/// The line editor, completing command names on Tab.
type LineEditor = Editor<Completion, DefaultHistory>;

/// Completes slash commands; everything else about the editor stays as it comes.
pub(crate) struct Completion;

impl Completer for Completion {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        let typed = line.get(..pos).unwrap_or("");
        let names = command::complete(typed);
        // A single match gets its space, ready for the argument.
        let candidates = match names.as_slice() {
            [one] => vec![format!("{one} ")],
            _ => names.iter().map(|n| n.to_string()).collect(),
        };
        Ok((0, candidates))
    }
}

impl Hinter for Completion {
    type Hint = String;
}
impl Highlighter for Completion {}
impl Validator for Completion {}
impl Helper for Completion {}

/// Where input lines come from.
enum Reader {
    /// A terminal: line editing and history.
    Editor(Box<LineEditor>),
    /// A terminal without the editor, a pipe or a file: one line at a time.
    Lines,
}

/// Where output lines go. Only the printer thread holds it, so lines never interleave.
enum Screen {
    /// The editor's printer: lines appear above the prompt and the line being typed.
    Editor(Box<dyn ExternalPrinter + Send>),
    /// Standard output, flushed after every line so a reader sees it at once.
    Plain(io::Stdout),
}

/// The line interface, opened.
pub struct LineUi {
    reader: Reader,
    screen: Screen,
    kind: UiKind,
}

impl LineUi {
    /// Opens the line interface for `kind`: the editor when asked for and the terminal
    /// takes it; see [`LineUi::kind`] for what it became.
    pub fn open(kind: UiKind) -> LineUi {
        let mut kind = kind;
        let (reader, screen) = open(&mut kind);
        LineUi {
            reader,
            screen,
            kind,
        }
    }

    /// What the interface is: [`UiKind::Plain`] when the editor does not drive this
    /// terminal.
    pub fn kind(&self) -> UiKind {
        self.kind
    }

    /// Runs until the session ends; returns the exit status. `outs` is what the session
    /// says, `inbox` where what is typed goes.
    pub fn run(self, inbox: &Sender<Input>, outs: Receiver<Out>) -> i32 {
        let saved = SavedTerminal::save();
        let LineUi {
            reader,
            screen,
            kind,
        } = self;
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
            .spawn(move || read(reader, kind, &inbox, &ask_rx));
        if reader.is_err() {
            return 1;
        }
        printer.join().unwrap_or(1)
    }
}

/// Opens the editor when the kind asks for it and the terminal supports it, plain lines
/// otherwise.
fn open(kind: &mut UiKind) -> (Reader, Screen) {
    if *kind == UiKind::Editor {
        // Tab completes as far as the names agree, a second Tab lists them (as shells do).
        let config = rustyline::Config::builder()
            .completion_type(rustyline::CompletionType::List)
            .build();
        if let Ok(mut editor) = LineEditor::with_config(config) {
            editor.set_helper(Some(Completion));
            if let Ok(printer) = editor.create_external_printer() {
                return (
                    Reader::Editor(Box::new(editor)),
                    Screen::Editor(Box::new(printer)),
                );
            }
        }
        // A terminal the editor does not drive: plain lines, with the prompts.
        *kind = UiKind::Plain;
    }
    (Reader::Lines, Screen::Plain(io::stdout()))
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
                // A plain terminal shows the classic prompts (the password's comes with
                // its no-echo read); the chat prompt was never one of them.
                if prompts && matches!(ask.kind, AskKind::Nick | AskKind::Confirm) {
                    screen.prompt(&ask.prompt);
                }
                let _ = asks.send(ask);
            }
            Out::Exit(code) => {
                // The reader may be inside the editor, in raw mode.
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
fn read(mut reader: Reader, kind: UiKind, inbox: &Sender<Input>, asks: &Receiver<Ask>) {
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
            _ => reader.line(&ask),
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

impl Reader {
    /// Reads one line (`None` at the end of input); the prompt is the editor's to show.
    fn line(&mut self, ask: &Ask) -> Option<String> {
        match self {
            Reader::Editor(editor) => loop {
                match editor.readline(&ask.prompt) {
                    Ok(line) => {
                        if ask.kind == AskKind::Chat && !line.trim().is_empty() {
                            let _ = editor.add_history_entry(line.as_str());
                        }
                        return Some(line);
                    }
                    // A window resize interrupts the read; the editor starts afresh.
                    Err(ReadlineError::Signal(_)) => continue,
                    Err(_) => return None,
                }
            },
            Reader::Lines => {
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
        }
    }
}

impl Screen {
    /// Shows one line (given without its line end).
    fn show(&mut self, mut line: String) {
        line.push('\n');
        match self {
            Screen::Editor(printer) => {
                if printer.print(line).is_err() {
                    // The editor is gone (the client is shutting down): write directly.
                    *self = Screen::Plain(io::stdout());
                }
            }
            Screen::Plain(out) => {
                let mut out = out.lock();
                // A closed standard output leaves nobody to tell.
                let _ = out.write_all(line.as_bytes()).and_then(|()| out.flush());
            }
        }
    }

    /// Shows a prompt, without a line end (plain terminals only).
    fn prompt(&mut self, prompt: &str) {
        if let Screen::Plain(out) = self {
            let mut out = out.lock();
            let _ = out.write_all(prompt.as_bytes()).and_then(|()| out.flush());
        }
    }
}

/// The terminal settings at start, put back if a signal ends the client while the
/// editor has the terminal in raw mode.
pub(crate) struct SavedTerminal(Option<libc::termios>);

impl SavedTerminal {
    /// Saves standard input's settings if it is a terminal.
    pub(crate) fn save() -> Self {
        if !io::stdin().is_terminal() {
            return SavedTerminal(None);
        }
        // SAFETY: tcgetattr writes a termios for a valid descriptor; zeroed is a valid
        // initial value of this plain C struct.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(libc::STDIN_FILENO, &mut t) == 0 {
                SavedTerminal(Some(t))
            } else {
                SavedTerminal(None)
            }
        }
    }

    /// Puts the saved settings back; tells whether there were any (a terminal).
    pub(crate) fn restore(&self) -> bool {
        if let Some(t) = &self.0 {
            // SAFETY: `t` came from tcgetattr on the same descriptor.
            unsafe {
                libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, t);
            }
        }
        self.0.is_some()
    }
}
