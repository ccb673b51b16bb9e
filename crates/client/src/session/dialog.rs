//! The commands that ask something before they act: `/register` and `/passwd` (passwords,
//! the current one checked first), `/unregister` (type the nickname to confirm), and a
//! paste of many lines (confirm before sending).

use std::time::Instant;

use super::login::Why;
use super::login::MAX_WRONG;
use super::{AskKind, Place, Session, Target, UiKind};
use crate::render;
use crate::secure::Pin;
use proto::auth::{self, ClientAuthError, LoginStart, RegisterStart};
use proto::{Event, Request};

/// A command waiting for an answer from the user or the server.
pub(super) enum Dialog {
    /// `/register`: the new password is asked.
    NewPassword,
    /// The new password again.
    RepeatPassword { first: String },
    /// REGISTER_REQ sent; REGISTER_RESP awaited.
    Registering {
        start: Option<Box<RegisterStart>>,
        password: String,
        since: Instant,
    },
    /// REGISTER_UPLOAD sent; ACCOUNT_ACK awaited.
    Uploading { password: String, since: Instant },
    /// `/passwd`: the current password is asked (after `wrong` wrong ones).
    CurrentPassword { wrong: u32 },
    /// The current password is checked: AUTH_REQ sent, and the challenge opened with it
    /// here (a wrong password does not open it). Nothing is finished with the server.
    Checking {
        start: Option<Box<LoginStart>>,
        password: String,
        wrong: u32,
        since: Instant,
    },
    /// `/unregister`: the nickname must be typed.
    ConfirmUnregister,
    /// A paste of many lines waits for a yes.
    ConfirmPaste { lines: Vec<String>, to: Target },
}

impl Session {
    /// `/register`: a guest sets a password; a password session changes it.
    pub(super) fn register(&mut self) {
        if self.net.is_protected() {
            return self.passwd();
        }
        self.dialog = Some(Dialog::NewPassword);
        self.ask(AskKind::Secret, "New password: ");
    }

    /// `/passwd`: the current password first (a guest has none: it sets one).
    pub(super) fn passwd(&mut self) {
        if !self.net.is_protected() {
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
        self.guard.lock().add(&secret);
        if matches!(self.phase, super::login::Phase::AskPassword { .. }) {
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
                self.ask = None;
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
                let Some(nick) = self.nick.clone() else {
                    return self.end_dialog(now);
                };
                let start = auth::login_start(&nick, &secret);
                self.send_bytes(&start.datagram);
                self.ask = None;
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
                let nick = self.nick.clone().unwrap_or_default();
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
                        match self.opts.known.check(&self.server_name(), &server_key) {
                            Ok(Pin::Same) => {}
                            Ok(Pin::New) => self.notice(format!(
                                "\tPinned the server's key in {} (first use).",
                                self.opts.known.path().display()
                            )),
                            Ok(Pin::Changed(old)) => {
                                self.warn_key_changed(&old, &server_key.to_base64());
                                self.notice(
                                    "\t** ERROR: not registering with a server whose key changed **",
                                );
                                self.end_dialog(now);
                                return true;
                            }
                            Err(e) => {
                                self.notice(format!("\t** cannot pin the server's key: {e} **"))
                            }
                        }
                        self.send_bytes(&upload);
                        self.dialog = Some(Dialog::Uploading {
                            password,
                            since: now,
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
                let nick = self.nick.clone();
                match nick {
                    // A guest that registers logs in with the new password at once, so its
                    // session is protected from then on.
                    Some(nick) if !self.net.is_protected() => {
                        if self.opts.ui == UiKind::Script {
                            self.script_password = Some(password.clone());
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
        let since = match &self.dialog {
            Some(
                Dialog::Registering { since, .. }
                | Dialog::Uploading { since, .. }
                | Dialog::Checking { since, .. },
            ) => *since,
            _ => return,
        };
        if now.saturating_duration_since(since) >= self.opts.login_timeout {
            self.notice("\t** ERROR: no answer from the server **");
            self.end_dialog(now);
        }
    }
}
