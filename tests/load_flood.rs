//! Short runs of `load-tester flood` against an in-process server: a few thousand distinct
//! source addresses, one socket choosing the source per datagram, while the steady user
//! keeps talking. The server must see every source as its own address, and the user must
//! be answered throughout. Rates are modest (the server is an unoptimised build sharing two
//! cores with the test), and no timing is asserted.

mod common;

use common::load;
use load_tester::flood::FloodReport;
use udpchat::server::RunningServer;

/// Runs the flood with the flags of `line` against `server` and returns its JSON report.
fn flood(server: &RunningServer, line: &str) -> FloodReport {
    let line = format!(
        "flood {} --before 0.3 --after 1 --json --quiet {line}",
        load::watching(server)
    );
    load::report(&mut load::command("load-tester", &line))
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
    let server = load::server(|_| {});
    let n = 3000;
    let r = flood(
        &server,
        &format!("--addresses {n} --rate 3000 --kind login"),
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
    let server = load::server(|_| {});
    let r = flood(
        &server,
        "--addresses 2000 --rate 2000 --duration 1.5 --kind join",
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
