//! Logging in: the nickname, the retries, the password exchange, and logging in again by
//! itself when the connection is lost, then joining the same channels in the same order
//! so that the current one stays current.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::guard::check_nick;
use super::io::{AskKind, Effect, Place, Transmit, UiKind};
use super::machine::{Session, REJOIN_WAIT};
use super::phase::{Phase, Step, Why};
use super::state::Caps;
use crate::community::CatchUp;
use crate::render;
use crate::text::sanitize;
use proto::auth::{self, ClientAuthError};
use proto::{errors, Event, Request};

/// The longest wait between two tries to log in again.
const RECONNECT_MAX: Duration = Duration::from_secs(10);
/// Wrong passwords in a row before the nickname is asked again.
pub(super) const MAX_WRONG: u32 = 3;

/// The wait before reconnect try `n` (from 1): quick at first, then every 10 s.
fn retry_delay(n: u32) -> Duration {
    (Duration::from_millis(500) * 2u32.saturating_pow(n.saturating_sub(1).min(5)))
        .min(RECONNECT_MAX)
}

impl Session {
    pub(super) fn ask_nick(&mut self) {
        self.ask_nick_for(Why::First);
    }

    fn ask_nick_for(&mut self, why: Why) {
        self.phase = Phase::AskNick(why);
        self.ask(AskKind::Nick, "Your nickname: ");
    }

    pub(super) fn nick_typed(&mut self, typed: &str, now: Instant) {
        let Phase::AskNick(why) = &self.phase else {
            return;
        };
        let why = why.clone();
        if self.me.guard.found_in(typed) {
            self.notice(if self.me.guard.holds(typed) {
                "\t** not sent: that is a password, not a nickname **"
            } else {
                "\t** not sent: that nickname holds a password **"
            });
            return self.ask_nick_for(why);
        }
        match check_nick(typed) {
            Ok(nick) => self.start_login(nick.to_string(), why, now),
            Err(problem) => {
                self.refuse_nick(problem);
                self.ask_nick_for(why);
            }
        }
    }

    pub(super) fn start_login(&mut self, nick: String, why: Why, now: Instant) {
        if why == Why::Reconnect {
            // Lines typed meanwhile are queued: keep the chat prompt up (a script's is
            // asked for when the answers to its last line are in).
            let paced = self.ui == UiKind::Script && self.asking.pace.is_some();
            if !paced && self.asking.open.is_none_or(|(_, k)| k != AskKind::Chat) {
                self.ask(AskKind::Chat, "> ");
            }
        } else {
            self.asking.open = None;
        }
        self.phase = Phase::Login {
            nick,
            tries: 0,
            deadline: now,
            why,
        };
        self.login_tick(now);
    }

    /// Retries of LOGIN_REQ and AUTH_REQ, and giving up.
    pub(super) fn login_tick(&mut self, now: Instant) {
        let timeout = self.opts.login_timeout;
        let max = self.opts.login_tries;
        let Some(deadline) = self.phase.deadline() else {
            return;
        };
        if now < deadline {
            return;
        }
        if let Phase::Auth {
            step: Some(Step::Ack { asked }),
            nick,
            deadline,
            ..
        } = &mut self.phase
        {
            if *asked < max {
                // The LOGIN_ACK (or the finish) was lost: a sealed LOGIN_REQ asks for it
                // again (the server re-acknowledges a nickname held), instead of a new
                // exchange that would cost one of the few password tries a minute.
                *asked += 1;
                *deadline = now + timeout;
                let nick = nick.clone();
                return self.send(&Request::Login { nick: &nick });
            }
        }
        let (tries, why) = match &mut self.phase {
            Phase::Login { tries, why, .. } | Phase::Auth { tries, why, .. } => (tries, why),
            _ => return,
        };
        if why.limited() && *tries >= max {
            let why = why.clone();
            return self.unanswered(why, now);
        }
        *tries += 1;
        let n = *tries;
        let password = matches!(self.phase, Phase::Auth { .. });
        let (Phase::Login { deadline, why, .. } | Phase::Auth { deadline, why, .. }) =
            &mut self.phase
        else {
            return;
        };
        *deadline = now
            + match (why.limited(), password) {
                (true, _) => timeout,
                (false, false) => retry_delay(n),
                // The server allows a few password tries a minute: don't spend them fast.
                (false, true) => retry_delay(n).max(timeout),
            };
        let classic = why.classic();
        if classic {
            self.show(format!("trying to log in ({n})..."), Place::Active);
        }
        match &mut self.phase {
            Phase::Login { nick, .. } => {
                let nick = nick.clone();
                self.send(&Request::Login { nick: &nick });
            }
            Phase::Auth {
                nick,
                password,
                step,
                ..
            } => {
                // A fresh exchange each try: the server forgets a half-done one, and a
                // tentative session of an earlier try is no more.
                let start = auth::login_start(nick, password);
                let datagram = start.datagram.clone();
                *step = Some(Step::Challenge(Box::new(start)));
                self.unseal();
                self.send_bytes(&datagram);
            }
            _ => {}
        }
    }

