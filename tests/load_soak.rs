//! A short run of the soak driver against an in-process server with a short idle timeout:
//! clients move, log off and vanish; none that departed gets a delivery, and every
//! vanished one is gone once the idle timeout and two sweeps have passed.

mod common;

use std::process::Command;
use std::time::Duration;

use load_tester::soak::SoakReport;
use udpchat::config::ChannelSpec;
use udpchat::server::{Server, ServerConfig};

#[test]
fn departed_clients_get_nothing_and_vanished_ones_are_swept() {
    let cfg = ServerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        channels: (0..4)
            .map(|c| ChannelSpec {
                title: format!("lt{c}"),
                description: format!("soak test channel {c}"),
                multicast: true,
            })
            .collect(),
        idle_timeout: Duration::from_secs(2),
        check_interval: Duration::from_millis(500),
        metrics: Some("127.0.0.1:0".parse().unwrap()),
        ..ServerConfig::default()
    };
    let server = Server::bind(cfg).expect("bind server").spawn();
    let metrics = server.metrics_addr().expect("metrics address");
    let out = Command::new(common::bin("soak"))
        .args(["--server", &server.addr().to_string()])
        .args(["--server-pid", &std::process::id().to_string()])
        .args(["--metrics", &metrics.to_string()])
        .args(["--duration", "6", "--clients", "100", "--channels", "4"])
        .args([
            "--rate", "50", "--churn", "5", "--moves", "5", "--sample", "2",
        ])
        .args([
            "--idle-timeout",
            "2",
            "--check-interval",
            "0.5",
            "--linger",
            "1",
        ])
        .args(["--json", "--quiet"])
        .output()
        .expect("run soak");
    let report: SoakReport = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(out.status.success(), "soak failed: {report:?}");
    assert!(report.clean);
    assert_eq!(report.departed_delivered, 0);
    assert_eq!(report.parted_delivered, 0);
    assert_eq!(report.departed_other, 0);
    // About 15 of each kind of departure in 6 s; at least a few of each must have happened.
    assert!(report.logged_off >= 5, "{report:?}");
    assert!(report.vanished >= 5, "{report:?}");
    assert_eq!(report.vanished_checked, report.vanished);
    assert_eq!(report.vanished_still_there, 0);
    assert!(report.moves_done >= 5, "{report:?}");
    assert!(report.messages_sent >= 250, "{report:?}");
    assert!(report.deliveries_received > 0);
    assert!(report.samples.len() >= 3);
    assert!(report
        .samples
        .iter()
        .all(|s| s.rss_kib.is_some() && s.threads.is_some()));
    // Every client logged off at the end: the server holds nobody.
    assert_eq!(report.users_after_logoff, Some(0));
    server.shutdown().unwrap();
}
