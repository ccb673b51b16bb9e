//! Encoding and decoding of each server-to-client event, the work a client and the load
//! tester's receivers do per datagram, and the server does once per fan-out.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use proto::{ChannelInfo, Event};

fn events() -> Vec<(&'static str, Event<'static>)> {
    let info = ChannelInfo {
        title: "CurrentEvents",
        count: 1234,
        description: "Discussion of current events",
    };
    let text = "the quick brown fox jumps over the lazy dog, 64 bytes of text....";
    vec![
        (
            "ERROR",
            Event::Error {
                message: "nickname already in use",
            },
        ),
        ("LOGIN_ACK", Event::LoginAck { nick: "alice" }),
        ("JOIN_ACK", Event::JoinAck(info)),
        ("PART_ACK", Event::PartAck(info)),
        (
            "PUBLIC_MSG",
            Event::PublicMsg {
                title: "CurrentEvents",
                sender: "alice",
                text,
            },
        ),
        (
            "PRIVATE_MSG",
            Event::PrivateMsg {
                sender: "alice",
                text,
            },
        ),
        (
            "USER_JOINS",
            Event::UserJoins {
                title: "CurrentEvents",
                nick: "bob",
            },
        ),
        (
            "USER_PARTS",
            Event::UserParts {
                title: "CurrentEvents",
                nick: "bob",
            },
        ),
        ("CHANNEL_ITEM", Event::ChannelItem(info)),
        (
            "USER_ITEM",
            Event::UserItem {
                nick: "alice",
                seconds: 3600,
                channels: "Weather Pets Hobbies",
            },
        ),
        ("USER_ONLINE", Event::UserOnline { nick: "carol" }),
        ("USER_OFFLINE", Event::UserOffline { nick: "carol" }),
    ]
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    group.throughput(Throughput::Elements(1));
    let mut buf = Vec::with_capacity(256);
    for (name, event) in events() {
        group.bench_function(name, |b| {
            b.iter(|| {
                buf.clear();
                black_box(&event).encode(&mut buf);
                black_box(buf.len())
            })
        });
    }
    group.finish();
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(1));
    for (name, event) in events() {
        let bytes = event.to_bytes();
        group.bench_function(name, |b| {
            b.iter(|| Event::decode(black_box(&bytes)).map(|e| e.code()))
        });
    }
    group.finish();
}

criterion_group!(benches, encode, decode);
criterion_main!(benches);
