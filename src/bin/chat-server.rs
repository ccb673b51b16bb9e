//! `chat-server`: parses the command line, binds, and runs [`udpchat::server`] until
//! SIGINT or SIGTERM.

use std::io::IsTerminal;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use udpchat::config::{classic_channels, load_channels};
use udpchat::protocol::{DEFAULT_MAX_DATAGRAM, DEFAULT_PORT, MAX_UDP_PAYLOAD};
use udpchat::server::{default_threads, Server, ServerConfig};

/// A multi-channel chat server over UDP, speaking the classic chat protocol.
///
/// Logging goes to standard error; set RUST_LOG (e.g. RUST_LOG=debug) for more or less.
#[derive(Debug, Parser)]
#[command(version, about, long_about)]
struct Args {
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

    /// Largest datagram accepted, in bytes; longer ones get `ERROR datagram too long`.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_DATAGRAM as u32,
          value_parser = clap::value_parser!(u32).range(64..=MAX_UDP_PAYLOAD as i64))]
    max_datagram: u32,

    /// Most users logged in at once; further logins get `ERROR server full; try again later`.
    #[arg(long, value_name = "N", default_value_t = 100_000, value_parser = clap::value_parser!(u32).range(1..))]
    max_users: u32,

    /// Socket send buffer to ask the kernel for, in bytes (it may grant less).
    #[arg(long, value_name = "BYTES", default_value_t = 4 << 20)]
    sndbuf: usize,

    /// Socket receive buffer to ask the kernel for, in bytes (it may grant less).
    #[arg(long, value_name = "BYTES", default_value_t = 4 << 20)]
    rcvbuf: usize,
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
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chat-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let channels = match &args.channels {
        Some(path) => load_channels(path)?,
        None => classic_channels(),
    };
    let config = ServerConfig {
        bind: SocketAddr::new(args.bind, args.port),
        channels,
        idle_timeout: Duration::from_secs(args.idle_timeout),
        check_interval: Duration::from_secs(args.check_interval),
        workers: args.workers.map_or_else(default_threads, usize::from),
        senders: args.senders.map_or_else(default_threads, usize::from),
        max_datagram: args.max_datagram as usize,
        max_users: args.max_users as usize,
        sndbuf: args.sndbuf,
        rcvbuf: args.rcvbuf,
    };
    let bind = config.bind;
    let server =
        Server::bind(config.clone()).with_context(|| format!("cannot listen on {bind}"))?;
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, server.stop_flag())
            .context("cannot install the signal handler")?;
    }
    let buffers = server.buffers()?;
    tracing::info!(
        addr = %server.local_addr(),
        channels = config.channels.len(),
        workers = config.workers,
        senders = config.senders,
        sndbuf = buffers.sndbuf,
        rcvbuf = buffers.rcvbuf,
        "listening on {}",
        server.local_addr()
    );
    server.run().context("server failed")?;
    tracing::info!("stopped");
    Ok(())
}
