//! `chat-server`: parses the command line (and the configuration file it names), binds,
//! and runs [`udpchat::server`] until SIGINT or SIGTERM; SIGHUP reloads the configuration.

use std::io::IsTerminal;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::builder::TypedValueParser as _;
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser};
use proto::{DEFAULT_MAX_DATAGRAM, DEFAULT_PORT, MAX_UDP_PAYLOAD};
use udpchat::accounts::StoreKind;
use udpchat::cluster::{ClusterConfig, ClusterSecret};
use udpchat::config::{classic_channels, load_channels, ChannelSpec};
use udpchat::multicast::{GroupRange, MulticastConfig, DEFAULT_TTL};
use udpchat::server::{default_threads, BatchWindow, Limits, Reloader, Server, ServerConfig};
use udpchat::settings::{self, FileConfig, Live};

/// A multi-channel chat server over UDP, speaking the classic chat protocol.
///
/// Logging goes to standard error; set RUST_LOG (e.g. RUST_LOG=debug) for more or less.
/// Registered accounts live in an SQLite database in the --data folder, made on first start.
/// Every flag can also be set in a configuration file (--config), which SIGHUP reloads.
#[derive(Debug, Clone, Parser)]
#[command(version, about, long_about)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,

    /// TOML configuration file: any flag below under its name without the dashes
    /// (`max-users = 5000`), plus `operators` (registered nicknames), `motd`, community
    /// limits and `[[channel]]` tables. Flags given here win over it. SIGHUP reads it
    /// again: channels, limits, operators and the message of the day change without a
    /// restart; a bad file is reported with its line and the old configuration stays.
    #[arg(long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,

    /// Append an audit log of moderation and operator actions to this file (they are
    /// logged at info level under the target `udpchat::audit` either way).
    #[arg(long, value_name = "FILE")]
    audit_log: Option<PathBuf>,

    /// Recent messages each channel keeps for clients that ask for history (0: none).
    #[arg(long, value_name = "N", default_value_t = settings::DEFAULT_HISTORY,
          value_parser = clap::value_parser!(u32).range(0..=settings::MAX_HISTORY as i64).map(|n| n as usize))]
    history: usize,

    /// Keep the history of registered and configured channels in the database too, so it
    /// survives a restart.
    #[arg(long)]
    persist_history: bool,

    /// Channels users may create, in all, at once.
    #[arg(long, value_name = "N", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(0..=udpchat::config::MAX_CHANNELS as i64).map(|n| n as usize))]
    max_created_channels: usize,

    /// Private messages kept for a registered user who is away, delivered at their next
    /// password login (0: none are kept).
    #[arg(long, value_name = "N", default_value_t = 50,
          value_parser = clap::value_parser!(u32).range(0..=10_000).map(|n| n as usize))]
    mailbox: usize,

    /// Folder of the account database (created if missing).
    #[arg(
        long,
        value_name = "DIR",
        default_value = "udpchat-data",
        global = true
    )]
    data: PathBuf,

    /// Address to listen on; `::` serves IPv6 and IPv4 together.
    #[arg(long, default_value = "0.0.0.0")]
    bind: IpAddr,

    /// UDP port to listen on (0 picks a free one).
    #[arg(long, default_value_t = DEFAULT_PORT)]
    port: u16,

    /// TOML file of channels, one [[channel]] table each with `title` (one word) and
    /// `description`. Without it, the five classic channels.
    #[arg(long, value_name = "FILE")]
    channels: Option<PathBuf>,

    /// Seconds of silence after which a user is logged off.
    #[arg(long, value_name = "SECONDS", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..))]
    idle_timeout: u64,

    /// Seconds between sweeps for silent users.
    #[arg(long, value_name = "SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    check_interval: u64,

    /// Worker threads that apply requests [default: number of CPUs].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    workers: Option<u16>,

    /// Sender threads that fan public messages out [default: number of CPUs].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    senders: Option<u16>,

    /// Microseconds a busy sender waits, after the first fan-out of a round, for more to
    /// batch with it: only when its last round ended with more fan-outs queued and went to
    /// clients granted `batch`, so an idle server never waits. 0: never. At most 1000.
    #[arg(long, value_name = "MICROSECONDS", default_value_t = udpchat::server::DEFAULT_BATCH_WINDOW.as_micros() as u64,
          value_parser = clap::value_parser!(u64).range(0..=1000))]
    batch_window_us: u64,

    /// Largest datagram accepted, in bytes; longer ones get `ERROR datagram too long`.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_DATAGRAM as u32,
          value_parser = clap::value_parser!(u32).range(64..=MAX_UDP_PAYLOAD as i64))]
    max_datagram: u32,

    /// Most users logged in at once; further logins get `ERROR server full; try again later`.
    #[arg(long, value_name = "N", default_value_t = 100_000, value_parser = clap::value_parser!(u32).range(1..))]
    max_users: u32,

    /// Channels one user may be in at once; a further JOIN_REQ gets
    /// `ERROR too many channels; part one first`.
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    max_channels_per_user: u32,

    /// Socket send buffer to ask the kernel for, in bytes (it may grant less).
    #[arg(long, value_name = "BYTES", default_value_t = 4 << 20)]
    sndbuf: usize,

    /// Socket receive buffer to ask the kernel for, in bytes (it may grant less).
    #[arg(long, value_name = "BYTES", default_value_t = 4 << 20)]
    rcvbuf: usize,

    /// Requests per second one address may send; excess is dropped and counted. 0: no limit.
    #[arg(long, value_name = "N", default_value_t = 1000.0)]
    rate_limit: f64,

    /// Burst of requests one address may send at once before the rate limit applies.
    #[arg(long, value_name = "N", default_value_t = 2000.0)]
    rate_burst: f64,

    /// Answer addresses that are not logged in even with more bytes than they sent. By
    /// default they never get more than three times the bytes they sent (QUIC's
    /// anti-amplification limit), so a client may need a retry to hear, e.g., that a very
    /// short nickname is taken.
    #[arg(long)]
    allow_amplification: bool,

    /// Serve Prometheus metrics over HTTP on this address; a port alone means loopback
    /// (e.g. `--metrics 9027` serves http://127.0.0.1:9027/metrics).
    #[arg(long, value_name = "ADDR", value_parser = settings::metrics_addr)]
    metrics: Option<SocketAddr>,

    /// Join a cluster of servers sharing one chat space through this Redis
    /// (`redis://HOST:PORT`). Without it the server stands alone.
    #[arg(long, value_name = "URL")]
    redis: Option<String>,

    /// This server's name in the cluster, unique among its servers (letters, digits, '-',
    /// '_', '.') [default: HOSTNAME-PORT].
    #[arg(long, value_name = "NAME", requires = "redis")]
    server_id: Option<String>,

    /// Milliseconds a nickname lease and the server's alive key last without renewal (they
    /// are renewed every third of it); a dead server's users vanish after about this long.
    #[arg(long, value_name = "MS", default_value_t = 15_000, value_parser = clap::value_parser!(u64).range(300..=3_600_000))]
    lease_ttl_ms: u64,

    /// Keep accounts in PostgreSQL (`postgres://USER@HOST:PORT/DB`) instead of the SQLite
    /// file in --data, so that every server of a cluster sees the same accounts. Add
    /// `?sslmode=require` for TLS (verified with --tls-ca or the system's certificates).
    #[arg(long, value_name = "URL", global = true)]
    database: Option<String>,

    /// File holding the secret the servers of a cluster share (at least 16 bytes; e.g.
    /// `openssl rand -hex 32 > FILE`): what each server writes to Redis is authenticated
    /// with it. Required with --redis.
    #[arg(long, value_name = "FILE", requires = "redis")]
    cluster_secret_file: Option<PathBuf>,

    /// Keep no accounts: every nickname is a guest's; registrations and password logins are
    /// refused. Lets a cluster run without a shared account store.
    #[arg(long)]
    accounts_off: bool,

    /// New accounts one network (an IPv4 /24, an IPv6 /64) may register per hour.
    #[arg(long, value_name = "N", default_value_t = 30)]
    register_limit: u32,

    /// Percent of --max-users that only password logins may fill: guests are told the server
    /// is full that much earlier, so a flood of guest logins can't lock account holders out.
    #[arg(long, value_name = "PERCENT", default_value_t = 10, value_parser = clap::value_parser!(u8).range(0..=100))]
    account_reserve: u8,

    /// PEM file of the CA certificates to verify PostgreSQL and Redis TLS servers with
    /// (`?sslmode=require`, `rediss://`) instead of the system's.
    #[arg(long, value_name = "FILE", global = true)]
    tls_ca: Option<PathBuf>,
    /// Multicast channels: give each channel a group from this range (e.g. 239.77.0.0/24,
    /// or IPv6 like ff15::77:0/112). Clients that ask for it then hear a channel's public
    /// messages and join/part notices on its group, sent once however many members it has.
    /// ANYONE ON THE LAN CAN JOIN A GROUP AND READ ITS CHANNEL: the channel key's tag stops
    /// outsiders from injecting events, not from listening. Groups are stable across
    /// restarts for the same channels file; a channel with `multicast = false` gets none.
    #[arg(long, value_name = "CIDR")]
    multicast: Option<GroupRange>,

    /// Local address of the interface to send group traffic from [default: the --bind
    /// address if it is one, else the interface the kernel routes the groups to].
    #[arg(long, value_name = "ADDR", requires = "multicast")]
    multicast_if: Option<IpAddr>,

    /// Hop limit (TTL) of group datagrams; 1 keeps them on this LAN.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_TTL, value_parser = clap::value_parser!(u32).range(1..=255))]
    multicast_ttl: u32,

    /// UDP port of the groups [default: the chat port + 1].
    #[arg(long, value_name = "PORT", requires = "multicast")]
    multicast_port: Option<u16>,

    /// Do not answer DISCOVER (clients looking for a server by broadcast or on the
    /// discovery group 239.255.77.77).
    #[arg(long)]
    no_discovery: bool,

    /// The name SERVER_HERE answers DISCOVER with [default: --server-id in a cluster, else
    /// the host name].
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
}

