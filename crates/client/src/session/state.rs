//! The session's small state types, one per concern: the connection ([`Link`]), the user
//! ([`Me`]), what is asked of them ([`Asking`]), whether the session goes on ([`Run`]), the channels
//! ([`Channels`], [`Rejoin`]), the lines waiting for the connection ([`Backlog`]), part 5
//! ([`Community`]) and the account dialogs ([`Dialog`]). Plain data: what they mean is
//! decided in the files of the session's behaviour.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Instant;

use super::guard::SecretGuard;
use super::io::{AskKind, Target};
use crate::community::CatchUp;
use proto::auth::{LoginStart, RegisterStart};

/// Whether the server speaks part 4 (and so answers PING).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Caps {
    /// Not asked yet (not logged in).
    Unknown,
    /// CAPS_REQ sent; no answer by this moment means no.
    Asked(Instant),
    /// CAPS_ACK came: PING works.
    Granted,
    /// A classic server: keep alive with STILL_HERE.
    None,
}

/// Whether the server knows our address is ours (`session::proof`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Proof {
    /// Not asked (not logged in).
    NotAsked,
    /// PROVE_REQ sent at `since`, `tries` times.
    Asked { since: Instant, tries: u32 },
    /// PROVED came, or the session is protected.
    Proved,
    /// The server does not know the exchange, or never answered it.
    Unsupported,
}

/// The connection, as the server and the network layer see it.
#[derive(Debug)]
pub(super) struct Link {
    /// Logged in under this name (`None`: logged off). LOGOFF carries it: classic servers
    /// expect it.
    pub(super) logged_in: Option<String>,
    /// Datagrams are sealed: the session is a protected one (the network layer was told
    /// so with [`Transmit::Seal`](super::io::Transmit::Seal)).
    pub(super) sealed: bool,
    /// What the server speaks.
    pub(super) caps: Caps,
    /// Whether our address is proved to the server.
    pub(super) proof: Proof,
    /// When a keepalive or PING last went out.
    pub(super) last_keepalive: Instant,
    /// An unanswered PING: when it went out and how many went out since the server last
    /// said anything.
    pub(super) probe: Option<(Instant, u32)>,
    /// When a datagram last went out or came in, so scripted input knows when the answers
    /// to its last commands are in.
    pub(super) traffic: Instant,
}

impl Link {
    pub(super) fn new(now: Instant) -> Link {
        Link {
            logged_in: None,
            sealed: false,
            caps: Caps::Unknown,
            proof: Proof::NotAsked,
            last_keepalive: now,
            probe: None,
            traffic: now,
        }
    }
}

/// Who the user is, and what they chose.
#[derive(Default)]
pub(super) struct Me {
    /// The nickname logged in as, kept while reconnecting.
    pub(super) nick: Option<String>,
    /// Scripted input only: the password, for logging in again (a script has it anyway).
    pub(super) script_password: Option<String>,
    /// The passwords typed in this run: none goes out as a message or a nickname.
    pub(super) guard: SecretGuard,
    /// Nicknames whose messages are hidden, lower-cased.
    pub(super) ignored: BTreeSet<String>,
}

/// What the session asks of the user.
#[derive(Debug, Default)]
pub(super) struct Asking {
    /// Grows with every ask.
    pub(super) serial: u64,
    /// The ask answers are accepted for: its serial and kind.
    pub(super) open: Option<(u64, AskKind)>,
    /// The serial of the last chat line taken.
    pub(super) answered: u64,
    /// Scripted input: the next chat ask waits for the server to be quiet since then.
    pub(super) pace: Option<Instant>,
}

/// Whether the session goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Run {
    /// It does.
    Going,
    /// Scripted input ended: leave once the server is quiet (since then).
    Lingering(Instant),
    /// Over: [`Out::Exit`](super::io::Out::Exit) was said.
    Done,
}

