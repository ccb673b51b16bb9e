//! udpchat: a high-capacity multi-channel chat system over UDP datagrams.
//!
//! The crate holds the whole system; the binaries only parse arguments and call into it,
//! so tests drive everything in-process. Its modules, from the wire inwards:
//!
//! - [`protocol`]: event codes, typed requests and events, decoding and encoding of
//!   datagrams. No I/O; malformed bytes are an error value, never a panic.
//! - [`config`]: the channel list, the classic defaults or a TOML file.
//! - [`state`]: users by address, the case-insensitive nickname index, channels with their
//!   members and the shareable member snapshots that fan-out reads.
//! - [`handler`]: the state machine, request + state + clock → datagrams to send, without I/O.
//! - [`server`]: the sockets and threads around the handler: receive thread, workers,
//!   sender pool, idle sweep, shutdown.
#![warn(missing_docs)]

pub mod config;
pub mod handler;
pub mod protocol;
pub mod server;
pub mod state;
