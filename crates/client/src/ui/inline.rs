//! The classic line mode on a capable terminal: the classic lines scroll by as they always
//! did, and the line being typed stays on the last row under them, with its prompt. A
//! line arriving while one is typed is printed above it without disturbing it; the prompt
//! changes the moment the session asks for something else (a password is then typed
//! without echo); a paste, bracketed or not, goes out line by line.
//!
//! One thread writes the terminal (this one); the key reader only reads. The terminal is
//! put back as it was when the client ends.

use std::io::{self, Stdout, Write};

use crossbeam_channel::{Receiver, Sender};
use crossterm::event::{
    DisableBracketedPaste, EnableBracketedPaste, KeyCode, KeyEvent, KeyModifiers,
};
use crossterm::execute;
use crossterm::terminal::{disable_raw_mode, enable_raw_mode};
use unicode_width::UnicodeWidthChar;

use super::input::{InputLine, KeyAction};
use super::prompt::{self, read_keys, Key, Prompt, Screen};
use crate::session::{AskKind, Input, Out, Target};

/// The inline line editor; see the module docs.
pub(crate) struct Inline {
    out: Stdout,
    input: InputLine,
    prompt: Prompt,
    keys: Receiver<Key>,
}

impl Inline {
    /// Takes the terminal (raw mode, bracketed paste).
    ///
    /// # Errors
    /// The terminal can't be put in raw mode.
    pub(crate) fn open(history: Option<std::path::PathBuf>) -> io::Result<Inline> {
        enable_raw_mode()?;
        let mut out = io::stdout();
        let _ = execute!(out, EnableBracketedPaste);
        Ok(Inline {
            out,
            input: InputLine::with_history(history),
            prompt: Prompt::default(),
            keys: read_keys()?,
        })
    }

    /// Runs until the session ends; returns the exit status.
    pub(crate) fn run(&mut self, inbox: &Sender<Input>, outs: &Receiver<Out>) -> i32 {
        let keys = self.keys.clone();
        prompt::run(self, &keys, &crossbeam_channel::never(), inbox, outs)
    }

    /// Prints a line above the input line.
    fn print(&mut self, line: &str) {
        // Raw mode: a line end must return the carriage itself.
        let _ = write!(self.out, "\r\x1b[K{}\r\n", line.replace('\n', "\r\n"));
    }

    /// The prompt and what is typed (nothing of a password, stars for one typed again),
    /// cursor in place.
    fn prompt_and_text(&self) -> (String, String) {
        let shown = || self.prompt.visible(&self.input).replace('\n', "⏎");
        match (self.prompt.waiting, self.prompt.ask.kind) {
            (true, _) => (String::new(), String::new()),
            (false, AskKind::Chat) => ("> ".into(), shown()),
            (false, AskKind::Secret) => (self.prompt.text().to_string(), String::new()),
            (false, _) => (self.prompt.text().to_string(), shown()),
        }
    }
}

impl Screen for Inline {
    fn draw(&mut self) {
        let (prompt, text) = self.prompt_and_text();
        // A terminal that does not say its size (0 columns) is taken as 80 wide.
        let width = crossterm::terminal::size()
            .ok()
            .filter(|(w, _)| *w > 0)
            .map_or(80, |(w, _)| usize::from(w));
        let cursor = if text.is_empty() {
            0
        } else {
            self.input.cursor()
        };
        let col = |s: &str| -> usize { s.chars().map(|c| c.width().unwrap_or(0)).sum() };
        let before: String = text.chars().take(cursor).collect();
        // A long line scrolls sideways so the cursor stays in view.
        let room = width.saturating_sub(col(&prompt) + 1).max(1);
        let mut skip = 0;
        let mut shown_before = before.as_str();
        while col(shown_before) > room {
            let first = shown_before.chars().next().map_or(0, char::len_utf8);
            shown_before = &shown_before[first..];
            skip += 1;
        }
        let visible: String = text
            .chars()
            .skip(skip)
            .scan(0, |cols, c| {
                *cols += c.width().unwrap_or(0);
                (*cols <= room).then_some(c)
            })
            .collect();
        let at = col(&prompt) + col(shown_before);
        let _ = write!(self.out, "\r\x1b[K{prompt}{visible}\r");
        if at > 0 {
            let _ = write!(self.out, "\x1b[{at}C");
        }
        let _ = self.out.flush();
    }

    fn apply(&mut self, out: Out) -> Option<i32> {
        match out {
            Out::Line(shown) => self.print(&shown.text),
            Out::Ask(ask) => self.prompt.on_ask(ask, &mut self.input),
            Out::Exit(code) => {
                let _ = write!(self.out, "\r\x1b[K");
                let _ = self.out.flush();
                return Some(code);
            }
            Out::Status(_) | Out::Members { .. } => {}
        }
        None
    }

    fn keypress(&mut self, k: KeyEvent, more: bool, inbox: &Sender<Input>) {
        let chat = self.prompt.ask.kind == AskKind::Chat;
        match self.input.key(&k, more, chat) {
            KeyAction::End => {
                let _ = inbox.send(Input::End);
            }
            KeyAction::Submit => self.submit(inbox),
            KeyAction::Edited => {}
            KeyAction::Other => match k.code {
                KeyCode::Char('l') if k.modifiers.contains(KeyModifiers::CONTROL) => {
                    let _ = write!(self.out, "\x1b[2J\x1b[H");
                }
                KeyCode::Tab if chat => self.input.complete(&[], &[]),
                _ => {}
            },
        }
    }

    fn line(&mut self) -> (&Prompt, &mut InputLine) {
        (&self.prompt, &mut self.input)
    }

    fn submit(&mut self, inbox: &Sender<Input>) {
        if self.prompt.waiting {
            return;
        }
        // What was typed stays on the screen, as on any terminal (a password does not).
        let (prompt, text) = self.prompt_and_text();
        let _ = write!(
            self.out,
            "\r\x1b[K{prompt}{}\r\n",
            text.replace('⏎', "\r\n")
        );
        if let Some(input) = self.prompt.submit(&mut self.input, Target::Current) {
            let _ = inbox.send(input);
        }
    }
}

impl Drop for Inline {
    fn drop(&mut self) {
        let _ = execute!(self.out, DisableBracketedPaste);
        let _ = disable_raw_mode();
    }
}
