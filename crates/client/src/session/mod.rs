//! The session: everything the client knows and decides about its conversation with the
//! server, independent of how it is shown. It logs in (and again after a lost
//! connection), keeps the channels joined in order, keeps the session alive, asks the user
//! for what it needs (a nickname, a password, a confirmation) and turns what the server
//! says into [`Out`]put for whichever interface is running.
//!
//! It runs on a thread of its own and is driven by [`Input`]s: lines and secrets typed (each
//! the answer to one [`Ask`]), datagrams and ICMP errors from [`crate::net`], and
//! the passing of time. The interfaces (`ui::line`, `ui::tui`) only read keys and draw.
//!
//! Asking is explicit so that a line is never taken for what it is not: every [`Ask`] has a
//! serial and a kind, an answer of the wrong kind (a line typed at the chat prompt while a
//! password was wanted) is dropped, and a line that matches a password typed earlier is
//! never sent (see [`guard::SecretGuard`]).
//!
//! The parts: [`login`] (logging in, passwords, reconnecting, rejoining), `chat` (typed
//! lines and the server's events), `community` (part 5: `HELLO`, its events, catching up
//! after a reconnect), [`dialog`] (the account commands and the paste
//! confirmation), [`guard`] (secrets, mentions, nicknames).

mod chat;
mod community;
mod dialog;
pub mod guard;
mod login;
mod mcast;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::community::CatchUp;
use super::net::{Net, NetEvent};
use super::render::sanitize;
use super::secure::KnownServers;
use community::Hello;
use dialog::Dialog;
pub use guard::SecretGuard;
use login::{Phase, Why};
use proto::{errors, Event, Request, DEFAULT_MAX_DATAGRAM};

pub use guard::{check_nick, NickError};

/// The caps this client asks for after every login (part 4): `batch` lets a busy server
/// pack events, which [`crate::net`] unpacks. A server that grants anything speaks
/// part 4, so PING is understood and used to notice a lost connection.
const WANTED_CAPS: &str = "batch";
/// The same with multicast channels (part 4; see [`mcast`]), unless `--no-multicast`.
const WANTED_CAPS_MULTICAST: &str = "batch multicast";
/// How long an answer to CAPS_REQ may take; none by then means a server without part 4.
const CAPS_WAIT: Duration = Duration::from_secs(3);
/// Scripted input reads its next line once the server has been quiet this long after a
/// command was sent, so answers show in the order of the commands that asked for them.
const PACE_QUIET: Duration = Duration::from_millis(30);
/// The longest one scripted command waits for that quiet.
const PACE_MAX: Duration = Duration::from_secs(1);
/// The longest scripted input waits for answers after its last line, however chatty the
/// server stays.
const LINGER_MAX: Duration = Duration::from_secs(5);
/// More lines than this in one paste are sent only after the user says yes.
pub const PASTE_CONFIRM: usize = 5;
/// Lines typed while the connection is down wait for it, up to this many.
const QUEUE_MAX: usize = 50;
/// A public message the server has not echoed back within this long is not sent again
/// after a reconnect (it probably arrived; the echo was lost).
const UNCONFIRMED_MAX_AGE: Duration = Duration::from_secs(10);
/// How long after an automatic LIST_USERS its USER_ITEMs fill the nick list quietly.
const QUIET_USERS: Duration = Duration::from_secs(2);
/// A clock that jumped ahead this much more than the monotonic one means the machine
/// slept: the server may have logged us off meanwhile, so look at once.
const SLEEP_JUMP: Duration = Duration::from_secs(10);

/// What kind of interface runs the session: it decides which prompts make sense and
/// whether a person is there to ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UiKind {
    /// Standard input is not a terminal: lines are read one by one, no prompts are shown,
    /// a password is the next line.
    Script,
    /// A terminal the line editor can't drive (`TERM=dumb`): plain lines, prompts shown.
    Plain,
    /// A terminal with the line editor.
    Editor,
    /// The full-screen interface.
    FullScreen,
}

impl UiKind {
    /// Whether a person types (so a password can be asked again, and nothing is paced).
    pub fn interactive(self) -> bool {
        self != UiKind::Script
    }
}

