//! The server's configuration file (`--config FILE`, TOML) and the settings a reload
//! changes while the server runs.
//!
//! The file holds every flag of the command line under the flag's name without the dashes
//! (`port = 2027`, `max-users = 5000`), plus what only a file can hold: the server
//! operators (registered nicknames), the message of the day, the community limits and the
//! channels (`[[channel]]` tables, as in a channels file). A flag given on the command line
//! wins over the file. A file the server can't use is an error naming its line.
//!
//! ```toml
//! port = 2027
//! max-users = 5000
//! motd = """
//! Welcome! Be kind.
//! """
//! operators = ["alice"]
//! history = 200
//!
//! [[channel]]
//! title = "Lobby"
//! description = "Say hello"
//! ```
//!
//! On SIGHUP the server reads the file again: [`Live`] settings (limits, operators, the
//! message of the day) change at once, channels are added or changed, and nobody is logged
//! off. Settings that shape threads and sockets (`bind`, `port`, `workers`, ...) take
//! effect at the next start; a reload says so in the log.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;
use serde::Deserialize;
use toml::Spanned;

use crate::config::{self, ChannelSpec};

/// Messages each channel keeps for `HISTORY_REQ`, unless set otherwise.
pub const DEFAULT_HISTORY: usize = 200;
/// The most messages a channel may be set to keep.
pub const MAX_HISTORY: usize = 100_000;
/// History messages one answer holds at most; a client asks again for more.
pub const HISTORY_BATCH: usize = 50;
/// The longest message of the day, in bytes.
pub const MAX_MOTD: usize = 8192;
/// The most server operators.
pub const MAX_OPERATORS: usize = 256;

/// The settings a reload changes while the server runs; the handler reads them at each
/// request that needs one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Live {
    /// The message of the day, one entry per line.
    pub motd: Vec<String>,
    /// Server operators: nickname keys of registered accounts (a password login is needed).
    pub operators: Vec<String>,
    /// Channels one user may be in at once.
    pub max_channels_per_user: usize,
    /// Created channels (not from the configuration) the server holds at most.
    pub max_created_channels: usize,
    /// Channels one user may have created at once (temporary and registered).
    pub max_channels_per_creator: usize,
    /// The longest title of a created channel, in bytes.
    pub max_title_len: usize,
    /// Messages each channel keeps (0: no history).
    pub history: usize,
    /// Whether the history of registered and configured channels is stored too.
    pub persist_history: bool,
    /// Private messages kept per registered user while it is away (0: none).
    pub mailbox: usize,
    /// Bans, lasting operators and invitations one channel holds at most, each.
    pub max_bans: usize,
    /// Address bans the server holds at most.
    pub max_server_bans: usize,
}

impl Default for Live {
    fn default() -> Self {
        Live {
            motd: Vec::new(),
            operators: Vec::new(),
            max_channels_per_user: crate::handler::DEFAULT_MAX_CHANNELS_PER_USER,
            max_created_channels: 1000,
            max_channels_per_creator: 5,
            max_title_len: 32,
            history: DEFAULT_HISTORY,
            persist_history: false,
            mailbox: 50,
            max_bans: 100,
            max_server_bans: 1000,
        }
    }
}

impl Live {
    /// Whether `key` (a nickname key) names a server operator.
    pub fn is_operator(&self, key: &str) -> bool {
        self.operators.iter().any(|o| o == key)
    }
}

/// The live settings, shared by the handlers and replaced whole by a reload: readers
/// take the current `Arc` and keep it for their request.
#[derive(Debug, Default)]
pub struct LiveSettings {
    current: RwLock<Arc<Live>>,
}

impl LiveSettings {
    /// Settings starting as `live`.
    pub fn new(live: Live) -> Self {
        LiveSettings {
            current: RwLock::new(Arc::new(live)),
        }
    }

    /// The settings now.
    pub fn get(&self) -> Arc<Live> {
        self.current.read().clone()
    }

    /// Replaces them.
    pub fn set(&self, live: Live) {
        *self.current.write() = Arc::new(live);
    }
}