#[derive(Debug, Clone, clap::Subcommand)]
enum Command {
    /// Look after registered accounts (the server may be running).
    Accounts {
        #[command(subcommand)]
        action: AccountsAction,
    },
}

#[derive(Debug, Clone, clap::Subcommand)]
enum AccountsAction {
    /// List the registered nicknames, when each was registered, and their hot lists.
    List,
    /// Delete the account of NICK; the nickname is free for guests again.
    Delete {
        /// The nickname (any case).
        nick: String,
    },
}

/// Where the accounts are, from `--data` and `--database`: one choice for the server and
/// the `accounts` command.
fn store_kind(data: &std::path::Path, database: Option<&str>) -> StoreKind {
    match database {
        Some(url) => StoreKind::Postgres(url.to_owned()),
        None => StoreKind::Sqlite(data.to_owned()),
    }
}

fn accounts(
    kind: &StoreKind,
    tls_ca: Option<&std::path::Path>,
    action: AccountsAction,
) -> anyhow::Result<()> {
    use udpchat::accounts::key;
    let trust = udpchat::tls::Trust::new(tls_ca)?;
    let store = kind
        .open_with(&trust)
        .with_context(|| format!("cannot open the account database ({kind})"))?;
    match action {
        AccountsAction::List => {
            let all = store.list()?;
            for a in &all {
                println!(
                    "{:<32} registered {} watching: {}",
                    a.nick,
                    a.created,
                    a.watch.join(" ")
                );
            }
            println!("{} accounts", all.len());
        }
        AccountsAction::Delete { nick } => {
            if !store.delete(&key(&nick))? {
                anyhow::bail!("no account named {nick}");
            }
            println!("deleted {nick}");
        }
    }
    Ok(())
}

