//! Small runs of the load-tester binary against in-process servers (one, or two joined by a
//! real `redis-server`): every expected delivery arrives on loopback at a modest rate, with
//! batch clients, mixed channels, a paced raw blaster and a Redis PUBLISH comparison too,
//! and the JSON output parses. No timing is asserted.

mod common;

use std::time::Duration;

use common::load::{self, assert_everyone_served};
use common::services::Redis;
use load_tester::report::Report;
use udpchat::cluster::ClusterConfig;
use udpchat::server::RunningServer;

/// A server with `channels` load-test channels.
fn server(channels: usize) -> RunningServer {
    load::server(|cfg| cfg.channels = load::channels(channels))
}

/// A server with one load-test channel, joined to the cluster of `redis` as `id`.
fn clustered(redis: &Redis, id: &str) -> RunningServer {
    let s = load::server(|cfg| {
        cfg.channels = load::channels(1);
        cfg.cluster = Some(ClusterConfig::new(
            redis.url(),
            id,
            b"load tester cluster secret ....",
        ));
    });
    let c = s.cluster().expect("a cluster").clone();
    assert!(
        load::eventually(Duration::from_secs(15), || c.is_connected()),
        "server did not reach Redis"
    );
    s
}

/// A run of `clients` in one channel of a fresh server, with the flags of `line`: every
/// client was served. The server is handed back with the report.
#[track_caller]
fn one_channel(clients: usize, line: &str) -> (RunningServer, Report) {
    let (server, r) = load::run(server(1), &format!("--clients {clients} {line}"));
    assert_everyone_served(&r, clients, clients as u64);
    (server, r)
}

#[test]
fn every_delivery_arrives_at_a_modest_rate() {
    let (server, r) = load::run(
        server(2),
        "--clients 50 --channels 2 --publishers 2 --rate 20 --duration 2 --raw --raw-duration 0.5",
    );
    assert!(r.messages_sent >= 70, "sent only {}", r.messages_sent);
    // Two channels of 25 members each.
    assert_everyone_served(&r, 50, 25);
    assert_eq!(r.latency_us.count, r.deliveries_received);
    let raw = r.raw.expect("raw figures");
    assert!(raw.sent > 0 && raw.received > 0);
    server.shutdown().unwrap();
}

#[test]
fn protected_members_get_every_delivery_sealed() {
    // Half the members only count a delivery they could open with their session.
    let (server, r) = one_channel(12, "--protected 6 --publishers 1 --rate 20 --duration 1");
    assert_eq!(r.protected, 6);
    assert_eq!(
        server.state().sealers().len(),
        0,
        "all logged off at the end"
    );
    server.shutdown().unwrap();
}

#[test]
fn spreads_over_processes_and_merges_their_results() {
    let (server, r) = one_channel(
        60,
        "--max-per-process 25 --publishers 1 --rate 20 --duration 1",
    );
    assert_eq!(r.processes, 3);
    server.shutdown().unwrap();
}

#[test]
fn sweep_draws_a_chart() {
    let server = server(2);
    let dir = tempfile::tempdir().unwrap();
    let chart = dir.path().join("fanout.svg");
    let reports: Vec<Report> = load::report(
        load::fan_out(&[&server], "--sweep 10,30 --rate 20 --duration 0.5 --raw")
            .arg("--chart")
            .arg(&chart),
    );
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[1].channel_size, 30);
    for r in &reports {
        assert_eq!(r.deliveries_received, r.deliveries_expected);
    }
    let svg = std::fs::read_to_string(&chart).unwrap();
    assert!(svg.contains("<svg"));
    server.shutdown().unwrap();
}

