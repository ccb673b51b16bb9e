//! Why a request is refused: every `ERROR` text the handler sends, as one typed value.
//!
//! A concept function refuses with a variant; [`Ctx::refuse`](super::ctx::Ctx::refuse)
//! turns it into the datagram, the only place that does. The fixed texts are the constants of
//! [`proto::errors`], which clients and tests compare with; the others name what was asked
//! for. [`Refusal::text`] borrows a fixed text instead of formatting it, so a refusal costs
//! no more than the string it sends.

use std::borrow::Cow;
use std::fmt;

use super::limits::{MAX_BAN_SECONDS, MAX_LIMIT};
use crate::state::community::{Mask, Net};
use crate::state::ClaimError;
use proto::errors;

/// What `CHAN_MODE` accepts.
const MODE_USAGE: &str = "use +i -i +m -m +t -t +l COUNT -l +o NICK -o NICK +v NICK -v NICK";

/// A refusal, with what its text names borrowed from the request or the channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal<'a> {
    // ---- the texts of `proto::errors` ----
    /// [`errors::DATAGRAM_TOO_LONG`].
    DatagramTooLong,
    /// [`errors::INVALID_TEXT`].
    InvalidText,
    /// [`errors::NICK_IN_USE`].
    NickInUse,
    /// [`errors::INVALID_NICK`].
    InvalidNick,
    /// [`errors::PLEASE_LOG_IN`].
    PleaseLogIn,
    /// [`errors::UNIMPLEMENTED`].
    Unimplemented,
    /// [`errors::NO_CURRENT_CHANNEL`].
    NoCurrentChannel,
    /// [`errors::NO_RECIPIENT`].
    NoRecipient,
    /// [`errors::WHO_TOO_MANY`].
    WhoTooMany,
    /// [`errors::SERVER_FULL`].
    ServerFull,
    /// [`errors::TOO_MANY_CHANNELS`].
    TooManyChannels,
    /// [`errors::NICK_REGISTERED`].
    NickRegistered,
    /// [`errors::NO_ACCOUNT`].
    NoAccount,
    /// [`errors::TOO_MANY_ATTEMPTS`].
    TooManyAttempts,
    /// [`errors::BAD_AUTH_MESSAGE`].
    BadAuthMessage,
    /// [`errors::LOGIN_FAILED`].
    LoginFailed,
    /// [`errors::NEEDS_PASSWORD_LOGIN`].
    NeedsPasswordLogin,
    /// [`errors::STORAGE_FAILED`].
    StorageFailed,
    /// [`errors::HOT_LIST_FULL`].
    HotListFull,
    /// [`errors::NICK_CONFUSABLE`].
    NickConfusable,
    /// [`errors::TOO_MANY_REGISTRATIONS`].
    TooManyRegistrations,
    /// [`errors::ACCOUNTS_OFF`].
    AccountsOff,
    /// [`errors::PING_TOKEN_TOO_LONG`].
    PingTokenTooLong,
    /// [`errors::NOT_SERVER_OPERATOR`].
    NotServerOperator,

    // ---- users and messages ----
    /// The nickname is nowhere logged in.
    NotLoggedIn(&'a str),
    /// The registered recipient is away and its mailbox is full.
    MailboxFull(&'a str),
    /// A server operator disconnected the user.
    Disconnected { by: &'a str, reason: &'a str },

    // ---- channels (part 5) ----
    /// No channel has this title.
    NoChannel(&'a str),
    /// The channel has as many members as its limit.
    ChannelFull(&'a str),
    /// A created channel's title is not 1 to `max` letters, digits, `-`, `_`, `.`, `#`.
    InvalidTitle { max: usize },
    /// A description with control characters or too long.
    InvalidDescription,
    /// A topic with control characters or too long.
    InvalidTopic,
    /// A channel of this title exists already.
    ChannelExists(&'a str),
    /// The server holds as many created channels as it may.
    TooManyCreated,
    /// The user created as many channels as one may.
    TooManyOfYours,
    /// CHAN_DROP by someone who is neither the founder nor a server operator.
    NotFounder(&'a str),
    /// CHAN_DROP of a channel of the server's configuration.
    Configured(&'a str),
    /// CHAN_DROP of a channel that is not registered.
    NotRegistered(&'a str),
    /// A join refused by a ban; `reason` may be empty.
    Banned { title: &'a str, reason: &'a str },
    /// A join of an invite-only channel without an invitation.
    InviteOnly(&'a str),
    /// A public message in a moderated channel without a voice.
    Moderated(&'a str),
    /// A moderation request of someone without the rights.
    NotOperatorOf(&'a str),
    /// A request of someone who is not a member.
    NotIn(&'a str),
    /// The nickname is not a member of the channel.
    NotMember { nick: &'a str, title: &'a str },
    /// CHAN_KICK without a nickname.
    NoNickGiven,
    /// A classic client was kicked or banned out of the channel.
    Removed {
        title: &'a str,
        by: &'a str,
        reason: &'a str,
    },
    /// A ban time that is not a number of seconds up to [`MAX_BAN_SECONDS`].
    InvalidBanTime,
    /// A ban mask that is neither a nickname pattern nor `account:NAME`.
    InvalidBanMask,
    /// The channel holds as many bans as it may.
    TooManyBans(&'a str),
    /// CHAN_UNBAN of a mask that is not banned.
    NoBanIn { mask: &'a Mask, title: &'a str },
    /// CHAN_MODE with a change it does not know.
    UnknownMode(&'a str),
    /// `+l` without a limit from 1 to [`MAX_LIMIT`].
    InvalidLimit,
    /// `+o`/`-o`/`+v`/`-v` without a nickname.
    NoModeNick,
    /// HISTORY_REQ that is neither `since ID` nor `last COUNT`.
    InvalidHistory,

    // ---- server operators (part 5) ----
    /// A login from a banned address; `reason` may be empty.
    BannedFromServer(&'a str),
    /// OPER_BAN/OPER_UNBAN of something that is not an address or network.
    InvalidAddress,
    /// The server holds as many address bans as it may.
    TooManyAddressBans,
    /// OPER_UNBAN of a network that is not banned.
    NoAddressBan(Net),
    /// OPER_NOTICE without a text.
    NoNotice,
}

impl Refusal<'_> {
    /// The `ERROR` text: borrowed when it is fixed, formatted when it names something.
    pub(crate) fn text(&self) -> Cow<'static, str> {
        use Refusal::*;
        match self {
            DatagramTooLong => errors::DATAGRAM_TOO_LONG.into(),
            InvalidText => errors::INVALID_TEXT.into(),
            NickInUse => errors::NICK_IN_USE.into(),
            InvalidNick => errors::INVALID_NICK.into(),
            PleaseLogIn => errors::PLEASE_LOG_IN.into(),
            Unimplemented => errors::UNIMPLEMENTED.into(),
            NoCurrentChannel => errors::NO_CURRENT_CHANNEL.into(),
            NoRecipient => errors::NO_RECIPIENT.into(),
            WhoTooMany => errors::WHO_TOO_MANY.into(),
            ServerFull => errors::SERVER_FULL.into(),
            TooManyChannels => errors::TOO_MANY_CHANNELS.into(),
            NickRegistered => errors::NICK_REGISTERED.into(),
            NoAccount => errors::NO_ACCOUNT.into(),
            TooManyAttempts => errors::TOO_MANY_ATTEMPTS.into(),
            BadAuthMessage => errors::BAD_AUTH_MESSAGE.into(),
            LoginFailed => errors::LOGIN_FAILED.into(),
            NeedsPasswordLogin => errors::NEEDS_PASSWORD_LOGIN.into(),
            StorageFailed => errors::STORAGE_FAILED.into(),
            HotListFull => errors::HOT_LIST_FULL.into(),
            NickConfusable => errors::NICK_CONFUSABLE.into(),
            TooManyRegistrations => errors::TOO_MANY_REGISTRATIONS.into(),
            AccountsOff => errors::ACCOUNTS_OFF.into(),
            PingTokenTooLong => errors::PING_TOKEN_TOO_LONG.into(),
            NotServerOperator => errors::NOT_SERVER_OPERATOR.into(),
            NotLoggedIn(nick) => format!("{nick}: not logged in").into(),
            MailboxFull(nick) => format!("{nick} is away and can't be sent more messages").into(),
            Disconnected { by, reason } => {
                format!("you were disconnected by {by}: {reason}").into()
            }
            NoChannel(title) => format!("no channel named {title}").into(),
            ChannelFull(title) => format!("{title} is full").into(),
            InvalidTitle { max } => {
                format!("invalid channel title; use 1 to {max} letters, digits, - _ . #").into()
            }
            InvalidDescription => "invalid description".into(),
            InvalidTopic => "invalid topic".into(),
            ChannelExists(title) => format!("a channel named {title} exists").into(),
            TooManyCreated => "too many channels on this server; try again later".into(),
            TooManyOfYours => "you have created too many channels; drop one first".into(),
            NotFounder(title) => format!("only the founder of {title} may drop it").into(),
            Configured(title) => format!("{title} is configured by the server's operator").into(),
            NotRegistered(title) => format!("{title} is not registered").into(),
            Banned { title, reason: "" } => format!("you are banned from {title}").into(),
            Banned { title, reason } => format!("you are banned from {title}: {reason}").into(),
            InviteOnly(title) => format!("{title} is invite-only").into(),
            Moderated(title) => format!("{title} is moderated; you need a voice to speak").into(),
            NotOperatorOf(title) => format!("you are not an operator of {title}").into(),
            NotIn(title) => format!("you are not in {title}").into(),
            NotMember { nick, title } => format!("{nick} is not in {title}").into(),
            NoNickGiven => "no nickname given".into(),
            Removed { title, by, reason } => {
                format!("you were removed from {title} by {by}: {reason}").into()
            }
            InvalidBanTime => format!(
                "invalid ban time; give seconds up to {MAX_BAN_SECONDS}, 0 for until lifted"
            )
            .into(),
            InvalidBanMask => "invalid ban mask; give a nickname pattern or account:NAME".into(),
            TooManyBans(title) => format!("too many bans on {title}").into(),
            NoBanIn { mask, title } => format!("no ban on {mask} in {title}").into(),
            UnknownMode(change) => format!("unknown mode {change}; {MODE_USAGE}").into(),
            InvalidLimit => format!("give a member limit from 1 to {MAX_LIMIT}").into(),
            NoModeNick => "give a nickname".into(),
            InvalidHistory => "give since MESSAGE-ID or last COUNT".into(),
            BannedFromServer("") => "you are banned from this server".into(),
            BannedFromServer(reason) => format!("you are banned from this server: {reason}").into(),
            InvalidAddress => "invalid address; give ADDRESS or ADDRESS/BITS".into(),
            TooManyAddressBans => "too many address bans".into(),
            NoAddressBan(net) => format!("no ban on {net}").into(),
            NoNotice => "no notice given".into(),
        }
    }
}

impl fmt::Display for Refusal<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
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
            (Refusal::NoChannel("Den"), "no channel named Den".into()),
            (
                Refusal::Banned {
                    title: "Den",
                    reason: "",
                },
                "you are banned from Den".into(),
            ),
            (
                Refusal::Banned {
                    title: "Den",
                    reason: "spam",
                },
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
                Refusal::NoBanIn {
                    mask: &mask,
                    title: "Den",
                },
                format!("no ban on {mask} in Den"),
            ),
            (
                Refusal::InvalidBanTime,
                "invalid ban time; give seconds up to 315360000, 0 for until lifted".into(),
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
