//! Small runs of the load-tester binary against in-process servers (one, or two joined by a
//! real `redis-server`): every expected delivery arrives on loopback at a modest rate, with
//! batch clients, mixed channels, a paced raw blaster and a Redis PUBLISH comparison too,
//! and the JSON output parses. No timing is asserted.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use load_tester::report::Report;
use udpchat::cluster::ClusterConfig;
use udpchat::config::ChannelSpec;
use udpchat::server::{RunningServer, Server, ServerConfig};

fn server(channels: usize) -> RunningServer {
    clustered(channels, None)
}

/// A server, joined to the cluster of `redis` as `id` when given.
fn clustered(channels: usize, redis: Option<(&Redis, &str)>) -> RunningServer {
    let cfg = ServerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        channels: (0..channels)
            .map(|c| ChannelSpec {
                title: format!("lt{c}"),
                description: format!("test channel {c}"),
                multicast: true,
            })
            .collect(),
        cluster: redis
            .map(|(r, id)| ClusterConfig::new(r.url(), id, b"load tester cluster secret ....")),
        ..ServerConfig::default()
    };
    let s = Server::bind(cfg).expect("bind server").spawn();
    if let Some(c) = s.cluster() {
        let c = c.clone();
        let deadline = Instant::now() + Duration::from_secs(15);
        while !c.is_connected() {
            assert!(Instant::now() < deadline, "server did not reach Redis");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    s
}

/// A `redis-server` of the test's own on a free loopback port, killed on drop.
struct Redis {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Redis {
    fn start() -> Redis {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let bin = std::env::split_paths(&path)
            .map(|d| d.join("redis-server"))
            .find(|p| p.is_file())
            .unwrap_or_else(|| {
                panic!(
                    "redis-server not found: install it (apt-get install redis-server, \
                     or run scripts/ci-services.sh)"
                )
            });
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // Its own working folder, so nothing lands in the crate's.
        let dir = std::env::temp_dir().join(format!("lt-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let child = Command::new(bin)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let r = Redis { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !r.pong() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not start in 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        r
    }

    /// Whether it answers PING (inline command, so no client library is needed).
    fn pong(&self) -> bool {
        let Ok(mut c) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = c.set_read_timeout(Some(Duration::from_millis(200)));
        let mut buf = [0u8; 16];
        c.write_all(b"PING\r\n").is_ok()
            && c.read(&mut buf)
                .is_ok_and(|n| buf[..n].starts_with(b"+PONG"))
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn load_tester(server: &RunningServer, args: &[&str]) -> String {
    load_tester_on(&[server], args)
}

/// Runs the load tester against `servers` (one `--server` each) with `args`; its stdout.
fn load_tester_on(servers: &[&RunningServer], args: &[&str]) -> String {
    let mut cmd = Command::new(common::bin("load-tester"));
    for s in servers {
        cmd.args(["--server", &s.addr().to_string()]);
    }
    let out = cmd
        .args(["--json", "--quiet"])
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
fn protected_members_get_every_delivery_sealed() {
    let server = server(1);
    let out = load_tester(
        &server,
        &[
            "--clients",
            "12",
            "--protected",
            "6",
            "--publishers",
            "1",
            "--rate",
            "20",
            "--duration",
            "1",
        ],
    );
    let r: Report = serde_json::from_str(&out).expect("JSON report");
    assert_eq!(r.protected, 6);
    assert_eq!(r.login.done, 12);
    assert_eq!(r.join.done, 12);
    assert!(r.messages_sent > 0);
    assert_eq!(r.deliveries_expected, r.messages_sent * 12);
    // Half the members only count a delivery they could open with their session.
    assert_eq!(r.deliveries_received, r.deliveries_expected);
    assert_eq!(
        server.state().sealers().len(),
        0,
        "all logged off at the end"
    );
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
fn spreads_one_channel_over_two_clustered_servers() {
    let redis = Redis::start();
    let a = clustered(1, Some((&redis, "lt-a")));
    let b = clustered(1, Some((&redis, "lt-b")));
    // In one process, then over two: the workers must get the server list too. Publishers 0
    // and 1 sit on different servers, so messages cross Redis both ways.
    for extra in [&[][..], &["--max-per-process", "25"][..]] {
        let out = load_tester_on(
            &[&a, &b],
            &[
                &[
                    "--clients",
                    "40",
                    "--publishers",
                    "2",
                    "--rate",
                    "10",
                    "--duration",
                    "2",
                ][..],
                extra,
            ]
            .concat(),
        );
        let r: Report = serde_json::from_str(&out).expect("JSON report");
        assert_eq!(r.servers, vec![a.addr(), b.addr()]);
        assert_eq!(r.processes, if extra.is_empty() { 1 } else { 2 });
        assert_eq!(r.login.done, 40);
        assert_eq!(r.join.done, 40);
        assert!(r.messages_sent >= 30, "sent only {}", r.messages_sent);
        // Members on both servers get every message of the one channel.
        assert_eq!(r.deliveries_expected, r.messages_sent * 40);
        assert_eq!(r.deliveries_received, r.deliveries_expected);
        assert_eq!(r.errors, 0);
    }
    a.shutdown().unwrap();
    b.shutdown().unwrap();
}

#[test]
fn refuses_addresses_outside_loopback() {
    let out = Command::new(common::bin("load-tester"))
        .args([
            "--server",
            "127.0.0.1:2027",
            "--server",
            "192.0.2.1:2027",
            "--quiet",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"));
}

#[test]
fn batch_clients_count_events_inside_batches() {
    let server = server(1);
    let out = load_tester(
        &server,
        &[
            "--clients",
            "40",
            "--batch",
            "--publishers",
            "1",
            // Under the server's default request limit of 1,000 a second per address.
            "--rate",
            "200",
            "--duration",
            "1",
            "--raw",
            "--raw-duration",
            "0.3",
        ],
    );
    let r: Report = serde_json::from_str(&out).expect("JSON report");
    assert_eq!(r.batch, Some(1200));
    assert_eq!(r.login.done, 40);
    assert!(r.messages_sent > 0);
    assert_eq!(r.deliveries_expected, r.messages_sent * 40);
    assert_eq!(r.deliveries_received, r.deliveries_expected);
    // Every delivery came in some datagram; batches make them fewer.
    assert!(r.datagrams_received > 0 && r.datagrams_received <= r.deliveries_received);
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
    let server = server(1);
    let out = load_tester(
        &server,
        &[
            "--clients",
            "30",
            "--batch=600",
            "--mixed",
            "--publishers",
            "1",
            "--rate",
            "20",
            "--duration",
            "1",
            "--raw",
        ],
    );
    let r: Report = serde_json::from_str(&out).expect("JSON report");
    assert!((r.batch, r.mixed) == (Some(600), true));
    assert_eq!(r.deliveries_received, r.deliveries_expected);
    let (b, c) = (r.latency_batch_us.unwrap(), r.latency_classic_us.unwrap());
    // 15 members of each kind.
    assert_eq!(b.count + c.count, r.deliveries_received);
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
    let server = server(1);
    let redis_addr = format!("127.0.0.1:{}", redis.port);
    let out = load_tester(
        &server,
        &[
            "--clients",
            "20",
            "--publishers",
            "1",
            "--rate",
            "20",
            "--duration",
            "1",
            "--compare-redis",
            &redis_addr,
        ],
    );
    let r: Report = serde_json::from_str(&out).expect("JSON report");
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
    let dir = std::env::temp_dir().join(format!("lt-chart2-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut files = Vec::new();
    // The same channels twice: the first sweep's members have logged off before the second.
    for (k, batch) in [&[][..], &["--batch"][..]].iter().enumerate() {
        let out = load_tester(
            &server,
            &[
                &[
                    "--sweep",
                    "10,20",
                    "--rate",
                    "20",
                    "--duration",
                    "0.5",
                    "--raw",
                    "--raw-duration",
                    "0.2",
                ][..],
                batch,
            ]
            .concat(),
        );
        let file = dir.join(format!("sweep{k}.json"));
        std::fs::write(&file, out).unwrap();
        files.push(file);
    }
    let chart = dir.join("fanout.svg");
    let status = Command::new(common::bin("load-tester"))
        .args(["--chart-from", files[0].to_str().unwrap()])
        .args(["--chart-from", files[1].to_str().unwrap()])
        .args(["--chart", chart.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
    let svg = std::fs::read_to_string(&chart).unwrap();
    assert!(svg.contains("classic") && svg.contains("batch=1200") && svg.contains("raw"));
    std::fs::remove_dir_all(&dir).unwrap();
    server.shutdown().unwrap();
}