/// Why the configuration file was refused.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// Not TOML, an unknown key, or a value of the wrong type.
    #[error("config file {path}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message, which names line and column.
        message: String,
    },
    /// A value out of range.
    #[error("config file {path}, line {line}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line of the value.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// Everything a configuration file may set; `None` where it says nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileConfig {
    /// `bind`.
    pub bind: Option<IpAddr>,
    /// `port`.
    pub port: Option<u16>,
    /// `data` (relative to the file's folder).
    pub data: Option<PathBuf>,
    /// `channels`: a channels file (relative to the file's folder).
    pub channels: Option<PathBuf>,
    /// `idle-timeout`, seconds.
    pub idle_timeout: Option<u64>,
    /// `check-interval`, seconds.
    pub check_interval: Option<u64>,
    /// `workers`.
    pub workers: Option<u16>,
    /// `senders`.
    pub senders: Option<u16>,
    /// `max-datagram`, bytes.
    pub max_datagram: Option<u32>,
    /// `max-users`.
    pub max_users: Option<u32>,
    /// `max-channels-per-user`.
    pub max_channels_per_user: Option<u32>,
    /// `sndbuf`, bytes.
    pub sndbuf: Option<usize>,
    /// `rcvbuf`, bytes.
    pub rcvbuf: Option<usize>,
    /// `rate-limit`, requests per second.
    pub rate_limit: Option<f64>,
    /// `rate-burst`.
    pub rate_burst: Option<f64>,
    /// `allow-amplification`.
    pub allow_amplification: Option<bool>,
    /// `metrics`: a port or an address.
    pub metrics: Option<SocketAddr>,
    /// `redis`: URL.
    pub redis: Option<String>,
    /// `server-id`.
    pub server_id: Option<String>,
    /// `lease-ttl-ms`.
    pub lease_ttl_ms: Option<u64>,
    /// `database`: PostgreSQL URL.
    pub database: Option<String>,
    /// `cluster-secret-file` (relative to the file's folder).
    pub cluster_secret_file: Option<PathBuf>,
    /// `accounts-off`.
    pub accounts_off: Option<bool>,
    /// `register-limit`: registrations per network per hour.
    pub register_limit: Option<u32>,
    /// `account-reserve`: percent of `max-users` kept for password logins.
    pub account_reserve: Option<u8>,
    /// `tls-ca`: PEM file (relative to the file's folder).
    pub tls_ca: Option<PathBuf>,
    /// `audit-log`: file (relative to the file's folder).
    pub audit_log: Option<PathBuf>,
    /// `history`.
    pub history: Option<usize>,
    /// `persist-history`.
    pub persist_history: Option<bool>,
    /// `max-created-channels`.
    pub max_created_channels: Option<usize>,
    /// `batch-window-us`, microseconds.
    pub batch_window_us: Option<u64>,
    /// `multicast`: the group range.
    pub multicast: Option<crate::multicast::GroupRange>,
    /// `multicast-if`: the interface's address.
    pub multicast_if: Option<IpAddr>,
    /// `multicast-ttl`.
    pub multicast_ttl: Option<u32>,
    /// `multicast-port`.
    pub multicast_port: Option<u16>,
    /// `no-discovery`.
    pub no_discovery: Option<bool>,
    /// `name`: what SERVER_HERE calls this server.
    pub name: Option<String>,
    /// `mailbox`.
    pub mailbox: Option<usize>,
    /// `max-channels-per-creator`.
    pub max_channels_per_creator: Option<usize>,
    /// `max-title-len`.
    pub max_title_len: Option<usize>,
    /// `max-bans`.
    pub max_bans: Option<usize>,
    /// `max-server-bans`.
    pub max_server_bans: Option<usize>,
    /// `motd`, split into lines.
    pub motd: Option<Vec<String>>,
    /// `operators`, as nickname keys.
    pub operators: Option<Vec<String>>,
    /// `[[channel]]` tables.
    pub channel: Option<Vec<ChannelSpec>>,
}

