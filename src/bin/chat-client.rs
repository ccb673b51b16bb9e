//! `chat-client`: the terminal chat client. Parses the command line, reads the settings
//! file, and runs [`udpchat::client::run`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser};
use udpchat::client::{self, settings, Config};
use udpchat::protocol::DEFAULT_PORT;

/// Chat with others through a udpchat server. Type /help once logged in.
#[derive(Parser, Debug)]
#[command(name = "chat-client", version)]
struct Args {
    /// The server's host name or address [default: localhost, or `server` in the settings].
    host: Option<String>,
    /// The server's UDP port [default: 2027, or `port` in the settings].
    port: Option<u16>,
    /// The nickname to log in with; asked for when not given.
    #[arg(long)]
    nick: Option<String>,
    /// The classic line mode, even on a terminal that could show the full-screen client.
    #[arg(long)]
    line: bool,
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
    let config = Config {
        host: args
            .host
            .or(file.server)
            .unwrap_or_else(|| "localhost".into()),
        port: args.port.or(file.port).unwrap_or(DEFAULT_PORT),
        nick: args.nick.or(file.nick),
        login_timeout: Duration::from_millis(args.login_timeout_ms),
        linger: Duration::from_millis(args.linger_ms),
        keepalive: Duration::from_millis(args.keepalive_ms),
        pong_wait: Duration::from_millis(args.pong_wait_ms),
        line: args.line,
        channels: file.channels,
        timestamps: file.timestamps.unwrap_or(true),
        history: settings::history_path(),
        known_servers: args
            .known_servers
            .unwrap_or_else(client::secure::KnownServers::default_path),
        ..Config::default()
    };
    client::run(config)
}
