//! What the community features (part 5: created channels, moderation, history, stored
//! private messages, server operators) ask of the threads around the handler, and what
//! comes back.
//!
//! Everything here is plain data, like the rest of the outbox: the store thread keeps the
//! stores' records (`accounts::StoredChannel`, ...), the audit log gets [`AuditRecord`]s,
//! and an [`Order`] travels from the worker that decided it to the worker that owns the
//! user it concerns. What servers of a cluster tell each other about all this is the
//! cluster's `CommunityEvent`.

use super::ticket::Ticket;
use crate::accounts::{
    Kept, MailLimits, Refusals, StoredAddrBan, StoredBan, StoredChannel, StoredMail, StoredMessage,
};

/// One line of the audit log: a moderation or operator action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// When, milliseconds since the Unix epoch.
    pub ms: u64,
    /// Who (a nickname, or `config` for a reload).
    pub actor: String,
    /// What: `kick`, `ban`, `oper-kill`, ...
    pub action: String,
    /// On what: a channel, a nickname, a network.
    pub target: String,
    /// The rest: a reason, a mode, an expiry.
    pub detail: String,
}

/// What one worker asks the worker owning a user to do to that user, so that each user
/// record keeps its single writer (see the `state` module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Order {
    /// Take the user out of a channel: a kick, or a ban that covers a member.
    Evict {
        /// The user, as it was when the order was given.
        nick: String,
        /// The channel (an id of this server).
        id: u64,
        /// Who removed it.
        by: String,
        /// Why.
        reason: String,
    },
    /// Log the user off: an operator's kill, or an address ban that covers it.
    Disconnect {
        /// The user, as it was when the order was given.
        nick: String,
        /// Who.
        by: String,
        /// Why.
        reason: String,
    },
}

/// Part-5 work for the threads around the handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommunityEffect {
    /// Store a registered channel (create or update). No answer.
    SaveChannel(StoredChannel),
    /// Forget a registered channel with its operators and bans. No answer.
    DeleteChannel {
        /// The channel's key (lower-cased title).
        key: String,
    },
    /// Make an account a lasting operator of a channel, or no longer. No answer.
    SetOp {
        /// The channel's key.
        chan: String,
        /// The account's key.
        account: String,
        /// Operator or not.
        on: bool,
    },
    /// Store a channel ban. No answer.
    SaveBan {
        /// The channel's key.
        chan: String,
        /// The ban.
        ban: StoredBan,
    },
    /// Forget a channel ban. No answer.
    DeleteBan {
        /// The channel's key.
        chan: String,
        /// Its mask.
        mask: String,
    },
    /// Keep a message of a registered channel's history. No answer; the store thread
    /// writes these in batches.
    SaveMessage {
        /// The channel's key.
        chan: String,
        /// The message.
        message: StoredMessage,
        /// How many messages the channel keeps (older ones are pruned).
        keep: usize,
    },
    /// Keep a private message for a user who is away, unless the recipient refuses its
    /// sender or the limits are reached; answered with [`CommunityDone::Mailed`].
    StoreMail {
        /// Who waits for the answer (the sender).
        ticket: Ticket,
        /// The message.
        mail: StoredMail,
        /// The sender's account (its key), for the recipient's `account:NAME` refusals;
        /// `None` for a guest.
        account: Option<String>,
        /// How many messages the box keeps, by whom.
        limits: MailLimits,
    },
    /// Change the refusals of recipient `key` (`change`: a mask added or, with `false`,
    /// removed; `None`: none) and read them; answered with [`CommunityDone::Refusals`].
    SetRefusal {
        /// Who waits for the list (the recipient, logged in with its password).
        ticket: Ticket,
        /// The recipient's nickname key.
        key: String,
        /// The change.
        change: Option<(String, bool)>,
        /// The most masks one recipient may refuse.
        max: usize,
    },
    /// Take (read and delete) the private messages kept for `key`; answered with
    /// [`CommunityDone::Mail`].
    TakeMail {
        /// Who waits for them (the recipient, just logged in).
        ticket: Ticket,
        /// The recipient's nickname key.
        key: String,
    },
    /// Forget the messages kept for `key` and the senders it refuses (its account was
    /// deleted, or made anew). No answer.
    ForgetMailbox {
        /// The nickname key.
        key: String,
    },
    /// Store an address ban. No answer.
    SaveAddrBan(StoredAddrBan),
    /// Forget an address ban. No answer.
    DeleteAddrBan {
        /// The network as stored.
        net: String,
    },
    /// Write a line to the audit log. No answer.
    Audit(AuditRecord),
    /// Hand `order` to the worker owning `ticket.route`, as [`CommunityDone::Order`].
    Relay {
        /// The user it concerns (address and route).
        ticket: Ticket,
        /// What to do.
        order: Order,
    },
}

impl CommunityEffect {
    /// The ticket of an effect that is answered.
    pub fn ticket(&self) -> Option<Ticket> {
        match self {
            CommunityEffect::StoreMail { ticket, .. }
            | CommunityEffect::TakeMail { ticket, .. }
            | CommunityEffect::SetRefusal { ticket, .. } => Some(*ticket),
            _ => None,
        }
    }

    /// The answer when the effect could not be carried out at all.
    pub fn failed(&self) -> Option<CommunityDone> {
        let done = match self {
            CommunityEffect::StoreMail { ticket, .. } => CommunityDone::Mailed {
                ticket: *ticket,
                stored: Err(()),
            },
            CommunityEffect::TakeMail { ticket, .. } => CommunityDone::Mail {
                ticket: *ticket,
                mail: Err(()),
            },
            CommunityEffect::SetRefusal { ticket, .. } => CommunityDone::Refusals {
                ticket: *ticket,
                list: Err(()),
            },
            _ => return None,
        };
        Some(done)
    }
}

/// The result of a part-5 effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommunityDone {
    /// A private message for someone away: what became of it, or the store failed.
    Mailed {
        /// The sender's ticket.
        ticket: Ticket,
        /// What happened.
        stored: Result<Kept, ()>,
    },
    /// A recipient's refusals after a change, or the store failed.
    Refusals {
        /// The recipient's ticket.
        ticket: Ticket,
        /// The list, or that it was full.
        list: Result<Refusals, ()>,
    },
    /// The private messages kept for a user who just logged in, oldest first.
    Mail {
        /// The recipient's ticket.
        ticket: Ticket,
        /// The messages.
        mail: Result<Vec<StoredMail>, ()>,
    },
    /// An [`Order`] for the user of `ticket`, from another worker.
    Order {
        /// The user it concerns.
        ticket: Ticket,
        /// What to do.
        order: Order,
    },
}

impl CommunityDone {
    /// The ticket it answers.
    pub fn ticket(&self) -> Ticket {
        match self {
            CommunityDone::Mailed { ticket, .. }
            | CommunityDone::Refusals { ticket, .. }
            | CommunityDone::Mail { ticket, .. }
            | CommunityDone::Order { ticket, .. } => *ticket,
        }
    }
}
