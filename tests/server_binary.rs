//! The `chat-server` binary as an operator meets it: flags, the channels file, the start-up
//! line, and a clean exit on SIGTERM.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Peer;
use udpchat::protocol::{code, Request};

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
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
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
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
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
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
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
