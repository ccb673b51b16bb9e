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

/// `chat-server accounts ...`: looks after the accounts in the store the server uses.
fn accounts(settings: &Settings, action: AccountsAction) -> anyhow::Result<()> {
    use udpchat::accounts::{add_account, delete_account, set_operator};
    let kind = store_kind(settings);
    let trust = udpchat::tls::Trust::new(settings.tls_ca.as_deref())?;
    let store = kind
        .open_with(&trust)
        .with_context(|| format!("cannot open the account database ({kind})"))?;
    let listed = |nick: &str| settings.operators.contains(&udpchat::accounts::key(nick));
    match action {
        AccountsAction::List => {
            let all = store.list()?;
            for a in &all {
                let role = match (a.operator, listed(&a.nick)) {
                    (true, true) => " operator",
                    (true, false) => " operator (not in `operators`: no rights)",
                    (false, _) => "",
                };
                println!(
                    "{:<32} registered {}{role} watching: {}",
                    a.nick,
                    a.created,
                    a.watch.join(" ")
                );
            }
            println!("{} accounts", all.len());
            let find = |k: &str| all.iter().find(|a| udpchat::accounts::key(&a.nick) == k);
            let warnings = udpchat::server::operator_warnings_with(
                &settings.operators,
                |k| find(k).is_some(),
                |k| find(k).is_some_and(|a| a.operator),
            );
            for w in warnings {
                eprintln!("warning: {w}");
            }
        }
        AccountsAction::Add { nick, operator } => {
            let password = read_password(&nick)?;
            let created = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            add_account(&*store, &nick, &password, operator, created)?;
            let what = if operator { "a server operator's " } else { "" };
            println!("made {what}account {nick}");
            if operator && !listed(&nick) {
                eprintln!(
                    "warning: {nick} is not in the configuration's `operators`: add it there \
                     (and reload) for the account to have operator rights"
                );
            }
        }
        AccountsAction::Set {
            nick, no_operator, ..
        } => {
            set_operator(&*store, &nick, !no_operator)?;
            match no_operator {
                true => println!("{nick} is no longer a server operator's account"),
                false => println!("{nick} is a server operator's account"),
            }
        }
        AccountsAction::Delete { nick } => {
            delete_account(&*store, &nick)?;
            println!("deleted {nick}");
        }
    }
    Ok(())
}

/// The password for a new account of `nick`: asked twice on the terminal (without echo),
/// or one line of standard input when it is not a terminal (a script, a pipe).
fn read_password(nick: &str) -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("Password for {nick}: "))?;
        let again = rpassword::prompt_password("The same password again: ")?;
        if first != again {
            anyhow::bail!("the two passwords differ; nothing was made");
        }
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    Ok(password.strip_suffix('\r').unwrap_or(password).to_owned())
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
                        let operators = reloader.operator_warnings();
                        operators.iter().for_each(|w| tracing::warn!("{w}"));
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
        // The URL may hold a password (`redis://user:PASSWORD@host`): never logged.
        let redis = udpchat::redact::url(&c.redis_url);
        tracing::info!(server_id = %c.server_id, %redis, "cluster mode");
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
    server
        .operator_warnings()
        .iter()
        .for_each(|w| tracing::warn!("{w}"));
    server.run().context("server failed")?;
    tracing::info!("stopped");
    Ok(())
}
