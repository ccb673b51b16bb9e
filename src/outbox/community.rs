//! What the community features (part 5: created channels, moderation, history, stored
//! private messages, server operators) ask of the threads around the handler, what comes
//! back, and what servers of a cluster tell each other about them.
//!
//! Everything here is plain data, like the rest of the outbox: the store thread keeps the
//! `Stored*` records, the audit log gets [`AuditRecord`]s, an [`Order`] travels from the
//! worker that decided it to the worker that owns the user it concerns, and
//! [`CommunityEvent`]s go over Redis as JSON.

use serde::{Deserialize, Serialize};

use super::{Done, Ticket};

/// A registered channel as it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredChannel {
    /// The title as created.
    pub title: String,
    /// The description (topic).
    pub description: String,
    /// The account that created it (its key).
    pub founder: String,
    /// When it was created, milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// Mode `i`.
    pub invite_only: bool,
    /// Mode `m`.
    pub moderated: bool,
    /// Mode `t`.
    pub topic_locked: bool,
    /// Mode `l`: the member limit.
    pub limit: Option<u32>,
}

/// A channel ban as it is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredBan {
    /// `account:KEY` or a lower-cased nickname pattern.
    pub mask: String,
    /// When it ends, milliseconds since the Unix epoch; 0 for never.
    pub until_ms: u64,
    /// Who set it.
    pub by: String,
    /// Why.
    pub reason: String,
}

/// A public message as history keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// Its id (see `State::next_message_id`).
    pub id: u64,
    /// When it was sent, milliseconds since the Unix epoch.
    pub ms: u64,
    /// The sender.
    pub nick: String,
    /// The text.
    pub text: String,
}

/// A private message kept for a registered user who was away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMail {
    /// The recipient's nickname key.
    pub to: String,
    /// When it was sent, milliseconds since the Unix epoch.
    pub ms: u64,
    /// The sender.
    pub from: String,
    /// The text.
    pub text: String,
}

/// A ban of an address or network, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAddrBan {
    /// The network, `ADDRESS/BITS`.
    pub net: String,
    /// When it ends, milliseconds since the Unix epoch; 0 for never.
    pub until_ms: u64,
    /// The operator who set it.
    pub by: String,
    /// Why.
    pub reason: String,
}

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
    /// Keep a private message for a user who is away, unless `max` are kept for it
    /// already; answered with [`CommunityDone::Mailed`].
    StoreMail {
        /// Who waits for the answer (the sender).
        ticket: Ticket,
        /// The message.
        mail: StoredMail,
        /// The most messages kept per recipient.
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
            | CommunityEffect::TakeMail { ticket, .. } => Some(*ticket),
            _ => None,
        }
    }

    /// The answer when the effect could not be carried out at all.
    pub fn failed(&self) -> Option<Done> {
        let done = match self {
            CommunityEffect::StoreMail { ticket, .. } => CommunityDone::Mailed {
                ticket: *ticket,
                stored: Err(()),
            },
            CommunityEffect::TakeMail { ticket, .. } => CommunityDone::Mail {
                ticket: *ticket,
                mail: Err(()),
            },
            _ => return None,
        };
        Some(Done::Community(done))
    }
}

/// The result of a part-5 effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommunityDone {
    /// A private message for someone away: kept (`Ok(true)`), refused because the
    /// recipient's box is full (`Ok(false)`), or the store failed.
    Mailed {
        /// The sender's ticket.
        ticket: Ticket,
        /// What happened.
        stored: Result<bool, ()>,
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
            | CommunityDone::Mail { ticket, .. }
            | CommunityDone::Order { ticket, .. } => *ticket,
        }
    }
}

/// What one server of a cluster tells the others about channels, moderation and
/// operators (on the presence topic, so that it stays in order with the users' joins and
/// parts). Titles and nicknames are checked again by the receiver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "snake_case")]
pub enum CommunityEvent {
    /// A channel was created (and its founder joined it).
    Created {
        /// The title.
        title: String,
        /// The description.
        description: String,
        /// Who created it.
        founder: String,
        /// Whether it is registered (stored) rather than temporary.
        registered: bool,
    },
    /// A channel's topic or modes changed: its settings now.
    Changed {
        /// The title.
        title: String,
        /// The description.
        description: String,
        /// Mode `i`.
        invite_only: bool,
        /// Mode `m`.
        moderated: bool,
        /// Mode `t`.
        topic_locked: bool,
        /// Mode `l`.
        limit: Option<u32>,
        /// The action to show members (`topic ...`, `mode +m`), with its actor.
        actor: String,
        /// The notice's action and arguments.
        notice: String,
    },
    /// A created channel was given up, or a temporary one lost its last member.
    Gone {
        /// The title.
        title: String,
    },
    /// A member's role changed (`o` or `v`), and with `account` an account's lasting
    /// operator status.
    Role {
        /// The channel.
        title: String,
        /// The member.
        nick: String,
        /// `o` or `v`.
        role: char,
        /// Given or taken.
        on: bool,
        /// The account whose lasting status changed with it, if any.
        account: Option<String>,
        /// Who did it.
        actor: String,
    },
    /// A ban was set.
    Ban {
        /// The channel.
        title: String,
        /// The ban.
        ban: StoredBan,
        /// Its length as given, in seconds (0: until lifted), for the notice.
        seconds: u64,
    },
    /// A ban was lifted.
    Unban {
        /// The channel.
        title: String,
        /// The mask.
        mask: String,
        /// Who lifted it.
        actor: String,
    },
    /// Someone was invited.
    Invite {
        /// The channel.
        title: String,
        /// Who.
        nick: String,
        /// By whom.
        by: String,
    },
    /// A member is removed from a channel (a kick, or a ban covering it): the server
    /// holding it carries it out.
    Evict {
        /// The channel.
        title: String,
        /// The member.
        nick: String,
        /// By whom.
        by: String,
        /// Why.
        reason: String,
    },
    /// A user is disconnected by an operator: the server holding it carries it out.
    Kill {
        /// The user.
        nick: String,
        /// The operator.
        by: String,
        /// Why.
        reason: String,
    },
    /// An address ban was set.
    AddrBan(StoredAddrBan),
    /// An address ban was lifted.
    AddrUnban {
        /// The network.
        net: String,
    },
    /// An operator's notice to everyone.
    Notice {
        /// The operator.
        from: String,
        /// The text.
        text: String,
    },
}
