//! The server's settings: every flag of `chat-server`, every key of its configuration file
//! (`--config FILE`, TOML), and which of them a SIGHUP reload changes while the server runs.
//!
//! The file holds every flag of the command line under the flag's name without the dashes
//! (`port = 2027`, `max-users = 5000`), plus what only a file can hold: the server
//! operators (nicknames reserved for accounts made with `chat-server accounts add
//! --operator`), the message of the day, the community limits and the
//! channels (`[[channel]]` tables, as in a channels file). A flag given on the command line
//! wins over the file, and the file over the defaults. A file the server can't use is an
//! error naming its line.
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
//! On SIGHUP the server reads the file again ([`CommandLine::reload`]): [`Live`] settings
//! (limits, operators, the message of the day) change at once, channels are added or
//! changed, and nobody is logged off. Settings that shape threads and sockets (`bind`,
//! `port`, `workers`, ...) take effect at the next start; a reload says so in the log.
//!
//! # One table
//!
//! Every setting is one row of the table in `settings/table.rs`, and the `settings!` macro
//! (`settings/declare.rs`) makes from the rows everything that lists settings: the flags
//! ([`Settings`] is clap's `Args`), the file's keys (a serde struct, each value with its
//! place for messages), the merge of the command line over the file over the defaults,
//! [`Live`], and when a change to each takes effect ([`When`]). The defaults are clap's: an
//! empty command line gives [`Settings::default`].
//!
//! # How to add a flag
//!
//! 1. Add a row to the table in `settings/table.rs`, where it should show in `--help`:
//!
//!    ```text
//!    /// What it does, for --help [default: ... when clap can't show it].
//!    #[arg(long, value_name = "N", default_value_t = 8,
//!          value_parser = clap::value_parser!(u32).range(1..=64))]
//!    restart frob_limit: u32 = Int(1, 64);
//!    ```
//!
//!    The doc comment is the help text; `#[arg(...)]` is clap's (default, range, `requires`);
//!    the mark says when a change made by a reload takes effect: `live` (the field joins
//!    [`Live`], which the handler reads at each request), `reload` (the server's reloader
//!    applies it: users, channels) or `restart` (a reload logs that it waits for the next
//!    start); then the field's name (the flag `--frob-limit` and the key `frob-limit`), its
//!    type, and how the file's value is read (`settings/read.rs`: `Int(lo, hi)` with the
//!    range clap checks, `Float`, `Bool`, `Text`, `Relative` for a path, `Ip`, ...).
//!    A key only the file holds takes `#[arg(skip = DEFAULT)]` instead of a flag.
//! 2. Use it: a `live` one from [`Live`] in the handler; any other where the server's
//!    configuration is made from the settings (`ServerConfig::from_settings` in
//!    `server/config.rs`).
//! 3. Add it to the README's table of flags. `tests/server_binary.rs` checks that every
//!    flag of `--help` has a key in the file; nothing else needs listing it.

#[macro_use]
mod declare;
mod command_line;
mod live;
mod read;
mod table;