/// How the session is set up.
#[derive(Debug, Clone)]
pub struct Options {
    /// The server as the user named it, for messages.
    pub host: String,
    /// The server's port.
    pub port: u16,
    /// The nickname to try first; without one, the user is asked.
    pub nick: Option<String>,
    /// How long each login try waits for an answer.
    pub login_timeout: Duration,
    /// How many login tries before giving up (the first login; reconnecting never gives up).
    pub login_tries: u32,
    /// Scripted input only: after the last line, wait until the server has been quiet
    /// this long (at most 5 s), so the answers to the last commands are shown.
    pub linger: Duration,
    /// Which interface runs the session.
    pub ui: UiKind,
    /// How often a logged-in client shows it is there (STILL_HERE, or PING when the server
    /// speaks part 4).
    pub keepalive: Duration,
    /// How long a PING may go unanswered before it is sent again; three unanswered in a row
    /// and the connection is lost.
    pub pong_wait: Duration,
    /// Channels to join after the first login, in this order (the last one is current).
    pub autojoin: Vec<String>,
    /// The longest datagram the server takes; longer messages are split.
    pub max_datagram: usize,
    /// The servers' pinned OPAQUE keys, checked at every password exchange.
    pub known: KnownServers,
    /// Ask for the `multicast` cap (not with `--no-multicast`).
    pub multicast: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            host: "localhost".into(),
            port: proto::DEFAULT_PORT,
            nick: None,
            login_timeout: Duration::from_secs(6),
            login_tries: 5,
            linger: Duration::from_millis(750),
            ui: UiKind::Script,
            keepalive: Duration::from_secs(30),
            pong_wait: Duration::from_secs(3),
            autojoin: Vec::new(),
            max_datagram: DEFAULT_MAX_DATAGRAM,
            known: KnownServers::new(KnownServers::default_path()),
            multicast: true,
        }
    }
}

/// What the session is told.
#[derive(Debug)]
pub enum Input {
    /// Something typed in answer to the ask numbered `serial`, which was of kind `kind`.
    Answer {
        /// The ask answered.
        serial: u64,
        /// Its kind: a line typed at the chat prompt never counts as a password.
        kind: AskKind,
        /// What was typed (several lines when pasted).
        text: String,
        /// Where it was typed (the full-screen client's buffers).
        to: Target,
    },
    /// Input ended (Ctrl-D, Ctrl-C, end of file): leave.
    End,
    /// A signal asks the client to end with this exit status.
    Signal(i32),
    /// From the network.
    Net(NetEvent),
}

impl From<NetEvent> for Input {
    fn from(e: NetEvent) -> Self {
        Input::Net(e)
    }
}

/// Where a line was typed, and so where a message in it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The current channel (the classic client; the status buffer).
    Current,
    /// This channel: joined first (quietly) when it is not the current one.
    Channel(String),
    /// A private conversation with this nickname.
    Private(String),
}

/// What the session wants typed next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ask {
    /// Grows with every ask; an answer names the ask it answers.
    pub serial: u64,
    /// What is asked.
    pub kind: AskKind,
    /// The prompt, as the classic client showed it.
    pub prompt: String,
}

/// The kinds of thing the session asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AskKind {
    /// A chat line: a message or a command.
    Chat,
    /// A nickname.
    Nick,
    /// A password: read without echo, never kept in history, never sent as text.
    Secret,
    /// An answer to a question (yes, or the nickname for `/unregister`).
    Confirm,
}

/// What the session tells the interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Out {
    /// A line to show.
    Line(Shown),
    /// The members of a channel changed (the full-screen nick list).
    Members {
        /// The channel.
        title: String,
        /// Its members, sorted; empty once the channel is left.
        nicks: Vec<String>,
    },
    /// Something must be typed.
    Ask(Ask),
    /// The nickname, the current channel or the connection changed.
    Status(Status),
    /// The session is over: leave with this exit status.
    Exit(i32),
}

/// A line to show, with what the full-screen client needs to place it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    /// The line exactly as the classic client prints it (a tab first for server lines),
    /// network text already defused.
    pub text: String,
    /// The buffer it belongs to.
    pub place: Place,
    /// Someone else's message that mentions our nickname.
    pub mention: bool,
    /// The user asked for this (a `/join`): show its buffer.
    pub focus: bool,
    /// The message or notice is the client's own (shown, never counted as activity).
    pub own: bool,
}

/// Which buffer a line belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// Whichever buffer the user looks at (answers, errors, notices).
    Active,
    /// A channel's buffer (the title defused, as all names from the network).
    Channel(String),
    /// The private conversation with a nickname (defused).
    Private(String),
}

/// The state shown on the status line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Status {
    /// Logged in (or logging in again) as.
    pub nick: Option<String>,
    /// The current channel.
    pub channel: Option<String>,
    /// The state of the connection, in a few words.
    pub conn: String,
}