/// What the file looks like to serde: every value with its place, for messages.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Raw {
    bind: Option<Spanned<String>>,
    port: Option<Spanned<i64>>,
    data: Option<PathBuf>,
    channels: Option<PathBuf>,
    idle_timeout: Option<Spanned<i64>>,
    check_interval: Option<Spanned<i64>>,
    workers: Option<Spanned<i64>>,
    senders: Option<Spanned<i64>>,
    max_datagram: Option<Spanned<i64>>,
    max_users: Option<Spanned<i64>>,
    max_channels_per_user: Option<Spanned<i64>>,
    sndbuf: Option<Spanned<i64>>,
    rcvbuf: Option<Spanned<i64>>,
    rate_limit: Option<Spanned<f64>>,
    rate_burst: Option<Spanned<f64>>,
    allow_amplification: Option<bool>,
    metrics: Option<Spanned<toml::Value>>,
    redis: Option<String>,
    server_id: Option<String>,
    lease_ttl_ms: Option<Spanned<i64>>,
    database: Option<String>,
    cluster_secret_file: Option<PathBuf>,
    accounts_off: Option<bool>,
    register_limit: Option<Spanned<i64>>,
    account_reserve: Option<Spanned<i64>>,
    tls_ca: Option<PathBuf>,
    audit_log: Option<PathBuf>,
    history: Option<Spanned<i64>>,
    persist_history: Option<bool>,
    max_created_channels: Option<Spanned<i64>>,
    mailbox: Option<Spanned<i64>>,
    batch_window_us: Option<Spanned<i64>>,
    multicast: Option<Spanned<String>>,
    multicast_if: Option<Spanned<String>>,
    multicast_ttl: Option<Spanned<i64>>,
    multicast_port: Option<Spanned<i64>>,
    no_discovery: Option<bool>,
    name: Option<String>,
    max_channels_per_creator: Option<Spanned<i64>>,
    max_title_len: Option<Spanned<i64>>,
    max_bans: Option<Spanned<i64>>,
    max_server_bans: Option<Spanned<i64>>,
    motd: Option<Spanned<String>>,
    operators: Option<Spanned<Vec<Spanned<String>>>>,
    channel: Option<Vec<config::Entry>>,
}

/// Reads and checks a configuration file.
///
/// # Errors
/// [`SettingsError`] when it can't be read, is not valid TOML, has an unknown key, or a
/// value out of range (naming its line).
pub fn load(path: &Path) -> Result<FileConfig, SettingsError> {
    let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(&text, path)
}

