//! The flood limiter's `admit`, per datagram: one steady address; a table already full
//! ([`MAX_TRACKED`]) taking a stream of distinct new addresses, as a spoofed flood sends;
//! and that flood with one datagram in 101 from a steady address. Before the limiter
//! evicted in O(1), every new address in a full table cost a scan of the whole table.
//!
//! The clock is simulated: it moves 10 µs per datagram (100,000 datagrams a second into
//! one worker), so the flood's 300,000 addresses come round every 3 s, inside the 10 s
//! after which an idle record is forgotten: no record is ever idle, the hardest case.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use udpchat::server::limit::{Limiter, Limits, MAX_TRACKED};

/// Distinct addresses in the flood; more than the table holds, so each one is new.
const FLOOD: usize = 300_000;
/// Simulated time between two datagrams.
const STEP: Duration = Duration::from_micros(10);
/// Bytes in each datagram.
const LEN: usize = 40;

/// The `i`th (below 524,288) of a range of distinct addresses, in 198.18.0.0/15 (set
/// aside for benchmarks; nothing is sent anywhere); `range` (below 32) keeps ranges apart.
fn address(range: u8, i: usize) -> SocketAddr {
    let i = i as u32;
    SocketAddr::V4(SocketAddrV4::new(
        Ipv4Addr::new(198, 18, range * 8 + (i >> 16) as u8, (i >> 8) as u8),
        1024 + (i & 0xff) as u16,
    ))
}

/// A limiter whose table is full: `steady` first, then other addresses up to MAX_TRACKED.
fn full_limiter(steady: SocketAddr, now: &mut Instant) -> Limiter {
    let mut limiter = Limiter::new(Limits::default(), *now);
    limiter.admit(steady, LEN, *now);
    for i in 1..MAX_TRACKED {
        *now += STEP;
        limiter.admit(address(1, i), LEN, *now);
    }
    assert_eq!(limiter.tracked(), MAX_TRACKED);
    limiter
}

fn admit(c: &mut Criterion) {
    let mut group = c.benchmark_group("admit");
    group.throughput(Throughput::Elements(1));
    let steady = address(0, 0);
    let flood: Vec<SocketAddr> = (0..FLOOD).map(|i| address(2, i)).collect();

    // State lives outside the closures: criterion calls them once per sample, and the
    // table should stay full and the flood go on across samples.
    let mut now = Instant::now();
    let mut limiter = Limiter::new(Limits::default(), now);
    group.bench_function("steady", |b| {
        b.iter(|| {
            now += STEP;
            limiter.admit(black_box(steady), black_box(LEN), now)
        })
    });

    let mut now = Instant::now();
    let mut limiter = full_limiter(steady, &mut now);
    let mut next = 0;
    group.bench_function("full_new_addresses", |b| {
        b.iter(|| {
            now += STEP;
            next = (next + 1) % FLOOD;
            limiter.admit(black_box(flood[next]), black_box(LEN), now)
        })
    });

    let mut now = Instant::now();
    let mut limiter = full_limiter(steady, &mut now);
    let mut next = 0;
    let mut count = 0u32;
    group.bench_function("full_new_addresses_with_steady_1_in_101", |b| {
        b.iter(|| {
            now += STEP;
            count = (count + 1) % 101;
            let from = if count == 0 {
                steady
            } else {
                next = (next + 1) % FLOOD;
                flood[next]
            };
            limiter.admit(black_box(from), black_box(LEN), now)
        })
    });
    group.finish();
}

criterion_group!(benches, admit);
criterion_main!(benches);
