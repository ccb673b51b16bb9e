//! Where the login stands ([`Phase`]), why a login is under way ([`Why`]) and the step of
//! a password exchange ([`Step`]). What each step does is `login.rs`'s.

use std::time::Instant;

use proto::auth::LoginStart;

/// Why a login is under way; it decides what is shown, how long to keep trying and what
/// comes after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Why {
    /// The client just started.
    First,
    /// `/login`, or a nickname asked again after wrong passwords.
    Relogin,
    /// The connection was lost: quietly, and for as long as it takes.
    Reconnect,
    /// `/nick NEW`: back to `old` if the new one is refused.
    Rename {
        /// The nickname before.
        old: String,
        /// Whether `old` was a password session (its password is asked to go back).
        protected: bool,
    },
    /// A guest registered its nickname and logs in with the new password, keeping its
    /// channels.
    Upgrade,
}

impl Why {
    /// Whether the classic lines of a login (`trying to log in (n)...`, the welcome,
    /// errors) are shown.
    pub(super) fn classic(&self) -> bool {
        matches!(self, Why::First | Why::Relogin | Why::Upgrade)
    }

    /// Whether tries are counted (reconnecting never gives up).
    pub(super) fn limited(&self) -> bool {
        *self != Why::Reconnect
    }
}

/// The step of a password exchange.
pub(super) enum Step {
    /// AUTH_REQ sent; the challenge is awaited.
    Challenge(Box<LoginStart>),
    /// AUTH_FINISH sent and the (tentative) session set: its sealed LOGIN_ACK is awaited,
    /// asked for again `asked` times with a sealed LOGIN_REQ when it seems lost.
    Ack { asked: u32 },
}

/// Where the login stands.
pub(super) enum Phase {
    /// Not started.
    Idle,
    /// A nickname is asked for.
    AskNick(Why),
    /// LOGIN_REQ sent `tries` times; the next try is due at `deadline`.
    Login {
        nick: String,
        tries: u32,
        deadline: Instant,
        why: Why,
    },
    /// The password is asked for (after `wrong` wrong ones).
    AskPassword { nick: String, wrong: u32, why: Why },
    /// A password exchange is under way.
    Auth {
        nick: String,
        password: String,
        step: Option<Step>,
        tries: u32,
        deadline: Instant,
        wrong: u32,
        why: Why,
    },
    /// Logged in.
    Chat,
}

impl Phase {
    pub(super) fn is_chat(&self) -> bool {
        matches!(self, Phase::Chat)
    }

    pub(super) fn why(&self) -> Option<&Why> {
        match self {
            Phase::AskNick(why)
            | Phase::Login { why, .. }
            | Phase::AskPassword { why, .. }
            | Phase::Auth { why, .. } => Some(why),
            Phase::Idle | Phase::Chat => None,
        }
    }

    pub(super) fn is_reconnecting(&self) -> bool {
        self.why() == Some(&Why::Reconnect)
    }

    /// Logging in (not chatting, and not just reconnecting in the background).
    pub(super) fn is_busy(&self) -> bool {
        !self.is_chat() && !self.is_reconnecting()
    }

    /// When the next login try is due, if one is under way.
    pub(super) fn deadline(&self) -> Option<Instant> {
        match self {
            Phase::Login { deadline, .. } | Phase::Auth { deadline, .. } => Some(*deadline),
            _ => None,
        }
    }

    /// The connection state in a few words, for the status line.
    pub(super) fn describe(&self, rejoined: bool) -> String {
        match (self, self.why()) {
            (Phase::Chat, _) if rejoined => "connected",
            (Phase::Chat, _) => "rejoining",
            (Phase::AskPassword { .. }, _) => "password needed",
            (_, Some(Why::Reconnect)) => "reconnecting",
            (_, Some(Why::Rename { .. })) => "changing nickname",
            (Phase::Idle, _) => "starting",
            _ => "logging in",
        }
        .to_string()
    }
}
