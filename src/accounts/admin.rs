//! What `chat-server accounts` does to the server's store, on the machine that holds it:
//! make an account with a password (both sides of the OPAQUE registration run here, the
//! client's from `proto::auth`, so the password never leaves the process), mark one as a
//! server operator's or not, and delete one. A running server on the same database
//! notices each change within a fraction of a second (`server::effects`).
//!
//! This is the only way an account becomes an operator's: whoever can run it can read
//! the server's database already, so the right comes from the machine, not from the
//! network.

use super::service::Service;
use super::store::{key, Account, AccountStore, StoreError};

/// Why `chat-server accounts` could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Not a nickname the server would let anyone use.
    #[error("{0:?} is not a nickname (1 to 32 bytes, no white space or control characters)")]
    InvalidNick(String),
    /// An empty password.
    #[error("the password must not be empty")]
    EmptyPassword,
    /// The account exists already.
    #[error("{0} has an account already; delete it first to give it a new password")]
    Exists(String),
    /// No such account.
    #[error("no account named {0}")]
    NoAccount(String),
    /// OPAQUE refused its own messages (never in practice).
    #[error("the password could not be registered")]
    Registration,
}

/// Makes the account `nick` with `password`, as a server operator's if `operator`, at
/// `created` (seconds since the Unix epoch). The server's OPAQUE setup is read from the
/// store (or made and saved there, for a new store): a client registering over the
/// network and this function give the same record. Argon2 stretches the password here,
/// as it would in the client (a second or so).
///
/// # Errors
/// An invalid nickname, an empty password, an account that exists, or a store failure.
pub fn add_account(
    store: &dyn AccountStore,
    nick: &str,
    password: &str,
    operator: bool,
    created: i64,
) -> Result<Account, AdminError> {
    if !proto::valid_nick(nick) {
        return Err(AdminError::InvalidNick(nick.to_owned()));
    }
    if password.is_empty() {
        return Err(AdminError::EmptyPassword);
    }
    if store.get(&key(nick))?.is_some() {
        return Err(AdminError::Exists(nick.to_owned()));
    }
    let service = Service::open(store)?;
    let start = proto::auth::register_start(password);
    let request = payload(&start.datagram)?;
    let response = service
        .registration_response(nick, request)
        .map_err(|_| AdminError::Registration)?;
    let upload = start
        .finish(password, &response)
        .map_err(|_| AdminError::Registration)?;
    let record =
        Service::registration_record(payload(&upload)?).map_err(|_| AdminError::Registration)?;
    let account = Account {
        nick: nick.to_owned(),
        record,
        watch: Vec::new(),
        created,
        operator,
    };
    // Made only if nobody registered the nickname over the network meanwhile.
    if !store.create(&account)? {
        return Err(AdminError::Exists(nick.to_owned()));
    }
    Ok(account)
}

/// The text payload of a datagram the client side made (after its two-byte code).
fn payload(datagram: &[u8]) -> Result<&str, AdminError> {
    datagram
        .get(2..)
        .and_then(|p| std::str::from_utf8(p).ok())
        .ok_or(AdminError::Registration)
}

/// Marks the account of `nick` as a server operator's, or not.
///
/// # Errors
/// No such account, or a store failure.
pub fn set_operator(
    store: &dyn AccountStore,
    nick: &str,
    operator: bool,
) -> Result<(), AdminError> {
    match store.set_operator(&key(nick), operator)? {
        true => Ok(()),
        false => Err(AdminError::NoAccount(nick.to_owned())),
    }
}

/// Deletes the account of `nick`: the nickname is free again (unless the configuration
/// reserves it for an operator), and a session logged in to it loses its operator rights.
///
/// # Errors
/// No such account, or a store failure.
pub fn delete_account(store: &dyn AccountStore, nick: &str) -> Result<(), AdminError> {
    match store.delete(&key(nick))? {
        true => Ok(()),
        false => Err(AdminError::NoAccount(nick.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::MemoryStore;
    use std::net::SocketAddr;
    use std::time::Instant;

    #[test]
    fn an_account_made_here_logs_in_over_opaque_with_its_password() {
        let store = MemoryStore::default();
        let made = add_account(&store, "Alice", "correct horse", true, 7).unwrap();
        assert!(made.operator && made.created == 7);
        assert!(matches!(
            add_account(&store, "ALICE", "x", false, 8),
            Err(AdminError::Exists(_))
        ));
        assert!(matches!(
            add_account(&store, "two words", "x", false, 8),
            Err(AdminError::InvalidNick(_))
        ));
        assert!(matches!(
            add_account(&store, "bob", "", false, 8),
            Err(AdminError::EmptyPassword)
        ));
        // The server, started on the store afterwards, knows the account and its flag,
        // and the password logs in through the same steps a client takes.
        let service = Service::open(&store).unwrap();
        assert!(service.is_registered("alice") && service.is_operator_account("alice"));
        let from: SocketAddr = "127.0.0.1:9".parse().unwrap();
        for (password, works) in [("correct horse", true), ("wrong", false)] {
            let login = proto::auth::login_start("alice", password);
            let text = std::str::from_utf8(&login.datagram[2..]).unwrap();
            let request = Service::credential_request(text.split(' ').nth(1).unwrap()).unwrap();
            let account = store.get("alice").unwrap().unwrap();
            let challenge = service
                .login_start(from, account, &request, Instant::now())
                .unwrap();
            let finished = login.finish(password, &challenge);
            assert_eq!(finished.is_ok(), works, "{password}");
            if let Ok((datagram, _)) = finished {
                let message = std::str::from_utf8(&datagram[2..]).unwrap();
                assert!(service.login_finish(from, message, Instant::now()).is_ok());
            }
        }
        set_operator(&store, "alice", false).unwrap();
        assert!(!store.get("alice").unwrap().unwrap().operator);
        assert!(matches!(
            set_operator(&store, "nobody", true),
            Err(AdminError::NoAccount(_))
        ));
        delete_account(&store, "ALICE").unwrap();
        assert!(matches!(
            delete_account(&store, "alice"),
            Err(AdminError::NoAccount(_))
        ));
    }
}
