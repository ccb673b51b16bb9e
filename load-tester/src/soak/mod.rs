//! The soak driver: a steady population of clients at a moderate load for a long time,
//! with clients moving between channels, logging off cleanly and vanishing, while the
//! server's memory and threads are sampled.
//!
//! One thread does everything (sends, receives through one poller, bookkeeping): the load
//! is moderate by design, and a single thread needs no locks around the per-client state
//! that every received datagram is checked against.
//!
//! What is checked:
//! - a client that logged off gets no PUBLIC_MSG published after its logoff was confirmed
//!   (the server answers a probe with `ERROR please log in`) or more than a grace after
//!   the LOGOFF was sent, whichever is earlier; the socket stays open a while to see it;
//! - likewise no PUBLIC_MSG for a channel a client parted, counted from its PART_ACK or
//!   the PART plus the grace;
//! - a client that vanished (socket closed, no LOGOFF) is gone (WHOIS answers
//!   `not logged in`) once the idle timeout and two sweeps have passed.
//!
//! The parts:
//! - `args`: the flags;
//! - `client`: what the driver knows of each simulated client;
//! - `driver`: the driver's state and the helpers its parts share;
//! - `receive`: the poller and what each datagram means for a client;
//! - `actions`: publishing, moves, replacements, keepalives and retries;
//! - `run`: the phases of a soak (build the population, steady load, drain);
//! - `report`: the samples, the figures and the human summary.

mod actions;
mod args;
mod client;
mod driver;
mod receive;
mod report;
mod run;

pub use args::SoakArgs;
pub use report::{Sample, SoakReport};
pub use run::main_with;