    fn unanswered(&mut self, why: Why, now: Instant) {
        match why {
            Why::First | Why::Relogin => {
                self.show("Can't log in.", Place::Active);
                self.finish(1);
            }
            Why::Upgrade => {
                self.notice("\t** ERROR: registered, but the password login failed **");
                self.phase = Phase::Chat;
                self.next_chat_line(now);
            }
            Why::Rename { old, protected } => self.back_to(old, protected, now),
            Why::Reconnect => {}
        }
    }

    /// `/nick` failed: log in again under the old nickname, in the same channels.
    fn back_to(&mut self, old: String, protected: bool, now: Instant) {
        self.notice(format!("\t** logging in again as {} **", sanitize(&old)));
        self.me.nick = Some(old.clone());
        self.reconnect(old, protected, now);
    }

    fn reconnect(&mut self, nick: String, protected: bool, now: Instant) {
        if protected {
            self.want_password(nick, Why::Reconnect, 0, now);
        } else {
            self.start_login(nick, Why::Reconnect, now);
        }
    }

    /// ICMP says no server listens.
    pub(super) fn login_unreachable(&mut self, now: Instant) {
        match self.phase.why().cloned() {
            Some(Why::First | Why::Relogin)
                if matches!(self.phase, Phase::Login { .. } | Phase::Auth { .. }) =>
            {
                self.show(
                    format!("no chat server at {}:{}", self.opts.host, self.opts.port),
                    Place::Active,
                );
                self.finish(1);
            }
            Some(Why::Rename { old, protected }) => self.back_to(old, protected, now),
            // Reconnecting: the server may be restarting; the retries go on.
            _ => {}
        }
    }

