//! The `chat-server` binary as an operator meets it: flags, the channels file, the start-up
//! line, and a clean exit on SIGTERM.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Peer;
use proto::{code, Request};

const BIN: &str = env!("CARGO_BIN_EXE_chat-server");

/// Starts the binary on a free loopback port and returns it with the address it logged.
fn start(
    data: &std::path::Path,
    extra: &[&str],
) -> (Child, SocketAddr, BufReader<std::process::ChildStderr>) {
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
    (child, addr, err)
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("server did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_stops_the_server_with_status_zero() {
    let data = tempfile::tempdir().unwrap();
    let (mut child, addr, _err) = start(data.path(), &[]);
    let p = Peer::to(addr);
    p.login("ann");
    common::signal(child.id(), common::Signal::SIGTERM);
    assert!(wait_exit(&mut child, Duration::from_secs(5)).success());
}

#[test]
fn channels_file_replaces_the_classic_channels() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("channels.toml");
    std::fs::write(
        &file,
        "[[channel]]\ntitle = \"Rust\"\ndescription = \"All things Rust\"\n\n\
         [[channel]]\ntitle = \"Zig\"\ndescription = \"Comptime chat\"\n",
    )
    .unwrap();
    let (mut child, addr, _err) = start(dir.path(), &["--channels", file.to_str().unwrap()]);
    let p = Peer::to(addr);
    p.login("ann");
    p.send(Request::ListChannels);
    p.expect(code::CHANNEL_ITEM, "Rust 0 All things Rust");
    p.expect(code::CHANNEL_ITEM, "Zig 0 Comptime chat");
    p.send(Request::Join { title: "pets" });
    p.expect_error("no channel named pets");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn a_bad_channels_file_is_an_error_naming_the_line_and_nothing_starts() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("channels.toml");
    std::fs::write(
        &file,
        "[[channel]]\ntitle = \"Fine\"\ndescription = \"ok\"\n[[channel]]\ntitle = \"not fine\"\ndescription = \"x\"\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["--bind", "127.0.0.1", "--port", "0", "--channels"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 5"), "{err}");
    assert!(!err.contains("listening"), "{err}");

    let missing = Command::new(BIN)
        .args(["--port", "0", "--channels", "/nonexistent/channels.toml"])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read channels file"));
}

#[test]
fn help_explains_every_flag() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
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
    let out = Command::new(BIN).arg("--help").output().unwrap();
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
        let out = Command::new(BIN).args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?} accepted");
    }
}

