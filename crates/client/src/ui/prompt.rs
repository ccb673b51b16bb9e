//! What both raw-mode interfaces (the full screen and the inline line editor) do with the
//! session's asks: which prompt the input line shows, what happens to text typed when the
//! prompt changes under it, and the [`Input`] an Enter sends. Kept in one place because
//! this is where a password could leak: text typed into (or just after) a password prompt
//! is never shown in clear nor kept for the chat prompt, and a password typed again
//! elsewhere shows as stars.
//!
//! Also the key reader both use (terminal events from a thread of their own, each marked
//! when more were already waiting: an Enter among them is inside a paste), and the loop
//! both run ([`run`]).

use std::thread;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use crossterm::event::{self, Event, KeyEvent, KeyEventKind};

use super::input::InputLine;
use crate::session::guard::SecretGuard;
use crate::session::{Ask, AskKind, Input, Out, Target};

/// How long the rest of a burst of keys (a paste, a line typed by a program) may take to
/// come once the key reader has said more are waiting.
const BURST_WAIT: Duration = Duration::from_millis(50);

/// The state of the prompt.
pub(crate) struct Prompt {
    /// The session's latest ask.
    pub(crate) ask: Ask,
    /// An answer (a password, a nickname) went out and the session has not asked for the
    /// next thing yet: Enter waits, so nothing typed meanwhile goes out as the wrong kind.
    pub(crate) waiting: bool,
    /// What was being typed at the chat prompt when another prompt took the line.
    stash: Option<String>,
    /// The passwords typed at this prompt (as the session's guard holds them): a line
    /// holding one is never kept in history, and they never show in clear.
    guard: SecretGuard,
}

impl Default for Prompt {
    fn default() -> Self {
        Prompt {
            ask: Ask {
                serial: 0,
                kind: AskKind::Chat,
                prompt: String::new(),
            },
            // Nothing is asked before the session's first ask.
            waiting: true,
            stash: None,
            guard: SecretGuard::default(),
        }
    }
}

impl Prompt {
    /// The session asks for something new: the input line follows.
    pub(crate) fn on_ask(&mut self, ask: Ask, input: &mut InputLine) {
        if ask.kind != AskKind::Chat && self.ask.kind == AskKind::Chat {
            // Another prompt takes the line: what was typed waits, and is never taken
            // for the password.
            let typed = input.take();
            if !typed.is_empty() {
                self.stash = Some(typed);
            }
        } else if ask.kind == AskKind::Chat && self.ask.kind != AskKind::Chat {
            // Typed after a nickname or an answer went out: the start of a chat line,
            // kept. Typed into (or after) a password prompt: perhaps a password, never
            // shown in clear.
            let keep = self.waiting && self.ask.kind != AskKind::Secret;
            if !keep {
                input.take();
            }
            if let Some(typed) = self.stash.take() {
                if input.is_empty() {
                    input.insert_str(&typed);
                }
            }
        }
        self.ask = ask;
        self.waiting = false;
    }

    /// What the input line is for, as shown: while waiting, typing shows as a password
    /// does (it may be meant for one).
    pub(crate) fn shown_kind(&self) -> AskKind {
        if self.waiting {
            AskKind::Secret
        } else {
            self.ask.kind
        }
    }

    /// The prompt text (the chat prompt is the interface's own).
    pub(crate) fn text(&self) -> &str {
        if self.waiting {
            "(waiting for the server) "
        } else {
            &self.ask.prompt
        }
    }

    /// What is typed as the input line shows it (when it shows it: not at a password
    /// prompt): a password typed before shows as stars.
    pub(crate) fn visible(&self, input: &InputLine) -> String {
        self.guard.mask(&input.text())
    }

    /// A paste into `input`: a piece of a line is typed in; lines are typed and go out
    /// (returns `true`: submit), at the chat prompt all of them (the session asks first
    /// when there are many), at another prompt the first only (a password or an answer is
    /// one line).
    pub(crate) fn paste(&self, input: &mut InputLine, text: &str) -> bool {
        if !text.contains(['\n', '\r']) {
            input.insert_str(text);
            return false;
        }
        if self.ask.kind == AskKind::Chat {
            input.end();
            input.insert_str(text);
        } else {
            input.insert_str(text.split(['\n', '\r']).next().unwrap_or(""));
        }
        true
    }

