//! Accounts: the OPAQUE service the state machine uses ([`Service`], no I/O) and the stores
//! that keep accounts ([`AccountStore`]: memory, SQLite, PostgreSQL), with the community's
//! data (registered channels, bans, history, kept private messages: [`CommunityStore`])
//! in the same three homes. Which home a server uses is one [`StoreKind`].
//!
//! - `store`: an account record, the account store trait, the memory store;
//! - `sqlite`, `pg`: the account stores in SQLite (the default) and PostgreSQL;
//! - `community`: the community's records, their store trait, the memory store;
//!   `community_sqlite`, `community_pg` beside the accounts' databases;
//! - `kind`: [`StoreKind`], which opens both stores of a home;
//! - `service`: the OPAQUE service; [`limits`] and `tokens`: what it refuses and why;
//! - `admin`: what `chat-server accounts` does (make an account with a password, mark
//!   it as a server operator's, delete it).
//!
//! Reads and writes of the stores are effects carried out by the server's store threads,
//! never by a worker.

mod admin;
mod community;
mod community_pg;
mod community_sqlite;
mod kind;
pub mod limits;
pub mod pg;
mod service;
mod sqlite;
mod store;
#[cfg(any(test, feature = "test-support"))]
mod testing;
pub(crate) mod tokens;

pub use admin::{add_account, delete_account, set_operator, AdminError};
pub use community::{
    account_sender, guest_sender, CommunityStore, HistoryRow, Kept, MailLimits, MailRules,
    MemoryCommunity, RefusalChange, Refusals, RefusedBy, Snapshot, StoredAddrBan, StoredBan,
    StoredChannel, StoredMail, StoredMessage, GUEST_SENDER,
};
pub use kind::StoreKind;
pub use service::{LoggedIn, LoginError, Service};
pub use sqlite::SqliteStore;
pub use store::{key, Account, AccountStore, MemoryStore, StoreError};
#[cfg(any(test, feature = "test-support"))]
pub use testing::{exercise_account_records, exercise_accounts, exercise_community};