#[test]
fn a_fresh_data_folder_is_private_and_an_open_one_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let data = parent.path().join("data");
    // A fresh start makes the folder 0700 and the database 0600.
    let (mut child, _addr, _err) = start(parent.path(), &[]);
    common::signal(child.id(), common::Signal::SIGTERM);
    assert!(wait_exit(&mut child, Duration::from_secs(5)).success());
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("accounts.sqlite3")), 0o600);
    // Opened to others, it is refused with a clear error.
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new(BIN)
        .args(["--bind", "127.0.0.1", "--port", "0", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
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
    let out = Command::new(BIN)
        .args(["--bind", "127.0.0.1", "--port", "0", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("setup is missing while 1 accounts exist"),
        "{err}"
    );
}

/// Forwards the server's log lines to a channel, so a test can wait for one with a
/// timeout.
fn log_lines(err: BufReader<std::process::ChildStderr>) -> crossbeam_channel::Receiver<String> {
    let (tx, rx) = crossbeam_channel::unbounded();
    std::thread::spawn(move || {
        for line in err.lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for a log line containing `what`; returns it.
#[track_caller]
fn wait_log(lines: &crossbeam_channel::Receiver<String>, what: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match lines.recv_deadline(deadline) {
            Ok(line) if line.contains(what) => return line,
            Ok(_) => {}
            Err(_) => panic!("no log line with {what:?}"),
        }
    }
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
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("server.toml");
    std::fs::write(&file, CONFIG).unwrap();
    let (mut child, addr, _err) = start(dir.path(), &["--config", file.to_str().unwrap()]);
    let p = Peer::to(addr);
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
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn sighup_reloads_the_config_without_dropping_anyone_and_a_bad_file_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("server.toml");
    std::fs::write(&file, CONFIG).unwrap();
    let (mut child, addr, err) = start(dir.path(), &["--config", file.to_str().unwrap()]);
    let log = log_lines(err);
    let ann = Peer::to(addr);
    ann.login("ann");
    ann.join("Lobby");
    let hup = || {
        common::signal(child.id(), common::Signal::SIGHUP);
    };

    // A good file: a new channel, a new description, a new message of the day.
    std::fs::write(
        &file,
        CONFIG
            .replace("Say hello", "Say hi")
            .replace("Be kind.", "Be very kind.")
            + "\n[[channel]]\ntitle = \"Garden\"\ndescription = \"Plants\"\n",
    )
    .unwrap();
    hup();
    let line = wait_log(&log, "configuration reloaded");
    assert!(line.contains("channel Garden added"), "{line}");
    assert!(line.contains("motd changed"), "{line}");
    ann.send(Request::ListChannels);
    ann.expect(code::CHANNEL_ITEM, "Lobby 1 Say hi");
    ann.expect(code::CHANNEL_ITEM, "Garden 0 Plants");
    // Nobody was dropped: ann is still in Lobby.
    ann.send(Request::ListUsers);
    let (c, item) = ann.recv();
    assert_eq!(c, code::USER_ITEM);
    assert!(
        item.starts_with("ann ") && item.ends_with(" Lobby"),
        "{item}"
    );
    ann.send(Request::Hello { client: "test" });
    ann.expect(code::MOTD, "Welcome to the test server.");
    ann.expect(code::MOTD, "Be very kind.");
    assert_eq!(ann.recv().0, code::HELLO_ACK);

    // A bad file: reported with its line; the old configuration stays.
    std::fs::write(
        &file,
        "max-users = 50\nhistory = 20\nmax-users = \"many\"\n",
    )
    .unwrap();
    hup();
    let line = wait_log(&log, "not reloaded");
    assert!(line.contains("line 3"), "{line}");
    std::fs::write(
        &file,
        "history = 20\n\n[[channel]]\ntitle = \"two words\"\ndescription = \"\"\n",
    )
    .unwrap();
    hup();
    let line = wait_log(&log, "not reloaded");
    assert!(line.contains("line 4"), "{line}");
    ann.send(Request::ListChannels);
    ann.expect(code::CHANNEL_ITEM, "Lobby 1 Say hi");
    ann.expect(code::CHANNEL_ITEM, "Garden 0 Plants");
    ann.expect_nothing();
    assert!(
        child.try_wait().unwrap().is_none(),
        "SIGHUP stopped the server"
    );
    common::signal(child.id(), common::Signal::SIGTERM);
    assert!(wait_exit(&mut child, Duration::from_secs(5)).success());
}

#[test]
fn sighup_without_a_config_file_does_not_stop_the_server() {
    let data = tempfile::tempdir().unwrap();
    let (mut child, addr, err) = start(data.path(), &[]);
    let log = log_lines(err);
    common::signal(child.id(), common::Signal::SIGHUP);
    wait_log(&log, "configuration reloaded");
    let p = Peer::to(addr);
    p.login("ann");
    assert!(child.try_wait().unwrap().is_none());
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn a_bad_config_file_at_start_names_its_line_and_nothing_starts() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("server.toml");
    std::fs::write(&file, "port = 0\nworkers = 999\n").unwrap();
    let out = Command::new(BIN)
        .args(["--bind", "127.0.0.1", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 2") && err.contains("workers"), "{err}");
    assert!(!err.contains("listening"), "{err}");
}

#[test]
fn flags_win_over_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("server.toml");
    std::fs::write(&file, "history = 5\nmax-users = 1\n").unwrap();
    let (mut child, addr, _err) = start(
        dir.path(),
        &["--config", file.to_str().unwrap(), "--max-users", "2"],
    );
    // max-users 2 from the command line, not 1 from the file.
    Peer::to(addr).login("ann");
    Peer::to(addr).login("bob");
    let p = Peer::to(addr);
    let (answer, _) = p.retry_until_answered(&Request::Login { nick: "cid" }.to_bytes());
    assert_eq!(answer, (code::ERROR, "server full; try again later".into()));
    child.kill().unwrap();
    child.wait().unwrap();
}