    /// Whether `text` holds a password typed before (the session then sends nothing of
    /// it, by the same guard).
    pub(crate) fn holds_secret(&self, text: &str) -> bool {
        self.guard.found_in(text)
    }

    /// Keeps a chat line in `input`'s history, unless it holds a password typed before.
    pub(crate) fn remember(&self, input: &mut InputLine, text: &str) {
        if !self.holds_secret(text) {
            input.remember(text);
        }
    }

    /// Enter: what goes to the session, or `None` while waiting for it. Chat lines are
    /// remembered in the history unless they hold a password typed before; a password
    /// new to the guard takes every line holding it out of the history, file included
    /// (they were typed before it was known, or in an earlier run).
    pub(crate) fn submit(&mut self, input: &mut InputLine, to: Target) -> Option<Input> {
        if self.waiting {
            return None;
        }
        let text = input.take();
        let kind = self.ask.kind;
        let to = if kind == AskKind::Chat {
            self.remember(input, &text);
            to
        } else {
            if kind == AskKind::Secret && self.guard.add(&text) {
                let guard = &self.guard;
                input.forget(|line| guard.found_in(line));
            }
            Target::Current
        };
        self.waiting = kind != AskKind::Chat;
        Some(Input::Answer {
            serial: self.ask.serial,
            kind,
            text,
            to,
        })
    }
}

/// A terminal event, and whether more were already waiting behind it (so an Enter among
/// them is part of a paste, not the end of a line).
pub(crate) struct Key {
    /// The event.
    pub(crate) event: Event,
    /// More events were waiting.
    pub(crate) more: bool,
}

/// A raw-mode interface, as [`run`] drives it.
pub(crate) trait Screen {
    /// Shows the state of things.
    fn draw(&mut self);
    /// Takes in what the session says; `Some(status)` when it is over.
    fn apply(&mut self, out: Out) -> Option<i32>;
    /// Takes in a key pressed (`more`: others were waiting behind it), sending what it
    /// completes to `inbox`.
    fn keypress(&mut self, k: KeyEvent, more: bool, inbox: &Sender<Input>);
    /// The prompt and the input line (a paste goes there).
    fn line(&mut self) -> (&Prompt, &mut InputLine);
    /// Enter: what is typed goes to `inbox`.
    fn submit(&mut self, inbox: &Sender<Input>);
}

/// Runs a raw-mode interface until the session ends; returns the exit status. It draws
/// after each round of keys and of what the session said, and at every `tick` (the
/// full-screen clock). Keys already typed (a paste, fast typing) and everything already
/// said are taken in before the next frame, a burst of keys whole: drawing once per key
/// would fall behind, and would show a line typed at once (perhaps a password) half-way.
pub(crate) fn run(
    screen: &mut impl Screen,
    keys: &Receiver<Key>,
    tick: &Receiver<std::time::Instant>,
    inbox: &Sender<Input>,
    outs: &Receiver<Out>,
) -> i32 {
    fn take(screen: &mut impl Screen, key: Key, more: &mut bool, inbox: &Sender<Input>) {
        *more = key.more;
        match key.event {
            Event::Key(k) if k.kind != KeyEventKind::Release => screen.keypress(k, key.more, inbox),
            Event::Paste(text) => {
                let (prompt, input) = screen.line();
                if prompt.paste(input, &text) {
                    screen.submit(inbox);
                }
            }
            _ => {}
        }
    }
    loop {
        screen.draw();
        let mut more = false;
        crossbeam_channel::select! {
            recv(outs) -> out => match out {
                Ok(out) => if let Some(code) = screen.apply(out) { return code },
                Err(_) => return 0,
            },
            recv(keys) -> k => match k {
                Ok(k) => take(screen, k, &mut more, inbox),
                Err(_) => { let _ = inbox.send(Input::End); }
            },
            recv(tick) -> _ => {}
        }
        loop {
            while let Ok(k) = keys.try_recv() {
                take(screen, k, &mut more, inbox);
            }
            // The reader said more were waiting: they come at once.
            match more.then(|| keys.recv_timeout(BURST_WAIT)) {
                Some(Ok(k)) => take(screen, k, &mut more, inbox),
                _ => break,
            }
        }
        while let Ok(out) = outs.try_recv() {
            if let Some(code) = screen.apply(out) {
                return code;
            }
        }
    }
}

