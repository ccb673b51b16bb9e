//! The `chat-server` binary as an operator meets it: flags, the channels file, the start-up
//! line, and a clean exit on SIGTERM.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use common::{KillOnDrop, Peer};
use proto::{code, Request};

const BIN: &str = env!("CARGO_BIN_EXE_chat-server");

/// The binary running on a free loopback port.
struct Started {
    child: KillOnDrop,
    /// The address its start-up line names.
    addr: SocketAddr,
    /// Its log lines after the start-up line.
    log: Receiver<String>,
}

impl Started {
    /// Sends `signal` to the server.
    fn signal(&self, signal: common::Signal) {
        common::signal(self.child.0.id(), signal);
    }

    /// Waits for the server to exit (it is killed after `within`).
    fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.0.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "server did not exit within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for a log line containing `what`; returns it.
    #[track_caller]
    fn wait_log(&self, what: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.log.recv_deadline(deadline) {
                Ok(line) if line.contains(what) => return line,
                Ok(_) => {}
                Err(_) => panic!("no log line with {what:?}"),
            }
        }
    }
}

/// Starts the binary on a free loopback port, with its data in `data`/data.
fn start(data: &std::path::Path, extra: &[&str]) -> Started {
    let mut child = Command::new(BIN)
        .args(["--bind", "127.0.0.1", "--port", "0", "--data"])
        .arg(data.join("data"))
        .args(extra)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let child = KillOnDrop(child);
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    let at = line
        .find("listening on ")
        .expect("start-up line names the address");
    let addr = line[at + "listening on ".len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        line.contains("sndbuf=") && line.contains("rcvbuf="),
        "{line}"
    );
    let log = common::script::lines(err);
    Started { child, addr, log }
}

/// Runs the binary with `args` to its end; its output.
fn run(args: &[&str]) -> std::process::Output {
    Command::new(BIN).args(args).output().unwrap()
}

