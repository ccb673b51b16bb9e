//! The [`Session`] itself: its state, the one entry point [`Session::handle`], and the
//! queues the caller drains afterwards ([`Session::poll_transmit`],
//! [`Session::poll_effect`], [`Session::poll_output`], [`Session::poll_timeout`]), as
//! quinn-proto's `Connection` and str0m's `Rtc` do. What each input does is decided in
//! the files beside this one (`login`, `chat`, `community`, `dialog`, `mcast`), which add
//! to `impl Session`.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::guard::check_nick;
use super::io::{
    Ask, AskKind, Effect, Input, Options, Out, Place, Shown, Status, Transmit, UiKind,
};
use super::paths::{Mcast, Path};
use super::phase::{Phase, Why};
use super::state::{
    Asking, Backlog, Caps, Channels, Community, Dialog, Hello, Link, Me, Rejoin, Run,
};
use crate::net::NetEvent;
use crate::text::sanitize;
use proto::channel_data::LOST_AFTER;
use proto::{code, encode_raw, errors, Event, Request};

/// The caps this client asks for after every login (part 4): `batch` lets a busy server
/// pack events, which [`crate::net`] unpacks. A server that grants anything speaks
/// part 4, so PING is understood and used to notice a lost connection.
pub(super) const WANTED_CAPS: &str = "batch";
/// The same with multicast channels (part 4; see `mcast.rs`), unless `--no-multicast`.
pub(super) const WANTED_CAPS_MULTICAST: &str = "batch multicast";
/// How long an answer to CAPS_REQ (or HELLO) may take; none by then means a server
/// without part 4 (or 5).
pub(super) const CAPS_WAIT: Duration = Duration::from_secs(3);
/// Scripted input reads its next line once the server has been quiet this long after a
/// command was sent, so answers show in the order of the commands that asked for them.
const PACE_QUIET: Duration = Duration::from_millis(30);
/// The longest one scripted command waits for that quiet.
const PACE_MAX: Duration = Duration::from_secs(1);
/// The longest scripted input waits for answers after its last line, however chatty the
/// server stays.
const LINGER_MAX: Duration = Duration::from_secs(5);
/// How long a rejoin waits for its JOIN_ACK before asking again.
pub(super) const REJOIN_WAIT: Duration = Duration::from_secs(2);

/// The session's state; see the module docs of `session`.
pub(crate) struct Session {
    pub(super) opts: Options,
    /// Which interface runs the session.
    pub(super) ui: UiKind,
    /// The server's address as resolved, for `/status`.
    pub(super) server: SocketAddr,
    /// The time of the input being handled: a datagram queued now is traffic then.
    now: Instant,
    pub(super) phase: Phase,
    pub(super) asking: Asking,
    pub(super) run: Run,
    pub(super) me: Me,
    pub(super) link: Link,
    pub(super) dialog: Option<Dialog>,
    pub(super) channels: Channels,
    pub(super) rejoin: Rejoin,
    pub(super) backlog: Backlog,
    /// Multicast channels: their groups, keys and paths, and the drop counters.
    pub(super) mcast: Mcast,
    pub(super) community: Community,
    queued: Queued,
}

/// What the caller has yet to drain.
#[derive(Default)]
struct Queued {
    transmits: VecDeque<Transmit>,
    effects: VecDeque<Effect>,
    outputs: VecDeque<Out>,
    /// The status last said, so that only changes are.
    last_status: Status,
}

impl Session {
    /// A session run by an interface of kind `ui` with the server at `server`, started at
    /// `now`: it logs in with the nickname given, or asks for one.
    pub(crate) fn new(opts: Options, ui: UiKind, server: SocketAddr, now: Instant) -> Session {
        let mut session = Session {
            opts,
            ui,
            server,
            now,
            phase: Phase::Idle,
            asking: Asking::default(),
            run: Run::Going,
            me: Me::default(),
            link: Link::new(now),
            dialog: None,
            channels: Channels::default(),
            rejoin: Rejoin::default(),
            backlog: Backlog::default(),
            mcast: Mcast::default(),
            community: Community::default(),
            queued: Queued::default(),
        };
        match session.opts.nick.clone() {
            Some(nick) => match check_nick(&nick) {
                Ok(nick) => session.start_login(nick.to_string(), Why::First, now),
                Err(problem) => {
                    session.refuse_nick(problem);
                    session.ask_nick();
                }
            },
            None => session.ask_nick(),
        }
        session
    }