    /// Answers to a login; `true` when the event was one.
    pub(super) fn login_event(&mut self, event: &Event<'_>, now: Instant) -> bool {
        match (&mut self.phase, event) {
            (Phase::Login { nick, why, .. }, Event::LoginAck { nick: acked }) => {
                let (why, _) = (why.clone(), nick);
                // A LOGIN_REQ makes a guest, whatever the session was before.
                self.unseal();
                if why.classic() {
                    self.show(render::render(event), Place::Active);
                }
                self.logged_in(acked.to_string(), why, now);
                true
            }
            (Phase::Login { nick, why, .. }, Event::Error { message }) => {
                let (nick, why) = (nick.clone(), why.clone());
                if *message == errors::PLEASE_LOG_IN || *message == errors::UNIMPLEMENTED {
                    // Late answers to what was sent before this login.
                    return true;
                }
                self.unseal();
                if why != Why::Reconnect {
                    self.show(render::render(event), Place::Active);
                }
                if *message == errors::NICK_REGISTERED {
                    self.want_password(nick, why, 0, now);
                } else {
                    self.refused(why, now);
                }
                true
            }
            (
                Phase::Auth {
                    nick,
                    password,
                    step,
                    deadline,
                    wrong,
                    why,
                    ..
                },
                Event::AuthChallenge { message },
            ) => {
                let Some(Step::Challenge(start)) = step.take() else {
                    return true;
                };
                match start.finish_with_key(password, message) {
                    Ok((finish, keys, server_key)) => {
                        *step = Some(Step::Ack { asked: 0 });
                        *deadline = now + self.opts.login_timeout;
                        // From now on both ways are sealed; the sealed LOGIN_ACK confirms.
                        // The keys go in before the finish goes out, so that no sealed
                        // answer can arrive before the receive thread can open it (a kept
                        // private message is sent once).
                        self.transmit(Transmit::Seal {
                            keys: Box::new(keys),
                            finish,
                        });
                        let server = self.server_name();
                        self.effect(Effect::CheckPin {
                            server,
                            key: server_key,
                        });
                    }
                    Err(ClientAuthError::WrongPassword) => {
                        let (nick, why, wrong) = (nick.clone(), why.clone(), *wrong + 1);
                        self.show("\t** ERROR: wrong password **", Place::Active);
                        if wrong >= MAX_WRONG {
                            self.too_many_wrong(why);
                        } else {
                            self.want_password(nick, why, wrong, now);
                        }
                    }
                    Err(ClientAuthError::Malformed) => {
                        let why = why.clone();
                        self.notice("\t** ERROR: malformed answer from the server **");
                        self.refused(why, now);
                    }
                }
                true
            }
            (
                Phase::Auth {
                    step: Some(Step::Challenge(start)),
                    deadline,
                    ..
                },
                Event::AuthRetry { token },
            ) => {
                // The server wants to know we receive here before it spends anything:
                // the same request, with its token.
                *deadline = now + self.opts.login_timeout;
                let again = start.with_token(token);
                self.send_bytes(&again);
                true
            }
            (
                Phase::Auth {
                    nick, step, why, ..
                },
                Event::LoginAck { .. },
            ) => {
                let Some(Step::Ack { .. }) = step.take() else {
                    return true;
                };
                let (nick, why) = (nick.clone(), why.clone());
                if why.classic() {
                    self.show(render::render(event), Place::Active);
                }
                self.logged_in(nick, why, now);
                true
            }
            (
                Phase::Auth {
                    nick, why, step, ..
                },
                Event::Error { message },
            ) => {
                let (nick, why) = (nick.clone(), why.clone());
                if *message == errors::PLEASE_LOG_IN || *message == errors::UNIMPLEMENTED {
                    return true;
                }
                if matches!(step, Some(Step::Ack { .. })) {
                    // The finish was refused: the tentative session never was.
                    self.unseal();
                }
                if why == Why::Reconnect {
                    if *message == errors::NO_ACCOUNT {
                        // The account is gone: the nickname is anyone's again.
                        self.start_login(nick, Why::Reconnect, now);
                    }
                    // Otherwise (too many attempts, say) the retries go on.
                    return true;
                }
                self.show(render::render(event), Place::Active);
                self.refused(why, now);
                true
            }
            _ => false,
        }
    }

    /// The server refused a login (its error is shown).
    fn refused(&mut self, why: Why, now: Instant) {
        match why {
            Why::First | Why::Relogin => self.ask_nick_for(why),
            Why::Upgrade => {
                self.phase = Phase::Chat;
                self.next_chat_line(now);
            }
            Why::Rename { old, protected } => self.back_to(old, protected, now),
            // Tried again when due.
            Why::Reconnect => {}
        }
    }

    fn too_many_wrong(&mut self, why: Why) {
        self.show("Too many wrong passwords.", Place::Active);
        self.notice("Log in again: type a nickname (not a password) at the prompt.");
        let why = match why {
            Why::Reconnect | Why::Rename { .. } | Why::Upgrade => Why::Relogin,
            other => other,
        };
        self.ask_nick_for(why);
    }

    /// Asks for the password of `nick` (a script's next line is its password).
    pub(super) fn want_password(&mut self, nick: String, why: Why, wrong: u32, now: Instant) {
        if self.ui == UiKind::Script && why == Why::Reconnect {
            if let Some(password) = self.me.script_password.clone() {
                return self.start_auth(nick, password, why, wrong, now);
            }
        }
        let prompt = if why.classic() {
            "Password: ".to_string()
        } else {
            format!("Password for {}: ", sanitize(&nick))
        };
        if why == Why::Reconnect && self.ui == UiKind::Plain {
            // A plain terminal is still reading the chat line: the password prompt comes
            // once that read is over.
            self.notice(format!(
                "** {} is registered: press Enter, then type its password **",
                sanitize(&nick)
            ));
        }
        self.phase = Phase::AskPassword { nick, wrong, why };
        self.ask(AskKind::Secret, &prompt);
    }

