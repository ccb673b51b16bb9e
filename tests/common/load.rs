//! Helpers for the load tester's tests (`tests/load_*.rs`): an in-process server with what
//! the load tester expects of one, and its binaries (`load-tester`, `soak`) run on a
//! command line with their JSON report parsed.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use load_tester::report::{Latency, MulticastReport, Report};
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

/// A fan-out run against `server` with the flags of `line`: its report, and the server
/// handed back for the test to look at and shut down.
pub fn run(server: RunningServer, line: &str) -> (RunningServer, Report) {
    let r = report(&mut fan_out(&[&server], line));
    (server, r)
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

/// Every datagram of a `--batch` run carried deliveries, and batches made them fewer than
/// the deliveries (or as many, with one event each).
#[track_caller]
pub fn assert_batched(r: &Report) {
    assert!(r.datagrams_received > 0 && r.datagrams_received <= r.deliveries_received);
}

/// The latencies of a `--mixed` run's two kinds of members, those that asked for batches
/// and the classic ones, which together cover every delivery.
#[track_caller]
pub fn mixed_latencies(r: &Report) -> (Latency, Latency) {
    let b = r.latency_batch_us.expect("the batch members' latency");
    let c = r.latency_classic_us.expect("the classic members' latency");
    assert_eq!(b.count + c.count, r.deliveries_received);
    (b, c)
}

/// All `members` multicast members were told their channel's group and confirmed it, and
/// no group datagram was refused nor a group socket missing.
#[track_caller]
pub fn assert_groups_confirmed(m: &MulticastReport, members: usize) {
    assert_eq!(
        (m.members, m.told, m.confirmed),
        (members, members, members)
    );
    assert_eq!(
        (m.heard.bad_tag, m.heard.old_sequence, m.heard.group_errors),
        (0, 0, 0)
    );
}
