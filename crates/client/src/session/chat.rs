//! Chat: what a typed line does (commands, messages split to fit, lines queued while the
//! connection is down), and what the server's events do to the channels, the members and
//! the lines shown.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::guard::{self, NickError};
use super::io::{Out, Place, Shown, Target, UiKind};
use super::machine::Session;
use super::state::Run;
use crate::command::{self, Command};
use crate::render;
use crate::text::{self, sanitize};
use proto::{errors, words, Event, Request, DEFAULT_MAX_DATAGRAM};

/// More lines than this in one paste are sent only after the user says yes.
const PASTE_CONFIRM: usize = 5;
/// Lines typed while the connection is down wait for it, up to this many.
const QUEUE_MAX: usize = 50;
/// A public message the server has not echoed back within this long is not sent again
/// after a reconnect (it probably arrived; the echo was lost).
const UNCONFIRMED_MAX_AGE: Duration = Duration::from_secs(10);
/// How long after an automatic LIST_USERS its USER_ITEMs fill the nick list quietly.
const QUIET_USERS: Duration = Duration::from_secs(2);

impl Session {
    /// Shows a server event and keeps what it says about channels and members.
    pub(super) fn chat_event(&mut self, event: &Event<'_>, now: Instant) {
        if self.catch_up_event(event) {
            return;
        }
        let own = self.me.nick.clone().unwrap_or_default();
        let mut place = Place::Active;
        let mut mention = false;
        let mut focus = false;
        let mut shown = render::shown(event);
        match *event {
            Event::PublicMsg {
                title,
                sender,
                text,
            } => {
                if self.me.ignored.contains(&sender.to_lowercase()) {
                    return;
                }
                place = Place::Channel(sanitize(title).into_owned());
                mention = sender != own && guard::mentions(text, &own);
                if sender == own {
                    if let Some(i) = self
                        .backlog
                        .unconfirmed
                        .iter()
                        .position(|(_, t, _)| t == text)
                    {
                        self.backlog.unconfirmed.remove(i);
                    }
                }
            }
            Event::PrivateMsg { sender, .. } => {
                if self.me.ignored.contains(&sender.to_lowercase()) {
                    return;
                }
                place = Place::Private(sanitize(sender).into_owned());
                // A message to you alone is for you: it rings like a mention.
                mention = true;
            }
            Event::UserJoins { title, nick } => {
                self.member(title, nick, true);
                place = Place::Channel(sanitize(title).into_owned());
            }
            Event::UserParts { title, nick } => {
                self.member(title, nick, false);
                place = Place::Channel(sanitize(title).into_owned());
            }
            Event::JoinAck(info) => {
                let key = info.title.to_lowercase();
                self.joined(info.title, now);
                place = Place::Channel(sanitize(info.title).into_owned());
                focus = self.channels.user_joins.remove(&key);
                if self.channels.quiet_joins.remove(&key) {
                    shown = false;
                }
            }
            Event::PartAck(info) => {
                let key = info.title.to_lowercase();
                self.channels.joined.retain(|c| c.to_lowercase() != key);
                if self.channels.members.remove(&key).is_some() {
                    self.members_changed(&key);
                }
            }
            Event::UserItem { nick, channels, .. } => {
                for title in words(channels) {
                    self.member(title, nick, true);
                }
                if self.channels.quiet_users_until.is_some_and(|t| now < t) {
                    shown = false;
                }
            }
            Event::Error { message } if message == errors::NO_CURRENT_CHANNEL => {
                self.show(render::render(event), place);
                if !self.channels.hinted {
                    self.channels.hinted = true;
                    self.notice(
                        "\tJoin a channel first: /channels lists them, /join TITLE joins one.",
                    );
                }
                return;
            }
            Event::HistoryMsg { sender, .. } | Event::StoredPrivate { sender, .. }
                if self.me.ignored.contains(&sender.to_lowercase()) =>
            {
                return;
            }
            _ => {
                self.community_note(event);
                if let Some((at, calls)) = self.community_place(event) {
                    place = at;
                    mention = calls;
                }
            }
        }
        if shown {
            self.send_out(Out::Line(Shown {
                text: render::render(event),
                place,
                mention,
                focus,
                own: false,
            }));
        }
    }

    /// A channel was joined (or became current again): it goes to the front.
    pub(super) fn joined(&mut self, title: &str, now: Instant) {
        let key = title.to_lowercase();
        self.channels.joined.retain(|c| c.to_lowercase() != key);
        self.channels.joined.insert(0, title.to_string());
        let entry = self
            .channels
            .members
            .entry(key.clone())
            .or_insert_with(|| (title.to_string(), BTreeSet::new()));
        if let Some(own) = &self.me.nick {
            entry.1.insert(own.clone());
        }
        self.members_changed(&key);
        if self.ui == UiKind::FullScreen {
            // The nick list: LIST_USERS answers for the current channel, which this now is.
            self.channels.quiet_users_until = Some(now + QUIET_USERS);
            self.send(&Request::ListUsers);
        }
    }

