//! Helpers for the load tester's tests (`tests/load_*.rs`): an in-process server with what
//! the load tester expects of one, and its binaries (`load-tester`, `soak`) run on a
//! command line with their JSON report parsed.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use load_tester::report::Report;
use serde::de::DeserializeOwned;
use udpchat::config::ChannelSpec;
use udpchat::server::{RunningServer, ServerConfig};

/// The load tester's channels `lt0` .. `lt<n-1>`, as `load-tester --print-channels n`
/// writes them.
pub fn channels(n: usize) -> Vec<ChannelSpec> {
    (0..n)
        .map(|c| ChannelSpec {
            title: format!("lt{c}"),
            description: format!("test channel {c}"),
            multicast: true,
        })
        .collect()
}

/// A server on a free loopback port with its metrics page on another, configured further
/// by `f`.
pub fn server(f: impl FnOnce(&mut ServerConfig)) -> RunningServer {
    super::server_with(|cfg| {
        cfg.metrics = Some("127.0.0.1:0".parse().unwrap());
        f(cfg);
    })
}

/// The flags that point a mode at `server` and at its own figures: `--server`,
/// `--server-pid` (the server runs in this process) and `--metrics`.
pub fn watching(server: &RunningServer) -> String {
    let metrics = server.metrics_addr().expect("the server's metrics address");
    format!(
        "--server {} --server-pid {} --metrics {metrics}",
        server.addr(),
        std::process::id()
    )
}

/// The workspace's binary `name` with the flags of `line`, split at white space.
pub fn command(name: &str, line: &str) -> Command {
    let mut cmd = Command::new(super::bin(name));
    cmd.args(line.split_whitespace());
    cmd
}

/// A fan-out run of `load-tester` against `servers` (one `--server` each), its report as
/// JSON and no progress line, with the flags of `line`.
pub fn fan_out(servers: &[&RunningServer], line: &str) -> Command {
    let mut cmd = command("load-tester", "--json --quiet");
    for s in servers {
        cmd.args(["--server", &s.addr().to_string()]);
    }
    cmd.args(line.split_whitespace());
    cmd
}

/// The report of a fan-out run against `server` with the flags of `line`.
pub fn run(server: &RunningServer, line: &str) -> Report {
    report(&mut fan_out(&[server], line))
}

/// Runs `cmd` to its end; fails the test, with what it printed, if it fails.
pub fn succeed(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run the load tester");
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    out
}

/// What `cmd` said on stderr, once it failed.
pub fn fail(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run the load tester");
    assert!(!out.status.success(), "{cmd:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// What `cmd` printed on stdout, once it succeeded.
pub fn stdout(cmd: &mut Command) -> String {
    String::from_utf8(succeed(cmd).stdout).expect("UTF-8 output")
}

/// The JSON report `cmd` printed, once it succeeded.
pub fn report<R: DeserializeOwned>(cmd: &mut Command) -> R {
    let out = succeed(cmd);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Whether `cond` comes true within `within`, asked every 10 ms.
pub fn eventually(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while !cond() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

/// A fan-out run of `clients` went through: every one of them logged in and joined, and
/// every message reached the `members` members of its channel.
#[track_caller]
pub fn assert_everyone_served(r: &Report, clients: usize, members: u64) {
    assert_eq!(r.login.done, clients);
    assert_eq!(r.join.done, clients);
    assert_every_delivery(r, members);
}

/// Every message a fan-out run sent reached the `members` members of its channel.
#[track_caller]
pub fn assert_every_delivery(r: &Report, members: u64) {
    assert!(r.messages_sent > 0, "nothing was sent");
    assert_eq!(r.deliveries_expected, r.messages_sent * members);
    assert_eq!(r.deliveries_received, r.deliveries_expected);
}
