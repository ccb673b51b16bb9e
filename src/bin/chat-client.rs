//! `chat-client`: the terminal chat client. Parses the command line and runs
//! [`udpchat::client::run`], after finding a server with `--discover` if asked.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use udpchat::client::discover::discover;
use udpchat::client::render::sanitize;
use udpchat::client::{self, Config, Outcome};
use udpchat::protocol::DEFAULT_PORT;

/// Chat with others through a udpchat server. Type /help once logged in.
#[derive(Parser, Debug)]
#[command(name = "chat-client", version)]
struct Args {
    /// The server's host name or address [default: localhost; with --discover, the first
    /// server that answers].
    host: Option<String>,
    /// The server's UDP port.
    #[arg(default_value_t = DEFAULT_PORT)]
    port: u16,
    /// The nickname to log in with; asked for when not given.
    #[arg(long)]
    nick: Option<String>,
    /// Find a server on the local network (broadcast, and the discovery group
    /// 239.255.77.77, on PORT: 2027 unless given) and log in to the first that answers.
    /// Any machine on the LAN can answer: a password login still can't be fooled.
    #[arg(long, value_name = "PORT", num_args = 0..=1, default_missing_value = "2027",
          conflicts_with_all = ["host", "port"])]
    discover: Option<u16>,
    /// With --discover: list the servers that answer, and exit.
    #[arg(long, requires = "discover")]
    list: bool,
    /// Don't ask for multicast channels; every channel's messages then come by unicast.
    #[arg(long)]
    no_multicast: bool,
    /// How long each of the 5 login tries waits for an answer, in milliseconds.
    #[arg(long, default_value_t = 6000, hide = true)]
    login_timeout_ms: u64,
    /// Scripted input: how long the server must be quiet after the last line before
    /// the client leaves, in milliseconds.
    #[arg(long, default_value_t = 750, hide = true)]
    linger_ms: u64,
    /// How long --discover waits for answers, in milliseconds.
    #[arg(long, default_value_t = 1500, hide = true)]
    discover_ms: u64,
    /// File of servers' pinned keys: the first registration on a server pins its key
    /// there, and a later change is reported loudly [default:
    /// $XDG_CONFIG_HOME/udpchat/known_servers or ~/.config/udpchat/known_servers].
    #[arg(long, value_name = "FILE")]
    known_servers: Option<std::path::PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut host = args.host.unwrap_or_else(|| "localhost".into());
    let mut port = args.port;
    if let Some(search) = args.discover {
        port = search;
        let wait = Duration::from_millis(args.discover_ms);
        let found = match discover(port, wait, !args.list) {
            Ok(found) => found,
            Err(err) => {
                eprintln!("chat-client: cannot look for servers: {err}");
                return ExitCode::FAILURE;
            }
        };
        if args.list {
            for f in &found {
                println!("{}\t{}\t{} users", f.addr, sanitize(&f.name), f.users);
            }
        }
        let Some(first) = found.first() else {
            eprintln!("chat-client: no server answered on port {port}");
            return ExitCode::FAILURE;
        };
        if args.list {
            return ExitCode::SUCCESS;
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
        host,
        port,
        nick: args.nick,
        login_timeout: Duration::from_millis(args.login_timeout_ms),
        linger: Duration::from_millis(args.linger_ms),
        multicast: !args.no_multicast,
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