/// Whether the server speaks part 4 (and so answers PING).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caps {
    /// Not asked yet (not logged in).
    Unknown,
    /// CAPS_REQ sent; no answer by this moment means no.
    Asked(Instant),
    /// CAPS_ACK came: PING works.
    Granted,
    /// A classic server: keep alive with STILL_HERE.
    None,
}

/// The session's state; see the module docs.
pub struct Session {
    net: Arc<Net>,
    out: Sender<Out>,
    opts: Options,
    phase: Phase,
    dialog: Option<Dialog>,
    /// The ask answers are accepted for: its serial and kind.
    ask: Option<(u64, AskKind)>,
    serial: u64,
    /// Scripted input: the next chat ask waits for the server to be quiet since then.
    pace: Option<Instant>,
    /// The serial of the last chat line taken.
    answered: u64,
    /// Scripted input ended: leave once the server is quiet (since then).
    linger: Option<Instant>,
    done: bool,
    /// The nickname logged in as, kept while reconnecting.
    nick: Option<String>,
    /// Channels joined, most recently joined (current) first.
    channels: Vec<String>,
    /// Members of each channel joined, by lower-cased title: (title, nicknames).
    members: BTreeMap<String, (String, BTreeSet<String>)>,
    caps: Caps,
    /// When a keepalive or PING last went out.
    last_keepalive: Instant,
    /// An unanswered PING: when it went out and how many went out since the server last
    /// said anything.
    probe: Option<(Instant, u32)>,
    /// The clocks at the last tick, to notice that the machine slept.
    clocks: (Instant, SystemTime),
    /// Channels to join again after a reconnect, oldest first, and when the one in front
    /// was asked for.
    rejoin: VecDeque<String>,
    rejoin_sent: Option<(Instant, u32)>,
    /// What to say when the rejoin is done.
    rejoin_notice: Option<String>,
    /// Lines typed while the connection was down.
    queue: VecDeque<(String, Target)>,
    queue_told: bool,
    /// Public messages sent whose echo has not come back yet: when the server turns out to
    /// have forgotten us, they were not delivered and go out again after the reconnect.
    unconfirmed: VecDeque<(Instant, String, Option<String>)>,
    /// Lower-cased titles whose JOIN_ACK is not shown (rejoins, joins before speaking).
    quiet_joins: BTreeSet<String>,
    /// Lower-cased titles the user asked to join: their buffer comes to the front.
    user_joins: BTreeSet<String>,
    /// USER_ITEMs before this fill the nick list without being shown.
    quiet_users_until: Option<Instant>,
    /// Nicknames whose messages are hidden, lower-cased.
    ignored: BTreeSet<String>,
    /// Shared with the interface, which keeps guarded lines out of its history.
    guard: Arc<parking_lot::Mutex<SecretGuard>>,
    /// Scripted input only: the password, for logging in again (a script has it anyway).
    script_password: Option<String>,
    hinted: bool,
    last_status: Status,
    /// Multicast channels: their groups, keys and paths, and the drop counters.
    mcast: mcast::Mcast,
    /// Whether the server speaks part 5 (asked with `HELLO` after every login).
    hello: Hello,
    /// The channels and the messages seen in them, to ask for what was missed after a
    /// reconnect.
    catch_up: CatchUp,
    /// The rejoin under way follows a lost connection: each channel rejoined asks for
    /// what it missed.
    catching_up: bool,
    /// Channels rejoined whose catch-up waits for the answer to `HELLO`.
    catch_up_due: Vec<String>,
    /// The message of the day was shown: once a run is enough (not after every
    /// reconnect, new nickname or password login).
    motd_shown: bool,
}

impl Session {
    /// A session that talks to the server through `net` and to the interface through `out`.
    pub fn new(net: Arc<Net>, out: Sender<Out>, opts: Options) -> Session {
        Self::with_guard(net, out, opts, Arc::default())
    }

