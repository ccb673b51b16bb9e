//! The full-screen client (ratatui on crossterm), as irssi and weechat users know it: one
//! buffer per channel and per private conversation, an activity bar, a status line, a nick
//! list, timestamps, scrollback and search, Tab completion, history across runs, a bell on
//! mentions. It shows the session's [`Out`]put and sends it what is typed.
//!
//! This thread is the only writer of the terminal; a second thread only reads keys. The
//! terminal is put back as it was when the client ends, even by a panic.

mod buffers;
mod draw;

use std::io::{self, Stdout, Write as _};
use std::path::PathBuf;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use crossterm::event::{
    DisableBracketedPaste, EnableBracketedPaste, KeyCode, KeyEvent, KeyModifiers,
};
use crossterm::execute;
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;

use super::input::{InputLine, KeyAction};
use super::prompt::{self, read_keys, Key, Prompt, Screen};
use crate::command::{self, Command};
use crate::session::{AskKind, Input, Out, Shown, Status};
use buffers::Buffers;

/// How often the screen is drawn when nothing happens: the clock on the status line.
const CLOCK_TICK: Duration = Duration::from_secs(1);

/// The full-screen interface; see the module docs.
pub(crate) struct Tui {
    terminal: Terminal<CrosstermBackend<Stdout>>,
    buffers: Buffers,
    input: InputLine,
    status: Status,
    prompt: Prompt,
    timestamps: bool,
    keys: Receiver<Key>,
    bell: bool,
}

/// Puts the terminal back as it was.
fn restore_terminal() {
    let _ = disable_raw_mode();
    let _ = execute!(io::stdout(), DisableBracketedPaste, LeaveAlternateScreen);
}

impl Tui {
    /// Takes the terminal: raw mode, the alternate screen, bracketed paste. `timestamps`:
    /// show the time before each line; `history`: where typed lines are kept across runs.
    ///
    /// # Errors
    /// The terminal can't be set up.
    pub(crate) fn open(timestamps: bool, history: Option<PathBuf>) -> anyhow::Result<Tui> {
        enable_raw_mode()?;
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore_terminal();
            hook(info);
        }));
        execute!(io::stdout(), EnterAlternateScreen, EnableBracketedPaste)?;
        let terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;
        let keys = read_keys()?;
        Ok(Tui {
            terminal,
            buffers: Buffers::default(),
            input: InputLine::with_history(history),
            status: Status {
                conn: "starting".into(),
                ..Status::default()
            },
            prompt: Prompt::default(),
            timestamps,
            keys,
            bell: false,
        })
    }

    /// Runs until the session ends; returns the exit status.
    pub(crate) fn run(&mut self, inbox: &Sender<Input>, outs: &Receiver<Out>) -> i32 {
        let keys = self.keys.clone();
        prompt::run(
            self,
            &keys,
            &crossbeam_channel::tick(CLOCK_TICK),
            inbox,
            outs,
        )
    }

    /// Rows PageUp and PageDown move: most of a screen.
    fn page(&self) -> usize {
        let rows = self.terminal.size().map_or(24, |s| s.height);
        usize::from(rows.saturating_sub(4)).max(1)
    }

    /// The commands about the screen itself; `true` when `line` was one.
    fn local_command(&mut self, line: &str) -> bool {
        match command::parse(line) {
            Command::Window(n) => {
                let ok = n
                    .parse::<usize>()
                    .is_ok_and(|n| n > 0 && self.buffers.show(n - 1));
                if !ok {
                    self.local_note(format!("No window {n}."));
                }
                true
            }
            Command::Search(text) => {
                if !self.buffers.active_mut().search(text) {
                    self.local_note(format!("Not found: {text}"));
                }
                true
            }
            _ => false,
        }
    }

    fn local_note(&mut self, text: String) {
        self.buffers.add(&Shown::notice(text), clock());
    }
}