/// `HOSTNAME-PORT`, with characters a server id can't hold replaced by `-`.
fn default_server_id(port: u16) -> String {
    let host =
        std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_else(|_| "server".into());
    let host: String = host
        .trim()
        .chars()
        .take(48)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("{host}-{port}")
}

/// The command line with the configuration file under it: a flag given on the command
/// line wins; otherwise the file's value, if it has one.
fn merged(matches: &ArgMatches) -> anyhow::Result<(Args, Option<FileConfig>)> {
    let mut args = Args::from_arg_matches(matches)?;
    let Some(path) = args.config.clone() else {
        return Ok((args, None));
    };
    let file = settings::load(&path)?;
    let given = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
    macro_rules! take {
        ($($field:ident),*) => {$(
            if !given(stringify!($field)) {
                if let Some(v) = file.$field.clone() {
                    args.$field = v.into();
                }
            }
        )*};
    }
    take!(
        bind,
        port,
        data,
        idle_timeout,
        check_interval,
        max_datagram,
        max_users,
        max_channels_per_user,
        sndbuf,
        rcvbuf,
        rate_limit,
        rate_burst,
        allow_amplification,
        lease_ttl_ms,
        history,
        persist_history,
        max_created_channels,
        mailbox,
        batch_window_us,
        multicast_ttl,
        no_discovery,
        accounts_off,
        register_limit,
        account_reserve
    );
    macro_rules! take_some {
        ($($field:ident),*) => {$(
            if !given(stringify!($field)) && file.$field.is_some() {
                args.$field = file.$field.clone();
            }
        )*};
    }
    take_some!(
        channels,
        workers,
        senders,
        metrics,
        redis,
        server_id,
        database,
        audit_log,
        cluster_secret_file,
        tls_ca,
        multicast,
        multicast_if,
        multicast_port,
        name
    );
    Ok((args, Some(file)))
}

