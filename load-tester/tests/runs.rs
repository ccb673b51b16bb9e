//! Small runs of the load-tester binary against an in-process server: every expected
//! delivery arrives on loopback at a modest rate, and the JSON output parses. No timing is
//! asserted.

use std::process::Command;

use load_tester::report::Report;
use udpchat::config::ChannelSpec;
use udpchat::server::{RunningServer, Server, ServerConfig};

fn server(channels: usize) -> RunningServer {
    let cfg = ServerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        channels: (0..channels)
            .map(|c| ChannelSpec {
                title: format!("lt{c}"),
                description: format!("test channel {c}"),
            })
            .collect(),
        ..ServerConfig::default()
    };
    Server::bind(cfg).expect("bind server").spawn()
}

fn load_tester(server: &RunningServer, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_load-tester"))
        .args(["--server", &server.addr().to_string(), "--json", "--quiet"])
        .args(args)
        .output()
        .expect("run load-tester");
    assert!(
        out.status.success(),
        "load-tester failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

#[test]
fn every_delivery_arrives_at_a_modest_rate() {
    let server = server(2);
    let out = load_tester(
        &server,
        &[
            "--clients",
            "50",
            "--channels",
            "2",
            "--publishers",
            "2",
            "--rate",
            "20",
            "--duration",
            "2",
            "--raw",
            "--raw-duration",
            "0.5",
        ],
    );
    let r: Report = serde_json::from_str(&out).expect("JSON report");
    assert_eq!(r.login.done, 50);
    assert_eq!(r.join.done, 50);
    assert!(r.messages_sent >= 70, "sent only {}", r.messages_sent);
    // Two channels of 25 members each.
    assert_eq!(r.deliveries_expected, r.messages_sent * 25);
    assert_eq!(r.deliveries_received, r.deliveries_expected);
    assert_eq!(r.latency_us.count, r.deliveries_received);
    let raw = r.raw.expect("raw figures");
    assert!(raw.sent > 0 && raw.received > 0);
    server.shutdown().unwrap();
}

#[test]
fn spreads_over_processes_and_merges_their_results() {
    let server = server(1);
    let out = load_tester(
        &server,
        &[
            "--clients",
            "60",
            "--max-per-process",
            "25",
            "--publishers",
            "1",
            "--rate",
            "20",
            "--duration",
            "1",
        ],
    );
    let r: Report = serde_json::from_str(&out).expect("JSON report");
    assert_eq!(r.processes, 3);
    assert_eq!(r.login.done, 60);
    assert_eq!(r.join.done, 60);
    assert!(r.messages_sent > 0);
    assert_eq!(r.deliveries_expected, r.messages_sent * 60);
    assert_eq!(r.deliveries_received, r.deliveries_expected);
    server.shutdown().unwrap();
}

#[test]
fn sweep_draws_a_chart() {
    let server = server(2);
    let dir = std::env::temp_dir().join(format!("lt-chart-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let chart = dir.join("fanout.svg");
    let out = load_tester(
        &server,
        &[
            "--sweep",
            "10,30",
            "--rate",
            "20",
            "--duration",
            "0.5",
            "--raw",
            "--chart",
            chart.to_str().unwrap(),
        ],
    );
    let reports: Vec<Report> = serde_json::from_str(&out).expect("JSON reports");
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[1].channel_size, 30);
    for r in &reports {
        assert_eq!(r.deliveries_received, r.deliveries_expected);
    }
    let svg = std::fs::read_to_string(&chart).unwrap();
    assert!(svg.contains("<svg"));
    std::fs::remove_dir_all(&dir).unwrap();
    server.shutdown().unwrap();
}

#[test]
fn refuses_addresses_outside_loopback() {
    let out = Command::new(env!("CARGO_BIN_EXE_load-tester"))
        .args(["--server", "192.0.2.1:2027", "--quiet"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"));
}