    /// Handles one input at `now`; then drain the `poll_` queues. Inputs after the end
    /// ([`Out::Exit`]) are ignored.
    pub(crate) fn handle(&mut self, input: Input, now: Instant) {
        if self.run == Run::Done {
            return;
        }
        self.now = now;
        match input {
            Input::Net(NetEvent::Datagram(bytes)) => {
                self.link.traffic = now;
                self.datagram(&bytes, now);
            }
            Input::Net(NetEvent::Unreachable) => self.unreachable(now),
            Input::Net(NetEvent::Group { group, datagram }) => {
                // Channel traffic that comes by multicast is traffic too (scripted input
                // waits for answers to fall quiet).
                self.link.traffic = now;
                self.group_datagram(group, &datagram, now);
            }
            Input::Signal(code) => self.finish(code),
            Input::End => self.end_of_input(now),
            Input::Answer {
                serial,
                kind,
                text,
                to,
            } => {
                let accepted = self
                    .asking
                    .open
                    .is_some_and(|(s, k)| k == kind && (kind == AskKind::Chat || s == serial));
                if !accepted {
                    // Typed at a prompt that had changed under it: never act on it.
                    if kind == AskKind::Chat && !text.trim().is_empty() {
                        self.notice("\t** that line was not sent **");
                    }
                    return;
                }
                match kind {
                    AskKind::Chat => {
                        self.asking.answered = self.asking.answered.max(serial);
                        self.chat(&text, &to, now);
                    }
                    AskKind::Nick => self.nick_typed(&text, now),
                    AskKind::Secret => self.secret_typed(text, now),
                    AskKind::Confirm => self.confirm_typed(&text, now),
                }
            }
            Input::Timeout => self.tick(now, false),
            Input::Woke => self.tick(now, true),
            Input::SendFailed(error) => self.notice(format!("\t** cannot send: {error} **")),
            Input::CannotListen { group, error } => self.mcast_cannot_listen(group, error),
            Input::Pinned { key, pin } => self.pinned(&key, pin, now),
        }
    }

    /// The next thing for the network layer to do, in order.
    pub(crate) fn poll_transmit(&mut self) -> Option<Transmit> {
        self.queued.transmits.pop_front()
    }

    /// The next thing for the shell to do besides sending.
    pub(crate) fn poll_effect(&mut self) -> Option<Effect> {
        self.queued.effects.pop_front()
    }

    /// The next thing to tell the interface; a changed status comes after the rest.
    pub(crate) fn poll_output(&mut self) -> Option<Out> {
        if let Some(out) = self.queued.outputs.pop_front() {
            return Some(out);
        }
        if self.run == Run::Done {
            return None;
        }
        let status = Status {
            nick: self.me.nick.as_deref().map(|n| sanitize(n).into_owned()),
            channel: self
                .channels
                .joined
                .first()
                .map(|c| sanitize(c).into_owned()),
            conn: self.phase.describe(self.rejoin.list.is_empty()),
        };
        if status == self.queued.last_status {
            return None;
        }
        self.queued.last_status = status.clone();
        Some(Out::Status(status))
    }

