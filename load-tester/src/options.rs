//! What a fan-out run is asked to do, in the pieces its parts need. The flags become a
//! [`FanOut`] in one place ([`crate::cli::Args::fan_out`]); each part then takes only its
//! piece, so that its signature shows what it depends on: the members their
//! [`Population`], the publishers and blasters their [`Traffic`], the rounds of requests
//! their [`Setup`].

use std::net::SocketAddr;
use std::time::Duration;

/// A fan-out run, a plain one or a sweep.
#[derive(Debug, Clone)]
pub(crate) struct FanOut {
    /// Simulated clients of a plain run.
    pub(crate) clients: usize,
    /// Channel sizes of a sweep, one step each; empty for a plain run.
    pub(crate) sweep: Vec<usize>,
    /// Who the clients are.
    pub(crate) population: Population,
    /// What they publish.
    pub(crate) traffic: Traffic,
    /// How they get into their channels.
    pub(crate) setup: Setup,
    /// Seconds the raw blasters run beside the server, if they do (`--raw`,
    /// `--raw-duration`).
    pub(crate) raw: Option<f64>,
    /// A redis-server to measure the same fan-out through (`--compare-redis`).
    pub(crate) compare_redis: Option<SocketAddr>,
    /// The server processes whose CPU and memory are read (`--server-pid`).
    pub(crate) server_pids: Vec<u32>,
}

/// The simulated clients: where they talk, how they are read, and what each asks for.
#[derive(Debug, Clone)]
pub(crate) struct Population {
    /// The servers: client `g` talks to `servers[g % servers.len()]`.
    pub(crate) servers: Vec<SocketAddr>,
    /// Channels of a plain run: client `g` is the `g / channels`-th member of channel
    /// `g % channels`.
    pub(crate) channels: usize,
    /// Receiver threads, each polling its share of the sockets.
    pub(crate) receivers: usize,
    /// SO_RCVBUF asked for each client socket (0: the kernel's default).
    pub(crate) rcvbuf: usize,
    /// The batch size clients ask for (`--batch`).
    pub(crate) batch: Option<u16>,
    /// Whether only every other client (odd global index) asks for batches.
    pub(crate) mixed: bool,
    /// Whether clients ask for multicast, and then the share of each channel's that do.
    pub(crate) multicast: Option<f64>,
    /// Clients, the last ones, that register and log in with a password.
    pub(crate) protected: usize,
}

impl Population {
    /// Whether the client of global index `g` asks for batches.
    pub(crate) fn batch_member(&self, g: usize) -> bool {
        self.batch.is_some() && (!self.mixed || g % 2 == 1)
    }

    /// Whether the client of global index `g` asks for multicast: a share of each
    /// channel's members spread evenly over it (it asks when the running count of the
    /// share per member passes a whole number at its place in the channel).
    pub(crate) fn wants_multicast(&self, g: usize) -> bool {
        let Some(s) = self.multicast else {
            return false;
        };
        let k = g / self.channels.max(1);
        ((k + 1) as f64 * s).floor() > (k as f64 * s).floor()
    }

    /// Sockets each client needs: its own, and a group socket with multicast.
    pub(crate) fn sockets_per_client(&self) -> usize {
        if self.multicast.is_some() {
            2
        } else {
            1
        }
    }

    /// Which of a run's `clients` are protected, named with `run_id`: the last ones.
    pub(crate) fn protection(&self, clients: usize, run_id: u32) -> Option<Protection> {
        (self.protected > 0).then(|| Protection {
            from: clients.saturating_sub(self.protected),
            run_id,
        })
    }
}

/// Which members are protected, and how they are named.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Protection {
    /// Members of this global index and above register and log in with a password.
    pub(crate) from: usize,
    /// The run's tag in nicknames.
    pub(crate) run_id: u32,
}

/// What the publishers send, and the raw blasters in their place: flags of the fan-out
/// run.
#[derive(Debug, Clone, Copy, clap::Args)]
pub(crate) struct Traffic {
    /// Publishing clients (spread over the channels).
    #[arg(long, default_value_t = 1)]
    pub(crate) publishers: usize,
    /// Messages per second per publisher, at planned times; 0 = as fast as the server fans
    /// out (each publisher keeps --window messages in flight).
    #[arg(long, default_value_t = 0.0)]
    pub(crate) rate: f64,
    /// Seconds of publishing (or of holding the clients logged in, with 0 publishers).
    #[arg(long, default_value_t = 5.0)]
    pub(crate) duration: f64,
    /// Bytes of message text.
    #[arg(long, default_value_t = 64)]
    pub(crate) message_size: usize,
    /// Messages in flight per publisher with --rate 0.
    #[arg(long, default_value_t = 4)]
    pub(crate) window: u32,
}

/// How the members are brought into their channels, kept there and taken out again.
#[derive(Debug, Clone)]
pub(crate) struct Setup {
    /// Channel `c` is titled `<title_prefix>c`.
    pub(crate) title_prefix: String,
    /// Joins outstanding at most (default: fewer for bigger channels).
    pub(crate) join_window: Option<usize>,
    /// Longest wait, in seconds, for the server's USER_JOINS/USER_PARTS to stop.
    pub(crate) settle_max: f64,
    /// Time between the keepalives of every client.
    pub(crate) keepalive: Duration,
}

impl Setup {
    /// The title of channel `c`.
    pub(crate) fn title(&self, c: usize) -> String {
        format!("{}{c}", self.title_prefix)
    }
}