/// The channels joined and their members.
#[derive(Debug, Default)]
pub(super) struct Channels {
    /// Channels joined, most recently joined (current) first.
    pub(super) joined: Vec<String>,
    /// Members of each channel joined, by lower-cased title: (title, nicknames).
    pub(super) members: BTreeMap<String, (String, BTreeSet<String>)>,
    /// Lower-cased titles whose JOIN_ACK is not shown (rejoins, joins before speaking).
    pub(super) quiet_joins: BTreeSet<String>,
    /// Lower-cased titles the user asked to join: their buffer comes to the front.
    pub(super) user_joins: BTreeSet<String>,
    /// USER_ITEMs before this fill the nick list without being shown.
    pub(super) quiet_users_until: Option<Instant>,
    /// The hint to join a channel first was shown (once is enough).
    pub(super) hinted: bool,
}

impl Channels {
    pub(super) fn is_member(&self, title: &str) -> bool {
        self.joined.iter().any(|c| c.eq_ignore_ascii_case(title))
    }

    /// Whether `title` is the current channel.
    pub(super) fn is_current(&self, title: &str) -> bool {
        self.joined
            .first()
            .is_some_and(|c| c.eq_ignore_ascii_case(title))
    }
}

/// Channels to join again after a reconnect.
#[derive(Debug, Default)]
pub(super) struct Rejoin {
    /// Oldest first.
    pub(super) list: VecDeque<String>,
    /// When the one in front was asked for, and how many times.
    pub(super) sent: Option<(Instant, u32)>,
    /// What to say when the rejoin is done.
    pub(super) notice: Option<String>,
}

/// What waits for the connection to come back.
#[derive(Debug, Default)]
pub(super) struct Backlog {
    /// Lines typed while the connection was down.
    pub(super) queue: VecDeque<(String, Target)>,
    /// The user was told that lines wait.
    pub(super) told: bool,
    /// Public messages sent whose echo has not come back yet (when, text, channel): when
    /// the server turns out to have forgotten us, they were not delivered and go out
    /// again after the reconnect.
    pub(super) unconfirmed: VecDeque<(Instant, String, Option<String>)>,
}

/// Whether the server speaks part 5, as its answer to `HELLO` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Hello {
    /// Not asked in this login.
    Unknown,
    /// `HELLO` sent; with `quiet`, its message of the day is not shown again (it was,
    /// earlier in this run).
    Asked {
        /// Leave the message of the day out.
        quiet: bool,
        /// When it went out: no answer soon means no part 5.
        since: Instant,
    },
    /// `HELLO_ACK` came: part-5 requests are understood.
    Part5,
    /// A server without part 5: nothing of it is asked.
    Classic,
}

/// Part 5: what the server speaks, and catching up after a lost connection.
#[derive(Debug)]
pub(super) struct Community {
    /// Whether the server speaks part 5 (asked with `HELLO` after every login).
    pub(super) hello: Hello,
    /// The channels and the messages seen in them, to ask for what was missed after a
    /// reconnect.
    pub(super) catch_up: CatchUp,
    /// The rejoin under way follows a lost connection: each channel rejoined asks for
    /// what it missed.
    pub(super) catching_up: bool,
    /// Channels rejoined whose catch-up waits for the answer to `HELLO`.
    pub(super) due: Vec<String>,
    /// The message of the day was shown: once a run is enough (not after every
    /// reconnect, new nickname or password login).
    pub(super) motd_shown: bool,
}

impl Default for Community {
    fn default() -> Self {
        Community {
            hello: Hello::Unknown,
            catch_up: CatchUp::default(),
            catching_up: false,
            due: Vec::new(),
            motd_shown: false,
        }
    }
}

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
    /// REGISTER_RESP came: the key the server showed is checked against the pinned one
    /// before `upload` (REGISTER_UPLOAD) goes out.
    Pinning { upload: Vec<u8>, password: String },
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

impl Dialog {
    /// When the request a dialog waits on went out: the server's answer is due by then
    /// plus the login timeout.
    pub(super) fn waiting_since(&self) -> Option<Instant> {
        match self {
            Dialog::Registering { since, .. }
            | Dialog::Uploading { since, .. }
            | Dialog::Checking { since, .. } => Some(*since),
            _ => None,
        }
    }
}
