//! What sealing adds per delivery, without the kernel: preparing one fan-out's copies for
//! 1,000 members through `Sealers::seal_for` (the one function every send path calls) when
//! none, half or all of them are protected, and one ChaCha20-Poly1305 seal of a public
//! message. `docs/BENCHMARKS.md` puts these next to the whole-server figures.

use std::net::SocketAddr;
use std::sync::Arc;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use proto::auth::SessionKeys;
use proto::Event;
use udpchat::sealing::Sealers;

const MEMBERS: usize = 1000;

fn members() -> Vec<SocketAddr> {
    (0..MEMBERS)
        .map(|i| SocketAddr::from(([127, 0, (i / 250) as u8, (i % 250) as u8 + 1], 4000)))
        .collect()
}

fn sealing(c: &mut Criterion) {
    let payload = Event::PublicMsg {
        title: "Pets",
        sender: "ann",
        text: &"x".repeat(64),
    }
    .to_bytes();
    let dests = members();
    let mut group = c.benchmark_group("fanout_1000_members");
    group.throughput(Throughput::Elements(MEMBERS as u64));
    for protected in [0, MEMBERS / 2, MEMBERS] {
        let sealers = Sealers::default();
        for (i, d) in dests.iter().take(protected).enumerate() {
            let keys = SessionKeys::derive(&(i as u64).to_be_bytes().repeat(8));
            sealers.insert(*d, Arc::new(keys.sealer()));
        }
        group.bench_function(format!("seal_for_{protected}_protected"), |b| {
            b.iter(|| {
                let mut bytes = 0;
                for d in &dests {
                    bytes += sealers.seal_for(*d, black_box(&payload)).len();
                }
                bytes
            })
        });
    }
    group.finish();
    let keys = SessionKeys::derive(&[7u8; 64]);
    let sealer = keys.sealer();
    let mut group = c.benchmark_group("seal_one");
    group.throughput(Throughput::Elements(1));
    group.bench_function(format!("chacha20poly1305_{}_bytes", payload.len()), |b| {
        b.iter(|| sealer.seal(black_box(&payload)))
    });
    group.finish();
}

criterion_group!(benches, sealing);
criterion_main!(benches);