/// Starts the key reader thread.
///
/// # Errors
/// The thread could not be started.
pub(crate) fn read_keys() -> std::io::Result<Receiver<Key>> {
    let (tx, rx) = crossbeam_channel::bounded(256);
    thread::Builder::new()
        .name("keys".into())
        .spawn(move || forward_keys(&tx))?;
    Ok(rx)
}

fn forward_keys(to: &Sender<Key>) {
    while let Ok(event) = event::read() {
        let more = event::poll(Duration::ZERO).unwrap_or(false);
        if to.send(Key { event, more }).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(serial: u64, kind: AskKind, prompt: &str) -> Ask {
        Ask {
            serial,
            kind,
            prompt: prompt.into(),
        }
    }

    /// A prompt that asked for `kind` first, and its empty input line.
    fn asked(kind: AskKind, prompt: &str) -> (Prompt, InputLine) {
        let mut p = Prompt::default();
        let mut input = InputLine::default();
        p.on_ask(ask(1, kind, prompt), &mut input);
        (p, input)
    }

    /// A prompt where `typed` was the answer to the first ask, of `kind`.
    fn answered(kind: AskKind, typed: &str) -> (Prompt, InputLine) {
        let (mut p, mut input) = asked(kind, "? ");
        input.insert_str(typed);
        assert!(p.submit(&mut input, Target::Current).is_some());
        (p, input)
    }

    #[test]
    fn chat_text_waits_while_a_password_is_asked() {
        let (mut p, mut input) = asked(AskKind::Chat, "> ");
        input.insert_str("half a message");
        p.on_ask(ask(2, AskKind::Secret, "Password: "), &mut input);
        assert!(input.is_empty());
        input.insert_str("pw");
        let sent = p.submit(&mut input, Target::Current).unwrap();
        assert!(matches!(
            sent,
            Input::Answer {
                kind: AskKind::Secret,
                serial: 2,
                ..
            }
        ));
        assert!(p.waiting);
        assert_eq!(p.shown_kind(), AskKind::Secret);
        // Typed while waiting, after a password: perhaps the password again. Dropped.
        input.insert_str("pw");
        assert!(p.submit(&mut input, Target::Current).is_none());
        p.on_ask(ask(3, AskKind::Chat, "> "), &mut input);
        assert_eq!(input.text(), "half a message");
    }

    #[test]
    fn text_typed_after_an_answer_stays_for_the_chat_prompt() {
        let (mut p, mut input) = answered(AskKind::Nick, "ann");
        input.insert_str("/join");
        p.on_ask(ask(2, AskKind::Chat, "> "), &mut input);
        assert_eq!(input.text(), "/join");
    }

    #[test]
    fn a_password_typed_again_shows_as_stars_and_stays_out_of_history() {
        let (mut p, mut input) = answered(AskKind::Secret, "hunter2");
        p.on_ask(ask(2, AskKind::Chat, "> "), &mut input);
        input.insert_str("my hunter2");
        assert_eq!(p.visible(&input), "my *******");
        input.take();
        input.insert_str("hunter2");
        p.submit(&mut input, Target::Current).unwrap();
        input.up();
        assert!(input.is_empty(), "not in the history");
    }

    #[test]
    fn no_line_holding_a_password_stays_in_the_history() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("history");
        let (mut p, _) = asked(AskKind::Chat, "> ");
        let mut input = InputLine::with_history(Some(file.clone()));
        // Typed before the password is known: kept, for now.
        for line in ["/msg bob tulip42", "hello"] {
            input.insert_str(line);
            p.submit(&mut input, Target::Current).unwrap();
        }
        p.on_ask(ask(2, AskKind::Secret, "Password: "), &mut input);
        input.insert_str("tulip42");
        p.submit(&mut input, Target::Current).unwrap();
        p.on_ask(ask(3, AskKind::Chat, "> "), &mut input);
        // Once it is, every line holding it goes, and none is kept again.
        for line in [
            "/nick tulip42",
            "/create tulip42 a den",
            "my password is tulip42!",
            "bye",
        ] {
            input.insert_str(line);
            assert!(p.holds_secret(line) != (line == "bye"), "{line}");
            p.submit(&mut input, Target::Current).unwrap();
        }
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "hello\nbye\n");
        input.up();
        input.up();
        input.up();
        assert_eq!(input.text(), "hello");
    }
}