/// Parses the text of a configuration file; `path` names it in messages, and relative
/// paths in it are taken from its folder.
///
/// # Errors
/// As [`load`].
pub fn parse(text: &str, path: &Path) -> Result<FileConfig, SettingsError> {
    let raw: Raw = toml::from_str(text).map_err(|e| SettingsError::Syntax {
        path: path.to_owned(),
        message: e.to_string().trim_end().to_owned(),
    })?;
    let invalid = |offset: usize, message: String| SettingsError::Invalid {
        path: path.to_owned(),
        line: config::line_of(text, offset),
        message,
    };
    let int = |v: &Option<Spanned<i64>>,
               name: &str,
               lo: i64,
               hi: i64|
     -> Result<Option<i64>, SettingsError> {
        match v {
            None => Ok(None),
            Some(s) if (lo..=hi).contains(s.get_ref()) => Ok(Some(*s.get_ref())),
            Some(s) => Err(invalid(
                s.span().start,
                format!("{name} must be from {lo} to {hi}, not {}", s.get_ref()),
            )),
        }
    };
    let float = |v: &Option<Spanned<f64>>, name: &str| -> Result<Option<f64>, SettingsError> {
        match v {
            None => Ok(None),
            Some(s) if s.get_ref().is_finite() && *s.get_ref() >= 0.0 => Ok(Some(*s.get_ref())),
            Some(s) => Err(invalid(
                s.span().start,
                format!("{name} must be a number of at least 0"),
            )),
        }
    };
    let folder = path.parent().unwrap_or(Path::new("."));
    let here = |p: &Option<PathBuf>| p.as_ref().map(|p| folder.join(p));
    const BIG: i64 = i64::MAX;
    // A value read from its text, or an error naming its key, its line and what is wrong.
    fn parsed<T: std::str::FromStr<Err: std::fmt::Display>>(
        v: &Option<Spanned<String>>,
        name: &str,
        what: &str,
        invalid: &impl Fn(usize, String) -> SettingsError,
    ) -> Result<Option<T>, SettingsError> {
        v.as_ref()
            .map(|s| {
                s.get_ref().parse().map_err(|e| {
                    invalid(
                        s.span().start,
                        format!("{name} {:?} is not {what} ({e})", s.get_ref()),
                    )
                })
            })
            .transpose()
    }
    let bind = parsed(&raw.bind, "bind", "an IP address", &invalid)?;
    let multicast = parsed(
        &raw.multicast,
        "multicast",
        "a multicast range such as 239.77.0.0/24",
        &invalid,
    )?;
    let multicast_if = parsed(&raw.multicast_if, "multicast-if", "an IP address", &invalid)?;
    let metrics = match &raw.metrics {
        None => None,
        Some(s) => {
            let text = match s.get_ref() {
                toml::Value::Integer(n) => n.to_string(),
                toml::Value::String(t) => t.clone(),
                _ => {
                    return Err(invalid(
                        s.span().start,
                        "metrics must be a port or an address".into(),
                    ))
                }
            };
            Some(metrics_addr(&text).map_err(|m| invalid(s.span().start, m))?)
        }
    };
    let motd = match &raw.motd {
        None => None,
        Some(s) if s.get_ref().len() > MAX_MOTD => {
            return Err(invalid(
                s.span().start,
                format!("motd is longer than {MAX_MOTD} bytes"),
            ))
        }
        Some(s) => {
            let lines: Vec<String> = s
                .get_ref()
                .trim_end_matches('\n')
                .split('\n')
                .map(|l| {
                    l.trim_end_matches('\r')
                        .replace(|c: char| c.is_control(), " ")
                })
                .collect();
            Some(if s.get_ref().is_empty() {
                Vec::new()
            } else {
                lines
            })
        }
    };
    let operators = match &raw.operators {
        None => None,
        Some(list) => {
            if list.get_ref().len() > MAX_OPERATORS {
                return Err(invalid(
                    list.span().start,
                    format!("more than {MAX_OPERATORS} operators"),
                ));
            }
            let mut keys = Vec::new();
            for op in list.get_ref() {
                if !proto::valid_nick(op.get_ref()) {
                    return Err(invalid(
                        op.span().start,
                        format!("operator {:?} is not a nickname", op.get_ref()),
                    ));
                }
                keys.push(crate::state::nick_key(op.get_ref()));
            }
            Some(keys)
        }
    };
    let channel = match raw.channel {
        None => None,
        Some(entries) => Some(
            config::check_entries(entries, text)
                .map_err(|(offset, message)| invalid(offset, message))?,
        ),
    };
    let u = |v: Option<i64>| v.map(|n| n as usize);
    Ok(FileConfig {
        bind,
        port: int(&raw.port, "port", 0, 65535)?.map(|n| n as u16),
        data: here(&raw.data),
        channels: here(&raw.channels),
        idle_timeout: int(&raw.idle_timeout, "idle-timeout", 1, BIG)?.map(|n| n as u64),
        check_interval: int(&raw.check_interval, "check-interval", 1, BIG)?.map(|n| n as u64),
        workers: int(&raw.workers, "workers", 1, 256)?.map(|n| n as u16),
        senders: int(&raw.senders, "senders", 1, 256)?.map(|n| n as u16),
        max_datagram: int(
            &raw.max_datagram,
            "max-datagram",
            64,
            proto::MAX_UDP_PAYLOAD as i64,
        )?
        .map(|n| n as u32),
        max_users: int(&raw.max_users, "max-users", 1, u32::MAX as i64)?.map(|n| n as u32),
        max_channels_per_user: int(
            &raw.max_channels_per_user,
            "max-channels-per-user",
            1,
            u32::MAX as i64,
        )?
        .map(|n| n as u32),
        sndbuf: u(int(&raw.sndbuf, "sndbuf", 0, BIG)?),
        rcvbuf: u(int(&raw.rcvbuf, "rcvbuf", 0, BIG)?),
        rate_limit: float(&raw.rate_limit, "rate-limit")?,
        rate_burst: float(&raw.rate_burst, "rate-burst")?,
        allow_amplification: raw.allow_amplification,
        metrics,
        redis: raw.redis,
        server_id: raw.server_id,
        lease_ttl_ms: int(&raw.lease_ttl_ms, "lease-ttl-ms", 300, 3_600_000)?.map(|n| n as u64),
        database: raw.database,
        cluster_secret_file: here(&raw.cluster_secret_file),
        accounts_off: raw.accounts_off,
        register_limit: int(&raw.register_limit, "register-limit", 0, u32::MAX as i64)?
            .map(|n| n as u32),
        account_reserve: int(&raw.account_reserve, "account-reserve", 0, 100)?.map(|n| n as u8),
        tls_ca: here(&raw.tls_ca),
        audit_log: here(&raw.audit_log),
        history: u(int(&raw.history, "history", 0, MAX_HISTORY as i64)?),
        persist_history: raw.persist_history,
        max_created_channels: u(int(
            &raw.max_created_channels,
            "max-created-channels",
            0,
            config::MAX_CHANNELS as i64,
        )?),
        mailbox: u(int(&raw.mailbox, "mailbox", 0, 10_000)?),
        batch_window_us: int(&raw.batch_window_us, "batch-window-us", 0, 1000)?.map(|n| n as u64),
        multicast,
        multicast_if,
        multicast_ttl: int(&raw.multicast_ttl, "multicast-ttl", 1, 255)?.map(|n| n as u32),
        multicast_port: int(&raw.multicast_port, "multicast-port", 1, 65535)?.map(|n| n as u16),
        no_discovery: raw.no_discovery,
        name: raw.name,
        max_channels_per_creator: u(int(
            &raw.max_channels_per_creator,
            "max-channels-per-creator",
            0,
            1000,
        )?),
        max_title_len: u(int(
            &raw.max_title_len,
            "max-title-len",
            1,
            config::MAX_TITLE_LEN as i64,
        )?),
        max_bans: u(int(&raw.max_bans, "max-bans", 0, 10_000)?),
        max_server_bans: u(int(&raw.max_server_bans, "max-server-bans", 0, 100_000)?),
        motd,
        operators,
        channel,
    })
}

