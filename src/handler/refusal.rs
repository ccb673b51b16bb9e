//! Why a request is refused: every `ERROR` text the handler sends, as one typed value.
//!
//! A concept function refuses with a variant; [`Ctx::refuse`](super::ctx::Ctx::refuse)
//! turns it into the datagram, the only place that does. Each variant is written with its
//! text. The fixed texts are the constants of [`proto::errors`], which clients and tests
//! compare with; the others name what was asked for, borrowed from the request or the
//! channel.

use std::fmt;

use super::limits::{MAX_BAN_SECONDS, MAX_LIMIT};
use crate::state::community::{Mask, Net};
use crate::state::ClaimError;
use proto::errors;

/// What `CHAN_MODE` accepts.
const MODE_USAGE: &str = "use +i -i +m -m +t -t +l COUNT -l +o NICK -o NICK +v NICK -v NICK";

/// A refusal; its `Display` is the `ERROR` text, byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refusal<'a> {
    // ---- the texts of `proto::errors` ----
    #[error("{}", errors::DATAGRAM_TOO_LONG)]
    DatagramTooLong,
    #[error("{}", errors::INVALID_TEXT)]
    InvalidText,
    #[error("{}", errors::NICK_IN_USE)]
    NickInUse,
    #[error("{}", errors::INVALID_NICK)]
    InvalidNick,
    #[error("{}", errors::PLEASE_LOG_IN)]
    PleaseLogIn,
    #[error("{}", errors::UNIMPLEMENTED)]
    Unimplemented,
    #[error("{}", errors::NO_CURRENT_CHANNEL)]
    NoCurrentChannel,
    #[error("{}", errors::NO_RECIPIENT)]
    NoRecipient,
    #[error("{}", errors::WHO_TOO_MANY)]
    WhoTooMany,
    #[error("{}", errors::SERVER_FULL)]
    ServerFull,
    #[error("{}", errors::TOO_MANY_CHANNELS)]
    TooManyChannels,
    #[error("{}", errors::NICK_REGISTERED)]
    NickRegistered,
    #[error("{}", errors::NO_ACCOUNT)]
    NoAccount,
    #[error("{}", errors::TOO_MANY_ATTEMPTS)]
    TooManyAttempts,
    #[error("{}", errors::BAD_AUTH_MESSAGE)]
    BadAuthMessage,
    #[error("{}", errors::LOGIN_FAILED)]
    LoginFailed,
    #[error("{}", errors::NEEDS_PASSWORD_LOGIN)]
    NeedsPasswordLogin,
    #[error("{}", errors::STORAGE_FAILED)]
    StorageFailed,
    #[error("{}", errors::HOT_LIST_FULL)]
    HotListFull,
    #[error("{}", errors::NICK_CONFUSABLE)]
    NickConfusable,
    #[error("{}", errors::TOO_MANY_REGISTRATIONS)]
    TooManyRegistrations,
    #[error("{}", errors::ACCOUNTS_OFF)]
    AccountsOff,
    #[error("{}", errors::PING_TOKEN_TOO_LONG)]
    PingTokenTooLong,
    #[error("{}", errors::NOT_SERVER_OPERATOR)]
    NotServerOperator,

    /// A guest login, or a registration, of a nickname the configuration names as a
    /// server operator's: only the account made for it on the server may hold it.
    #[error("nickname is reserved")]
    NickReserved,
    /// A kick, ban or kill reason with control characters (ESC, BEL, CR, ...).
    #[error("invalid reason")]
    InvalidReason,

    // ---- users and messages: (nickname), (operator, reason) ----
    #[error("{0}: not logged in")]
    NotLoggedIn(&'a str),
    #[error("{0} is away and can't be sent more messages")]
    MailboxFull(&'a str),
    /// The recipient keeps as many of this sender's messages as one may leave.
    #[error("{0} is away and keeps as many of your messages as one may leave")]
    MailboxSenderFull(&'a str),
    /// The recipient refuses kept messages from this sender (`MAIL_REFUSE`).
    #[error("{0} refuses your messages while away")]
    MailRefused(&'a str),
    #[error("invalid mask; give a nickname pattern (* ?) or account:NAME")]
    InvalidMailMask,
    /// The most masks one may refuse.
    #[error("you refuse {0} masks already; accept one first")]
    TooManyRefusals(usize),
    /// What needs an address proved to receive (`PROVE`): creating a channel, kept
    /// messages, more of a hot list. The same text wherever the server asks for it.
    #[error("address not proved")]
    NotProved,
    #[error("you were disconnected by {0}: {1}")]
    Disconnected(&'a str, &'a str),

    // ---- channels (part 5): (title), (nickname, title), ... ----
    #[error("no channel named {0}")]
    NoChannel(&'a str),
    #[error("{0} is full")]
    ChannelFull(&'a str),
    /// The longest title allowed.
    #[error("invalid channel title; use 1 to {0} letters, digits, - _ . #")]
    InvalidTitle(usize),
    #[error("invalid description")]
    InvalidDescription,
    #[error("invalid topic")]
    InvalidTopic,
    #[error("a channel named {0} exists")]
    ChannelExists(&'a str),
    /// The server holds as many created channels as it may.
    #[error("too many channels on this server; try again later")]
    TooManyCreated,
    /// The user created as many channels as one may.
    #[error("you have created too many channels; drop one first")]
    TooManyOfYours,
    /// The creator's network (IPv4 /24, IPv6 /64) created as many channels as one may.
    #[error("too many channels were created from your network; try again later")]
    TooManyFromNetwork,
    /// (the title asked for, the title of the channel it looks like).
    #[error("{0} looks like the channel {1}; choose another title")]
    TitleLooksLike(&'a str, &'a str),
    #[error("only the founder of {0} may drop it")]
    NotFounder(&'a str),
    #[error("{0} is configured by the server's operator")]
    Configured(&'a str),
    #[error("{0} is not registered")]
    NotRegistered(&'a str),
    /// (title, the ban's reason, which may be empty).
    #[error("you are banned from {0}{because}", because = Because(.1))]
    Banned(&'a str, &'a str),
    #[error("{0} is invite-only")]
    InviteOnly(&'a str),
    #[error("{0} is moderated; you need a voice to speak")]
    Moderated(&'a str),
    #[error("you are not an operator of {0}")]
    NotOperatorOf(&'a str),
    /// Acting on someone of the actor's rank or above: (the nickname or mask as typed,
    /// its rank as [`Rank::describe`](super::rights::Rank::describe) says it).
    #[error("you may not act on {0}, {1}")]
    Outranked(&'a str, &'a str),
    #[error("you are not in {0}")]
    NotIn(&'a str),
    /// (nickname, title).
    #[error("{0} is not in {1}")]
    NotMember(&'a str, &'a str),
    #[error("no nickname given")]
    NoNickGiven,
    /// A classic client kicked or banned out: (title, by, reason).
    #[error("you were removed from {0} by {1}: {2}")]
    Removed(&'a str, &'a str, &'a str),
    #[error("invalid ban time; give seconds up to {MAX_BAN_SECONDS}, 0 for until lifted")]
    InvalidBanTime,
    #[error("invalid ban mask; give a nickname pattern or account:NAME")]
    InvalidBanMask,
    #[error("too many bans on {0}")]
    TooManyBans(&'a str),
    /// (mask, title).
    #[error("no ban on {0} in {1}")]
    NoBanIn(&'a Mask, &'a str),
    #[error("unknown mode {0}; {MODE_USAGE}")]
    UnknownMode(&'a str),
    #[error("give a member limit from 1 to {MAX_LIMIT}")]
    InvalidLimit,
    /// `+o`/`-o`/`+v`/`-v` without a nickname.
    #[error("give a nickname")]
    NoModeNick,
    #[error("give since MESSAGE-ID or last COUNT")]
    InvalidHistory,

    // ---- server operators (part 5) ----
    /// A login from a banned address: (the ban's reason, which may be empty).
    #[error("you are banned from this server{because}", because = Because(.0))]
    BannedFromServer(&'a str),
    #[error("invalid address; give ADDRESS or ADDRESS/BITS")]
    InvalidAddress,
    #[error("too many address bans")]
    TooManyAddressBans,
    #[error("no ban on {0}")]
    NoAddressBan(Net),
    #[error("no notice given")]
    NoNotice,
    /// An `OPER_NOTICE` with control characters.
    #[error("invalid notice")]
    InvalidNotice,
}

/// `: reason`, or nothing for an empty reason.
struct Because<'a>(&'a str);

impl fmt::Display for Because<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            "" => Ok(()),
            reason => write!(f, ": {reason}"),
        }
    }
}

impl From<ClaimError> for Refusal<'_> {
    fn from(e: ClaimError) -> Self {
        match e {
            ClaimError::InUse => Refusal::NickInUse,
            ClaimError::Full => Refusal::ServerFull,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Refusal;
    use crate::state::community::Mask;

    #[test]
    fn texts_are_the_ones_clients_know() {
        let mask = Mask::parse("account:ann").unwrap();
        for (refusal, text) in [
            (Refusal::NickInUse, proto::errors::NICK_IN_USE.to_owned()),
            (Refusal::NotLoggedIn("ann"), "ann: not logged in".into()),
            (Refusal::NoChannel("Den"), "no channel named Den".into()),
            (
                Refusal::Banned("Den", ""),
                "you are banned from Den".into(),
            ),
            (
                Refusal::Banned("Den", "spam"),
                "you are banned from Den: spam".into(),
            ),
            (
                Refusal::BannedFromServer(""),
                "you are banned from this server".into(),
            ),
            (
                Refusal::BannedFromServer("go"),
                "you are banned from this server: go".into(),
            ),
            (
                Refusal::NoBanIn(&mask, "Den"),
                format!("no ban on {mask} in Den"),
            ),
            (
                Refusal::InvalidBanTime,
                "invalid ban time; give seconds up to 315360000, 0 for until lifted".into(),
            ),
            (Refusal::NotProved, "address not proved".into()),
            (
                Refusal::MailRefused("ann"),
                "ann refuses your messages while away".into(),
            ),
            (
                Refusal::Outranked("ann", "the founder of Den"),
                "you may not act on ann, the founder of Den".into(),
            ),
            (
                Refusal::TitleLooksLike("\u{420}\u{435}ts", "Pets"),
                "\u{420}\u{435}ts looks like the channel Pets; choose another title".into(),
            ),
            (
                Refusal::UnknownMode("+q"),
                "unknown mode +q; use +i -i +m -m +t -t +l COUNT -l +o NICK -o NICK +v NICK -v NICK"
                    .into(),
            ),
        ] {
            assert_eq!(refusal.to_string(), text);
        }
    }
}