    /// A session whose [`SecretGuard`] is shared with the interface.
    pub fn with_guard(
        net: Arc<Net>,
        out: Sender<Out>,
        opts: Options,
        guard: Arc<parking_lot::Mutex<SecretGuard>>,
    ) -> Session {
        let now = Instant::now();
        Session {
            net,
            out,
            opts,
            phase: Phase::Idle,
            dialog: None,
            ask: None,
            serial: 0,
            pace: None,
            answered: 0,
            linger: None,
            done: false,
            nick: None,
            channels: Vec::new(),
            members: BTreeMap::new(),
            caps: Caps::Unknown,
            last_keepalive: now,
            probe: None,
            clocks: (now, SystemTime::now()),
            rejoin: VecDeque::new(),
            rejoin_sent: None,
            rejoin_notice: None,
            queue: VecDeque::new(),
            queue_told: false,
            unconfirmed: VecDeque::new(),
            quiet_joins: BTreeSet::new(),
            user_joins: BTreeSet::new(),
            quiet_users_until: None,
            ignored: BTreeSet::new(),
            guard,
            script_password: None,
            hinted: false,
            last_status: Status::default(),
            mcast: mcast::Mcast::default(),
            hello: Hello::Unknown,
            catch_up: CatchUp::default(),
            catching_up: false,
            catch_up_due: Vec::new(),
            motd_shown: false,
        }
    }

    /// Runs the session until it ends: logs in, then handles inputs as they come.
    pub fn run(mut self, inbox: &Receiver<Input>) {
        self.start(Instant::now());
        while !self.done {
            let wait = if self.pace.is_some() || self.linger.is_some() {
                Duration::from_millis(10)
            } else {
                Duration::from_millis(100)
            };
            match inbox.recv_timeout(wait) {
                Ok(input) => self.handle(input, Instant::now()),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => self.finish(0),
            }
            if !self.done {
                self.tick(Instant::now());
            }
            self.status();
        }
    }

    /// The first step: log in with the nickname given, or ask for one.
    pub fn start(&mut self, now: Instant) {
        match self.opts.nick.clone() {
            Some(nick) => match check_nick(&nick) {
                Ok(nick) => self.start_login(nick.to_string(), Why::First, now),
                Err(problem) => {
                    self.refuse_nick(problem);
                    self.ask_nick();
                }
            },
            None => self.ask_nick(),
        }
    }