/// The channels: a channels file (flag or `channels` in the configuration), else the
/// configuration's `[[channel]]` tables, else the classic five.
fn channels_of(args: &Args, file: Option<&FileConfig>) -> anyhow::Result<Vec<ChannelSpec>> {
    Ok(
        match (&args.channels, file.and_then(|f| f.channel.clone())) {
            (Some(path), _) => load_channels(path)?,
            (None, Some(list)) => list,
            (None, None) => classic_channels(),
        },
    )
}

/// The settings a reload may change.
fn live_of(args: &Args, file: Option<&FileConfig>) -> Live {
    let base = Live {
        max_channels_per_user: args.max_channels_per_user as usize,
        max_created_channels: args.max_created_channels,
        history: args.history,
        persist_history: args.persist_history,
        mailbox: args.mailbox,
        ..Live::default()
    };
    match file {
        // Flag-backed values are in `args` already; this adds what only the file holds.
        Some(f) => f.live(&base, &|_| true),
        None => base,
    }
}

/// SIGHUP: reads the configuration again and applies what can change while running.
fn reload(matches: &ArgMatches, started: &Args, reloader: &Reloader) {
    let result = merged(matches).and_then(|(args, file)| {
        let channels = channels_of(&args, file.as_ref())?;
        Ok((args, file, channels))
    });
    let (args, file, channels) = match result {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("configuration not reloaded, the old one stays: {e:#}");
            return;
        }
    };
    let live = live_of(&args, file.as_ref());
    let changes = reloader.apply(live, &channels, args.max_users as usize);
    let restart = restart_only(started, &args);
    for what in &restart {
        tracing::warn!("{what} changed in the configuration; it takes effect at the next start");
    }
    if changes.is_empty() {
        tracing::info!("configuration reloaded: nothing changed");
    } else {
        tracing::info!("configuration reloaded: {}", changes.join("; "));
    }
}

