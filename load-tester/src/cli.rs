//! The command line: every fan-out scenario is a set of flags; the flood is a subcommand
//! with flags of its own.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::churn::ChurnArgs;
use crate::flags::Output;
use crate::flood::FloodArgs;
use crate::options::{FanOut, Population, Setup, Traffic};

/// Simulates many udpchat clients on loopback against a running server and measures
/// fan-out: deliveries per second, loss, latency, and the kernel's own limit beside them.
///
/// `load-tester flood` instead floods the server from many distinct source addresses while
/// one user keeps talking (see `load-tester flood --help`).
#[derive(Debug, Clone, Parser)]
#[command(name = "load-tester", version, args_conflicts_with_subcommands = true)]
pub struct Args {
    /// Another mode than the fan-out run.
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
    /// The server (loopback only). Repeat it to spread the clients over the servers of a
    /// cluster: client i talks to the (i mod n)-th server given, for everything it sends.
    #[arg(long = "server", default_value = "127.0.0.1:2027", num_args = 1)]
    pub(crate) server: Vec<SocketAddr>,
    /// Simulated clients, one UDP socket each.
    #[arg(long, default_value_t = 1000)]
    pub(crate) clients: usize,
    /// Channels the clients are spread over evenly (1: one big channel). The server must have
    /// channels named `<prefix>0` .. `<prefix>M-1`; see --print-channels.
    #[arg(long, default_value_t = 1)]
    pub(crate) channels: usize,
    /// Prefix of the channel titles.
    #[arg(long, default_value = "lt")]
    pub(crate) title_prefix: String,
    /// Clients (the last N) that register their nickname and log in with a password before
    /// the run, so that their traffic is sealed both ways: what sealing costs the server is
    /// then measured against the guests of the same run.
    #[arg(long, default_value_t = 0)]
    pub(crate) protected: usize,
    // What the publishers send.
    #[command(flatten)]
    pub(crate) traffic: Traffic,
    /// Receiver threads, each polling its share of the sockets.
    #[arg(long, default_value_t = 1)]
    pub(crate) receivers: usize,
    /// SO_RCVBUF asked for each client socket (0: the kernel's default).
    #[arg(long, default_value_t = 0)]
    pub(crate) rcvbuf: usize,
    /// Clients ask for batched delivery (part 4: CAPS_REQ `batch=BYTES`, 512 to 65000;
    /// 1200 without a value) after logging in. Deliveries are counted as events received,
    /// inside batches or not; the report also gives the datagrams that carried them.
    #[arg(long, value_name = "BYTES", num_args = 0..=1, default_missing_value = "1200",
          require_equals = true,
          value_parser = clap::value_parser!(u16).range(512..=65000))]
    pub(crate) batch: Option<u16>,
    /// With --batch: only every other client (odd global index) asks for batches, so one
    /// channel holds both kinds; the report gives each kind's latency apart.
    #[arg(long, requires = "batch")]
    pub(crate) mixed: bool,
    /// Also measure the kernel's own limit: one thread sendmmsg-ing to the same sockets.
    /// With --rate, the blaster is paced at the same planned rate (messages per second of
    /// all publishers together) and its latency is measured like the server's.
    #[arg(long)]
    pub(crate) raw: bool,
    /// Seconds of raw blasting (default: --duration).
    #[arg(long)]
    pub(crate) raw_duration: Option<f64>,
    /// Clients ask for the `multicast` cap, open a group socket on MCAST_GROUP and confirm
    /// with MCAST_JOINED (the server needs --multicast, on 127.0.0.1). With --raw, a raw
    /// multicast blaster (one socket sending to each channel's group) is measured too.
    /// With --batch, a member that asks for both names them in one CAPS_REQ.
    #[arg(long)]
    pub(crate) multicast: bool,
    /// With --multicast: the share of each channel's clients that ask for it, spread
    /// evenly (0.5: every other member); the others are classic clients.
    #[arg(long, default_value_t = 1.0)]
    pub(crate) multicast_share: f64,
    /// Also run the same fan-out through a redis-server's PUBLISH, in the same run: as many
    /// TCP subscribers as the channel has members, one publisher with the same --window
    /// (closed loop) or --rate, for --duration. The redis-server must be on this machine
    /// (loopback), so its CPU can be read from /proc. One channel only.
    #[arg(long, value_name = "ADDR")]
    pub(crate) compare_redis: Option<SocketAddr>,
    /// The server's process id: report its CPU per delivery and memory per user. Repeat it
    /// for a cluster: CPU and memory are then the sums over all the processes given.
    #[arg(long = "server-pid", num_args = 1)]
    pub(crate) server_pid: Vec<u32>,
    // How the report and the progress are shown.
    #[command(flatten)]
    pub(crate) output: Output,
    /// Run one big channel for each of these sizes (comma-separated), e.g. 100,1000,10000.
    #[arg(long, value_delimiter = ',')]
    pub(crate) sweep: Vec<usize>,
    /// Write an SVG chart of deliveries/s against channel size (with --sweep or --chart-from).
    #[arg(long)]
    pub(crate) chart: Option<PathBuf>,
    /// Draw the chart from saved `--sweep --json` outputs instead of running; repeat it to
    /// draw classic and batched sweeps (`--batch`) on one chart.
    #[arg(long, num_args = 1)]
    pub(crate) chart_from: Vec<PathBuf>,
    /// Print a channels file (TOML) with this many channels for the server, and exit.
    #[arg(long)]
    pub(crate) print_channels: Option<usize>,
    /// Clients per process at most (default: what the open-file limit allows).
    #[arg(long)]
    pub(crate) max_per_process: Option<usize>,
    /// Longest wait, in seconds, for the server's USER_JOINS/USER_PARTS to stop after joins
    /// and log-offs.
    #[arg(long, default_value_t = 300.0)]
    pub(crate) settle_max: f64,
    /// Seconds between keepalives (STILL_HERE) of every client.
    #[arg(long, default_value_t = 30.0)]
    pub(crate) keepalive: f64,
    /// Joins outstanding at most (default: fewer for bigger channels).
    #[arg(long)]
    pub(crate) join_window: Option<usize>,
    /// Tag in the nicknames (default: the process id), so runs never collide.
    #[arg(long, hide = true)]
    pub(crate) run_id: Option<u32>,
    /// Internal: run as worker I of --worker-count, talking to the parent on stdin/stdout.
    #[arg(long, hide = true)]
    pub(crate) worker: Option<usize>,
    /// Internal: number of workers.
    #[arg(long, hide = true, default_value_t = 1)]
    pub(crate) worker_count: usize,
}

