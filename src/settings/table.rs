//! The table of settings: every flag of `chat-server` and key of its configuration file,
//! each declared once with its `--help` text, clap's attributes (default, range), when a
//! change takes effect (`live`, `reload`, `restart`) and how the file's value is read.
//! The module docs of [`crate::settings`] say how to add one.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use clap::builder::TypedValueParser as _;
use clap::{Args as _, FromArgMatches as _};
use proto::{DEFAULT_MAX_DATAGRAM, DEFAULT_PORT, MAX_UDP_PAYLOAD};

use super::declare::When;
use super::read::{
    metrics_addr, At, Bool, Channels, Fill, Float, Groups, Int, Ip, Metrics, Motd, Operators, Read,
    Relative, Text,
};
use crate::config::{
    classic_channels, load_channels, ChannelSpec, ConfigError, TomlFile, MAX_CHANNELS,
    MAX_TITLE_LEN,
};
use crate::multicast::{GroupRange, DEFAULT_TTL};

/// Messages each channel keeps for `HISTORY_REQ`, unless set otherwise.
pub const DEFAULT_HISTORY: usize = 200;
/// The most messages a channel may be set to keep.
pub const MAX_HISTORY: usize = 100_000;
/// History messages one answer holds at most; a client asks again for more.
pub const HISTORY_BATCH: usize = 50;
/// Channels one user may be in at once, unless set otherwise.
pub const DEFAULT_MAX_CHANNELS_PER_USER: usize = 64;
/// Microseconds a busy sender waits for more events to batch, unless set otherwise.
pub const DEFAULT_BATCH_WINDOW_US: u64 = 500;

/// The largest value a file's number can hold (TOML's integers are 64-bit signed).
const BIG: i64 = i64::MAX;

