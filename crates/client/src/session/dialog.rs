//! The commands that ask something before they act: `/register` and `/passwd` (passwords,
//! the current one checked first), `/unregister` (type the nickname to confirm), and a
//! paste of many lines (confirm before sending).

use std::time::Instant;

use super::io::{AskKind, Effect, Place, Target, UiKind};
use super::login::MAX_WRONG;
use super::machine::Session;
use super::phase::{Phase, Why};
use super::state::Dialog;
use crate::render;
use crate::secure::Pin;
use proto::auth::{self, ClientAuthError, ServerKey};
use proto::{Event, Request};

impl Session {
    /// `/register`: a guest sets a password; a password session changes it.
    pub(super) fn register(&mut self) {
        if self.link.sealed {
            return self.passwd();
        }
        self.dialog = Some(Dialog::NewPassword);
        self.ask(AskKind::Secret, "New password: ");
    }

    /// `/passwd`: the current password first (a guest has none: it sets one).
    pub(super) fn passwd(&mut self) {
        if !self.link.sealed {
            self.dialog = Some(Dialog::NewPassword);
            return self.ask(AskKind::Secret, "New password: ");
        }
        self.dialog = Some(Dialog::CurrentPassword { wrong: 0 });
        self.ask(AskKind::Secret, "Current password: ");
    }

    pub(super) fn unregister(&mut self) {
        self.dialog = Some(Dialog::ConfirmUnregister);
        self.ask(
            AskKind::Confirm,
            "To delete the account for good, type your nickname: ",
        );
    }

    pub(super) fn confirm_paste(&mut self, lines: Vec<String>, to: Target) {
        let prompt = format!("Send these {} lines? [y/N] ", lines.len());
        self.dialog = Some(Dialog::ConfirmPaste { lines, to });
        self.ask(AskKind::Confirm, &prompt);
    }

    fn end_dialog(&mut self, now: Instant) {
        self.dialog = None;
        self.next_chat_line(now);
    }

    /// A secret was typed: for the login's password prompt or for a dialog.
    pub(super) fn secret_typed(&mut self, secret: String, now: Instant) {
        // Whatever it was for, it must never go out as text later.
        self.me.guard.add(&secret);
        if matches!(self.phase, Phase::AskPassword { .. }) {
            return self.password_typed(secret, now);
        }
        match self.dialog.take() {
            Some(Dialog::NewPassword) => {
                if secret.is_empty() {
                    self.notice("\tThe password must not be empty.");
                    return self.end_dialog(now);
                }
                self.dialog = Some(Dialog::RepeatPassword { first: secret });
                self.ask(AskKind::Secret, "Repeat it: ");
            }
            Some(Dialog::RepeatPassword { first }) => {
                if secret != first {
                    self.notice("\tThe passwords do not match.");
                    return self.end_dialog(now);
                }
                let start = auth::register_start(&secret);
                self.send_bytes(&start.datagram);
                self.asking.open = None;
                self.dialog = Some(Dialog::Registering {
                    start: Some(Box::new(start)),
                    password: secret,
                    since: now,
                });
            }
            Some(Dialog::CurrentPassword { wrong }) => {
                if secret.is_empty() {
                    self.notice("\tThe password was not changed.");
                    return self.end_dialog(now);
                }
                let Some(nick) = self.me.nick.clone() else {
                    return self.end_dialog(now);
                };
                let start = auth::login_start(&nick, &secret);
                self.send_bytes(&start.datagram);
                self.asking.open = None;
                self.dialog = Some(Dialog::Checking {
                    start: Some(Box::new(start)),
                    password: secret,
                    wrong,
                    since: now,
                });
            }
            other => self.dialog = other,
        }
    }

    /// An answer to a question.
    pub(super) fn confirm_typed(&mut self, typed: &str, now: Instant) {
        match self.dialog.take() {
            Some(Dialog::ConfirmUnregister) => {
                let nick = self.me.nick.clone().unwrap_or_default();
                if !nick.is_empty() && typed.trim().eq_ignore_ascii_case(&nick) {
                    self.send(&Request::Unregister);
                } else {
                    self.notice("\tNot deleted: that is not your nickname.");
                }
                self.end_dialog(now);
            }
            Some(Dialog::ConfirmPaste { lines, to }) => {
                if matches!(typed.trim().to_lowercase().as_str(), "y" | "yes") {
                    self.run_lines(lines, &to, now);
                } else {
                    self.notice("\tNot sent.");
                }
                if self.dialog.is_none() {
                    self.end_dialog(now);
                }
            }
            other => self.dialog = other,
        }
    }

