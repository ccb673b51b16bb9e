//! What both raw-mode interfaces (the full screen and the inline line editor) do with the
//! session's asks: which prompt the input line shows, what happens to text typed when the
//! prompt changes under it, and the [`Input`] an Enter sends. Kept in one place because
//! this is where a password could leak: text typed into (or just after) a password prompt
//! is never shown in clear nor kept for the chat prompt.
//!
//! Also the key reader both use: terminal events from a thread of their own, each marked
//! when more were already waiting (an Enter among them is inside a paste).

use std::thread;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use crossterm::event::{self, Event};

use super::input::InputLine;
use crate::session::{Ask, AskKind, Input, Target};

/// The state of the prompt.
#[derive(Debug)]
pub struct Prompt {
    /// The session's latest ask.
    pub ask: Ask,
    /// An answer (a password, a nickname) went out and the session has not asked for the
    /// next thing yet: Enter waits, so nothing typed meanwhile goes out as the wrong kind.
    pub waiting: bool,
    /// What was being typed at the chat prompt when another prompt took the line.
    stash: Option<String>,
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
        }
    }
}

impl Prompt {
    /// The session asks for something new: the input line follows.
    pub fn on_ask(&mut self, ask: Ask, input: &mut InputLine) {
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
    pub fn shown_kind(&self) -> AskKind {
        if self.waiting {
            AskKind::Secret
        } else {
            self.ask.kind
        }
    }

    /// The prompt text (the chat prompt is the interface's own).
    pub fn text(&self) -> &str {
        if self.waiting {
            "(waiting for the server) "
        } else {
            &self.ask.prompt
        }
    }

    /// Enter: what goes to the session, or `None` while waiting for it. Chat lines are
    /// remembered in the history unless `secret` (the guard knows them as passwords).
    pub fn submit(
        &mut self,
        input: &mut InputLine,
        to: Target,
        secret: impl Fn(&str) -> bool,
    ) -> Option<Input> {
        if self.waiting {
            return None;
        }
        let text = input.take();
        let kind = self.ask.kind;
        let to = if kind == AskKind::Chat {
            if !secret(&text) {
                input.remember(&text);
            }
            to
        } else {
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
pub struct Key {
    /// The event.
    pub event: Event,
    /// More events were waiting.
    pub more: bool,
}

/// Starts the key reader thread.
///
/// # Errors
/// The thread could not be started.
pub fn read_keys() -> std::io::Result<Receiver<Key>> {
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

    #[test]
    fn chat_text_waits_while_a_password_is_asked() {
        let mut p = Prompt::default();
        let mut input = InputLine::default();
        p.on_ask(ask(1, AskKind::Chat, "> "), &mut input);
        input.insert_str("half a message");
        p.on_ask(ask(2, AskKind::Secret, "Password: "), &mut input);
        assert!(input.is_empty());
        input.insert_str("pw");
        let sent = p.submit(&mut input, Target::Current, |_| false).unwrap();
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
        assert!(p.submit(&mut input, Target::Current, |_| false).is_none());
        p.on_ask(ask(3, AskKind::Chat, "> "), &mut input);
        assert_eq!(input.text(), "half a message");
    }

    #[test]
    fn text_typed_after_an_answer_stays_for_the_chat_prompt() {
        let mut p = Prompt::default();
        let mut input = InputLine::default();
        p.on_ask(ask(1, AskKind::Nick, "Your nickname: "), &mut input);
        input.insert_str("ann");
        p.submit(&mut input, Target::Current, |_| false).unwrap();
        input.insert_str("/join");
        p.on_ask(ask(2, AskKind::Chat, "> "), &mut input);
        assert_eq!(input.text(), "/join");
    }
}
