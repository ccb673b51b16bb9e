//! What goes into the session and what comes out of it: the [`Input`]s it is handed, the
//! [`Transmit`]s for the network layer, the [`Effect`]s for the shell around it, and the
//! [`Out`]put for the interface; and how it is set up ([`Options`]).

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::net::NetEvent;
use crate::secure::{KnownServers, Pin};
use proto::auth::{ServerKey, SessionKeys};

/// What kind of interface runs the session: it decides which prompts make sense and
/// whether a person is there to ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UiKind {
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
    pub(crate) fn interactive(self) -> bool {
        self != UiKind::Script
    }
}

/// How the session is set up: what the command line and the settings file say about it.
#[derive(Debug, Clone)]
pub struct Options {
    /// The server's host name or address, as the user named it.
    pub host: String,
    /// The server's UDP port.
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
    /// How often a logged-in client shows it is there (STILL_HERE, or PING when the server
    /// speaks part 4). The server's idle timeout is 120 s by default, so three keepalives
    /// may be lost before it gives up on us.
    pub keepalive: Duration,
    /// How long a PING may go unanswered before it is sent again; three unanswered in a row
    /// and the connection is lost.
    pub pong_wait: Duration,
    /// Channels to join after the first login, in this order (the last one is current).
    pub channels: Vec<String>,
    /// The file of servers' pinned OPAQUE keys ([`KnownServers`]), checked at every
    /// password exchange.
    pub known_servers: PathBuf,
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
            keepalive: Duration::from_secs(30),
            pong_wait: Duration::from_secs(3),
            channels: Vec::new(),
            known_servers: KnownServers::default_path(),
            multicast: true,
        }
    }
}

/// What the session is told.
#[derive(Debug)]
pub(crate) enum Input {
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
    /// End now with this exit status (a signal: 128 + its number).
    Signal(i32),
    /// From the network.
    Net(NetEvent),
    /// The time of a timer has come (see [`Session::poll_timeout`]); what is due is done.
    ///
    /// [`Session::poll_timeout`]: super::Session::poll_timeout
    Timeout,
    /// As [`Input::Timeout`], and the wall clock jumped ahead of the monotonic one: the
    /// machine slept, and the server may have logged us off meanwhile.
    Woke,
    /// A datagram could not be sent ([`Transmit`]): why.
    SendFailed(String),
    /// The multicast group of an [`Effect::Listen`] could not be joined: why.
    CannotListen {
        /// The group.
        group: SocketAddr,
        /// The error, in words.
        error: String,
    },
    /// The answer to [`Effect::CheckPin`].
    Pinned {
        /// The key the server showed.
        key: ServerKey,
        /// What the pinned key says of it, or why the file could not be read or written.
        pin: Result<Pin, String>,
    },
}

impl From<NetEvent> for Input {
    fn from(e: NetEvent) -> Self {
        Input::Net(e)
    }
}

/// What the network layer is to do, in the order the session asks it.
pub(crate) enum Transmit {
    /// Send one datagram to the server: the plain bytes, sealed on the way out in a
    /// protected session.
    Datagram(Vec<u8>),
    /// A protected session begins: `keys` seal every later datagram and open the
    /// server's; `finish`, the AUTH_FINISH that opens the session, goes out as it is, once
    /// the keys are in place (so no sealed answer comes before it can be opened).
    Seal {
        /// The session's keys.
        keys: Box<SessionKeys>,
        /// The AUTH_FINISH.
        finish: Vec<u8>,
    },
    /// The protected session is over: datagrams go and come unsealed.
    Unseal,
}

impl fmt::Debug for Transmit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Transmit::Datagram(d) => f.debug_tuple("Datagram").field(d).finish(),
            // The keys are secret: not even a debug print shows them.
            Transmit::Seal { finish, .. } => {
                f.debug_struct("Seal").field("finish", finish).finish()
            }
            Transmit::Unseal => f.write_str("Unseal"),
        }
    }
}

/// What the shell around the session is to do besides sending; the answers come back as
/// [`Input`]s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Effect {
    /// Listen to a channel's multicast group; a failure comes back as
    /// [`Input::CannotListen`].
    Listen(SocketAddr),
    /// Stop listening to a group.
    Unlisten(SocketAddr),
    /// Compare the server's key with the one pinned for `server` in the known servers'
    /// file, pinning it there if there is none; the answer comes back as [`Input::Pinned`].
    CheckPin {
        /// `host:port` as the user gave them.
        server: String,
        /// The key the server showed.
        key: ServerKey,
    },
}

/// Where a line was typed, and so where a message in it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// The current channel (the classic client; the status buffer).
    Current,
    /// This channel: joined first (quietly) when it is not the current one.
    Channel(String),
    /// A private conversation with this nickname.
    Private(String),
}

/// The kinds of thing the session asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AskKind {
    /// A chat line: a message or a command.
    Chat,
    /// A nickname.
    Nick,
    /// A password: read without echo, never kept in history, never sent as text.
    Secret,
    /// An answer to a question (yes, or the nickname for `/unregister`).
    Confirm,
}

/// What the session wants typed next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ask {
    /// Grows with every ask; an answer names the ask it answers.
    pub(crate) serial: u64,
    /// What is asked.
    pub(crate) kind: AskKind,
    /// The prompt, as the classic client showed it.
    pub(crate) prompt: String,
}

/// What the session tells the interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Out {
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

/// Which buffer a line belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Place {
    /// Whichever buffer the user looks at (answers, errors, notices).
    Active,
    /// A channel's buffer (the title defused, as all names from the network).
    Channel(String),
    /// The private conversation with a nickname (defused).
    Private(String),
}

/// A line to show, with what the full-screen client needs to place it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Shown {
    /// The line exactly as the classic client prints it (a tab first for server lines),
    /// network text already defused.
    pub(crate) text: String,
    /// The buffer it belongs to.
    pub(crate) place: Place,
    /// Someone else's message that mentions our nickname.
    pub(crate) mention: bool,
    /// The user asked for this (a `/join`): show its buffer.
    pub(crate) focus: bool,
    /// The message or notice is the client's own (shown, never counted as activity).
    pub(crate) own: bool,
}

impl Shown {
    /// A line of the client's own, shown where the user looks.
    pub(crate) fn notice(text: String) -> Shown {
        Shown {
            text,
            place: Place::Active,
            mention: false,
            focus: false,
            own: true,
        }
    }
}

/// The state shown on the status line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Status {
    /// Logged in (or logging in again) as.
    pub(crate) nick: Option<String>,
    /// The current channel.
    pub(crate) channel: Option<String>,
    /// The state of the connection, in a few words.
    pub(crate) conn: String,
}