    /// When to hand the session [`Input::Timeout`] next: the earliest of its timers
    /// (login tries, dialogs, rejoins, caps, keepalives, multicast paths, the pacing of
    /// scripted input), or `None` when nothing waits for time.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        if self.run == Run::Done {
            return None;
        }
        let chat = self.phase.is_chat();
        let after = |since: Instant, wait: Duration| since + wait;
        let quiet = |since: Instant, max: Duration, wait: Duration| {
            (self.link.traffic + wait).min(since + max)
        };
        let keepalive = chat.then(|| match (self.link.caps, self.link.probe) {
            (Caps::Granted, Some((sent, _))) => sent + self.opts.pong_wait,
            _ => self.link.last_keepalive + self.opts.keepalive,
        });
        let rejoin = self
            .rejoin
            .sent
            .filter(|_| chat && !self.rejoin.list.is_empty())
            .map(|(sent, _)| after(sent, REJOIN_WAIT));
        let caps = match self.link.caps {
            Caps::Asked(since) => Some(after(since, CAPS_WAIT)),
            _ => None,
        };
        let hello = match self.community.hello {
            Hello::Asked { since, .. } => Some(after(since, CAPS_WAIT)),
            _ => None,
        };
        let groups = self
            .mcast
            .channels
            .values()
            .filter(|c| chat && c.path == Path::Confirmed)
            .map(|c| c.last_heard.map_or(self.now, |t| t + LOST_AFTER));
        let linger = match self.run {
            Run::Lingering(since) => Some(quiet(since, LINGER_MAX, self.opts.linger)),
            _ => None,
        };
        [
            self.phase.deadline(),
            self.dialog
                .as_ref()
                .and_then(Dialog::waiting_since)
                .map(|since| after(since, self.opts.login_timeout)),
            rejoin,
            caps,
            hello,
            self.proof_deadline(),
            keepalive,
            self.asking
                .pace
                .map(|since| quiet(since, PACE_MAX, PACE_QUIET)),
            linger,
        ]
        .into_iter()
        .flatten()
        .chain(groups)
        .min()
    }

    /// Whether the session is over ([`Out::Exit`] was said).
    pub(crate) fn is_done(&self) -> bool {
        self.run == Run::Done
    }

    /// What the passing of time brings: login retries, keepalives (at once when the
    /// machine `woke`), lost connections, pacing of scripted input.
    fn tick(&mut self, now: Instant, woke: bool) {
        self.login_tick(now);
        self.dialog_tick(now);
        self.rejoin_tick(now);
        if let Caps::Asked(since) = self.link.caps {
            if now.saturating_duration_since(since) >= CAPS_WAIT {
                self.link.caps = Caps::None;
            }
        }
        self.hello_tick(now);
        self.proof_tick(now);
        self.keepalive_tick(now, woke);
        self.mcast_tick(now);
        let silent = now.saturating_duration_since(self.link.traffic);
        if let Some(since) = self.asking.pace {
            if silent >= PACE_QUIET || now.saturating_duration_since(since) >= PACE_MAX {
                self.asking.pace = None;
                self.ask(AskKind::Chat, "> ");
            }
        }
        if let Run::Lingering(since) = self.run {
            if silent >= self.opts.linger || now.saturating_duration_since(since) >= LINGER_MAX {
                self.finish(0);
            }
        }
    }

    // ---- output ----

    pub(super) fn send_out(&mut self, out: Out) {
        self.queued.outputs.push_back(out);
    }

    pub(super) fn effect(&mut self, effect: Effect) {
        self.queued.effects.push_back(effect);
    }

    pub(super) fn show(&mut self, text: impl Into<String>, place: Place) {
        self.send_out(Out::Line(Shown {
            text: text.into(),
            place,
            mention: false,
            focus: false,
            own: false,
        }));
    }

    /// A line of the client's own, shown where the user looks.
    pub(super) fn notice(&mut self, text: impl Into<String>) {
        self.send_out(Out::Line(Shown::notice(text.into())));
    }

    /// Asks for something to be typed; answers to earlier asks are no longer taken (chat
    /// lines excepted, which stay welcome while the chat prompt is up).
    pub(super) fn ask(&mut self, kind: AskKind, prompt: &str) {
        self.asking.serial += 1;
        let serial = self.asking.serial;
        self.asking.open = Some((serial, kind));
        self.send_out(Out::Ask(Ask {
            serial,
            kind,
            prompt: prompt.to_string(),
        }));
    }

    /// Asks for the next chat line: at once for a person, once the answers are in for a
    /// script.
    pub(super) fn next_chat_line(&mut self, now: Instant) {
        if self.run != Run::Going || self.dialog.is_some() || !self.phase.is_chat() {
            return;
        }
        if self.ui == UiKind::Script {
            let answered = self.asking.answered;
            if self
                .asking
                .open
                .is_some_and(|(s, k)| k == AskKind::Chat && s > answered)
            {
                // The script's reader waits for a line already (asked before a reconnect
                // brought us here): it stays welcome.
                return;
            }
            self.asking.open = None;
            self.asking.pace = Some(now);
        } else {
            self.ask(AskKind::Chat, "> ");
        }
    }

    pub(super) fn members_changed(&mut self, key: &str) {
        // Names from the network, defused like every other text before it is shown.
        let clean = |s: &str| sanitize(s).into_owned();
        let (title, nicks) = match self.channels.members.get(key) {
            Some((title, nicks)) => (clean(title), nicks.iter().map(|n| clean(n)).collect()),
            None => (clean(key), Vec::new()),
        };
        self.send_out(Out::Members { title, nicks });
    }

    /// Empties every nick list (the channels are left, or are to be joined again).
    pub(super) fn forget_members(&mut self) {
        let keys: Vec<String> = self.channels.members.keys().cloned().collect();
        self.channels.members.clear();
        for key in keys {
            self.members_changed(&key);
        }
    }

    /// Leaves now, logging off first, with exit status `code`.
    pub(super) fn finish(&mut self, code: i32) {
        if self.run == Run::Done {
            return;
        }
        self.run = Run::Done;
        self.logoff();
        self.mcast_reset();
        self.send_out(Out::Exit(code));
    }

    /// The user is done: scripted input waits for the last answers first.
    pub(super) fn quit(&mut self, now: Instant) {
        if matches!(self.ui, UiKind::Script | UiKind::Plain) && self.me.nick.is_some() {
            self.asking.open = None;
            self.run = Run::Lingering(now);
        } else {
            self.finish(0);
        }
    }

    fn end_of_input(&mut self, now: Instant) {
        if self.phase.is_chat() || self.phase.is_reconnecting() {
            self.quit(now);
        } else {
            // Input ended before a nickname was accepted.
            self.finish(1);
        }
    }

    // ---- the network ----

    pub(super) fn transmit(&mut self, transmit: Transmit) {
        if !matches!(transmit, Transmit::Unseal) {
            self.link.traffic = self.now;
        }
        match &transmit {
            Transmit::Seal { .. } => self.link.sealed = true,
            Transmit::Unseal => self.link.sealed = false,
            Transmit::Datagram(_) => {}
        }
        self.queued.transmits.push_back(transmit);
    }

    pub(super) fn send(&mut self, request: &Request<'_>) {
        self.transmit(Transmit::Datagram(request.to_bytes()));
    }

    pub(super) fn send_bytes(&mut self, datagram: &[u8]) {
        self.transmit(Transmit::Datagram(datagram.to_vec()));
    }

    /// Ends a protected session: the network layer stops sealing and opening.
    pub(super) fn unseal(&mut self) {
        self.transmit(Transmit::Unseal);
    }

    /// Sends LOGOFF if logged in (sealed in a protected session), and forgets the session
    /// keys.
    pub(super) fn logoff(&mut self) {
        if let Some(nick) = self.link.logged_in.take() {
            let mut datagram = Vec::new();
            encode_raw(code::LOGOFF, &nick, &mut datagram);
            self.send_bytes(&datagram);
        }
        self.unseal();
    }

    fn datagram(&mut self, bytes: &[u8], now: Instant) {
        // Anything from the server shows it is there.
        self.link.probe = None;
        // Codes this client does not know (later extensions) and malformed datagrams are
        // skipped: a server may speak more than we do.
        let Ok(event) = Event::decode(bytes) else {
            return;
        };
        if self.login_event(&event, now) || self.dialog_event(&event, now) {
            return;
        }
        match event {
            Event::CapsAck { caps } => {
                self.link.caps = Caps::Granted;
                self.mcast_caps(caps);
                return;
            }
            told @ Event::McastGroup { .. } => return self.mcast_told(&told, now),
            Event::Error { message }
                if message == errors::UNIMPLEMENTED && matches!(self.link.caps, Caps::Asked(_)) =>
            {
                // A classic server's answer to CAPS_REQ: no part 4 here.
                self.link.caps = Caps::None;
                return;
            }
            Event::Error { message }
                if message == errors::PLEASE_LOG_IN && self.phase.is_chat() =>
            {
                return self.lost(now);
            }
            Event::Pong { .. } => return,
            _ => {}
        }
        if !self.mcast_unicast(&event, bytes, now) {
            // The twin of an event already shown from its channel's group.
            return;
        }
        // After the caps: CAPS_REQ goes out first, so a classic server's first error
        // answers it.
        if self.hello_event(&event) || self.proof_event(&event) || self.rejoin_event(&event, now) {
            return;
        }
        self.chat_event(&event, now);
    }

    fn unreachable(&mut self, now: Instant) {
        if self.phase.is_chat() {
            self.lost(now);
        } else {
            self.login_unreachable(now);
        }
    }

    fn keepalive_tick(&mut self, now: Instant, woke: bool) {
        if !self.phase.is_chat() {
            return;
        }
        let link = &self.link;
        let due = woke || now.saturating_duration_since(link.last_keepalive) >= self.opts.keepalive;
        if link.caps == Caps::Granted {
            match link.probe {
                Some((sent, tries))
                    if now.saturating_duration_since(sent) >= self.opts.pong_wait =>
                {
                    if tries >= 3 {
                        return self.lost(now);
                    }
                    self.send(&Request::Ping { token: "alive" });
                    self.link.probe = Some((now, tries + 1));
                }
                None if due => {
                    self.send(&Request::Ping { token: "alive" });
                    self.link.probe = Some((now, 1));
                    self.link.last_keepalive = now;
                }
                _ => {}
            }
        } else if due {
            // A classic server answers nothing, but `please log in` if it forgot us.
            self.send(&Request::StillHere);
            self.link.last_keepalive = now;
        }
    }
}
