//! `chat-client`: the terminal chat client. Parses the command line and runs
//! [`udpchat::client::run`].

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use udpchat::client::{self, Config, Outcome};
use udpchat::protocol::DEFAULT_PORT;

/// Chat with others through a udpchat server. Type /help once logged in.
#[derive(Parser, Debug)]
#[command(name = "chat-client", version)]
struct Args {
    /// The server's host name or address.
    #[arg(default_value = "localhost")]
    host: String,
    /// The server's UDP port.
    #[arg(default_value_t = DEFAULT_PORT)]
    port: u16,
    /// The nickname to log in with; asked for when not given.
    #[arg(long)]
    nick: Option<String>,
    /// How long each of the 5 login tries waits for an answer, in milliseconds.
    #[arg(long, default_value_t = 6000, hide = true)]
    login_timeout_ms: u64,
    /// Scripted input: how long the server must be quiet after the last line before
    /// the client leaves, in milliseconds.
    #[arg(long, default_value_t = 750, hide = true)]
    linger_ms: u64,
    /// File of servers' pinned keys: the first registration on a server pins its key
    /// there, and a later change is reported loudly [default:
    /// $XDG_CONFIG_HOME/udpchat/known_servers or ~/.config/udpchat/known_servers].
    #[arg(long, value_name = "FILE")]
    known_servers: Option<std::path::PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = Config {
        host: args.host,
        port: args.port,
        nick: args.nick,
        login_timeout: Duration::from_millis(args.login_timeout_ms),
        linger: Duration::from_millis(args.linger_ms),
        known_servers: args
            .known_servers
            .unwrap_or_else(client::secure::KnownServers::default_path),
        ..Config::default()
    };
    match client::run(config) {
        Ok(Outcome::Quit) => ExitCode::SUCCESS,
        Ok(Outcome::LoginFailed) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("chat-client: {err:#}");
            ExitCode::FAILURE
        }
    }
}
