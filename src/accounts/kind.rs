//! Where a server keeps its accounts and its community's data: one [`StoreKind`] for the
//! server and for `chat-server accounts` alike, which opens both stores of that home.

use std::path::PathBuf;
use std::sync::Arc;

use super::community::{CommunityStore, MemoryCommunity};
use super::community_pg::PgCommunity;
use super::community_sqlite::SqliteCommunity;
use super::pg::PgStore;
use super::sqlite::SqliteStore;
use super::store::{AccountStore, MemoryStore, StoreError};
use crate::tls::Trust;

/// Where accounts are kept: one choice for the server and the command line. Its `Debug`
/// and `Display` never show a password the PostgreSQL URL holds.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreKind {
    /// In memory, gone when the process ends (tests).
    Memory,
    /// An SQLite database in this data folder (made if missing).
    Sqlite(PathBuf),
    /// A PostgreSQL database (`postgres://...`), shared by the servers of a cluster.
    Postgres(String),
}

impl StoreKind {
    /// Opens the account store; a PostgreSQL server with TLS is verified with `trust`.
    ///
    /// # Errors
    /// When the folder, file or database can't be opened or set up.
    pub fn open_with(&self, trust: &Trust) -> Result<Arc<dyn AccountStore>, StoreError> {
        Ok(match self {
            StoreKind::Memory => Arc::new(MemoryStore::default()),
            StoreKind::Sqlite(dir) => Arc::new(SqliteStore::open_dir(dir)?),
            StoreKind::Postgres(url) => Arc::new(PgStore::connect_with(url, trust.clone())?),
        })
    }

    /// Opens the community store that goes with these accounts, verified as
    /// [`open_with`](Self::open_with) does.
    ///
    /// # Errors
    /// As [`open_with`](Self::open_with).
    pub fn open_community_with(
        &self,
        trust: &Trust,
    ) -> Result<Arc<dyn CommunityStore>, StoreError> {
        Ok(match self {
            StoreKind::Memory => Arc::new(MemoryCommunity::default()),
            StoreKind::Sqlite(dir) => Arc::new(SqliteCommunity::open_dir(dir)?),
            StoreKind::Postgres(url) => Arc::new(PgCommunity::connect(url, trust)?),
        })
    }
}

impl std::fmt::Debug for StoreKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreKind::Memory => f.write_str("Memory"),
            StoreKind::Sqlite(dir) => f.debug_tuple("Sqlite").field(dir).finish(),
            StoreKind::Postgres(url) => f
                .debug_tuple("Postgres")
                .field(&crate::redact::url(url))
                .finish(),
        }
    }
}

impl std::fmt::Display for StoreKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreKind::Memory => f.write_str("memory"),
            StoreKind::Sqlite(dir) => write!(f, "SQLite in {}", dir.display()),
            // The URL may hold a password: show only that it is PostgreSQL.
            StoreKind::Postgres(_) => f.write_str("PostgreSQL"),
        }
    }
}