/// Runs the binary with `args`, which it must refuse; what it said on standard error.
#[track_caller]
fn refused(args: &[&str]) -> String {
    let out = run(args);
    assert!(!out.status.success(), "{args:?} accepted");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A folder of the test's own, holding the file `name` with `text`.
fn with_file(name: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(name);
    std::fs::write(&file, text).unwrap();
    (dir, file)
}

/// Says HELLO from `p`; the lines of the message of the day, and the HELLO_ACK's payload.
fn motd(p: &Peer) -> (Vec<String>, String) {
    p.send(Request::Hello { client: "test" });
    let mut lines = Vec::new();
    loop {
        match p.recv() {
            (code::MOTD, line) => lines.push(line),
            (code::HELLO_ACK, ack) => return (lines, ack),
            other => panic!("{other:?} among the message of the day"),
        }
    }
}

/// The path `p` as a command-line argument.
fn arg(p: &std::path::Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

#[test]
fn sigterm_stops_the_server_with_status_zero() {
    let data = tempfile::tempdir().unwrap();
    let mut server = start(data.path(), &[]);
    Peer::to(server.addr).login("ann");
    server.signal(common::Signal::SIGTERM);
    assert!(server.wait_exit(Duration::from_secs(5)).success());
}

#[test]
fn channels_file_replaces_the_classic_channels() {
    let (dir, file) = with_file(
        "channels.toml",
        "[[channel]]\ntitle = \"Rust\"\ndescription = \"All things Rust\"\n\n\
         [[channel]]\ntitle = \"Zig\"\ndescription = \"Comptime chat\"\n",
    );
    let server = start(dir.path(), &["--channels", arg(&file)]);
    let p = Peer::to(server.addr);
    p.login("ann");
    p.send(Request::ListChannels);
    p.expect(code::CHANNEL_ITEM, "Rust 0 All things Rust");
    p.expect(code::CHANNEL_ITEM, "Zig 0 Comptime chat");
    p.send(Request::Join { title: "pets" });
    p.expect_error("no channel named pets");
}

#[test]
fn a_bad_channels_file_is_an_error_naming_the_line_and_nothing_starts() {
    let (_dir, file) = with_file(
        "channels.toml",
        "[[channel]]\ntitle = \"Fine\"\ndescription = \"ok\"\n[[channel]]\ntitle = \"not fine\"\ndescription = \"x\"\n",
    );
    let err = refused(&[
        "--bind",
        "127.0.0.1",
        "--port",
        "0",
        "--channels",
        arg(&file),
    ]);
    assert!(err.contains("line 5"), "{err}");
    assert!(!err.contains("listening"), "{err}");

    let missing = refused(&["--port", "0", "--channels", "/nonexistent/channels.toml"]);
    assert!(missing.contains("cannot read channels file"), "{missing}");
}

#[test]
fn help_explains_every_flag() {
    let out = run(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--bind",
        "--port",
        "--channels",
        "--idle-timeout",
        "--check-interval",
        "--workers",
        "--senders",
        "--max-datagram",
        "--max-users",
        "--sndbuf",
        "--rcvbuf",
        "--max-channels-per-user",
        "--rate-limit",
        "--rate-burst",
        "--allow-amplification",
        "--metrics",
        "--data",
        "--cluster-secret-file",
        "--accounts-off",
        "--register-limit",
        "--account-reserve",
        "--tls-ca",
        "--config",
        "--audit-log",
        "--history",
        "--persist-history",
        "--max-created-channels",
        "--mailbox",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
}

#[test]
fn every_flag_has_a_key_in_the_config_file() {
    // The file promises every flag of the command line; a flag added later without its key
    // fails here. The value is of no type in particular: only an unknown key counts.
    let out = run(&["--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    let flags: Vec<&str> = help
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("--"))
        .filter_map(|l| l.split([' ', '=', ',']).next())
        .filter(|f| !["config", "help", "version"].contains(f))
        .collect();
    assert!(flags.len() > 20, "{help}");
    let path = std::path::Path::new("server.toml");
    let unknown = udpchat::settings::parse("frob = 0\n", path).unwrap_err();
    assert!(unknown.to_string().contains("unknown field"), "{unknown}");
    for flag in flags {
        let text = format!("{flag} = 0\n");
        if let Err(e) = udpchat::settings::parse(&text, path) {
            assert!(
                !e.to_string().contains("unknown field"),
                "--{flag} has no key in the config file: {e}"
            );
        }
    }
}

#[test]
fn out_of_range_flags_are_refused() {
    for args in [
        &["--max-datagram", "70000"][..],
        &["--idle-timeout", "0"],
        &["--workers", "0"],
    ] {
        refused(args);
    }
}

#[test]
fn a_fresh_data_folder_is_private_and_an_open_one_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let data = parent.path().join("data");
    // A fresh start makes the folder 0700 and the database 0600.
    let mut server = start(parent.path(), &[]);
    server.signal(common::Signal::SIGTERM);
    assert!(server.wait_exit(Duration::from_secs(5)).success());
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("accounts.sqlite3")), 0o600);
    // Opened to others, it is refused with a clear error.
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let err = refused(&["--bind", "127.0.0.1", "--port", "0", "--data", arg(&data)]);
    assert!(
        err.contains("readable by other users") && err.contains("chmod 700"),
        "{err}"
    );
}

#[test]
fn accounts_without_the_servers_setup_are_refused_not_silently_broken() {
    let parent = tempfile::tempdir().unwrap();
    let data = parent.path().join("data");
    {
        use udpchat::accounts::{Account, AccountStore, SqliteStore};
        let store = SqliteStore::open_dir(&data).unwrap();
        store
            .put(&Account {
                nick: "ann".into(),
                record: vec![1, 2, 3],
                watch: vec![],
                created: 0,
                operator: false,
            })
            .unwrap();
    }
    let err = refused(&["--bind", "127.0.0.1", "--port", "0", "--data", arg(&data)]);
    assert!(
        err.contains("setup is missing while 1 accounts exist"),
        "{err}"
    );
}

const CONFIG: &str = r#"
max-users = 50
motd = """
Welcome to the test server.
Be kind."""
operators = ["root"]
history = 20

[[channel]]
title = "Lobby"
description = "Say hello"
"#;

#[test]
fn a_config_file_sets_flags_channels_and_the_message_of_the_day() {
    let (dir, file) = with_file("server.toml", CONFIG);
    let server = start(dir.path(), &["--config", arg(&file)]);
    let p = Peer::to(server.addr);
    p.login("ann");
    p.send(Request::ListChannels);
    p.expect(code::CHANNEL_ITEM, "Lobby 0 Say hello");
    p.expect_nothing();
    let (lines, ack) = motd(&p);
    assert_eq!(lines, ["Welcome to the test server.", "Be kind."]);
    assert!(ack.starts_with("20 "), "{ack}");
}

#[test]
fn sighup_reloads_the_config_without_dropping_anyone_and_a_bad_file_changes_nothing() {
    let (dir, file) = with_file("server.toml", CONFIG);
    let mut server = start(dir.path(), &["--config", arg(&file)]);
    let ann = Peer::to(server.addr);
    ann.login("ann");
    ann.join("Lobby");
    // Writes `text` to the file and has the server read it again; the log line about it.
    let reload = |text: &str, outcome: &str| {
        std::fs::write(&file, text).unwrap();
        server.signal(common::Signal::SIGHUP);
        server.wait_log(outcome)
    };

    // A good file: a new channel, a new description, a new message of the day.
    let line = reload(
        &(CONFIG
            .replace("Say hello", "Say hi")
            .replace("Be kind.", "Be very kind.")
            + "\n[[channel]]\ntitle = \"Garden\"\ndescription = \"Plants\"\n"),
        "configuration reloaded",
    );
    assert!(line.contains("channel Garden added"), "{line}");
    assert!(line.contains("motd changed"), "{line}");
    ann.send(Request::ListChannels);
    ann.expect(code::CHANNEL_ITEM, "Lobby 1 Say hi");
    ann.expect(code::CHANNEL_ITEM, "Garden 0 Plants");
    // Nobody was dropped: ann is still in Lobby.
    ann.send(Request::ListUsers);
    ann.expect_user_item("ann", "Lobby");
    let (lines, _) = motd(&ann);
    assert_eq!(lines, ["Welcome to the test server.", "Be very kind."]);

    // A bad file: reported with its line; the old configuration stays.
    let bad_value = "max-users = 50\nhistory = 20\nmax-users = \"many\"\n";
    let line = reload(bad_value, "not reloaded");
    assert!(line.contains("line 3"), "{line}");
    let bad_title = "history = 20\n\n[[channel]]\ntitle = \"two words\"\ndescription = \"\"\n";
    let line = reload(bad_title, "not reloaded");
    assert!(line.contains("line 4"), "{line}");
    ann.send(Request::ListChannels);
    ann.expect(code::CHANNEL_ITEM, "Lobby 1 Say hi");
    ann.expect(code::CHANNEL_ITEM, "Garden 0 Plants");
    ann.expect_nothing();
    assert!(
        server.child.0.try_wait().unwrap().is_none(),
        "SIGHUP stopped the server"
    );
    server.signal(common::Signal::SIGTERM);
    assert!(server.wait_exit(Duration::from_secs(5)).success());
}

#[test]
fn sighup_applies_limits_at_once_and_warns_of_settings_that_wait_for_a_restart() {
    let (dir, file) = with_file("server.toml", "max-users = 1\nworkers = 2\n");
    let server = start(dir.path(), &["--config", arg(&file)]);
    Peer::to(server.addr).login("ann");
    std::fs::write(&file, "max-users = 2\nworkers = 3\nhistory = 7\n").unwrap();
    server.signal(common::Signal::SIGHUP);
    let line = server.wait_log("workers changed");
    assert!(
        line.contains("WARN") && line.contains("next start"),
        "{line}"
    );
    let line = server.wait_log("configuration reloaded");
    assert!(
        line.ends_with("configuration reloaded: limits changed"),
        "{line}"
    );
    // Two users fit now; a third does not.
    Peer::to(server.addr).login("bob");
    let (answer, _) =
        Peer::to(server.addr).retry_until_answered(&Request::Login { nick: "cid" }.to_bytes());
    assert_eq!(answer, (code::ERROR, "server full; try again later".into()));
}

#[test]
fn sighup_without_a_config_file_does_not_stop_the_server() {
    let data = tempfile::tempdir().unwrap();
    let mut server = start(data.path(), &[]);
    server.signal(common::Signal::SIGHUP);
    server.wait_log("configuration reloaded");
    Peer::to(server.addr).login("ann");
    assert!(server.child.0.try_wait().unwrap().is_none());
}

#[test]
fn a_bad_config_file_at_start_names_its_line_and_nothing_starts() {
    let (_dir, file) = with_file("server.toml", "port = 0\nworkers = 999\n");
    let err = refused(&["--bind", "127.0.0.1", "--config", arg(&file)]);
    assert!(err.contains("line 2") && err.contains("workers"), "{err}");
    assert!(!err.contains("listening"), "{err}");
}

#[test]
fn flags_win_over_the_config_file() {
    let (dir, file) = with_file("server.toml", "history = 5\nmax-users = 1\n");
    let server = start(dir.path(), &["--config", arg(&file), "--max-users", "2"]);
    // max-users 2 from the command line, not 1 from the file.
    Peer::to(server.addr).login("ann");
    Peer::to(server.addr).login("bob");
    let p = Peer::to(server.addr);
    let (answer, _) = p.retry_until_answered(&Request::Login { nick: "cid" }.to_bytes());
    assert_eq!(answer, (code::ERROR, "server full; try again later".into()));
}
