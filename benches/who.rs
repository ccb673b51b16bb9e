//! WHO_REQ on a server with 100,000 users, through the state machine: what one directory
//! lookup costs a worker. The sorted nickname index makes it follow the matches (at most
//! 101 read), not the users.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use proto::Request;
use udpchat::config::classic_channels;
use udpchat::datagram::Incoming;
use udpchat::handler::{Handler, Outbox};
use udpchat::state::State;

const USERS: usize = 100_000;

fn member(i: usize) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(
        Ipv4Addr::new(127, 0, 1 + (i / 50_000) as u8, 1),
        1024 + (i % 50_000) as u16,
    ))
}

fn who(c: &mut Criterion) {
    let state = Arc::new(State::new(&classic_channels(), USERS + 10));
    let handler = Handler::new(state, 1024, Duration::from_secs(120));
    let (now, wall) = (Instant::now(), SystemTime::now());
    let mut out = Outbox::new();
    for i in 0..USERS {
        let login = Request::Login {
            nick: &format!("user{i}"),
        }
        .to_bytes();
        handler.handle(now, wall, Incoming::new(member(i), &login), &mut out);
        out.clear();
    }
    let mut group = c.benchmark_group("who_100k_users");
    // "" matches everyone (answered with 100 and "give a longer prefix"), "user4242"
    // matches 11, "nobody" none.
    for prefix in ["", "user4242", "nobody"] {
        let req = Request::Who { prefix }.to_bytes();
        group.throughput(Throughput::Elements(1));
        group.bench_with_input(
            BenchmarkId::from_parameter(format!("{prefix:?}")),
            &req,
            |b, req| {
                b.iter(|| {
                    handler.handle(
                        now,
                        wall,
                        Incoming::new(member(0), black_box(req)),
                        &mut out,
                    );
                    let n = out.unicast_len();
                    out.clear();
                    n
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, who);
criterion_main!(benches);