settings! {
    /// Append an audit log of moderation and operator actions to this file (they are
    /// logged at info level under the target `udpchat::audit` either way).
    #[arg(long, value_name = "FILE")]
    restart audit_log: Option<PathBuf> = Relative;

    /// Recent messages each channel keeps for clients that ask for history (0: none).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_HISTORY,
          value_parser = clap::value_parser!(u32).range(0..=MAX_HISTORY as i64).map(|n| n as usize))]
    live history: usize = Int(0, MAX_HISTORY as i64);

    /// Keep the history of registered and configured channels in the database too, so it
    /// survives a restart.
    #[arg(long)]
    live persist_history: bool = Bool;

    /// Channels users may create, in all, at once.
    #[arg(long, value_name = "N", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(0..=MAX_CHANNELS as i64).map(|n| n as usize))]
    live max_created_channels: usize = Int(0, MAX_CHANNELS as i64);

    /// Private messages kept for a registered user who is away, delivered at their next
    /// password login (0: none are kept).
    #[arg(long, value_name = "N", default_value_t = 50,
          value_parser = clap::value_parser!(u32).range(0..=10_000).map(|n| n as usize))]
    live mailbox: usize = Int(0, 10_000);

    /// Of those, how many one sender may leave for one recipient (a guest counts as its
    /// network, IPv4 /24 or IPv6 /64; guests together may fill half the mailbox). Only
    /// senders that proved their address may leave any.
    #[arg(long, value_name = "N", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..=10_000).map(|n| n as usize))]
    live mailbox_per_sender: usize = Int(1, 10_000);

    /// Nicknames the hot list of a guest that has not proved its address (a classic
    /// client; anyone can forge its login) may hold; proving lifts it to 100.
    #[arg(long, value_name = "N", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(0..=100).map(|n| n as usize))]
    live unproved_hot_list: usize = Int(0, 100);

    /// Hot-list entries all unproved guests of one network (IPv4 /24, IPv6 /64) may hold
    /// together.
    #[arg(long, value_name = "N", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(0..=10_000_000).map(|n| n as usize))]
    live unproved_hot_lists_per_network: usize = Int(0, 10_000_000);

    /// Hot-list entries all unproved guests may hold together (about 300 bytes each).
    #[arg(long, value_name = "N", default_value_t = 20_000,
          value_parser = clap::value_parser!(u32).range(0..=100_000_000).map(|n| n as usize))]
    live unproved_hot_lists_total: usize = Int(0, 100_000_000);

    /// Folder of the account database (created if missing).
    #[arg(long, value_name = "DIR", default_value = "udpchat-data", global = true)]
    restart data: PathBuf = Relative;

    /// Address to listen on; `::` serves IPv6 and IPv4 together.
    #[arg(long, default_value = "0.0.0.0")]
    restart bind: IpAddr = Ip;

    /// UDP port to listen on (0 picks a free one).
    #[arg(long, default_value_t = DEFAULT_PORT)]
    restart port: u16 = Int(0, 65535);

    /// TOML file of channels, one [[channel]] table each with `title` (one word) and
    /// `description`. Without it, the five classic channels.
    #[arg(long, value_name = "FILE")]
    reload channels: Option<PathBuf> = Relative;

    /// Seconds of silence after which a user is logged off.
    #[arg(long, value_name = "SECONDS", default_value_t = 120,
          value_parser = clap::value_parser!(u64).range(1..))]
    restart idle_timeout: u64 = Int(1, BIG);

    /// Seconds between sweeps for silent users.
    #[arg(long, value_name = "SECONDS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..))]
    restart check_interval: u64 = Int(1, BIG);

    /// Worker threads that apply requests [default: number of CPUs].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    restart workers: Option<u16> = Int(1, 256);

    /// Sender threads that fan public messages out [default: number of CPUs].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    restart senders: Option<u16> = Int(1, 256);

    /// Microseconds a busy sender waits, after the first fan-out of a round, for more to
    /// batch with it: only when its last round ended with more fan-outs queued and went to
    /// clients granted `batch`, so an idle server never waits. 0: never. At most 1000.
    #[arg(long, value_name = "MICROSECONDS", default_value_t = DEFAULT_BATCH_WINDOW_US,
          value_parser = clap::value_parser!(u64).range(0..=1000))]
    restart batch_window_us: u64 = Int(0, 1000);

    /// Largest datagram accepted, in bytes; longer ones get `ERROR datagram too long`.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_DATAGRAM,
          value_parser = clap::value_parser!(u32).range(64..=MAX_UDP_PAYLOAD as i64).map(|n| n as usize))]
    restart max_datagram: usize = Int(64, MAX_UDP_PAYLOAD as i64);

    /// Most users logged in at once; further logins get `ERROR server full; try again later`.
    #[arg(long, value_name = "N", default_value_t = 100_000,
          value_parser = clap::value_parser!(u32).range(1..).map(|n| n as usize))]
    reload max_users: usize = Int(1, u32::MAX as i64);

    /// Channels one user may be in at once; a further JOIN_REQ gets
    /// `ERROR too many channels; part one first`.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_CHANNELS_PER_USER,
          value_parser = clap::value_parser!(u32).range(1..).map(|n| n as usize))]
    live max_channels_per_user: usize = Int(1, u32::MAX as i64);

    /// Socket send buffer to ask the kernel for, in bytes (it may grant less).
    #[arg(long, value_name = "BYTES", default_value_t = 4 << 20)]
    restart sndbuf: usize = Int(0, BIG);

    /// Socket receive buffer to ask the kernel for, in bytes (it may grant less).
    #[arg(long, value_name = "BYTES", default_value_t = 4 << 20)]
    restart rcvbuf: usize = Int(0, BIG);

    /// Requests per second one address may send; excess is dropped and counted. 0: no limit.
    #[arg(long, value_name = "N", default_value_t = 1000.0)]
    restart rate_limit: f64 = Float;

    /// Burst of requests one address may send at once before the rate limit applies.
    #[arg(long, value_name = "N", default_value_t = 2000.0)]
    restart rate_burst: f64 = Float;

    /// Answer addresses that are not logged in even with more bytes than they sent, and
    /// send guests that have not proved their address without a budget. By default a
    /// stranger never gets more than three times the bytes it sent (QUIC's
    /// anti-amplification limit), so a client may need a retry to hear, e.g., that a very
    /// short nickname is taken; and an unproved guest gets the budget below.
    #[arg(long)]
    restart allow_amplification: bool = Bool;

    /// Bytes the server may send a guest that has not proved its address (a classic
    /// client) beyond three times what it sent: its login, the channel list, a join and a
    /// user list fit. Refilled at --unproved-rate up to this much.
    #[arg(long, value_name = "BYTES", default_value_t = 16384,
          value_parser = clap::value_parser!(u64).range(0..=1 << 30))]
    restart unproved_allowance: u64 = Int(0, 1 << 30);

    /// Bytes per second an unproved guest may be sent beyond its allowance (channel
    /// traffic at ordinary chat rates); what goes over is held back and counted.
    #[arg(long, value_name = "BYTES", default_value_t = 4096,
          value_parser = clap::value_parser!(u64).range(0..=1 << 30))]
    restart unproved_rate: u64 = Int(0, 1 << 30);

    /// Bytes per second all unproved guests of one network (IPv4 /24, IPv6 /64) may be
    /// sent together, bursts of four seconds of it.
    #[arg(long, value_name = "BYTES", default_value_t = 262144,
          value_parser = clap::value_parser!(u64).range(0..=1 << 34))]
    restart unproved_prefix_rate: u64 = Int(0, 1 << 34);

    /// Bytes per second all unproved guests together may be sent.
    #[arg(long, value_name = "BYTES", default_value_t = 4194304,
          value_parser = clap::value_parser!(u64).range(0..=1 << 36))]
    restart unproved_total_rate: u64 = Int(0, 1 << 36);

    /// Serve Prometheus metrics over HTTP on this address; a port alone means loopback
    /// (e.g. `--metrics 9027` serves http://127.0.0.1:9027/metrics).
    #[arg(long, value_name = "ADDR", value_parser = metrics_addr)]
    restart metrics: Option<SocketAddr> = Metrics;

    /// Join a cluster of servers sharing one chat space through this Redis
    /// (`redis://HOST:PORT`). Without it the server stands alone.
    #[arg(long, value_name = "URL")]
    restart redis: Option<String> = Text;

    /// This server's name in the cluster, unique among its servers (letters, digits, '-',
    /// '_', '.') [default: HOSTNAME-PORT].
    #[arg(long, value_name = "NAME", requires = "redis")]
    restart server_id: Option<String> = Text;

    /// Milliseconds a nickname lease and the server's alive key last without renewal (they
    /// are renewed every third of it); a dead server's users vanish after about this long.
    #[arg(long, value_name = "MS", default_value_t = 15_000,
          value_parser = clap::value_parser!(u64).range(300..=3_600_000))]
    restart lease_ttl_ms: u64 = Int(300, 3_600_000);

    /// Keep accounts in PostgreSQL (`postgres://USER@HOST:PORT/DB`) instead of the SQLite
    /// file in --data, so that every server of a cluster sees the same accounts. Add
    /// `?sslmode=require` for TLS (verified with --tls-ca or the system's certificates).
    #[arg(long, value_name = "URL", global = true)]
    restart database: Option<String> = Text;

    /// File holding the secret the servers of a cluster share (at least 16 bytes; e.g.
    /// `openssl rand -hex 32 > FILE`): what each server writes to Redis is authenticated
    /// with it. Required with --redis.
    #[arg(long, value_name = "FILE", requires = "redis")]
    restart cluster_secret_file: Option<PathBuf> = Relative;

    /// Keep no accounts: every nickname is a guest's; registrations and password logins are
    /// refused. Lets a cluster run without a shared account store.
    #[arg(long)]
    restart accounts_off: bool = Bool;

    /// New accounts one network (an IPv4 /24, an IPv6 /64) may register per hour.
    #[arg(long, value_name = "N", default_value_t = 30)]
    restart register_limit: u32 = Int(0, u32::MAX as i64);

    /// Percent of --max-users that only password logins may fill: guests are told the server
    /// is full that much earlier, so a flood of guest logins can't lock account holders out.
    #[arg(long, value_name = "PERCENT", default_value_t = 10,
          value_parser = clap::value_parser!(u8).range(0..=100))]
    restart account_reserve: u8 = Int(0, 100);

    /// PEM file of the CA certificates to verify PostgreSQL and Redis TLS servers with
    /// (`?sslmode=require`, `rediss://`) instead of the system's.
    #[arg(long, value_name = "FILE", global = true)]
    restart tls_ca: Option<PathBuf> = Relative;

    /// Multicast channels: give each channel a group from this range (e.g. 239.77.0.0/24,
    /// or IPv6 like ff15::77:0/112). Clients that ask for it then hear a channel's public
    /// messages and join/part notices on its group, sent once however many members it has.
    /// ANYONE ON THE LAN CAN JOIN A GROUP AND READ ITS CHANNEL: the channel key's tag stops
    /// outsiders from injecting events, not from listening. Groups are stable across
    /// restarts for the same channels file; a channel with `multicast = false` gets none.
    #[arg(long, value_name = "CIDR")]
    restart multicast: Option<GroupRange> = Groups;

    /// Local address of the interface to send group traffic from [default: the --bind
    /// address if it is one, else the interface the kernel routes the groups to].
    #[arg(long, value_name = "ADDR", requires = "multicast")]
    restart multicast_if: Option<IpAddr> = Ip;

    /// Hop limit (TTL) of group datagrams; 1 keeps them on this LAN.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_TTL,
          value_parser = clap::value_parser!(u32).range(1..=255))]
    restart multicast_ttl: u32 = Int(1, 255);

    /// UDP port of the groups [default: the chat port + 1].
    #[arg(long, value_name = "PORT", requires = "multicast")]
    restart multicast_port: Option<u16> = Int(1, 65535);

    /// Do not answer DISCOVER (clients looking for a server by broadcast or on the
    /// discovery group 239.255.77.77).
    #[arg(long)]
    restart no_discovery: bool = Bool;

    /// The name SERVER_HERE answers DISCOVER with [default: --server-id in a cluster, else
    /// the host name].
    #[arg(long, value_name = "NAME")]
    restart name: Option<String> = Text;

    // What only the file holds: no flag.

    /// Channels one user may have created at once (temporary and registered).
    #[arg(skip = 5usize)]
    live max_channels_per_creator: usize = Int(0, 1000);

    /// Channels created from one network (an IPv4 /24, an IPv6 /64) that may exist at once,
    /// over all its users and nicknames, so that one network can't fill
    /// `max-created-channels`. On a LAN where every user shares one /24, raise it.
    #[arg(skip = 50usize)]
    live max_channels_per_prefix: usize = Int(0, MAX_CHANNELS as i64);

    /// The longest title of a created channel, in bytes.
    #[arg(skip = 32usize)]
    live max_title_len: usize = Int(1, MAX_TITLE_LEN as i64);

    /// Bans, lasting operators and invitations one channel holds at most, each.
    #[arg(skip = 100usize)]
    live max_bans: usize = Int(0, 10_000);

    /// Address bans the server holds at most.
    #[arg(skip = 1000usize)]
    live max_server_bans: usize = Int(0, 100_000);

    /// The message of the day, one entry per line.
    #[arg(skip)]
    live motd: Vec<String> = Motd;

    /// Server operators: nickname keys, reserved for the accounts `chat-server accounts add
    /// NICK --operator` makes (an operator only while logged in to one with its password).
    #[arg(skip)]
    live operators: Vec<String> = Operators;

    /// The channels, as `[[channel]]` tables (a channels file, `channels`, wins over them).
    #[arg(skip)]
    reload channel: Option<Vec<ChannelSpec>> = Channels;
}

