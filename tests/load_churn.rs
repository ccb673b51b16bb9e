//! A short `load-tester churn` against an in-process server: channels are created, used and
//! destroyed while others chat, and none is left behind. Memory is sampled but not judged
//! here (a test process's RSS says little); docs/ROBUSTNESS.md has the measured runs.

mod common;

use std::process::Command;

use load_tester::churn::ChurnReport;
use udpchat::server::{Server, ServerConfig};

#[test]
fn channels_come_and_go_while_others_chat_and_none_is_left() {
    let server = Server::bind(ServerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        metrics: Some("127.0.0.1:0".parse().unwrap()),
        ..ServerConfig::default()
    })
    .expect("bind server")
    .spawn();
    let out = Command::new(common::bin("load-tester"))
        .args(["churn", "--server", &server.addr().to_string()])
        .args(["--metrics", &server.metrics_addr().unwrap().to_string()])
        .args(["--server-pid", &std::process::id().to_string()])
        .args(["--duration", "2", "--rate", "40", "--creators", "2"])
        .args(["--chatters", "3", "--sample", "0.5", "--json"])
        .output()
        .expect("run load-tester churn");
    let report: ChurnReport = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}); status {}, stderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(out.status.success(), "{report:#?}");
    assert_eq!(report.failures, 0, "{report:#?}");
    assert!(report.channels_created >= 10, "{report:#?}");
    assert!(
        report.chat_sent > 0 && report.chat_received > 0,
        "{report:#?}"
    );
    // Every created channel was destroyed with its last member: the count is back.
    assert_eq!(report.channels_before, Some(5), "{report:#?}");
    assert_eq!(report.channels_after, Some(5), "{report:#?}");
    assert!(report.rss_kib.len() >= 2, "{report:#?}");
    server.state().check_invariants().unwrap();
}