    pub(super) fn member(&mut self, title: &str, nick: &str, present: bool) {
        let key = title.to_lowercase();
        let Some((_, nicks)) = self.channels.members.get_mut(&key) else {
            return;
        };
        let changed = if present {
            nicks.insert(nick.to_string())
        } else {
            nicks.remove(nick)
        };
        if changed {
            self.members_changed(&key);
        }
    }

    /// A chat line (or several, pasted) was typed.
    pub(super) fn chat(&mut self, typed: &str, to: &Target, now: Instant) {
        let lines = text::lines(typed);
        if lines.len() > PASTE_CONFIRM && self.phase.is_chat() {
            let lines = lines.into_iter().map(str::to_string).collect();
            return self.confirm_paste(lines, to.clone());
        }
        let owned: Vec<String> = lines.into_iter().map(str::to_string).collect();
        self.run_lines(owned, to, now);
        self.next_chat_line(now);
    }

    /// Carries out lines one by one; a line that starts a dialog or a login ends the run,
    /// so that what follows it (perhaps a password typed ahead) is never sent as text.
    pub(super) fn run_lines(&mut self, lines: Vec<String>, to: &Target, now: Instant) {
        let total = lines.len();
        for (i, line) in lines.into_iter().enumerate() {
            self.chat_line(&line, to, now);
            let interrupted =
                self.run == Run::Done || self.dialog.is_some() || self.phase.is_busy();
            if interrupted && i + 1 < total {
                self.notice(format!("\t({} more lines not sent)", total - i - 1));
                return;
            }
        }
    }

    pub(super) fn chat_line(&mut self, line: &str, to: &Target, now: Instant) {
        let command = command::parse(line);
        if command == Command::Quit {
            return self.quit(now);
        }
        // Before anything else, queued lines too: nothing of a line that holds a password
        // goes anywhere, whatever command carries it.
        if let Some(why) = self.held_back(line, &command) {
            return self.notice(why);
        }
        if !self.connected() {
            if command == Command::Nothing {
                return;
            }
            if self.backlog.queue.len() < QUEUE_MAX {
                self.backlog.queue.push_back((line.to_string(), to.clone()));
            }
            if !self.backlog.told {
                self.backlog.told = true;
                self.notice("\t(not connected: what you type is sent when the connection is back)");
            }
            return;
        }
        let mut scratch = String::new();
        match command {
            Command::Nothing | Command::Quit => {}
            Command::Help => {
                for line in command::HELP {
                    self.notice(format!("\t{line}"));
                }
            }
            Command::Usage(usage) => self.notice(format!("\tUsage: {usage}")),
            Command::Unknown(name) => self.notice(format!("\t{}: unknown command", sanitize(name))),
            Command::Register => self.register(),
            Command::Status => self.show_status(now),
            Command::Passwd => self.passwd(),
            Command::Unregister => self.unregister(),
            Command::Login(nick) => self.relogin(nick, now),
            Command::Nick(new) => self.rename(new, now),
            Command::Window(_) | Command::Search(_) => {
                self.notice("\tThat works in the full-screen client only.")
            }
            Command::Ignore("") if self.me.ignored.is_empty() => {
                self.notice("\tNobody is ignored.")
            }
            Command::Ignore("") => {
                let list: Vec<&str> = self.me.ignored.iter().map(String::as_str).collect();
                self.notice(format!("\tIgnored: {}", list.join(" ")));
            }
            Command::Ignore(nick) => {
                self.me.ignored.insert(nick.to_lowercase());
                self.notice(format!("\tIgnoring {}.", sanitize(nick)));
            }
            Command::Unignore(nick) => {
                if self.me.ignored.remove(&nick.to_lowercase()) {
                    self.notice(format!("\tNo longer ignoring {}.", sanitize(nick)));
                } else {
                    self.notice(format!("\t{} was not ignored.", sanitize(nick)));
                }
            }
            Command::Part(title) if !title.is_empty() && !self.channels.is_member(title) => {
                self.notice(format!("\tYou are not in {}.", sanitize(title)));
            }
            Command::Join(title) => {
                self.channels.user_joins.insert(title.to_lowercase());
                self.send(&Request::Join { title });
            }
            Command::Users | Command::Who(_) | Command::Whois(_) => {
                // Asked for: shown, even right after a join.
                self.channels.quiet_users_until = None;
                if let Some(request) = command.request(&mut scratch) {
                    self.send(&request);
                }
            }
            Command::Reconnect => self.reconnect_now(now),
            Command::Community(part5) => {
                let request = part5.request();
                if let Request::ChanCreate { title, .. } = request {
                    // Created and joined: its buffer comes to the front, as for /join.
                    self.channels.user_joins.insert(title.to_lowercase());
                }
                self.send(&request);
            }
            Command::Say(text) => self.say(text, to, now),
            Command::Private { nick, text } => self.private(nick, text),
            _ => {
                if let Some(request) = command.request(&mut scratch) {
                    self.send(&request);
                }
            }
        }
    }

