//! Effects (work with I/O the handler asks for) and their results, fed back as inputs.

use super::community::{CommunityDone, CommunityEffect};
use super::ticket::Ticket;
use crate::accounts::Account;
use crate::cluster::ClusterEvent;

/// Work with I/O that the handler asks for; see the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Claim the cluster lease of a nickname; answer [`Done::Lease`].
    ClaimLease {
        /// Who waits for it.
        ticket: Ticket,
        /// The nickname.
        nick: String,
    },
    /// A local user logged off: release this server's lease of its nickname, then tell
    /// the other servers it is gone (in that order, so they never see the name free
    /// before it is). No answer.
    ReleaseLease {
        /// The nickname.
        nick: String,
    },
    /// Read an account; answer [`Done::Loaded`].
    LoadAccount {
        /// Who waits for it.
        ticket: Ticket,
        /// The nickname key.
        key: String,
    },
    /// Create an account or replace its record, with its hot list; answer [`Done::Stored`]
    /// once durable (not ok when `create` finds an account there already).
    StoreAccount {
        /// Who waits for it.
        ticket: Ticket,
        /// The account.
        account: Account,
        /// A new registration: made only if nobody made the account meanwhile (the
        /// operator with `chat-server accounts add`, or another server), never over it.
        create: bool,
    },
    /// Delete an account; answer [`Done::Stored`] once durable.
    DeleteAccount {
        /// Who waits for it.
        ticket: Ticket,
        /// The nickname key.
        key: String,
    },
    /// Replace the hot list kept with an account. No answer (a failure is logged).
    SaveHotList {
        /// The nickname key.
        key: String,
        /// The hot list.
        watch: Vec<String>,
    },
    /// Tell the other servers of the cluster. No answer (dropped and counted when the
    /// cluster can't take it).
    Publish(ClusterEvent),
    /// Part-5 work: channels, bans and history to store, private messages kept for
    /// later, the audit log, orders for other workers.
    Community(CommunityEffect),
}

impl Effect {
    /// The ticket of an effect that is answered.
    pub fn ticket(&self) -> Option<Ticket> {
        match self {
            Effect::ClaimLease { ticket, .. }
            | Effect::LoadAccount { ticket, .. }
            | Effect::StoreAccount { ticket, .. }
            | Effect::DeleteAccount { ticket, .. } => Some(*ticket),
            Effect::Community(c) => c.ticket(),
            Effect::ReleaseLease { .. } | Effect::SaveHotList { .. } | Effect::Publish(_) => None,
        }
    }

    /// The answer to give when the effect could not be carried out at all (its queue was
    /// full, or the server is stopping).
    pub fn failed(&self) -> Option<Done> {
        if let Effect::Community(c) = self {
            return c.failed().map(Done::Community);
        }
        let ticket = self.ticket()?;
        Some(match self {
            Effect::ClaimLease { .. } => Done::Lease {
                ticket,
                answer: LeaseAnswer::Unavailable,
            },
            Effect::LoadAccount { .. } => Done::Loaded {
                ticket,
                account: Err(()),
            },
            _ => Done::Stored { ticket, ok: false },
        })
    }
}

/// The answer to a lease claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseAnswer {
    /// This server holds it now.
    Granted,
    /// Another server holds it.
    Refused,
    /// Redis could not be asked (the handler decides from its view of the others).
    Unavailable,
}

/// The result of an effect, fed back into the handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    /// A lease claim was answered.
    Lease {
        /// The claim's ticket.
        ticket: Ticket,
        /// The answer.
        answer: LeaseAnswer,
    },
    /// An account was read: `Ok(None)` when there is none, `Err` when the store failed.
    Loaded {
        /// The read's ticket.
        ticket: Ticket,
        /// What was read.
        account: Result<Option<Account>, ()>,
    },
    /// An account write or delete is durable (`ok`) or failed.
    Stored {
        /// The write's ticket.
        ticket: Ticket,
        /// Whether it is durable.
        ok: bool,
    },
    /// The result of a part-5 effect.
    Community(CommunityDone),
}

impl Done {
    /// The ticket it answers.
    pub fn ticket(&self) -> Ticket {
        match self {
            Done::Lease { ticket, .. }
            | Done::Loaded { ticket, .. }
            | Done::Stored { ticket, .. } => *ticket,
            Done::Community(c) => c.ticket(),
        }
    }
}