/// The settings that differ between `a` and `b` and only a restart applies.
fn restart_only(a: &Args, b: &Args) -> Vec<&'static str> {
    let mut out = Vec::new();
    macro_rules! cmp {
        ($($field:ident),*) => {$(
            if format!("{:?}", a.$field) != format!("{:?}", b.$field) {
                out.push(stringify!($field));
            }
        )*};
    }
    cmp!(
        bind,
        port,
        data,
        idle_timeout,
        check_interval,
        workers,
        senders,
        max_datagram,
        sndbuf,
        rcvbuf,
        rate_limit,
        rate_burst,
        allow_amplification,
        metrics,
        redis,
        server_id,
        lease_ttl_ms,
        database,
        audit_log,
        cluster_secret_file,
        accounts_off,
        register_limit,
        account_reserve,
        tls_ca,
        batch_window_us,
        multicast,
        multicast_if,
        multicast_ttl,
        multicast_port,
        no_discovery,
        name
    );
    out
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match run(Args::command().get_matches()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chat-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(matches: ArgMatches) -> anyhow::Result<()> {
    let (args, file) = merged(&matches)?;
    if let Some(Command::Accounts { action }) = args.command {
        return accounts(
            &store_kind(&args.data, args.database.as_deref()),
            args.tls_ca.as_deref(),
            action,
        );
    }
    let channels = channels_of(&args, file.as_ref())?;
    let live = live_of(&args, file.as_ref());
    let secret = match (&args.redis, &args.cluster_secret_file) {
        (Some(_), Some(path)) => Some(ClusterSecret::from_file(path)?),
        (Some(_), None) => anyhow::bail!(
            "--redis needs --cluster-secret-file FILE: a secret shared by the cluster's servers \
             that authenticates what they write to Redis (make one with `openssl rand -hex 32`)"
        ),
        _ => None,
    };
    let config = ServerConfig {
        bind: SocketAddr::new(args.bind, args.port),
        channels,
        idle_timeout: Duration::from_secs(args.idle_timeout),
        check_interval: Duration::from_secs(args.check_interval),
        workers: args.workers.map_or_else(default_threads, usize::from),
        senders: args.senders.map_or_else(default_threads, usize::from),
        batch_window: match args.batch_window_us {
            0 => BatchWindow::Off,
            us => BatchWindow::WhenBusy(Duration::from_micros(us)),
        },
        max_datagram: args.max_datagram as usize,
        max_users: args.max_users as usize,
        sndbuf: args.sndbuf,
        rcvbuf: args.rcvbuf,
        limits: Limits {
            rate: args.rate_limit.max(0.0),
            burst: args.rate_burst.max(1.0),
            amplification_guard: !args.allow_amplification,
        },
        metrics: args.metrics,
        max_channels_per_user: args.max_channels_per_user as usize,
        store: store_kind(&args.data, args.database.as_deref()),
        cluster: args.redis.as_ref().map(|url| ClusterConfig {
            redis_url: url.clone(),
            server_id: args
                .server_id
                .clone()
                .unwrap_or_else(|| default_server_id(args.port)),
            lease_ttl: Duration::from_millis(args.lease_ttl_ms),
            secret: secret.clone().expect("checked above"),
        }),
        multicast: args.multicast.map(|range| MulticastConfig {
            range,
            interface: args.multicast_if,
            ttl: args.multicast_ttl,
            port: args.multicast_port,
        }),
        discovery: !args.no_discovery,
        name: args.name.clone(),
        live,
        audit_log: args.audit_log.clone(),
        accounts: !args.accounts_off,
        register_limit: args.register_limit,
        account_reserve_percent: args.account_reserve,
        tls_ca: args.tls_ca.clone(),
    };
    let bind = config.bind;
    let server =
        Server::bind(config.clone()).with_context(|| format!("cannot listen on {bind}"))?;
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, server.stop_flag())
            .context("cannot install the signal handler")?;
    }
    // SIGHUP reloads the configuration; it never stops the server.
    let mut hangups = signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP])
        .context("cannot install the SIGHUP handler")?;
    {
        let (reloader, started) = (server.reloader(), args.clone());
        std::thread::Builder::new()
            .name("reload".into())
            .spawn(move || {
                for _ in hangups.forever() {
                    reload(&matches, &started, &reloader);
                }
            })
            .context("cannot start the reload thread")?;
    }
    let buffers = server.buffers()?;
    tracing::info!(
        addr = %server.local_addr(),
        channels = config.channels.len(),
        workers = config.workers,
        senders = config.senders,
        sndbuf = buffers.sndbuf,
        rcvbuf = buffers.rcvbuf,
        data = %args.data.display(),
        "listening on {}",
        server.local_addr()
    );
    if let Some(c) = &config.cluster {
        tracing::info!(server_id = %c.server_id, redis = %c.redis_url, "cluster mode");
    }
    if let Some(m) = &config.multicast {
        let groups = server.groups();
        tracing::info!(
            range = %m.range,
            port = m.group_port(server.local_addr().port()),
            interface = ?m.interface,
            ttl = m.ttl,
            channels = groups.all().len(),
            "multicast channels: anyone on the LAN can join a group and read its channel"
        );
        for (_, g) in groups.all() {
            tracing::debug!(channel = %g.title, group = %g.addr, "multicast group");
        }
    }
    if let Some(addr) = server.metrics_addr() {
        tracing::info!("metrics on http://{addr}/metrics");
    }
    server.run().context("server failed")?;
    tracing::info!("stopped");
    Ok(())
}
