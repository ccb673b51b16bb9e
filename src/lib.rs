//! udpchat: a high-capacity multi-channel chat system over UDP datagrams.
//!
//! The crate holds the whole system; the binaries only parse arguments and call into it,
//! so tests drive everything in-process. Its modules, from the wire inwards:
//!
//! - [`protocol`]: event codes, typed requests and events, decoding and encoding of
//!   datagrams. No I/O; malformed bytes are an error value, never a panic.
//! - [`auth`]: OPAQUE password logins and sealed datagrams of protected sessions (no I/O).
//! - [`accounts`]: account storage behind a trait; SQLite by default, memory for tests.
//! - [`config`]: the channel list, the classic defaults or a TOML file.
//! - [`state`]: users by address, the case-insensitive nickname index, channels with their
//!   members and the shareable member snapshots that fan-out reads.
//! - [`handler`]: the state machine, request + state + clock → datagrams to send, without I/O.
//! - [`server`]: the sockets and threads around the handler: receive thread, workers,
//!   sender pool, idle sweep, shutdown.
//! - [`client`]: the terminal client: login with retries, slash commands, rendering of
//!   events as the classic client showed them, with network text defused.
#![warn(missing_docs)]

pub mod accounts;
pub mod auth;
pub mod client;
pub mod config;
pub mod handler;
pub mod protocol;
pub mod server;
pub mod state;
