//! The server's configuration ([`ServerConfig`]): what [`Server::bind`](super::Server::bind)
//! is given, made from the operator's [`Settings`] or, in tests, from the defaults with a
//! few fields changed.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::limit::Limits;
use super::send::BatchWindow;
use crate::accounts::StoreKind;
use crate::budget::BudgetLimits;
use crate::cluster::{ClusterConfig, ClusterError, ClusterSecret};
use crate::config::{ChannelSpec, ConfigError};
use crate::multicast::MulticastConfig;
use crate::settings::{Live, Settings, DEFAULT_BATCH_WINDOW_US};

/// A busy sender's wait for more events to batch (`--batch-window-us`).
pub const DEFAULT_BATCH_WINDOW: Duration = Duration::from_micros(DEFAULT_BATCH_WINDOW_US);

/// Everything the server can be configured with.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address and port to listen on (`[::]` serves IPv6 and IPv4).
    pub bind: SocketAddr,
    /// The channels, in listing order.
    pub channels: Vec<ChannelSpec>,
    /// A user silent for longer than this is logged off.
    pub idle_timeout: Duration,
    /// How often the idle sweep runs.
    pub check_interval: Duration,
    /// Worker threads.
    pub workers: usize,
    /// Sender threads.
    pub senders: usize,
    /// How long a sender may wait after the first fan-out of a round for more to batch
    /// with it ([`BatchWindow`]). The command line sets a wait of at most 1 ms, only while
    /// busy; tests set longer, unconditional ones to make batching deterministic.
    pub batch_window: BatchWindow,
    /// Largest datagram accepted, in bytes.
    pub max_datagram: usize,
    /// Most users logged in at once.
    pub max_users: usize,
    /// Requested socket send buffer, in bytes.
    pub sndbuf: usize,
    /// Requested socket receive buffer, in bytes.
    pub rcvbuf: usize,
    /// Flood limits.
    pub limits: Limits,
    /// What unproved guests may be sent (`crate::budget`).
    pub budgets: BudgetLimits,
    /// Where to serve Prometheus metrics over HTTP, if anywhere.
    pub metrics: Option<SocketAddr>,
    /// Where accounts are kept.
    pub store: StoreKind,
    /// The cluster to join; `None` stands alone.
    pub cluster: Option<ClusterConfig>,
    /// Multicast channels (`--multicast`); `None`: every channel stays on unicast and the
    /// `multicast` cap is never granted.
    pub multicast: Option<MulticastConfig>,
    /// Whether DISCOVER is answered (`--no-discovery` turns it off).
    pub discovery: bool,
    /// The name SERVER_HERE gives; `None`: the cluster's server id, else the host name.
    pub name: Option<String>,
    /// The settings a reload may change: limits (channels per user, ...), operators,
    /// message of the day.
    pub live: Live,
    /// A file the audit log of moderation and operator actions is appended to.
    pub audit_log: Option<PathBuf>,
    /// Whether the server keeps accounts (`--accounts-off` clears it: every nickname is a
    /// guest's, registrations and password logins are refused).
    pub accounts: bool,
    /// New registrations allowed per network prefix per hour.
    pub register_limit: u32,
    /// The share of `max_users`, in percent, that only password logins may take (guests
    /// are "server full" that many places early, so forged guest logins can't shut account
    /// holders out).
    pub account_reserve_percent: u8,
    /// PEM file of the certificates that TLS connections to PostgreSQL and Redis are
    /// verified with; `None`: the system's.
    pub tls_ca: Option<PathBuf>,
}

/// Why the settings could not make a server configuration.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The channels file was refused.
    #[error(transparent)]
    Channels(#[from] ConfigError),
    /// `--redis` without the cluster's secret.
    #[error(
        "--redis needs --cluster-secret-file FILE: a secret shared by the cluster's servers \
         that authenticates what they write to Redis (make one with `openssl rand -hex 32`)"
    )]
    NoSecret,
    /// The cluster's secret could not be read.
    #[error(transparent)]
    Secret(#[from] ClusterError),
}