    /// A password typed at the login's prompt.
    pub(super) fn password_typed(&mut self, password: String, now: Instant) {
        let Phase::AskPassword { nick, wrong, why } = &self.phase else {
            return;
        };
        let (nick, wrong, why) = (nick.clone(), *wrong, why.clone());
        if password.is_empty() {
            // An Enter too many (or the one that brought the prompt up): ask again.
            return self.want_password(nick, why, wrong, now);
        }
        if self.ui == UiKind::Script {
            self.me.script_password = Some(password.clone());
        }
        self.start_auth(nick, password, why, wrong, now);
    }

    pub(super) fn start_auth(
        &mut self,
        nick: String,
        password: String,
        why: Why,
        wrong: u32,
        now: Instant,
    ) {
        if why != Why::Reconnect {
            self.asking.open = None;
        }
        self.phase = Phase::Auth {
            nick,
            password,
            step: None,
            tries: 0,
            deadline: now,
            wrong,
            why,
        };
        self.login_tick(now);
    }

    /// The server took us: chat, after rejoining the channels of before if there were any.
    fn logged_in(&mut self, nick: String, why: Why, now: Instant) {
        self.link.logged_in = Some(nick.clone());
        self.me.nick = Some(nick.clone());
        self.phase = Phase::Chat;
        self.link.caps = Caps::Asked(now);
        // A new login starts without caps and without groups: the server tells them again.
        self.mcast_reset();
        self.send(&Request::Caps {
            caps: self.wanted_caps(),
        });
        self.hello(now);
        self.prove(now);
        self.link.last_keepalive = now;
        self.link.probe = None;
        match &why {
            Why::First => {
                for title in self.opts.channels.clone() {
                    self.channels.user_joins.insert(title.to_lowercase());
                    self.send(&Request::Join { title: &title });
                }
            }
            Why::Reconnect => {
                self.rejoin.notice = Some("** connection to server restored **".into());
            }
            Why::Rename { .. } => {
                self.rejoin.notice = Some(format!("\tYou are now known as {}.", sanitize(&nick)));
            }
            Why::Relogin | Why::Upgrade => {}
        }
        self.rejoin_next(now);
        self.next_chat_line(now);
    }

    /// The server no longer knows us: say so, then log in again as before.
    pub(super) fn lost(&mut self, now: Instant) {
        let protected = self.link.sealed;
        self.log_in_again(
            "** connection to server lost; reconnecting **",
            protected,
            now,
        );
    }

    /// `/reconnect`: log off and in again at once, as after a lost connection (the
    /// messages not echoed yet are not sent again: the server had the connection).
    pub(super) fn reconnect_now(&mut self, now: Instant) {
        let protected = self.link.sealed;
        self.logoff();
        self.backlog.unconfirmed.clear();
        self.log_in_again("** reconnecting **", protected, now);
    }

    fn log_in_again(&mut self, notice: &str, protected: bool, now: Instant) {
        if !self.phase.is_chat() {
            return;
        }
        let Some(nick) = self.me.nick.clone() else {
            return;
        };
        self.notice(notice);
        self.unseal();
        self.link.logged_in = None;
        self.link.caps = Caps::Unknown;
        self.mcast_reset();
        self.link.probe = None;
        self.community_lost();
        self.take_channels_for_rejoin();
        self.requeue_unconfirmed(now);
        if self.dialog.take().is_some() {
            self.notice("\t(the command was cancelled)");
        }
        self.reconnect(nick, protected, now);
    }

    /// Moves the channels joined to the rejoin list, oldest first (before those a rejoin
    /// under way still has to join), and empties the nick lists.
    fn take_channels_for_rejoin(&mut self) {
        let mut list: VecDeque<String> = self.channels.joined.drain(..).rev().collect();
        list.extend(self.rejoin.list.drain(..));
        self.rejoin.list = list;
        self.rejoin.sent = None;
        self.forget_members();
    }

    /// `/login [NICK]`: log off, then log in anew (no channels).
    pub(super) fn relogin(&mut self, nick: Option<&str>, now: Instant) {
        // Log off first, so a refused new nickname leaves no half-state.
        self.logoff();
        self.mcast_reset();
        self.me.nick = None;
        self.channels.joined.clear();
        self.rejoin.list.clear();
        self.community.catch_up = CatchUp::default();
        self.community.catching_up = false;
        self.forget_members();
        self.link.caps = Caps::Unknown;
        match nick.map(check_nick) {
            Some(Ok(nick)) => self.start_login(nick.to_string(), Why::Relogin, now),
            Some(Err(problem)) => {
                self.refuse_nick(problem);
                self.ask_nick_for(Why::Relogin);
            }
            None => self.ask_nick_for(Why::Relogin),
        }
    }

