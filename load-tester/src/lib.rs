//! The udpchat load tester: simulates thousands of clients on loopback, each with its own
//! UDP socket, against a running server (or the servers of a cluster, the clients spread
//! over them), and measures fan-out against the kernel's limit.
//!
//! The binary's flags and what it does with them:
//! - `cli`: the flags; `options`: the pieces of a fan-out run they make, each handed to
//!   the part that needs it; `flags`: flag groups several modes share;
//! - `app`: the dispatch to a mode, and the report printed.
//!
//! A fan-out run:
//! - `members`: the client sockets, spread over 127.0.0.0/8, the receiver threads, the
//!   multicast group sockets and the protected members' sessions;
//! - `session`: log-in, caps, join, keepalive and log-off rounds with retries;
//! - `publish`: publishers at a planned rate or in closed loop; `pace`: their clock and
//!   how they wait;
//! - `raw`: the `sendmmsg` blasters that measure the kernel's own limit, flat out, paced,
//!   or to multicast groups; `sent`: what they (and the flood) count of their sending;
//! - `redis_cmp`: the same fan-out through a redis-server's PUBLISH (`--compare-redis`);
//! - `scenario`: the phases of a run on the members of one process; `run`: a run, or a
//!   sweep over channel sizes, in one process; `worker`: a run spread over several
//!   processes when the open-file limit requires it;
//! - [`report`]: the figures, human summary and JSON; `chart`: the SVG chart;
//!   `text`: the texts published and read back; `hist`: latency histograms;
//!   `watch`: the server's CPU and memory around the phases; `progress`: the progress
//!   line.
//!
//! The other modes:
//! - [`flood`]: `load-tester flood`, many source addresses against one server while a
//!   steady user keeps talking;
//! - [`churn`]: `load-tester churn`, channels created and destroyed at a steady rate while
//!   others chat, with the server's memory sampled;
//! - [`soak`]: the `soak` binary, steady load with churn for a long time.
//!
//! Readings: `procstat`: server CPU, memory and threads and the kernel's UDP counters
//! from `/proc`; `scrape`: the server's metrics page; `sys`: clocks and the open-file
//! limit. Batched sends go through the server's own `udpchat-udp`.

mod app;
mod chart;
pub mod churn;
mod cli;
mod flags;
pub mod flood;
mod hist;
mod members;
mod options;
mod pace;
mod procstat;
mod progress;
mod publish;
mod raw;
mod redis_cmp;
pub mod report;
mod run;
mod scenario;
mod scrape;
mod sent;
mod session;
pub mod soak;
mod sys;
mod text;
mod watch;
mod worker;

pub use app::run;
pub use cli::Args;