#[test]
fn spreads_one_channel_over_two_clustered_servers() {
    let redis = Redis::start();
    let a = clustered(&redis, "lt-a");
    let b = clustered(&redis, "lt-b");
    // In one process, then over two: the workers must get the server list too. Publishers 0
    // and 1 sit on different servers, so messages cross Redis both ways.
    for (processes, extra) in [(1, ""), (2, "--max-per-process 25")] {
        let line = format!("--clients 40 --publishers 2 --rate 10 --duration 2 {extra}");
        let r: Report = load::report(&mut load::fan_out(&[&a, &b], &line));
        assert_eq!(r.servers, vec![a.addr(), b.addr()]);
        assert_eq!(r.processes, processes);
        assert!(r.messages_sent >= 30, "sent only {}", r.messages_sent);
        // Members on both servers get every message of the one channel.
        assert_everyone_served(&r, 40, 40);
        assert_eq!(r.errors, 0);
    }
    a.shutdown().unwrap();
    b.shutdown().unwrap();
}

#[test]
fn refuses_addresses_outside_loopback() {
    let line = "--server 127.0.0.1:2027 --server 192.0.2.1:2027 --quiet";
    assert!(load::fail(&mut load::command("load-tester", line)).contains("loopback"));
}

#[test]
fn batch_clients_count_events_inside_batches() {
    // Under the server's default request limit of 1,000 a second per address.
    let (server, r) = one_channel(
        40,
        "--batch --publishers 1 --rate 200 --duration 1 --raw --raw-duration 0.3",
    );
    assert_eq!(r.batch, Some(1200));
    // Every delivery came in some datagram; batches make them fewer.
    load::assert_batched(&r);
    assert!(r.raw.is_some());
    let granted = server
        .state()
        .users()
        .iter()
        .filter(|(_, u)| u.caps.batch == Some(1200))
        .count();
    assert_eq!(granted, 0, "the clients logged off at the end");
    server.shutdown().unwrap();
}

#[test]
fn a_mixed_channel_reports_both_kinds_and_a_paced_raw_blaster_its_latency() {
    let (server, r) = load::run(
        server(1),
        "--clients 30 --batch=600 --mixed --publishers 1 --rate 20 --duration 1 --raw",
    );
    assert!((r.batch, r.mixed) == (Some(600), true));
    assert_eq!(r.deliveries_received, r.deliveries_expected);
    // 15 members of each kind.
    let (b, c) = load::mixed_latencies(&r);
    assert_eq!(b.count, c.count);
    let raw = r.raw.expect("raw figures");
    assert_eq!(raw.rate, 20.0);
    let l = raw.latency_us.expect("a paced blaster's latency");
    assert_eq!(l.count, raw.received);
    server.shutdown().unwrap();
}

#[test]
fn compares_with_redis_publish_in_the_same_run() {
    let redis = Redis::start();
    let (server, r) = load::run(
        server(1),
        &format!(
            "--clients 20 --publishers 1 --rate 20 --duration 1 --compare-redis 127.0.0.1:{}",
            redis.port
        ),
    );
    let rd = r.redis_pubsub.expect("Redis figures");
    assert_eq!(rd.subscribers, 20);
    assert!(rd.messages_sent >= 15, "sent only {}", rd.messages_sent);
    assert_eq!(rd.deliveries_received, rd.deliveries_expected);
    assert_eq!(rd.latency_us.count, rd.deliveries_received);
    assert!(rd.pid > 0 && rd.cpu_ns > 0);
    server.shutdown().unwrap();
}

#[test]
fn draws_classic_and_batched_sweeps_on_one_chart() {
    let server = server(4);
    let dir = tempfile::tempdir().unwrap();
    let mut chart = load::command("load-tester", "");
    // The same channels twice: the first sweep's members have logged off before the second.
    for (k, batch) in ["", "--batch"].iter().enumerate() {
        let line =
            format!("--sweep 10,20 --rate 20 --duration 0.5 --raw --raw-duration 0.2 {batch}");
        let file = dir.path().join(format!("sweep{k}.json"));
        std::fs::write(&file, load::stdout(&mut load::fan_out(&[&server], &line))).unwrap();
        chart.arg("--chart-from").arg(file);
    }
    let svg = dir.path().join("fanout.svg");
    load::succeed(chart.arg("--chart").arg(&svg));
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(svg.contains("classic") && svg.contains("batch=1200") && svg.contains("raw"));
    server.shutdown().unwrap();
}
