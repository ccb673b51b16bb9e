//! Short runs of `load-tester flood` against an in-process server: a few thousand distinct
//! source addresses, one socket choosing the source per datagram, while the steady user
//! keeps talking. The server must see every source as its own address, and the user must
//! be answered throughout. Rates are modest (the server is an unoptimised build sharing two
//! cores with the test), and no timing is asserted.

mod common;

use std::process::Command;

use load_tester::flood::FloodReport;
use udpchat::server::{RunningServer, Server, ServerConfig};

fn server() -> RunningServer {
    let cfg = ServerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        metrics: Some("127.0.0.1:0".parse().unwrap()),
        ..ServerConfig::default()
    };
    Server::bind(cfg).expect("bind server").spawn()
}

/// Runs the flood with `extra` flags against `server` and returns its JSON report.
fn flood(server: &RunningServer, extra: &[&str]) -> FloodReport {
    let out = Command::new(common::bin("load-tester"))
        .args(["flood", "--server", &server.addr().to_string()])
        .args(["--server-pid", &std::process::id().to_string()])
        .args(["--metrics", &server.metrics_addr().unwrap().to_string()])
        .args(["--before", "0.3", "--after", "1", "--json", "--quiet"])
        .args(extra)
        .output()
        .expect("run load-tester flood");
    let report: FloodReport = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}); status {}, stderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(out.status.success(), "flood failed: {report:#?}");
    report
}

fn assert_steady_user_served(r: &FloodReport) {
    let st = &r.steady;
    assert!(st.served, "{r:#?}");
    assert_eq!(st.errors, 0, "{r:#?}");
    // A message every 10 ms for about a second of flood: most must have come back.
    assert!(st.during.sent >= 30, "{r:#?}");
    assert!(st.during.answered * 10 >= st.during.sent * 9, "{r:#?}");
    assert!(st.after.answered * 10 >= st.after.sent * 9, "{r:#?}");
    assert!(st.during.p50_us > 0 && st.during.max_us >= st.during.p99_us);
}

#[test]
fn a_login_flood_from_thousands_of_addresses_logs_each_in_and_the_steady_user_is_served() {
    let server = server();
    let n = 3000;
    let r = flood(
        &server,
        &[
            "--addresses",
            &n.to_string(),
            "--rate",
            "3000",
            "--kind",
            "login",
        ],
    );
    assert_eq!(r.sent, n);
    assert_eq!(r.refused, 0);
    // Every LOGIN_ACK names the nickname sent from one address, and the server keys its
    // users by source address: these are distinct sources it took for users of their own.
    assert!(r.replies.distinct_logged_in >= n * 9 / 10, "{r:#?}");
    let counts = r.server_counts.as_ref().expect("metrics were scraped");
    assert!(counts.users_after >= n * 9 / 10, "{r:#?}");
    assert!(counts.datagrams_received >= n, "{r:#?}");
    assert!(server.stats().datagrams_in >= n);
    let cost = r
        .server_cost
        .as_ref()
        .expect("server CPU and memory were read");
    assert!(cost.cpu_ns_per_datagram > 0.0 && cost.rss_before_kib > 0);
    assert_steady_user_served(&r);
    server.shutdown().unwrap();
}

#[test]
fn a_junk_flood_from_strangers_is_read_and_the_steady_user_is_served() {
    let server = server();
    let r = flood(
        &server,
        &[
            "--addresses",
            "2000",
            "--rate",
            "2000",
            "--duration",
            "1.5",
            "--kind",
            "join",
        ],
    );
    // At 2,000/s for 1.5 s the addresses are gone through one and a half times.
    assert!(r.sent >= 2500 && r.passes > 1.0, "{r:#?}");
    let counts = r.server_counts.as_ref().expect("metrics were scraped");
    assert!(counts.datagrams_received >= 2500, "{r:#?}");
    // Strangers are never logged in, and get no more bytes back than they sent.
    assert_eq!(r.replies.login_acks, 0);
    assert_eq!(counts.users_after, counts.users_before, "{r:#?}");
    assert!(counts.replies_withheld > 0, "{r:#?}");
    assert_steady_user_served(&r);
    server.shutdown().unwrap();
}
