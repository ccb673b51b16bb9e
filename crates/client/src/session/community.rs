//! Part 5 in the session: `HELLO` after every login (unremarked by a server that does not
//! know it), the community events placed in their buffers, and catching up after a lost
//! connection: each channel rejoined asks for the history it missed, which is shown apart,
//! as history, once the whole answer is in.

use std::time::Instant;

use super::io::Place;
use super::machine::{Session, CAPS_WAIT};
use super::state::Hello;
use crate::community::Intercept;
use crate::text::sanitize;
use proto::{errors, Event, Request};

impl Session {
    /// Says `HELLO`, so the server sends its message of the day and counts this client as
    /// one that takes part-5 notices.
    pub(super) fn hello(&mut self, now: Instant) {
        self.community.hello = Hello::Asked {
            quiet: self.community.motd_shown,
            since: now,
        };
        self.send(&Request::Hello {
            client: concat!("chat-client/", env!("CARGO_PKG_VERSION")),
        });
    }

    /// The answers to `HELLO`; `true` when the event was one (and is not shown).
    pub(super) fn hello_event(&mut self, event: &Event<'_>) -> bool {
        let Hello::Asked { quiet, .. } = self.community.hello else {
            return false;
        };
        match event {
            Event::HelloAck { .. } => {
                self.community.hello = Hello::Part5;
                self.community.motd_shown = true;
                for title in std::mem::take(&mut self.community.due) {
                    self.ask_catch_up(&title);
                }
                true
            }
            // A server without part 5 does not know the code (its answer to CAPS_REQ,
            // sent first, was taken as such before).
            Event::Error { message } if *message == errors::UNIMPLEMENTED => {
                self.community.hello = Hello::Classic;
                self.community.due.clear();
                true
            }
            Event::Motd { .. } => quiet,
            _ => false,
        }
    }

    /// A server that answers nothing to `HELLO` (nor to other codes it does not know)
    /// has no part 5.
    pub(super) fn hello_tick(&mut self, now: Instant) {
        if let Hello::Asked { since, .. } = self.community.hello {
            if now.saturating_duration_since(since) >= CAPS_WAIT {
                self.community.hello = Hello::Classic;
                self.community.due.clear();
            }
        }
    }

    /// A channel was joined again after a lost connection: ask what was missed there,
    /// once the server is known to speak part 5.
    pub(super) fn rejoined(&mut self, title: &str) {
        if !self.community.catching_up {
            return;
        }
        match self.community.hello {
            Hello::Part5 => self.ask_catch_up(title),
            Hello::Asked { .. } => self.community.due.push(title.to_string()),
            Hello::Unknown | Hello::Classic => {}
        }
    }

    fn ask_catch_up(&mut self, title: &str) {
        self.community.catch_up.expect_answer(title);
        let mut number = String::new();
        let request = self
            .community
            .catch_up
            .request_for(title, &mut number)
            .to_bytes();
        self.send_bytes(&request);
    }

    /// The connection is gone: answers awaited will not come, and the next login says
    /// `HELLO` again.
    pub(super) fn community_lost(&mut self) {
        self.community.catching_up = true;
        self.community.catch_up.cancel_pending();
        self.community.due.clear();
        self.community.hello = Hello::Unknown;
    }

    /// Lets the catch-up see `event` first: it notes the channels and the messages seen,
    /// holds the history it asked for, and shows what was missed once it is all in.
    /// `true` when the event was taken.
    pub(super) fn catch_up_event(&mut self, event: &Event<'_>) -> bool {
        let ignored = &self.me.ignored;
        let hidden = |nick: &str| ignored.contains(&nick.to_lowercase());
        match self.community.catch_up.intercept(event, &hidden) {
            Intercept::Pass => false,
            Intercept::Hold => true,
            Intercept::Release(lines) => {
                let place = match event {
                    Event::HistoryEnd { title, .. } => Place::Channel(sanitize(title).into_owned()),
                    _ => Place::Active,
                };
                for text in lines {
                    self.show(text, place.clone());
                }
                true
            }
        }
    }

    /// What a part-5 event changes in the session: a member removed by a moderator leaves
    /// the nick list (a part-5 client is told with `CHAN_NOTICE kick`, not `USER_PARTS`).
    pub(super) fn community_note(&mut self, event: &Event<'_>) {
        if let Event::ChanNotice {
            title,
            action: "kick",
            args,
            ..
        } = *event
        {
            let nick = args.split(' ').next().unwrap_or_default();
            self.member(title, nick, false);
        }
    }

    /// Where a part-5 event is shown, and whether it calls for the user like a mention;
    /// `None` for the events of the parts before.
    pub(super) fn community_place(&self, event: &Event<'_>) -> Option<(Place, bool)> {
        let channel = |title: &str| Place::Channel(sanitize(title).into_owned());
        Some(match *event {
            Event::ChanNotice { title, .. }
            | Event::ChanModes { title, .. }
            | Event::ChanEntry { title, .. }
            | Event::HistoryMsg { title, .. }
            | Event::HistoryEnd { title, .. } => (channel(title), false),
            // Kept for the user while away: it rings like any private message.
            Event::StoredPrivate { sender, .. } => {
                (Place::Private(sanitize(sender).into_owned()), true)
            }
            Event::PrivateStored { recipient } => {
                (Place::Private(sanitize(recipient).into_owned()), false)
            }
            Event::Invited { .. } | Event::ServerNotice { .. } => (Place::Active, true),
            Event::Motd { .. }
            | Event::StatusItem { .. }
            | Event::OperAck { .. }
            | Event::MailRefusals { .. } => (Place::Active, false),
            _ => return None,
        })
    }
}
