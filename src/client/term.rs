//! The two faces of the client: on a terminal, a line editor with history whose
//! external printer shows incoming lines above the line being typed; from a pipe or a
//! file, plain lines in and plain lines out, so the client can be scripted.

use std::io::{self, BufRead, IsTerminal, Write};

use rustyline::completion::Completer;
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{Context, Editor, ExternalPrinter, Helper};

use super::command;

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
pub(crate) enum Input {
    /// A terminal: line editing and history.
    Editor(LineEditor),
    /// A pipe or a file (or a terminal whose output is redirected): one line at a time.
    Lines(io::StdinLock<'static>),
}

/// Where output lines go. Only the printer thread holds it, so lines never interleave.
pub(crate) enum Screen {
    /// The editor's printer: lines appear above the prompt and the line being typed.
    Editor(Box<dyn ExternalPrinter + Send>),
    /// Standard output, flushed after every line so a reader sees it at once.
    Plain(io::Stdout),
}

/// What reading a line gave.
pub(crate) enum Read {
    /// A line, without its line end.
    Line(String),
    /// End of input, Ctrl-D or Ctrl-C: time to leave.
    End,
}

/// Opens the editor when both standard input and output are terminals, and plain lines
/// otherwise (or when the terminal is one the editor does not support).
pub(crate) fn open() -> (Input, Screen) {
    if io::stdin().is_terminal() && io::stdout().is_terminal() {
        // Tab completes as far as the names agree, a second Tab lists them (as shells do).
        let config = rustyline::Config::builder()
            .completion_type(rustyline::CompletionType::List)
            .build();
        if let Ok(mut editor) = LineEditor::with_config(config) {
            editor.set_helper(Some(Completion));
            if let Ok(printer) = editor.create_external_printer() {
                return (Input::Editor(editor), Screen::Editor(Box::new(printer)));
            }
        }
    }
    (
        Input::Lines(io::stdin().lock()),
        Screen::Plain(io::stdout()),
    )
}

impl Input {
    /// Whether a person is typing, so prompts are worth showing.
    pub(crate) fn is_editor(&self) -> bool {
        matches!(self, Input::Editor(_))
    }

    /// Reads one line; `prompt` is shown only in the editor, and the line goes into the
    /// history when `remember` is set.
    pub(crate) fn read(&mut self, prompt: &str, remember: bool) -> Read {
        match self {
            Input::Editor(editor) => loop {
                match editor.readline(prompt) {
                    Ok(line) => {
                        if remember && !line.trim().is_empty() {
                            let _ = editor.add_history_entry(line.as_str());
                        }
                        return Read::Line(line);
                    }
                    // A window resize interrupts the read; the editor starts afresh.
                    Err(ReadlineError::Signal(_)) => continue,
                    Err(_) => return Read::End,
                }
            },
            Input::Lines(stdin) => {
                let mut line = String::new();
                match stdin.read_line(&mut line) {
                    Ok(0) | Err(_) => Read::End,
                    Ok(_) => {
                        let len = line.trim_end_matches(['\n', '\r']).len();
                        line.truncate(len);
                        Read::Line(line)
                    }
                }
            }
        }
    }
}

impl Screen {
    /// Shows one line (given without its line end).
    pub(crate) fn show(&mut self, mut line: String) {
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