pub use command_line::{AccountsAction, Command, CommandLine, Reloaded};
pub use declare::When;
pub use live::LiveSettings;
pub use read::{metrics_addr, MAX_MOTD, MAX_OPERATORS};
pub use table::{
    load, parse, Live, Settings, DEFAULT_BATCH_WINDOW_US, DEFAULT_HISTORY,
    DEFAULT_MAX_CHANNELS_PER_USER, HISTORY_BATCH, MAX_HISTORY,
};

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::ConfigError;

    fn p(text: &str) -> Result<Settings, ConfigError> {
        parse(text, Path::new("/etc/udpchat/server.toml"))
    }

    /// The message `text` is refused with.
    fn refusal(text: &str) -> String {
        p(text).unwrap_err().to_string()
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
        assert_eq!((c.port, c.max_users, c.history), (4000, 50, 20));
        assert_eq!(c.data, Path::new("/etc/udpchat/state"));
        assert_eq!(c.metrics, Some("127.0.0.1:9027".parse().unwrap()));
        assert_eq!(c.motd, ["Welcome!", "Be kind."]);
        assert_eq!(c.operators, ["alice", "bob"]);
        assert_eq!(c.channel.unwrap()[0].title, "Lobby");
    }

    #[test]
    fn errors_name_their_line() {
        let err = refusal("port = 4000\n\nmax-users = 0\n");
        assert!(err.contains("line 3") && err.contains("max-users"), "{err}");
        let err = refusal("port = 4000\nfrobnicate = 1\n");
        assert!(
            err.contains("line 2") && err.contains("frobnicate"),
            "{err}"
        );
        let err = refusal("operators = [\"a b\"]\n");
        assert!(err.contains("line 1"), "{err}");
        let err = refusal("[[channel]]\ntitle = \"two words\"\ndescription = \"x\"\n");
        assert!(err.contains("line 2") && err.contains("one word"), "{err}");
        let err = refusal("port = \"x\"\n");
        assert!(err.contains("line 1"), "{err}");
    }

    /// A configuration file in a fresh folder, and the command line `args` naming it.
    fn command_line(text: &str, args: &[&str]) -> (tempfile::TempDir, CommandLine) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("server.toml");
        std::fs::write(&file, text).unwrap();
        let mut all = vec![
            "chat-server".into(),
            "--config".into(),
            file.into_os_string(),
        ];
        all.extend(args.iter().map(Into::into));
        (dir, CommandLine::try_parse_from(all).unwrap())
    }

    #[test]
    fn the_command_line_wins_over_the_file() {
        let (_dir, cli) = command_line(
            "history = 5\nmailbox = 7\noperators = [\"ann\"]\nport = 9\n",
            &["--history", "99", "--max-users", "3"],
        );
        let s = cli.settings().unwrap();
        assert_eq!((s.history, s.mailbox, s.port, s.max_users), (99, 7, 9, 3));
        assert!(s.live().is_operator("ann"));
        // What neither says is the default.
        assert_eq!(s.idle_timeout, Settings::default().idle_timeout);
    }

    #[test]
    fn the_defaults_are_the_flags_defaults() {
        let none = CommandLine::try_parse_from(["chat-server"]).unwrap();
        let s = none.settings().unwrap();
        assert!(s.changed(&Settings::default()).is_empty());
        assert_eq!(
            (s.port, s.max_users, s.workers),
            (proto::DEFAULT_PORT, 100_000, None)
        );
        assert_eq!(
            Live::default().max_channels_per_user,
            DEFAULT_MAX_CHANNELS_PER_USER
        );
        assert_eq!(Live::default().max_title_len, 32);
    }

    #[test]
    fn a_reload_applies_live_settings_and_names_those_that_wait_for_a_restart() {
        let (dir, cli) = command_line("history = 5\nworkers = 2\n", &["--port", "0"]);
        let started = cli.settings().unwrap();
        std::fs::write(
            dir.path().join("server.toml"),
            "history = 6\nworkers = 3\nport = 7\nmax-users = 9\nmotd = \"hi\"\n",
        )
        .unwrap();
        let mut applied = None;
        let done = cli
            .reload(&started, |live, channels, users| {
                applied = Some((live, channels.len(), users));
                vec!["motd changed".into()]
            })
            .unwrap();
        let (live, channels, users) = applied.unwrap();
        assert_eq!(
            (live.history, live.motd.as_slice(), channels, users),
            (6, &["hi".to_owned()][..], 5, 9)
        );
        // The port is the command line's still; the workers wait for a restart.
        assert_eq!(done.restart, ["workers"]);
        assert_eq!(
            done.warnings().collect::<Vec<_>>(),
            ["workers changed in the configuration; it takes effect at the next start"]
        );
        assert_eq!(done.summary(), "configuration reloaded: motd changed");
        assert_eq!(
            Reloaded::default().summary(),
            "configuration reloaded: nothing changed"
        );
    }

    #[test]
    fn a_bad_file_at_a_reload_applies_nothing() {
        let (dir, cli) = command_line("history = 5\n", &[]);
        let started = cli.settings().unwrap();
        std::fs::write(dir.path().join("server.toml"), "history = -1\n").unwrap();
        let err = cli
            .reload(&started, |_, _, _| panic!("applied"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 1") && err.contains("history"), "{err}");
    }

    #[test]
    fn every_setting_is_live_or_reloaded_or_waits_for_a_restart() {
        let a = Settings::default();
        let mut b = a.clone();
        b.history = 1;
        b.max_users = 1;
        b.bind = "::".parse().unwrap();
        b.motd = vec!["x".into()];
        assert_eq!(
            a.changed(&b),
            [
                ("history", When::Live),
                ("bind", When::Restart),
                ("max_users", When::Reload),
                ("motd", When::Live),
            ]
        );
        assert_eq!(a.restart_only(&b), ["bind"]);
    }
}