    /// Handles one input.
    pub fn handle(&mut self, input: Input, now: Instant) {
        match input {
            Input::Net(NetEvent::Datagram(bytes)) => self.datagram(&bytes, now),
            Input::Net(NetEvent::Unreachable) => self.unreachable(now),
            Input::Net(NetEvent::Group { group, datagram }) => {
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
                    .ask
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
                        self.answered = self.answered.max(serial);
                        self.chat(&text, &to, now)
                    }
                    AskKind::Nick => self.nick_typed(&text, now),
                    AskKind::Secret => self.secret_typed(text, now),
                    AskKind::Confirm => self.confirm_typed(&text, now),
                }
            }
        }
    }

    /// What the passing of time brings: login retries, keepalives, lost connections,
    /// pacing of scripted input.
    pub fn tick(&mut self, now: Instant) {
        self.login_tick(now);
        self.dialog_tick(now);
        self.rejoin_tick(now);
        if let Caps::Asked(since) = self.caps {
            if now.saturating_duration_since(since) >= CAPS_WAIT {
                self.caps = Caps::None;
            }
        }
        self.hello_tick(now);
        self.keepalive_tick(now);
        self.mcast_tick(now);
        if let Some(since) = self.pace {
            let quiet = self.net.silent_for() >= PACE_QUIET;
            if quiet || now.saturating_duration_since(since) >= PACE_MAX {
                self.pace = None;
                self.ask(AskKind::Chat, "> ");
            }
        }
        if let Some(since) = self.linger {
            let quiet = self.net.silent_for() >= self.opts.linger;
            if quiet || now.saturating_duration_since(since) >= LINGER_MAX {
                self.finish(0);
            }
        }
    }

    // ---- output ----

    fn send_out(&self, out: Out) {
        // Fails only once the interface is gone, at shutdown, when nobody is looking.
        let _ = self.out.send(out);
    }

    fn show(&self, text: impl Into<String>, place: Place) {
        self.send_out(Out::Line(Shown {
            text: text.into(),
            place,
            mention: false,
            focus: false,
            own: false,
        }));
    }

    /// A line of the client's own, shown where the user looks.
    fn notice(&self, text: impl Into<String>) {
        self.send_out(Out::Line(Shown {
            text: text.into(),
            place: Place::Active,
            mention: false,
            focus: false,
            own: true,
        }));
    }

    /// Asks for something to be typed; answers to earlier asks are no longer taken (chat
    /// lines excepted, which stay welcome while the chat prompt is up).
    fn ask(&mut self, kind: AskKind, prompt: &str) {
        self.serial += 1;
        self.ask = Some((self.serial, kind));
        self.send_out(Out::Ask(Ask {
            serial: self.serial,
            kind,
            prompt: prompt.to_string(),
        }));
    }

    /// Asks for the next chat line: at once for a person, once the answers are in for a
    /// script.
    fn next_chat_line(&mut self, now: Instant) {
        if self.done || self.linger.is_some() || self.dialog.is_some() || !self.phase.is_chat() {
            return;
        }
        if self.opts.ui == UiKind::Script {
            if self
                .ask
                .is_some_and(|(s, k)| k == AskKind::Chat && s > self.answered)
            {
                // The script's reader waits for a line already (asked before a reconnect
                // brought us here): it stays welcome.
                return;
            }
            self.ask = None;
            self.pace = Some(now);
        } else {
            self.ask(AskKind::Chat, "> ");
        }
    }

    fn status(&mut self) {
        let conn = self.phase.describe(self.rejoin.is_empty());
        let status = Status {
            nick: self.nick.as_deref().map(|n| sanitize(n).into_owned()),
            channel: self.channels.first().map(|c| sanitize(c).into_owned()),
            conn,
        };
        if status != self.last_status {
            self.last_status = status.clone();
            self.send_out(Out::Status(status));
        }
    }

    fn members_changed(&self, key: &str) {
        // Names from the network, defused like every other text before it is shown.
        let clean = |s: &str| sanitize(s).into_owned();
        let (title, nicks) = match self.members.get(key) {
            Some((title, nicks)) => (clean(title), nicks.iter().map(|n| clean(n)).collect()),
            None => (clean(key), Vec::new()),
        };
        self.send_out(Out::Members { title, nicks });
    }

    /// Leaves now, logging off first, with exit status `code`.
    fn finish(&mut self, code: i32) {
        if self.done {
            return;
        }
        self.done = true;
        self.net.logoff();
        self.mcast_reset();
        self.send_out(Out::Exit(code));
    }

    /// The user is done: scripted input waits for the last answers first.
    fn quit(&mut self, now: Instant) {
        if matches!(self.opts.ui, UiKind::Script | UiKind::Plain) && self.nick.is_some() {
            self.ask = None;
            self.linger = Some(now);
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

    fn send(&self, request: &Request<'_>) {
        if let Err(e) = self.net.send(request) {
            self.notice(format!("\t** cannot send: {e} **"));
        }
    }

    fn send_bytes(&self, datagram: &[u8]) {
        if let Err(e) = self.net.send_bytes(datagram) {
            self.notice(format!("\t** cannot send: {e} **"));
        }
    }

    fn datagram(&mut self, bytes: &[u8], now: Instant) {
        // Anything from the server shows it is there.
        self.probe = None;
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
                self.caps = Caps::Granted;
                self.mcast_caps(caps);
                return;
            }
            Event::McastGroup {
                title,
                group,
                port,
                key,
            } => return self.mcast_told(title, group, port, key),
            Event::Error { message }
                if message == errors::UNIMPLEMENTED && matches!(self.caps, Caps::Asked(_)) =>
            {
                // A classic server's answer to CAPS_REQ: no part 4 here.
                self.caps = Caps::None;
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
        if self.hello_event(&event) || self.rejoin_event(&event, now) {
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

    fn keepalive_tick(&mut self, now: Instant) {
        let (mono, wall) = self.clocks;
        self.clocks = (now, SystemTime::now());
        let slept = self.clocks.1.duration_since(wall).unwrap_or_default();
        let awake = now.saturating_duration_since(mono);
        let woke = slept > awake + SLEEP_JUMP;
        if !self.phase.is_chat() {
            return;
        }
        let due = woke || now.saturating_duration_since(self.last_keepalive) >= self.opts.keepalive;
        if self.caps == Caps::Granted {
            match self.probe {
                Some((sent, tries))
                    if now.saturating_duration_since(sent) >= self.opts.pong_wait =>
                {
                    if tries >= 3 {
                        return self.lost(now);
                    }
                    self.send(&Request::Ping { token: "alive" });
                    self.probe = Some((now, tries + 1));
                }
                None if due => {
                    self.send(&Request::Ping { token: "alive" });
                    self.probe = Some((now, 1));
                    self.last_keepalive = now;
                }
                _ => {}
            }
        } else if due {
            // A classic server answers nothing, but `please log in` if it forgot us.
            self.send(&Request::StillHere);
            self.last_keepalive = now;
        }
    }
}

#[cfg(test)]
mod tests;
