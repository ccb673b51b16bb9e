//! The flags of `load-tester flood`.

use std::net::{Ipv4Addr, SocketAddr};

use clap::ValueEnum;
use serde::{Deserialize, Serialize};

use crate::flags::{Output, ServerFigures};

/// First source address of the flood: 127.1.0.0 onwards keeps clear of 127.0.0.0/16, where
/// the steady user, the other load-tester modes and usually the server live.
pub(crate) const FIRST_SOURCE: Ipv4Addr = Ipv4Addr::new(127, 1, 0, 0);

/// The most distinct source addresses: 127.1.0.0 + 10 million stays well inside 127.0.0.0/8.
pub(crate) const MAX_ADDRESSES: usize = 10_000_000;

/// What each flood datagram asks of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// LOGIN_REQ with a fresh nickname: every source becomes a user (up to --max-users).
    Login,
    /// JOIN_REQ from a stranger (never logged in): answered at most with `please log in`.
    Join,
    /// SEND_PUBLIC from a stranger.
    Public,
    /// STILL_HERE from a stranger: the cheapest request there is.
    StillHere,
    /// LOGIN_REQ, then four WATCH_REQs of 25 nicknames each (100 in all, none shared with
    /// another address): what a forged guest's full hot list costs the server's memory.
    HotList,
}

impl Kind {
    /// The datagrams each address sends per pass, in order.
    pub(crate) fn steps(self) -> usize {
        match self {
            Kind::HotList => 1 + HOT_LIST_WATCHES,
            _ => 1,
        }
    }
}

/// WATCH_REQs a `hot-list` address sends after its login.
pub(crate) const HOT_LIST_WATCHES: usize = 4;
/// Nicknames in each of them.
pub(crate) const HOT_LIST_NAMES: usize = 25;

/// The flags of `load-tester flood` (its help text is on `cli::Command::Flood`).
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct FloodArgs {
    /// The server (loopback IPv4 only).
    #[arg(long, default_value = "127.0.0.1:2027")]
    pub(crate) server: SocketAddr,
    // Its CPU time per flood datagram and memory before and after the flood; its logged-in
    // users, datagrams received and drops.
    #[command(flatten)]
    pub(crate) figures: ServerFigures,
    /// Distinct source addresses (127.1.0.0 onwards), each sending one datagram per pass.
    #[arg(long, default_value_t = 50_000)]
    pub(crate) addresses: usize,
    /// What each flood datagram is.
    #[arg(long, value_enum, default_value_t = Kind::Login)]
    pub(crate) kind: Kind,
    /// Flood datagrams per second; 0 = as fast as one thread can send.
    #[arg(long, default_value_t = 0.0)]
    pub(crate) rate: f64,
    /// Seconds of flooding: the addresses are gone through again (with fresh nicknames)
    /// until then. Without it, one pass: each address sends one datagram.
    #[arg(long)]
    pub(crate) duration: Option<f64>,
    /// The channel the steady user joins and talks in.
    #[arg(long, default_value = "Pets")]
    pub(crate) channel: String,
    /// Milliseconds between the steady user's messages.
    #[arg(long, default_value_t = 10)]
    pub(crate) interval_ms: u64,
    /// Seconds the steady user talks before the flood, as the baseline.
    #[arg(long, default_value_t = 0.5)]
    pub(crate) before: f64,
    /// Seconds the steady user goes on talking after the flood; the server's memory is read
    /// at the end of them.
    #[arg(long, default_value_t = 2.0)]
    pub(crate) after: f64,
    // How the report and the progress are shown.
    #[command(flatten)]
    pub(crate) output: Output,
}

impl FloodArgs {
    /// Checks what clap can't.
    ///
    /// # Errors
    /// A server outside loopback IPv4, or counts and times out of bounds.
    pub(crate) fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.server.is_ipv4() && self.server.ip().is_loopback(),
            "the flood targets loopback IPv4 only, not {}",
            self.server
        );
        anyhow::ensure!(
            (1..=MAX_ADDRESSES).contains(&self.addresses),
            "--addresses must be 1 ..= {MAX_ADDRESSES}"
        );
        anyhow::ensure!(
            self.rate >= 0.0 && self.rate.is_finite(),
            "--rate can't be negative"
        );
        if let Some(d) = self.duration {
            anyhow::ensure!(
                d > 0.0 && d <= 3600.0,
                "--duration must be in (0, 3600] seconds"
            );
        }
        anyhow::ensure!(
            (1..=1000).contains(&self.interval_ms),
            "--interval-ms must be 1 ..= 1000"
        );
        anyhow::ensure!(
            (0.0..=600.0).contains(&self.before) && (0.5..=600.0).contains(&self.after),
            "--before must be 0 ..= 600 and --after 0.5 ..= 600 seconds"
        );
        anyhow::ensure!(
            !self.channel.is_empty() && !self.channel.contains(char::is_whitespace),
            "--channel must be one word"
        );
        self.figures.metrics_addr()?;
        Ok(())
    }
}

/// The source address of the `i`-th flood address.
pub(crate) fn source(i: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(FIRST_SOURCE) + i as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_distinct_and_stay_in_loopback() {
        assert_eq!(source(0), FIRST_SOURCE);
        assert_eq!(source(256), Ipv4Addr::new(127, 1, 1, 0));
        assert_ne!(source(1), source(2));
        assert!(source(MAX_ADDRESSES - 1).is_loopback());
        assert_ne!(source(MAX_ADDRESSES - 1), Ipv4Addr::new(127, 255, 255, 255));
    }
}
