//! One payload to 1,000 loopback sockets: `sendmmsg` in batches (the server's
//! `sys::send_batch`) against one `sendto` per datagram. The receivers never read; the
//! kernel drops what overflows their buffers after the send has been paid for.

use std::net::{SocketAddr, UdpSocket};

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use udp::{send_batch, MAX_BATCH};

const MEMBERS: usize = 1000;

fn sends(c: &mut Criterion) {
    let receivers: Vec<UdpSocket> = (0..MEMBERS)
        .map(|_| UdpSocket::bind("127.0.0.1:0").expect("bind receiver"))
        .collect();
    let dests: Vec<SocketAddr> = receivers.iter().map(|s| s.local_addr().unwrap()).collect();
    let sender = UdpSocket::bind("127.0.0.1:0").expect("bind sender");
    let payload = vec![b'x'; 80];
    let mut group = c.benchmark_group("send_1000_members");
    group.throughput(Throughput::Elements(MEMBERS as u64));
    group.bench_function("sendto_one_by_one", |b| {
        b.iter(|| {
            for d in &dests {
                let _ = sender.send_to(black_box(&payload), d);
            }
        })
    });
    let batch: Vec<(&[u8], SocketAddr)> = dests.iter().map(|d| (&payload[..], *d)).collect();
    group.bench_function(format!("sendmmsg_batch_{MAX_BATCH}"), |b| {
        b.iter(|| {
            let mut at = 0;
            while at < batch.len() {
                match send_batch(&sender, black_box(&batch[at..])) {
                    Ok(n) => at += n.max(1),
                    // The entry at `at` failed: skip it, as the server's senders do.
                    Err(_) => at += 1,
                }
            }
        })
    });
    group.finish();
}

criterion_group!(benches, sends);
criterion_main!(benches);