/// The modes besides the fan-out run.
#[derive(Debug, Clone, Subcommand)]
pub(crate) enum Command {
    /// Flood the server from many distinct source addresses while one user keeps talking.
    ///
    /// Every flood datagram (--kind: LOGIN_REQ with a fresh nickname, or a request from a
    /// stranger) leaves one UDP socket from a source address of its own, chosen per
    /// datagram with IP_PKTINFO: on loopback all of 127.0.0.0/8 is local, so hundreds of
    /// thousands of addresses need no file each. Meanwhile one logged-in user joins
    /// --channel and sends a public message every --interval-ms (10 ms).
    ///
    /// The report (human, or JSON with --json): datagrams sent per second, what the server
    /// answered to the flood's addresses, its CPU time per flood datagram and RSS before
    /// and after (--server-pid), its own counts (--metrics), and how many of the user's
    /// messages came back before, during and after the flood, with round trips p50/p99/max.
    /// Exits with 1 if none of the user's messages came back after the flood.
    Flood(FloodArgs),
    /// Create and destroy channels at a steady rate while others chat (part 5).
    ///
    /// --creators users (guests) each loop: CHAN_CREATE a channel of a fresh title, say a
    /// line there, PART_REQ (the empty temporary channel is then destroyed); together they
    /// start --rate loops a second. --chatters users talk in --channel every --interval-ms.
    /// The report: loops done and failed, chat sent and received, the server's channel
    /// count before and after (--metrics) and its RSS every --sample seconds
    /// (--server-pid). Exits with 1 if a loop failed.
    Churn(ChurnArgs),
}

impl Args {
    /// Checks what clap can't.
    ///
    /// # Errors
    /// A server address outside loopback, or counts that make no scenario.
    pub(crate) fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(!self.server.is_empty(), "--server is required");
        for s in &self.server {
            anyhow::ensure!(
                s.ip().is_loopback(),
                "the load tester targets loopback only, not {s}"
            );
        }
        anyhow::ensure!(self.channels >= 1, "--channels must be at least 1");
        anyhow::ensure!(
            self.clients >= self.channels,
            "--clients must be at least --channels"
        );
        anyhow::ensure!(
            self.traffic.publishers <= self.clients,
            "--publishers can't exceed --clients"
        );
        anyhow::ensure!(
            self.protected <= self.clients,
            "--protected can't exceed --clients"
        );
        anyhow::ensure!(
            self.traffic.duration > 0.0 && self.traffic.duration <= 3600.0,
            "--duration must be in (0, 3600] seconds"
        );
        anyhow::ensure!(
            self.clients <= 1_000_000,
            "--clients is capped at 1,000,000"
        );
        anyhow::ensure!(
            self.traffic.message_size <= 60_000,
            "--message-size is capped at 60000"
        );
        anyhow::ensure!(self.traffic.rate >= 0.0, "--rate can't be negative");
        anyhow::ensure!(self.traffic.window >= 1, "--window must be at least 1");
        anyhow::ensure!(
            (0.0..=1.0).contains(&self.multicast_share),
            "--multicast-share must be between 0 and 1"
        );
        if let Some(r) = self.compare_redis {
            anyhow::ensure!(
                r.ip().is_loopback(),
                "--compare-redis must be on this machine (loopback), not {r}"
            );
            anyhow::ensure!(self.channels == 1, "--compare-redis runs one channel");
        }
        Ok(())
    }

    /// The run the flags ask for, in the pieces its parts take.
    pub(crate) fn fan_out(&self) -> FanOut {
        FanOut {
            clients: self.clients,
            sweep: self.sweep.clone(),
            population: Population {
                servers: self.server.clone(),
                channels: self.channels,
                receivers: self.receivers,
                rcvbuf: self.rcvbuf,
                batch: self.batch,
                mixed: self.mixed,
                multicast: self.multicast.then_some(self.multicast_share),
                protected: self.protected,
            },
            traffic: self.traffic,
            setup: Setup {
                title_prefix: self.title_prefix.clone(),
                join_window: self.join_window,
                settle_max: self.settle_max,
                keepalive: Duration::from_secs_f64(self.keepalive.max(1.0)),
            },
            raw: self
                .raw
                .then(|| self.raw_duration.unwrap_or(self.traffic.duration)),
            compare_redis: self.compare_redis,
            server_pids: self.server_pid.clone(),
        }
    }
}