impl Default for Settings {
    /// Every setting at its default: what an empty command line gives.
    fn default() -> Self {
        let command =
            Settings::augment_args(clap::Command::new("chat-server").no_binary_name(true));
        let matches = command
            .try_get_matches_from(std::iter::empty::<&str>())
            .expect("no flags are needed");
        Settings::from_arg_matches(&matches).expect("the defaults are settings")
    }
}

impl Default for Live {
    fn default() -> Self {
        Settings::default().live()
    }
}

/// The settings the configuration file at `path` holds, the defaults where it says nothing.
///
/// # Errors
/// [`ConfigError`] when it can't be read, is not valid TOML, has an unknown key, or a value
/// out of range (naming its line).
pub fn load(path: &Path) -> Result<Settings, ConfigError> {
    parse(&TomlFile::read("config", path)?, path)
}

/// The settings in `text`, a configuration file; `path` names it in messages, and relative
/// paths in it are taken from its folder.
///
/// # Errors
/// As [`load`].
pub fn parse(text: &str, path: &Path) -> Result<Settings, ConfigError> {
    Settings::from_file(&TomlFile {
        what: "config",
        path,
        text,
    })
}

impl Settings {
    /// The settings in `self` whose change waits for a restart, with their values in
    /// `new` different (by field name, in the table's order).
    pub fn restart_only(&self, new: &Settings) -> Vec<&'static str> {
        self.changed(new)
            .into_iter()
            .filter(|&(_, when)| when == When::Restart)
            .map(|(name, _)| name)
            .collect()
    }

    /// The channels: a channels file (`--channels` or `channels`), else the file's
    /// `[[channel]]` tables, else the classic five.
    ///
    /// # Errors
    /// When the channels file is refused.
    pub fn channels(&self) -> Result<Vec<ChannelSpec>, ConfigError> {
        Ok(match (&self.channels, &self.channel) {
            (Some(path), _) => load_channels(path)?,
            (None, Some(list)) => list.clone(),
            (None, None) => classic_channels(),
        })
    }
}
