//! `chat-client`: the terminal chat client. Parses the command line, reads the settings
//! file, finds a server with `--discover` if asked, and runs [`udpchat_client::run`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser};
use proto::DEFAULT_PORT;
use udpchat_client::discover::discover;
use udpchat_client::secure::KnownServers;
use udpchat_client::text::sanitize;
use udpchat_client::{settings, Config, Options};

/// Chat with others through a udpchat server. Type /help once logged in.
#[derive(Parser, Debug)]
#[command(name = "chat-client", version)]
struct Args {
    /// The server's host name or address [default: localhost, or `server` in the settings;
    /// with --discover, the first server that answers].
    host: Option<String>,
    /// The server's UDP port [default: 2027, or `port` in the settings].
    port: Option<u16>,
    /// The nickname to log in with; asked for when not given.
    #[arg(long)]
    nick: Option<String>,
    /// The classic line mode, even on a terminal that could show the full-screen client.
    #[arg(long)]
    line: bool,
    /// Find a server on the local network (broadcast, and the discovery group
    /// 239.255.77.77, on PORT: 2027 unless given) and log in to the first that answers.
    /// Any machine on the LAN can answer: a password login still can't be fooled.
    #[arg(long, value_name = "PORT", num_args = 0..=1, default_missing_value = "2027",
          conflicts_with_all = ["host", "port"])]
    discover: Option<u16>,
    /// With --discover: list the servers that answer (address, name, users), and exit.
    #[arg(long, requires = "discover")]
    list: bool,
    /// Don't ask for multicast channels: every channel's messages then come by unicast
    /// (sealed, after a password login). Without it, a server started with --multicast
    /// sends channels to a LAN group that anyone on the LAN can read.
    #[arg(long)]
    no_multicast: bool,
    /// Read the settings from this file instead.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// File of servers' pinned keys: the first registration on a server pins its key
    /// there, and a later change is reported loudly [default:
    /// $XDG_CONFIG_HOME/udpchat/known_servers or ~/.config/udpchat/known_servers].
    #[arg(long, value_name = "FILE")]
    known_servers: Option<PathBuf>,
    /// How long each of the 5 login tries waits for an answer, in milliseconds.
    #[arg(long, default_value_t = 6000, hide = true)]
    login_timeout_ms: u64,
    /// Scripted input: how long the server must be quiet after the last line before
    /// the client leaves, in milliseconds.
    #[arg(long, default_value_t = 750, hide = true)]
    linger_ms: u64,
    /// How often to show the server we are here (and check it is), in milliseconds.
    #[arg(long, default_value_t = 30_000, hide = true)]
    keepalive_ms: u64,
    /// How long a PING may go unanswered before it is sent again, in milliseconds.
    #[arg(long, default_value_t = 3000, hide = true)]
    pong_wait_ms: u64,
    /// How long --discover waits for answers, in milliseconds.
    #[arg(long, default_value_t = 1500, hide = true)]
    discover_ms: u64,
}

fn main() -> ExitCode {
    match run() {
        Ok(0) => ExitCode::SUCCESS,
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(err) => {
            eprintln!("chat-client: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<i32> {
    let path = settings::default_path();
    let shown = path
        .as_ref()
        .map_or("(no configuration folder)".to_string(), |p| {
            p.display().to_string()
        });
    let command = Args::command().after_help(format!(
        "Settings file: {shown}\n(server, port, nick, channels = [...], timestamps = true|false)"
    ));
    let args = Args::from_arg_matches(&command.get_matches())?;
    let file = match (&args.config, &path) {
        (Some(named), _) => settings::load(named, true)?,
        (None, Some(default)) => settings::load(default, false)?,
        (None, None) => settings::Settings::default(),
    };
    let mut host = args
        .host
        .or(file.server)
        .unwrap_or_else(|| "localhost".into());
    let mut port = args.port.or(file.port).unwrap_or(DEFAULT_PORT);
    if let Some(search) = args.discover {
        port = search;
        let wait = Duration::from_millis(args.discover_ms);
        let found = discover(port, wait, !args.list)
            .map_err(|e| anyhow::anyhow!("cannot look for servers: {e}"))?;
        if args.list {
            for f in &found {
                println!("{}\t{}\t{} users", f.addr, sanitize(&f.name), f.users);
            }
        }
        let Some(first) = found.first() else {
            anyhow::bail!("no server answered on port {port}");
        };
        if args.list {
            return Ok(0);
        }
        println!(
            "Found {} at {} ({} users).",
            sanitize(&first.name),
            first.addr,
            first.users
        );
        host = first.addr.ip().to_string();
        port = first.addr.port();
    }
    let config = Config {
        session: Options {
            host,
            port,
            nick: args.nick.or(file.nick),
            login_timeout: Duration::from_millis(args.login_timeout_ms),
            linger: Duration::from_millis(args.linger_ms),
            keepalive: Duration::from_millis(args.keepalive_ms),
            pong_wait: Duration::from_millis(args.pong_wait_ms),
            multicast: !args.no_multicast,
            channels: file.channels,
            known_servers: args
                .known_servers
                .unwrap_or_else(KnownServers::default_path),
            ..Options::default()
        },
        line: args.line,
        timestamps: file.timestamps.unwrap_or(true),
        history: settings::history_path(),
    };
    udpchat_client::run(config)
}
