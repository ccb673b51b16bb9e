//! The soak driver's flags and the figures derived from them.

use std::net::SocketAddr;

use clap::Parser;

use crate::flags::{Output, ServerFigures};
use crate::sys::SEC;

/// The soak driver's flags.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "soak",
    about = "Steady load with churn for a long time; checks that departed clients get nothing and that memory and threads stay flat"
)]
pub struct SoakArgs {
    /// The server (loopback only).
    #[arg(long)]
    pub(crate) server: SocketAddr,
    // Its RSS and thread count, and its metrics, read at every sample.
    #[command(flatten)]
    pub(crate) figures: ServerFigures,
    /// Seconds of steady load (at most a day).
    #[arg(long, default_value_t = 600.0)]
    pub(crate) duration: f64,
    /// Clients kept logged in and in a channel.
    #[arg(long, default_value_t = 2000)]
    pub(crate) clients: usize,
    /// Channels, titled `<prefix>0` ...; the server must have them.
    #[arg(long, default_value_t = 20)]
    pub(crate) channels: usize,
    /// Channel title prefix.
    #[arg(long, default_value = "lt")]
    pub(crate) title_prefix: String,
    /// Public messages per second, in total.
    #[arg(long, default_value_t = 200.0)]
    pub(crate) rate: f64,
    /// Clients replaced per second (each departs and a new one on a fresh socket logs in).
    #[arg(long, default_value_t = 10.0)]
    pub(crate) churn: f64,
    /// Share of the replaced clients that vanish instead of logging off.
    #[arg(long, default_value_t = 0.5)]
    pub(crate) vanish_share: f64,
    /// Clients per second that part their channel and join another.
    #[arg(long, default_value_t = 10.0)]
    pub(crate) moves: f64,
    /// Seconds between samples.
    #[arg(long, default_value_t = 30.0)]
    pub(crate) sample: f64,
    /// The server's --idle-timeout, in seconds: vanished clients must be gone after it.
    #[arg(long, default_value_t = 10.0)]
    pub(crate) idle_timeout: f64,
    /// The server's --check-interval, in seconds.
    #[arg(long, default_value_t = 2.0)]
    pub(crate) check_interval: f64,
    /// Seconds between a client's keepalives (default: a third of the idle timeout).
    #[arg(long)]
    pub(crate) keepalive: Option<f64>,
    /// Milliseconds after a LOGOFF or PART within which a publication may still be in
    /// flight to the departed client.
    #[arg(long, default_value_t = 200)]
    pub(crate) grace_ms: u64,
    /// Seconds a departed client's socket stays open, listening for stray deliveries.
    #[arg(long, default_value_t = 3.0)]
    pub(crate) linger: f64,
    // How the report and the progress are shown.
    #[command(flatten)]
    pub(crate) output: Output,
}

impl SoakArgs {
    /// Checks the flags: loopback only, bounded, sensible.
    ///
    /// # Errors
    /// The first flag that is out of bounds.
    pub(super) fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.server.ip().is_loopback(),
            "--server must be a loopback address"
        );
        anyhow::ensure!(
            self.duration > 0.0 && self.duration <= 86_400.0,
            "--duration must be in (0, 86400] seconds"
        );
        anyhow::ensure!(
            (1..=15_000).contains(&self.clients),
            "--clients must be 1 ..= 15000 (one open file each)"
        );
        anyhow::ensure!(self.channels >= 2, "--channels must be at least 2");
        anyhow::ensure!(
            (0.0..=10_000.0).contains(&self.rate),
            "--rate must be 0 ..= 10000"
        );
        anyhow::ensure!(
            (0.0..=1_000.0).contains(&self.churn) && (0.0..=1_000.0).contains(&self.moves),
            "--churn and --moves must be 0 ..= 1000"
        );
        anyhow::ensure!(
            (0.0..=1.0).contains(&self.vanish_share),
            "--vanish-share must be 0 ..= 1"
        );
        anyhow::ensure!(
            self.sample >= 0.1 && self.idle_timeout > 0.0 && self.check_interval > 0.0,
            "--sample, --idle-timeout and --check-interval must be positive"
        );
        anyhow::ensure!(
            self.keepalive_s() < self.idle_timeout,
            "keepalives must come more often than the idle timeout"
        );
        self.figures.metrics_addr()?;
        Ok(())
    }

    /// Seconds between a client's keepalives.
    pub(super) fn keepalive_s(&self) -> f64 {
        self.keepalive.unwrap_or(self.idle_timeout / 3.0)
    }

    /// The title of channel `c`.
    pub(super) fn title(&self, c: usize) -> String {
        format!("{}{c}", self.title_prefix)
    }

    /// When a vanished client must be gone: the idle timeout, two sweeps and a second.
    pub(super) fn vanish_deadline_ns(&self) -> u64 {
        ((self.idle_timeout + 2.0 * self.check_interval + 1.0) * SEC as f64) as u64
    }
}