impl FileConfig {
    /// The live settings this file gives, over `base` (what the command line says, or the
    /// defaults); `cli` says which of them the command line set, so the file can't change
    /// those.
    pub fn live(&self, base: &Live, cli: &dyn Fn(&str) -> bool) -> Live {
        let pick = |name: &str, file: Option<usize>, base: usize| {
            if cli(name) {
                base
            } else {
                file.unwrap_or(base)
            }
        };
        Live {
            motd: self.motd.clone().unwrap_or_else(|| base.motd.clone()),
            operators: self
                .operators
                .clone()
                .unwrap_or_else(|| base.operators.clone()),
            max_channels_per_user: pick(
                "max_channels_per_user",
                self.max_channels_per_user.map(|n| n as usize),
                base.max_channels_per_user,
            ),
            max_created_channels: pick(
                "max_created_channels",
                self.max_created_channels,
                base.max_created_channels,
            ),
            max_channels_per_creator: self
                .max_channels_per_creator
                .unwrap_or(base.max_channels_per_creator),
            max_title_len: self.max_title_len.unwrap_or(base.max_title_len),
            history: pick("history", self.history, base.history),
            persist_history: if cli("persist_history") {
                base.persist_history
            } else {
                self.persist_history.unwrap_or(base.persist_history)
            },
            mailbox: pick("mailbox", self.mailbox, base.mailbox),
            max_bans: self.max_bans.unwrap_or(base.max_bans),
            max_server_bans: self.max_server_bans.unwrap_or(base.max_server_bans),
        }
    }
}

/// Parses a metrics address as `--metrics` takes it: a port alone means loopback.
///
/// # Errors
/// A message when it is neither a port nor an address.
pub fn metrics_addr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    s.parse()
        .map_err(|_| format!("{s:?} is neither a port nor an address like 127.0.0.1:9027"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<FileConfig, SettingsError> {
        parse(text, Path::new("/etc/udpchat/server.toml"))
    }

    #[test]
    fn reads_flags_operators_motd_and_channels() {
        let c = p(r#"
port = 4000
max-users = 50
data = "state"
metrics = 9027
motd = """
Welcome!
Be kind.
"""
operators = ["Alice", "bob"]
history = 20

[[channel]]
title = "Lobby"
description = "Say hello"
"#)
        .unwrap();
        assert_eq!(
            (c.port, c.max_users, c.history),
            (Some(4000), Some(50), Some(20))
        );
        assert_eq!(c.data.as_deref(), Some(Path::new("/etc/udpchat/state")));
        assert_eq!(c.metrics, Some("127.0.0.1:9027".parse().unwrap()));
        assert_eq!(c.motd.unwrap(), ["Welcome!", "Be kind."]);
        assert_eq!(c.operators.unwrap(), ["alice", "bob"]);
        assert_eq!(c.channel.unwrap()[0].title, "Lobby");
    }

    #[test]
    fn errors_name_their_line() {
        let err = p("port = 4000\n\nmax-users = 0\n").unwrap_err().to_string();
        assert!(err.contains("line 3") && err.contains("max-users"), "{err}");
        let err = p("port = 4000\nfrobnicate = 1\n").unwrap_err().to_string();
        assert!(
            err.contains("line 2") && err.contains("frobnicate"),
            "{err}"
        );
        let err = p("operators = [\"a b\"]\n").unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");
        let err = p("[[channel]]\ntitle = \"two words\"\ndescription = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2") && err.contains("one word"), "{err}");
        let err = p("port = \"x\"\n").unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");
    }

    #[test]
    fn the_command_line_wins_over_the_file() {
        let c = p("history = 5\nmailbox = 7\noperators = [\"ann\"]\n").unwrap();
        let base = Live {
            history: 99,
            ..Live::default()
        };
        let live = c.live(&base, &|name| name == "history");
        assert_eq!((live.history, live.mailbox), (99, 7));
        assert!(live.is_operator("ann"));
    }
}
