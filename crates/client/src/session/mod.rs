//! The session: everything the client knows and decides about its conversation with the
//! server, independent of how it is shown and of how bytes travel. It logs in (and again
//! after a lost connection), keeps the channels joined in order, keeps the session alive,
//! asks the user for what it needs (a nickname, a password, a confirmation) and turns
//! what the server says into [`Out`]put for whichever interface is running.
//!
//! It does no I/O, as quinn-proto and str0m do none: [`Session::handle`] takes one
//! [`Input`] (a line or a secret typed, each the answer to one [`Ask`]; a datagram or an
//! ICMP error from [`crate::net`]; a signal; the expiry of a timer) with the time it
//! happened, and changes the state; the caller then drains what to do:
//! [`Session::poll_transmit`] (datagrams for the server, as plain bytes, and when a
//! protected session begins or ends: the sealing is the network layer's),
//! [`Session::poll_effect`] (multicast groups to listen to, a server key to check against
//! the pinned one: their answers come back as inputs), [`Session::poll_output`] (lines,
//! asks, status, members for the interface) and [`Session::poll_timeout`] (when to hand
//! it [`Input::Timeout`]). Nothing inside blocks, reads a clock or touches a socket, a
//! file or a channel: the shell around it (`crate::shell`, the session thread) does.
//!
//! Asking is explicit so that a line is never taken for what it is not: every [`Ask`] has a
//! serial and a kind, an answer of the wrong kind (a line typed at the chat prompt while a
//! password was wanted) is dropped, and a line that holds a password typed earlier,
//! anywhere in it and whatever the command, is never sent (see [`guard::SecretGuard`]).
//!
//! The parts: [`io`] (what goes in and comes out), `machine` (the session's state, its
//! entry point and its queues), the state types (`state`, `phase` for the login, `paths`
//! for multicast channels), and the behaviour: `login` (logging in, passwords,
//! reconnecting, rejoining), `chat` (typed lines and the server's events), `community`
//! (part 5: `HELLO`, its events, catching up after a reconnect), `dialog` (the account
//! commands and the paste confirmation), `mcast` (multicast channels), [`guard`]
//! (secrets, mentions, nicknames).

mod chat;
mod community;
mod dialog;
pub(crate) mod guard;
pub(crate) mod io;
mod login;
mod machine;
mod mcast;
mod paths;
mod phase;
mod proof;
mod state;

pub use io::Options;
pub(crate) use io::{
    Ask, AskKind, Effect, Input, Out, Place, Shown, Status, Target, Transmit, UiKind,
};
pub(crate) use machine::Session;

#[cfg(test)]
mod tests;