    /// Answers to a dialog's request; `true` when the event was one.
    pub(super) fn dialog_event(&mut self, event: &Event<'_>, now: Instant) -> bool {
        match (&mut self.dialog, event) {
            (
                Some(Dialog::Registering {
                    start, password, ..
                }),
                Event::RegisterResp { message },
            ) => {
                let password = std::mem::take(password);
                let Some(start) = start.take() else {
                    return true;
                };
                match start.finish_with_key(&password, message) {
                    Ok((upload, server_key)) => {
                        // REGISTER_UPLOAD waits for the key the server showed to be checked.
                        self.dialog = Some(Dialog::Pinning { upload, password });
                        let server = self.server_name();
                        self.effect(Effect::CheckPin {
                            server,
                            key: server_key,
                        });
                    }
                    Err(_) => {
                        self.notice("\t** ERROR: malformed answer from the server **");
                        self.end_dialog(now);
                    }
                }
                true
            }
            (Some(Dialog::Uploading { password, .. }), Event::AccountAck { .. }) => {
                let password = std::mem::take(password);
                self.show(render::render(event), Place::Active);
                self.dialog = None;
                let nick = self.me.nick.clone();
                match nick {
                    // A guest that registers logs in with the new password at once, so its
                    // session is protected from then on.
                    Some(nick) if !self.link.sealed => {
                        if self.ui == UiKind::Script {
                            self.me.script_password = Some(password.clone());
                        }
                        self.start_auth(nick, password, Why::Upgrade, 0, now);
                    }
                    _ => self.end_dialog(now),
                }
                true
            }
            (Some(Dialog::Checking { start, since, .. }), Event::AuthRetry { token }) => {
                // The same request again, with the server's token.
                if let Some(start) = start {
                    *since = now;
                    let again = start.with_token(token);
                    self.send_bytes(&again);
                }
                true
            }
            (
                Some(Dialog::Checking {
                    start,
                    password,
                    wrong,
                    ..
                }),
                Event::AuthChallenge { message },
            ) => {
                let (password, wrong) = (std::mem::take(password), *wrong);
                let Some(start) = start.take() else {
                    return true;
                };
                // Only opened, never finished: the session stays as it is.
                match start.finish(&password, message) {
                    Ok(_) => {
                        self.dialog = Some(Dialog::NewPassword);
                        self.ask(AskKind::Secret, "New password: ");
                    }
                    Err(ClientAuthError::WrongPassword) => {
                        self.show("\t** ERROR: wrong password **", Place::Active);
                        if wrong + 1 >= MAX_WRONG {
                            self.show("Too many wrong passwords.", Place::Active);
                            self.notice("\tThe password was not changed.");
                            self.end_dialog(now);
                        } else {
                            self.dialog = Some(Dialog::CurrentPassword { wrong: wrong + 1 });
                            self.ask(AskKind::Secret, "Current password: ");
                        }
                    }
                    Err(ClientAuthError::Malformed) => {
                        self.notice("\t** ERROR: malformed answer from the server **");
                        self.end_dialog(now);
                    }
                }
                true
            }
            (
                Some(
                    Dialog::Registering { .. } | Dialog::Uploading { .. } | Dialog::Checking { .. },
                ),
                Event::Error { .. },
            ) => {
                self.show(render::render(event), Place::Active);
                self.end_dialog(now);
                true
            }
            _ => false,
        }
    }

    /// Gives up on a server that does not answer a dialog's request.
    pub(super) fn dialog_tick(&mut self, now: Instant) {
        let Some(since) = self.dialog.as_ref().and_then(Dialog::waiting_since) else {
            return;
        };
        if now.saturating_duration_since(since) >= self.opts.login_timeout {
            self.notice("\t** ERROR: no answer from the server **");
            self.end_dialog(now);
        }
    }

    /// What the pinned key says of the key a server showed: a registration goes on (or,
    /// when the key changed, does not); a password login only warns of a change.
    pub(super) fn pinned(&mut self, key: &ServerKey, pin: Result<Pin, String>, now: Instant) {
        let Some(Dialog::Pinning { upload, password }) =
            self.dialog.take_if(|d| matches!(d, Dialog::Pinning { .. }))
        else {
            if let Ok(Pin::Changed(old)) = pin {
                self.warn_key_changed(&old, &key.to_base64());
            }
            return;
        };
        match pin {
            Ok(Pin::Same) => {}
            Ok(Pin::New) => self.notice(format!(
                "\tPinned the server's key in {} (first use).",
                self.opts.known_servers.display()
            )),
            Ok(Pin::Changed(old)) => {
                self.warn_key_changed(&old, &key.to_base64());
                self.notice("\t** ERROR: not registering with a server whose key changed **");
                return self.end_dialog(now);
            }
            Err(e) => self.notice(format!("\t** cannot pin the server's key: {e} **")),
        }
        self.send_bytes(&upload);
        self.dialog = Some(Dialog::Uploading {
            password,
            since: now,
        });
    }
}