impl Default for ServerConfig {
    /// Every setting at its default, with accounts in memory (for tests and embedding).
    fn default() -> Self {
        ServerConfig {
            store: StoreKind::Memory,
            ..ServerConfig::from_settings(&Settings::default()).expect("the defaults read no file")
        }
    }
}

impl ServerConfig {
    /// The configuration `settings` give: their channels (read from the channels file if
    /// they name one) and the cluster's secret read from its file.
    ///
    /// # Errors
    /// When the channels file is refused, or `--redis` comes without a readable secret.
    pub fn from_settings(s: &Settings) -> Result<ServerConfig, SetupError> {
        let channels = s.channels()?;
        let secret = match (&s.redis, &s.cluster_secret_file) {
            (Some(_), Some(path)) => Some(ClusterSecret::from_file(path)?),
            (Some(_), None) => return Err(SetupError::NoSecret),
            (None, _) => None,
        };
        let threads = |n: Option<u16>| n.map_or_else(default_threads, usize::from);
        Ok(ServerConfig {
            bind: SocketAddr::new(s.bind, s.port),
            channels,
            idle_timeout: Duration::from_secs(s.idle_timeout),
            check_interval: Duration::from_secs(s.check_interval),
            workers: threads(s.workers),
            senders: threads(s.senders),
            batch_window: match s.batch_window_us {
                0 => BatchWindow::Off,
                us => BatchWindow::WhenBusy(Duration::from_micros(us)),
            },
            max_datagram: s.max_datagram,
            max_users: s.max_users,
            sndbuf: s.sndbuf,
            rcvbuf: s.rcvbuf,
            limits: Limits {
                rate: s.rate_limit.max(0.0),
                burst: s.rate_burst.max(1.0),
                amplification_guard: !s.allow_amplification,
            },
            budgets: BudgetLimits {
                on: !s.allow_amplification,
                allowance: s.unproved_allowance,
                rate: s.unproved_rate,
                prefix_rate: s.unproved_prefix_rate,
                total_rate: s.unproved_total_rate,
            },
            metrics: s.metrics,
            store: store_kind(s),
            cluster: s
                .redis
                .clone()
                .zip(secret)
                .map(|(redis_url, secret)| ClusterConfig {
                    redis_url,
                    server_id: s
                        .server_id
                        .clone()
                        .unwrap_or_else(|| default_server_id(s.port)),
                    lease_ttl: Duration::from_millis(s.lease_ttl_ms),
                    secret,
                    freshness: Default::default(),
                }),
            multicast: s.multicast.map(|range| MulticastConfig {
                range,
                interface: s.multicast_if,
                ttl: s.multicast_ttl,
                port: s.multicast_port,
            }),
            discovery: !s.no_discovery,
            name: s.name.clone(),
            live: s.live(),
            audit_log: s.audit_log.clone(),
            accounts: !s.accounts_off,
            register_limit: s.register_limit,
            account_reserve_percent: s.account_reserve,
            tls_ca: s.tls_ca.clone(),
        })
    }
}

/// Where the accounts are, from `--data` and `--database`: one choice for the server and
/// the `accounts` command.
pub fn store_kind(s: &Settings) -> StoreKind {
    match &s.database {
        Some(url) => StoreKind::Postgres(url.clone()),
        None => StoreKind::Sqlite(s.data.clone()),
    }
}

/// Threads the machine can run at once (at least 1).
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The machine's host name (`server` if it can't be read).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "server".into())
}

/// `HOSTNAME-PORT`, with characters a server id can't hold replaced by `-`.
fn default_server_id(port: u16) -> String {
    let host: String = host_name()
        .chars()
        .take(48)
        .map(
            |c| match c.is_ascii_alphanumeric() || c == '.' || c == '_' {
                true => c,
                false => '-',
            },
        )
        .collect();
    format!("{host}-{port}")
}