    /// `/nick NEW`: log in under the new nickname and rejoin the channels.
    pub(super) fn rename(&mut self, new: &str, now: Instant) {
        let Some(old) = self.me.nick.clone() else {
            return;
        };
        if old == new {
            return self.notice(format!("\tYou are {} already.", sanitize(new)));
        }
        let protected = self.link.sealed;
        if protected {
            // The protected session ends with the old nickname, and the server's answers
            // to a new login come unsealed: log off first, so they are taken.
            self.logoff();
        }
        self.take_channels_for_rejoin();
        self.start_login(new.to_string(), Why::Rename { old, protected }, now);
    }

    /// Joins the next channel of the rejoin list, or says the rejoin is done.
    fn rejoin_next(&mut self, now: Instant) {
        match self.rejoin.list.front().cloned() {
            Some(title) => {
                self.channels.quiet_joins.insert(title.to_lowercase());
                self.send(&Request::Join { title: &title });
                self.rejoin.sent = Some((now, 1));
            }
            None => {
                self.rejoin.sent = None;
                self.community.catching_up = false;
                if let Some(notice) = self.rejoin.notice.take() {
                    self.notice(notice);
                }
                self.flush_queue(now);
            }
        }
    }

    pub(super) fn rejoin_tick(&mut self, now: Instant) {
        let Some((sent, tries)) = self.rejoin.sent else {
            return;
        };
        if !self.phase.is_chat() || now.saturating_duration_since(sent) < REJOIN_WAIT {
            return;
        }
        let Some(title) = self.rejoin.list.front().cloned() else {
            return;
        };
        if tries >= 5 {
            self.notice(format!("\t** could not join {} again **", sanitize(&title)));
            self.rejoin.list.pop_front();
            return self.rejoin_next(now);
        }
        self.send(&Request::Join { title: &title });
        self.rejoin.sent = Some((now, tries + 1));
    }

    /// Answers to a rejoin; `true` when the event was one.
    pub(super) fn rejoin_event(&mut self, event: &Event<'_>, now: Instant) -> bool {
        let Some(front) = self.rejoin.list.front().cloned() else {
            return false;
        };
        let ours = match event {
            Event::JoinAck(info) => info.title.eq_ignore_ascii_case(&front),
            Event::Error { message } => {
                message.strip_prefix("no channel named ") == Some(front.as_str())
            }
            _ => false,
        };
        if !ours {
            return false;
        }
        if let Event::Error { .. } = event {
            self.channels.quiet_joins.remove(&front.to_lowercase());
            self.show(render::render(event), Place::Active);
        } else {
            self.chat_event(event, now);
            self.rejoined(&front);
        }
        self.rejoin.list.pop_front();
        self.rejoin_next(now);
        true
    }
}

impl Session {
    /// This server's name among the pinned keys: `host:port` as the user gave them.
    pub(super) fn server_name(&self) -> String {
        format!("{}:{}", self.opts.host, self.opts.port)
    }

    /// Tells the user, loudly, that the server's OPAQUE key is not the one pinned.
    pub(super) fn warn_key_changed(&mut self, pinned: &str, shown: &str) {
        for line in [
            "\t@@@ WARNING: THE SERVER'S KEY HAS CHANGED @@@".to_string(),
            format!(
                "\tThe key of {} is not the one pinned in {}.",
                sanitize(&self.server_name()),
                self.opts.known_servers.display()
            ),
            format!("\tpinned: {pinned}"),
            format!("\tshown:  {shown}"),
            "\tSomeone may be impersonating the server. If its operator really replaced it,"
                .to_string(),
            "\tdelete its line from that file.".to_string(),
        ] {
            self.show(line, Place::Active);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnect_tries_back_off_to_ten_seconds() {
        assert_eq!(retry_delay(1), Duration::from_millis(500));
        assert_eq!(retry_delay(2), Duration::from_secs(1));
        assert_eq!(retry_delay(4), Duration::from_secs(4));
        assert_eq!(retry_delay(6), RECONNECT_MAX);
        assert_eq!(retry_delay(60), RECONNECT_MAX);
    }
}
