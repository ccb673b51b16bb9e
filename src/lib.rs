//! udpchat: a high-capacity multi-channel chat system over UDP datagrams.
//!
//! The crate holds the whole system; the binaries only parse arguments and call into it,
//! so tests drive everything in-process. Its modules, from the wire inwards:
//!
//! - [`protocol`]: event codes (one table), typed requests and events, decoding and
//!   encoding of datagrams. No I/O; malformed bytes are an error value, never a panic.
//! - [`datagram`]: a received datagram classified once (sealed or plain, code, length),
//!   for routing, flood limits and the state machine.
//! - [`auth`]: OPAQUE password logins and sealed datagrams of protected sessions (no I/O).
//! - [`nick`]: nickname keys (a PRECIS fold) and confusable skeletons.
//! - [`sealing`]: which addresses get sealed datagrams; sealing at send time.
//! - [`budget`]: what may be sent to guests that have not proved their address (held back
//!   over budget, per address, per network and in total).
//! - [`config`]: the channel list, the classic defaults or a TOML file.
//! - [`settings`]: the server's configuration file (every flag, operators, message of the
//!   day, community limits, channels) and the settings a SIGHUP reload changes live.
//! - [`state`]: users by address, the case-insensitive nickname index, channels (configured
//!   and created) with their members, shareable member snapshots, moderation lists and
//!   history, sessions, and the view of remote users.
//! - [`outbox`]: what the state machine asks for: datagrams to send and effects (leases,
//!   account writes, cluster events), and the results fed back.
//! - [`handler`]: the state machine, one module per concept; no I/O, no clock of its own.
//! - [`multicast`]: multicast channels: the group range, each channel's group, key and
//!   listeners, and the tag of CHANNEL_DATA.
//! - [`delivery`]: how a round of waiting fan-outs goes out, member by member: one event
//!   per datagram for classic clients, BATCH datagrams for those granted `batch` (no I/O).
//! - [`accounts`]: the OPAQUE service and the account stores (SQLite, PostgreSQL, memory).
//! - [`cluster`]: cluster mode: nickname leases, presence and messages shared with other
//!   servers through Redis.
//! - [`tls`]: TLS to PostgreSQL and Redis (rustls), with the CAs to trust.
//! - [`redact`]: what may reach a log: URLs without their passwords, user texts with
//!   their control characters escaped.
//! - [`server`]: the sockets and threads around the handler: receive thread, workers,
//!   sender pool, effect threads, idle sweep, shutdown.
//! - [`client`]: the terminal client: a session layer (login, reconnecting, channels,
//!   keepalives, password dialogs) under two interfaces, the classic line mode and the
//!   full-screen client; network text is always defused.
//!
//! `docs/ARCHITECTURE.md` follows one datagram through these modules.
#![warn(missing_docs)]

pub mod accounts;
pub mod budget;
pub mod cluster;
pub mod config;
pub mod datagram;
pub mod delivery;
pub mod handler;
pub mod multicast;
pub mod outbox;
pub mod redact;
pub mod sealing;
pub mod server;
pub mod settings;
pub mod state;
pub mod tls;
