//! The `chat-server` binary as an operator meets it: flags, the channels file, the
//! configuration file and its reload on SIGHUP, the start-up line, and a clean exit on
//! SIGTERM.

mod common;

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Peer, Signal};
use crossbeam_channel::Receiver;
use proto::{code, Request};

const BIN: &str = env!("CARGO_BIN_EXE_chat-server");

/// The binary running on a free loopback port, its log lines read by a thread of their
/// own so that a test can wait for one with a timeout. Killed when dropped.
struct Running {
    child: Child,
    addr: SocketAddr,
    log: Receiver<String>,
}

impl Running {
    /// Starts the binary with its data in `dir` and `extra` flags; returns once its first
    /// line, which must say where it listens, is logged.
    fn start(dir: &Path, extra: &[&str]) -> Running {
        let mut child = Command::new(BIN)
            .args(["--bind", "127.0.0.1", "--port", "0", "--data"])
            .arg(dir.join("data"))
            .args(extra)
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let err = BufReader::new(child.stderr.take().unwrap());
        let (tx, log) = crossbeam_channel::unbounded();
        std::thread::spawn(move || {
            for line in err.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let line = log
            .recv_timeout(Duration::from_secs(10))
            .expect("a start-up line");
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
        Running { child, addr, log }
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

    fn signal(&self, signal: Signal) {
        common::signal(self.child.id(), signal);
    }

    fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// SIGTERM; the server must exit with status 0 within a few seconds.
    fn stop(mut self) {
        self.signal(Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.is_running() {
            assert!(Instant::now() < deadline, "server did not exit on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(self.child.wait().unwrap().success());
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the binary with `args` to its end; asserts that it failed without starting, and
/// returns what it said on standard error.
#[track_caller]
fn refused(args: impl IntoIterator<Item = impl AsRef<OsStr>>) -> String {
    let out = Command::new(BIN).args(args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{err}");
    assert!(!err.contains("listening"), "{err}");
    err
}

/// `chat-server --help`.
fn help() -> String {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A folder holding `name` with `text` in it; returns the folder and the file's path.
fn file_in_dir(name: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(name);
    std::fs::write(&file, text).unwrap();
    (dir, file)
}

/// `path` as a flag's value.
fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn sigterm_stops_the_server_with_status_zero() {
    let data = tempfile::tempdir().unwrap();
    let server = Running::start(data.path(), &[]);
    Peer::to(server.addr).login("ann");
    server.stop();
}

#[test]
fn channels_file_replaces_the_classic_channels() {
    let (dir, file) = file_in_dir(
        "channels.toml",
        "[[channel]]\ntitle = \"Rust\"\ndescription = \"All things Rust\"\n\n\
         [[channel]]\ntitle = \"Zig\"\ndescription = \"Comptime chat\"\n",
    );
    let server = Running::start(dir.path(), &["--channels", arg(&file)]);
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
    let (_dir, file) = file_in_dir(
        "channels.toml",
        "[[channel]]\ntitle = \"Fine\"\ndescription = \"ok\"\n[[channel]]\ntitle = \"not fine\"\ndescription = \"x\"\n",
    );
    let err = refused([
        "--bind",
        "127.0.0.1",
        "--port",
        "0",
        "--channels",
        arg(&file),
    ]);
    assert!(err.contains("line 5"), "{err}");
    let err = refused(["--port", "0", "--channels", "/nonexistent/channels.toml"]);
    assert!(err.contains("cannot read channels file"), "{err}");
}

#[test]
fn help_explains_every_flag() {
    let help = help();
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
    let help = help();
    let flags: Vec<&str> = help
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("--"))
        .filter_map(|l| l.split([' ', '=', ',']).next())
        .filter(|f| !["config", "help", "version"].contains(f))
        .collect();
    assert!(flags.len() > 20, "{help}");
    let path = Path::new("server.toml");
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
    Running::start(parent.path(), &[]).stop();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("accounts.sqlite3")), 0o600);
    // Opened to others, it is refused with a clear error.
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let err = refused(["--bind", "127.0.0.1", "--port", "0", "--data", arg(&data)]);
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
            })
            .unwrap();
    }
    let err = refused(["--bind", "127.0.0.1", "--port", "0", "--data", arg(&data)]);
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

/// The server started with the configuration file `text`; returns the file's folder, the
/// file and the server.
fn with_config(text: &str, extra: &[&str]) -> (tempfile::TempDir, PathBuf, Running) {
    let (dir, file) = file_in_dir("server.toml", text);
    let args: Vec<&str> = ["--config", arg(&file)]
        .into_iter()
        .chain(extra.iter().copied())
        .collect();
    let server = Running::start(dir.path(), &args);
    (dir, file, server)
}

#[test]
fn a_config_file_sets_flags_channels_and_the_message_of_the_day() {
    let (_dir, _file, server) = with_config(CONFIG, &[]);
    let p = Peer::to(server.addr);
    p.login("ann");
    p.send(Request::ListChannels);
    p.expect(code::CHANNEL_ITEM, "Lobby 0 Say hello");
    p.expect_nothing();
    p.send(Request::Hello { client: "test" });
    p.expect(code::MOTD, "Welcome to the test server.");
    p.expect(code::MOTD, "Be kind.");
    let (c, ack) = p.recv();
    assert_eq!(c, code::HELLO_ACK);
    assert!(ack.starts_with("20 "), "{ack}");
}

/// `ann` lists the channels and sees `items`, and nothing more.
fn lists(ann: &Peer, items: &[&str]) {
    ann.send(Request::ListChannels);
    for item in items {
        ann.expect(code::CHANNEL_ITEM, item);
    }
    ann.expect_nothing();
}

#[test]
fn sighup_reloads_the_config_without_dropping_anyone_and_a_bad_file_changes_nothing() {
    let (_dir, file, mut server) = with_config(CONFIG, &[]);
    let ann = Peer::to(server.addr);
    ann.login("ann");
    ann.join("Lobby");

    // A good file: a new channel, a new description, a new message of the day.
    std::fs::write(
        &file,
        CONFIG
            .replace("Say hello", "Say hi")
            .replace("Be kind.", "Be very kind.")
            + "\n[[channel]]\ntitle = \"Garden\"\ndescription = \"Plants\"\n",
    )
    .unwrap();
    server.signal(Signal::SIGHUP);
    let line = server.wait_log("configuration reloaded");
    assert!(line.contains("channel Garden added"), "{line}");
    assert!(line.contains("motd changed"), "{line}");
    lists(&ann, &["Lobby 1 Say hi", "Garden 0 Plants"]);
    // Nobody was dropped: ann is still in Lobby.
    ann.send(Request::ListUsers);
    let (c, item) = ann.recv();
    let in_lobby = item.starts_with("ann ") && item.ends_with(" Lobby");
    assert!(c == code::USER_ITEM && in_lobby, "{c} {item}");
    ann.send(Request::Hello { client: "test" });
    ann.expect(code::MOTD, "Welcome to the test server.");
    ann.expect(code::MOTD, "Be very kind.");
    assert_eq!(ann.recv().0, code::HELLO_ACK);

    // A bad file: reported with its line; the old configuration stays.
    for (bad, at) in [
        (
            "max-users = 50\nhistory = 20\nmax-users = \"many\"\n",
            "line 3",
        ),
        (
            "history = 20\n\n[[channel]]\ntitle = \"two words\"\ndescription = \"\"\n",
            "line 4",
        ),
    ] {
        std::fs::write(&file, bad).unwrap();
        server.signal(Signal::SIGHUP);
        let line = server.wait_log("not reloaded");
        assert!(line.contains(at), "{line}");
    }
    lists(&ann, &["Lobby 1 Say hi", "Garden 0 Plants"]);
    assert!(server.is_running(), "SIGHUP stopped the server");
    server.stop();
}

#[test]
fn sighup_applies_limits_at_once_and_warns_of_settings_that_wait_for_a_restart() {
    let (_dir, file, server) = with_config("max-users = 1\nworkers = 2\n", &[]);
    Peer::to(server.addr).login("ann");
    std::fs::write(&file, "max-users = 2\nworkers = 3\nhistory = 7\n").unwrap();
    server.signal(Signal::SIGHUP);
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
    let mut server = Running::start(data.path(), &[]);
    server.signal(Signal::SIGHUP);
    server.wait_log("configuration reloaded");
    Peer::to(server.addr).login("ann");
    assert!(server.is_running());
}

#[test]
fn a_bad_config_file_at_start_names_its_line_and_nothing_starts() {
    let (_dir, file) = file_in_dir("server.toml", "port = 0\nworkers = 999\n");
    let err = refused(["--bind", "127.0.0.1", "--config", arg(&file)]);
    assert!(err.contains("line 2") && err.contains("workers"), "{err}");
}

#[test]
fn flags_win_over_the_config_file() {
    let (_dir, _file, server) = with_config("history = 5\nmax-users = 1\n", &["--max-users", "2"]);
    // max-users 2 from the command line, not 1 from the file.
    Peer::to(server.addr).login("ann");
    Peer::to(server.addr).login("bob");
    let p = Peer::to(server.addr);
    let (answer, _) = p.retry_until_answered(&Request::Login { nick: "cid" }.to_bytes());
    assert_eq!(answer, (code::ERROR, "server full; try again later".into()));
}
