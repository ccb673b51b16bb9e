//! The state machine handling one SEND_PUBLIC for channels of 10, 1,000 and 10,000 members,
//! without sockets: what a worker spends per message before the senders take over. The
//! member snapshot is shared, so this should not grow with the channel.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use proto::Request;
use udpchat::config::ChannelSpec;
use udpchat::datagram::Incoming;
use udpchat::handler::{Handler, Outbox};
use udpchat::state::State;

fn member(i: usize) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(
        Ipv4Addr::new(127, 0, 1 + (i / 50_000) as u8, 1),
        1024 + (i % 50_000) as u16,
    ))
}

/// A handler with `n` members logged in and joined into one channel.
fn handler_with(n: usize) -> Handler {
    let channels = [ChannelSpec {
        title: "Big".into(),
        description: "one big channel".into(),
        multicast: true,
    }];
    let handler = Handler::new(
        Arc::new(State::new(&channels, n + 10)),
        1024,
        Duration::from_secs(120),
    );
    let now = Instant::now();
    let wall = SystemTime::now();
    let mut out = Outbox::new();
    let join = Request::Join { title: "Big" }.to_bytes();
    for i in 0..n {
        let nick = format!("user{i}");
        let login = Request::Login { nick: &nick }.to_bytes();
        handler.handle(now, wall, Incoming::new(member(i), &login), &mut out);
        handler.handle(now, wall, Incoming::new(member(i), &join), &mut out);
        out.clear();
    }
    handler
}

fn public_message(c: &mut Criterion) {
    let mut group = c.benchmark_group("handle_send_public");
    let msg = Request::SendPublic {
        text: "the quick brown fox jumps over the lazy dog, 64 bytes of text....",
    }
    .to_bytes();
    for n in [10usize, 1_000, 10_000] {
        let handler = handler_with(n);
        let mut out = Outbox::new();
        let now = Instant::now();
        let wall = SystemTime::now();
        // Elements are deliveries: the cost per delivery should fall as 1/n.
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                handler.handle(
                    now,
                    wall,
                    Incoming::new(member(0), black_box(&msg)),
                    &mut out,
                );
                let fanned: usize = out.fanouts.iter().map(|f| f.members.len()).sum();
                out.clear();
                fanned
            })
        });
    }
    group.finish();
}

criterion_group!(benches, public_message);
criterion_main!(benches);