    /// What to tell the user when `line` holds a password typed before (anywhere in it,
    /// in a message or in any argument of any command): it is not sent. The commands that
    /// set or check a password (`/register`, `/passwd`, a login) never hold one: they ask
    /// for it at a password prompt.
    fn held_back(&self, line: &str, command: &Command<'_>) -> Option<String> {
        let guard = &self.me.guard;
        if guard.holds(line) {
            return Some("\t** not sent: that is a password **".into());
        }
        if !guard.found_in(line) {
            return None;
        }
        let name = match command {
            Command::Say(_) => None,
            _ => line.split_whitespace().next(),
        };
        Some(match name {
            // A command's name is shown, unless it is (part of) the password itself.
            Some(name) if !guard.found_in(name) => {
                format!("\t** {} not sent: it holds a password **", sanitize(name))
            }
            Some(_) => "\t** that command was not sent: it holds a password **".into(),
            None => "\t** not sent: that line holds a password **".into(),
        })
    }

    /// A message, in pieces that fit a datagram, to where it was typed.
    pub(super) fn say(&mut self, text: &str, to: &Target, now: Instant) {
        match to {
            Target::Private(nick) => return self.private(nick, text),
            Target::Channel(title) if !self.channels.is_current(title) => {
                // Speaking in a channel's buffer speaks there: make it current first. A
                // join of a channel one is in tells nobody, so this is safe anywhere.
                self.channels.quiet_joins.insert(title.to_lowercase());
                self.send(&Request::Join { title });
            }
            _ => {}
        }
        let channel = match to {
            Target::Channel(title) => Some(title.clone()),
            _ => self.channels.joined.first().cloned(),
        };
        let max = DEFAULT_MAX_DATAGRAM.saturating_sub(2);
        for piece in text::split_message(text, max) {
            self.send(&Request::SendPublic { text: piece });
            while self.backlog.unconfirmed.len() >= QUEUE_MAX
                || self.backlog.unconfirmed.front().is_some_and(|(t, _, _)| {
                    now.saturating_duration_since(*t) > UNCONFIRMED_MAX_AGE
                })
            {
                self.backlog.unconfirmed.pop_front();
            }
            self.backlog
                .unconfirmed
                .push_back((now, piece.to_string(), channel.clone()));
        }
    }

    /// The public messages the server never echoed go first when the connection is back.
    pub(super) fn requeue_unconfirmed(&mut self, now: Instant) {
        let lost: Vec<_> = self.backlog.unconfirmed.drain(..).collect();
        for (sent, text, channel) in lost.into_iter().rev() {
            if now.saturating_duration_since(sent) > UNCONFIRMED_MAX_AGE {
                continue;
            }
            // Queued lines are read as typed: a message starting with `/` is escaped.
            let line = if text.starts_with('/') {
                format!("/{text}")
            } else {
                text
            };
            let to = channel.map_or(Target::Current, Target::Channel);
            self.backlog.queue.push_front((line, to));
        }
    }

    pub(super) fn private(&mut self, nick: &str, text: &str) {
        let max = DEFAULT_MAX_DATAGRAM.saturating_sub(3 + nick.len());
        for piece in text::split_message(text, max) {
            self.send(&Request::SendPrivate {
                recipient: nick,
                text: piece,
            });
            self.send_out(Out::Line(Shown {
                text: format!("\t-> {}: {}", sanitize(nick), sanitize(piece)),
                place: Place::Private(sanitize(nick).into_owned()),
                mention: false,
                focus: false,
                own: true,
            }));
        }
    }

    pub(super) fn refuse_nick(&mut self, problem: NickError) {
        if problem == NickError::WhiteSpace {
            self.notice("Invalid nickname. Must contain no spaces.");
        }
    }

    /// Lines typed while the connection was down go out now that it is back.
    pub(super) fn flush_queue(&mut self, now: Instant) {
        self.backlog.told = false;
        while self.connected() && self.dialog.is_none() {
            let Some((line, to)) = self.backlog.queue.pop_front() else {
                return;
            };
            self.chat_line(&line, &to, now);
        }
    }

    /// Logged in, in the channels: lines go out as typed.
    pub(super) fn connected(&self) -> bool {
        self.phase.is_chat() && self.rejoin.list.is_empty()
    }
}