impl Screen for Tui {
    fn draw(&mut self) {
        let clock = clock();
        let shown = self.prompt.visible(&self.input);
        let view = draw::View {
            buffers: &self.buffers,
            input: (&shown, self.input.cursor()),
            status: &self.status,
            ask: (self.prompt.shown_kind(), self.prompt.text()),
            timestamps: self.timestamps,
            clock: &clock,
        };
        let _ = self.terminal.draw(|f| draw::draw(f, &view));
        if std::mem::take(&mut self.bell) {
            let backend = self.terminal.backend_mut();
            let _ = backend.write_all(b"\x07").and_then(|()| backend.flush());
        }
    }

    fn apply(&mut self, out: Out) -> Option<i32> {
        match out {
            Out::Line(shown) => {
                if self.buffers.add(&shown, clock()) {
                    self.bell = true;
                }
            }
            Out::Members { title, nicks } => self.buffers.members(&title, nicks),
            Out::Ask(ask) => self.prompt.on_ask(ask, &mut self.input),
            Out::Status(status) => self.status = status,
            Out::Exit(code) => return Some(code),
        }
        None
    }

    fn keypress(&mut self, k: KeyEvent, more: bool, inbox: &Sender<Input>) {
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        let alt = k.modifiers.contains(KeyModifiers::ALT);
        let chat = self.prompt.ask.kind == AskKind::Chat;
        match self.input.key(&k, more, chat) {
            KeyAction::End => {
                let _ = inbox.send(Input::End);
                return;
            }
            KeyAction::Submit => return self.submit(inbox),
            KeyAction::Edited => return,
            KeyAction::Other => {}
        }
        match k.code {
            KeyCode::Char('n') if ctrl => self.buffers.cycle(true),
            KeyCode::Char('p') if ctrl => self.buffers.cycle(false),
            KeyCode::Char('l') if ctrl => {
                let _ = self.terminal.clear();
            }
            KeyCode::Char(c @ '0'..='9') if alt => {
                let n = c.to_digit(10).unwrap_or(0) as usize;
                self.buffers.show(if n == 0 { 9 } else { n - 1 });
            }
            KeyCode::Tab if chat => {
                let (nicks, titles) = self.buffers.names();
                self.input.complete(&nicks, &titles);
            }
            KeyCode::PageUp => {
                let page = self.page();
                let b = self.buffers.active_mut();
                b.found = None;
                b.scroll += page;
            }
            KeyCode::PageDown => {
                let page = self.page();
                let b = self.buffers.active_mut();
                b.found = None;
                b.scroll = b.scroll.saturating_sub(page);
            }
            KeyCode::Esc => {
                let b = self.buffers.active_mut();
                b.found = None;
                b.scroll = 0;
            }
            _ => {}
        }
    }

    fn line(&mut self) -> (&Prompt, &mut InputLine) {
        (&self.prompt, &mut self.input)
    }

    fn submit(&mut self, inbox: &Sender<Input>) {
        let chat = self.prompt.ask.kind == AskKind::Chat && !self.prompt.waiting;
        if chat && !self.input.text().contains('\n') {
            let text = self.input.text();
            // A line holding a password goes to the session, which refuses it and says so.
            if !self.prompt.holds_secret(&text) && self.local_command(&text) {
                self.input.take();
                self.prompt.remember(&mut self.input, &text);
                return;
            }
        }
        let to = self.buffers.active().target();
        if let Some(input) = self.prompt.submit(&mut self.input, to) {
            if chat {
                let b = self.buffers.active_mut();
                b.scroll = 0;
                b.found = None;
            }
            let _ = inbox.send(input);
        }
    }
}

impl Drop for Tui {
    fn drop(&mut self) {
        restore_terminal();
        let _ = self.terminal.show_cursor();
    }
}

/// The local time as `HH:MM` (the system's time zone, through jiff).
fn clock() -> String {
    jiff::Zoned::now().strftime("%H:%M").to_string()
}
