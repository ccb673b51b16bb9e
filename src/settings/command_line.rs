//! `chat-server`'s command line: the flags of [`Settings`] with `--config` and the
//! `accounts` command; which flags it gave, so they win over the file at every reading;
//! and what a SIGHUP reload does with what it reads again.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory as _, FromArgMatches as _, Parser};

use super::table::{load, Live, Settings};
use crate::config::{ChannelSpec, ConfigError};

/// A multi-channel chat server over UDP, speaking the classic chat protocol.
///
/// Logging goes to standard error; set RUST_LOG (e.g. RUST_LOG=debug) for more or less.
/// Registered accounts live in an SQLite database in the --data folder, made on first start.
/// Every flag can also be set in a configuration file (--config), which SIGHUP reloads.
#[derive(Debug, Clone, Parser)]
#[command(version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// TOML configuration file: any flag below under its name without the dashes
    /// (`max-users = 5000`), plus `operators` (nicknames whose accounts `chat-server
    /// accounts add NICK --operator` made), `motd`, community
    /// limits and `[[channel]]` tables. Flags given here win over it. SIGHUP reads it
    /// again: channels, limits, operators and the message of the day change without a
    /// restart; a bad file is reported with its line and the old configuration stays.
    #[arg(long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,

    #[command(flatten)]
    flags: Settings,
}

/// A command `chat-server` runs instead of serving.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Look after registered accounts (the server may be running).
    Accounts {
        /// What to do with them.
        #[command(subcommand)]
        action: AccountsAction,
    },
}

/// What `chat-server accounts` does. A running server on the same database (the
/// `--data` folder's SQLite file, or `--database`) sees each change within a second.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum AccountsAction {
    /// List the registered nicknames, when each was registered, whether it is a server
    /// operator's account, and their hot lists.
    List,
    /// Make an account for NICK. The password is asked twice on the terminal, or read
    /// as one line from standard input when that is not a terminal
    /// (`printf '%s\n' "$PW" | chat-server accounts add alice --operator`).
    Add {
        /// The nickname (as it should be shown).
        nick: String,
        /// Make it a server operator's account: with NICK in the configuration's
        /// `operators`, whoever logs in to it with its password is a server operator.
        /// The only way an account becomes one: nobody can over the network.
        #[arg(long)]
        operator: bool,
    },
    /// Mark the account of NICK as a server operator's (`--operator`) or not
    /// (`--no-operator`); a demoted operator's session loses its rights at once.
    Set {
        /// The nickname (any case).
        nick: String,
        /// Make it a server operator's account.
        #[arg(
            long,
            conflicts_with = "no_operator",
            required_unless_present = "no_operator"
        )]
        operator: bool,
        /// Make it an ordinary account.
        #[arg(long)]
        no_operator: bool,
    },
    /// Delete the account of NICK; the nickname is free for guests again at once (unless
    /// `operators` names it: then it stays reserved), and a session logged in to it loses
    /// any operator rights.
    Delete {
        /// The nickname (any case).
        nick: String,
    },
}

/// `chat-server`'s command line, parsed.
#[derive(Debug, Clone)]
pub struct CommandLine {
    /// The command to run instead of the server, if any.
    pub command: Option<Command>,
    /// The configuration file (`--config`).
    pub config: Option<PathBuf>,
    /// The flags, at their defaults where not given.
    flags: Settings,
    /// The flags given (by field name): they win over the file.
    given: BTreeSet<String>,
}

impl CommandLine {
    /// The process's command line; on `--help`, `--version` or a bad flag, prints what clap
    /// prints and exits as it does.
    pub fn parse() -> CommandLine {
        CommandLine::from_matches(&Cli::command().get_matches()).unwrap_or_else(|e| e.exit())
    }

    /// `args`, the program's name first, as a command line.
    ///
    /// # Errors
    /// clap's error (or its help) for an unknown flag, a bad value, `--help`, ...
    pub fn try_parse_from<I, T>(args: I) -> Result<CommandLine, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        CommandLine::from_matches(&Cli::command().try_get_matches_from(args)?)
    }

    fn from_matches(matches: &ArgMatches) -> Result<CommandLine, clap::Error> {
        let cli = Cli::from_arg_matches(matches)?;
        let given = matches
            .ids()
            .filter(|id| matches.value_source(id.as_str()) == Some(ValueSource::CommandLine))
            .map(|id| id.as_str().to_owned())
            .collect();
        Ok(CommandLine {
            command: cli.command,
            config: cli.config,
            flags: cli.flags,
            given,
        })
    }

    /// The settings now: the flags given on the command line, over the configuration file
    /// (read again at each call), over the defaults.
    ///
    /// # Errors
    /// When the configuration file is refused.
    pub fn settings(&self) -> Result<Settings, ConfigError> {
        match &self.config {
            None => Ok(self.flags.clone()),
            Some(path) => Ok(load(path)?.under(&self.flags, |name| self.given.contains(name))),
        }
    }

    /// SIGHUP: reads the configuration again and hands what may change while the server
    /// runs to `apply` (the server's `Reloader::apply`: the live settings, the channels and
    /// the most users), which says what changed. `started` is what the server started
    /// with: the settings that differ from it and wait for a restart are reported.
    ///
    /// # Errors
    /// When the file, or a channels file it names, is refused; nothing is applied then.
    pub fn reload(
        &self,
        started: &Settings,
        apply: impl FnOnce(Live, &[ChannelSpec], usize) -> Vec<String>,
    ) -> Result<Reloaded, ConfigError> {
        let settings = self.settings()?;
        let channels = settings.channels()?;
        Ok(Reloaded {
            changes: apply(settings.live(), &channels, settings.max_users),
            restart: started.restart_only(&settings),
        })
    }
}

/// What a reload did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reloaded {
    /// What changed, as the reloader says it (`channel Garden added`, `motd changed`).
    pub changes: Vec<String>,
    /// The settings that changed but take effect at the next start, by field name.
    pub restart: Vec<&'static str>,
}

impl Reloaded {
    /// A warning for each setting that waits for a restart.
    pub fn warnings(&self) -> impl Iterator<Item = String> + '_ {
        self.restart.iter().map(|what| {
            format!("{what} changed in the configuration; it takes effect at the next start")
        })
    }

    /// The line that says what the reload changed.
    pub fn summary(&self) -> String {
        match self.changes.is_empty() {
            true => "configuration reloaded: nothing changed".into(),
            false => format!("configuration reloaded: {}", self.changes.join("; ")),
        }
    }
}
