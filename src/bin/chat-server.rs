//! `chat-server`: reads the command line and the configuration file it names
//! ([`udpchat::settings`]), binds, and runs [`udpchat::server`] until SIGINT or SIGTERM;
//! SIGHUP reloads the configuration.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Context;
use udpchat::server::{store_kind, Server, ServerConfig};
use udpchat::settings::{AccountsAction, Command, CommandLine, Settings};

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match run(CommandLine::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chat-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command_line: CommandLine) -> anyhow::Result<()> {
    let settings = command_line.settings()?;
    match command_line.command.clone() {
        Some(Command::Accounts { action }) => accounts(&settings, action),
        None => serve(command_line, settings),
    }
}

/// `chat-server accounts ...`: lists or deletes accounts in the store the server uses.
fn accounts(settings: &Settings, action: AccountsAction) -> anyhow::Result<()> {
    let kind = store_kind(settings);
    let trust = udpchat::tls::Trust::new(settings.tls_ca.as_deref())?;
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
            if !store.delete(&udpchat::accounts::key(&nick))? {
                anyhow::bail!("no account named {nick}");
            }
            println!("deleted {nick}");
        }
    }
    Ok(())
}

/// Runs the server until SIGINT or SIGTERM, reloading the configuration on SIGHUP.
fn serve(command_line: CommandLine, started: Settings) -> anyhow::Result<()> {
    let config = ServerConfig::from_settings(&started)?;
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
    let reloader = server.reloader();
    let data = started.data.clone();
    std::thread::Builder::new()
        .name("reload".into())
        .spawn(move || {
            for _ in hangups.forever() {
                let apply = |live, channels: &[_], users| reloader.apply(live, channels, users);
                match command_line.reload(&started, apply) {
                    Ok(done) => {
                        done.warnings().for_each(|w| tracing::warn!("{w}"));
                        tracing::info!("{}", done.summary());
                    }
                    Err(e) => tracing::error!(
                        "configuration not reloaded, the old one stays: {:#}",
                        anyhow::Error::from(e)
                    ),
                }
            }
        })
        .context("cannot start the reload thread")?;
    let buffers = server.buffers()?;
    tracing::info!(
        addr = %server.local_addr(),
        channels = config.channels.len(),
        workers = config.workers,
        senders = config.senders,
        sndbuf = buffers.sndbuf,
        rcvbuf = buffers.rcvbuf,
        data = %data.display(),
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
