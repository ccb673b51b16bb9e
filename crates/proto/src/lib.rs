//! The udpchat wire protocol, shared by the server, the terminal client and the load
//! tester. No I/O happens here, and no input makes it panic: every malformed datagram is
//! a [`DecodeError`].
//!
//! - [`wire`] (re-exported here): the one table of codes ([`code`]), typed requests
//!   ([`Request`], client to server) and events ([`Event`], server to client), their
//!   decoding and encoding, the protocol's error texts ([`errors`]) and limits.
//! - [`batch`]: BATCH, several events in one datagram (part 4).
//! - [`channel_data`]: CHANNEL_DATA, a channel's events on its multicast group, and its tag
//!   (part 4).
//! - [`auth`]: OPAQUE password logins and the keys and sealing of protected sessions
//!   (part 3), the parameters both ends must share.
//! - [`session`]: the client's end of a protected session (seal what it sends, open what
//!   it receives).
//! - [`nick`]: nickname keys (a PRECIS fold) and confusable skeletons.
//! - [`time`]: wall-clock times as the protocol's texts show them.
//!
//! `docs/PROTOCOL.md` is the specification this crate implements.
#![warn(missing_docs)]

pub mod auth;
pub mod batch;
pub mod channel_data;
pub mod nick;
pub mod session;
pub mod time;
pub mod wire;

pub use wire::*;
