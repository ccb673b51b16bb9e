//! Publishers: members that send SEND_PUBLIC, either at a planned constant rate (latency is
//! then measured from the planned time, so a stalled server can't hide its backlog) or, with
//! rate 0, as fast as the server fans out: each publisher keeps a few messages in flight and
//! sends the next when its own copy comes back.

use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use proto::Request;
use serde::{Deserialize, Serialize};

use crate::members::{message_text, Shared};
use crate::sys::now_ns;

/// What to publish.
pub struct Plan {
    /// Publishing members: (local index, channel index).
    pub publishers: Vec<(usize, usize)>,
    /// Messages per second per publisher; 0 = closed loop, as fast as possible.
    pub rate: f64,
    /// Planned start (`now_ns` clock) and length.
    pub start_ns: u64,
    /// Length of the phase.
    pub duration: Duration,
    /// Text length of each message in bytes.
    pub size: usize,
    /// Messages in flight per publisher in closed loop.
    pub window: u32,
    /// Number of channels, for the per-channel counts.
    pub channels: usize,
}

/// What was published.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Published {
    /// Messages sent.
    pub sent: u64,
    /// Messages sent per channel: deliveries expected are these times the channel sizes.
    pub sent_per_channel: Vec<u64>,
    /// Closed loop: windows given up on after a lost message.
    pub stalls: u64,
    /// Rated: the largest lag behind the plan at a send, in microseconds.
    pub max_lag_us: u64,
}

/// Publishes according to `plan`, counting sends in `sent` as it goes.
pub fn publish(shared: &Shared, plan: &Plan, sent: &AtomicU64) -> Published {
    let mut out = Published {
        sent_per_channel: vec![0; plan.channels],
        ..Published::default()
    };
    if plan.publishers.is_empty() {
        sleep_until(plan.start_ns + plan.duration.as_nanos() as u64);
        return out;
    }
    sleep_until(plan.start_ns);
    let end_ns = plan.start_ns + plan.duration.as_nanos() as u64;
    let mut buf = Vec::with_capacity(plan.size + 16);
    let mut send = |p: usize, seq: u64, intended: u64, out: &mut Published| {
        let (member, channel) = plan.publishers[p];
        let text = message_text(seq, intended, shared.global[member], plan.size);
        buf.clear();
        Request::SendPublic { text: &text }.encode(&mut buf);
        // A refused send is a lost message: it stays counted as sent, so it shows as loss.
        let _ = shared.send(member, &buf);
        out.sent += 1;
        out.sent_per_channel[channel] += 1;
        sent.fetch_add(1, Ordering::Relaxed);
    };
    if plan.rate > 0.0 {
        let interval_ns = 1e9 / (plan.rate * plan.publishers.len() as f64);
        for seq in 0u64.. {
            let intended = plan.start_ns + (seq as f64 * interval_ns) as u64;
            if intended >= end_ns {
                break;
            }
            sleep_until(intended);
            out.max_lag_us = out.max_lag_us.max(now_ns().saturating_sub(intended) / 1000);
            send(
                seq as usize % plan.publishers.len(),
                seq,
                intended,
                &mut out,
            );
        }
    } else {
        if let Ok(mut t) = shared.publisher_thread.lock() {
            *t = Some(thread::current());
        }
        let mut last_sent = vec![now_ns(); plan.publishers.len()];
        let mut seq = 0u64;
        loop {
            let now = now_ns();
            if now >= end_ns {
                break;
            }
            let mut any = false;
            for (p, &(member, _)) in plan.publishers.iter().enumerate() {
                let flight = &shared.in_flight[member];
                if flight.load(Ordering::Relaxed) < plan.window {
                    flight.fetch_add(1, Ordering::Relaxed);
                    send(p, seq, now_ns(), &mut out);
                    seq += 1;
                    last_sent[p] = now;
                    any = true;
                } else if now.saturating_sub(last_sent[p]) > 200_000_000 {
                    // Its own copies were lost: start the window afresh.
                    flight.store(0, Ordering::Relaxed);
                    out.stalls += 1;
                    last_sent[p] = now;
                }
            }
            if !any {
                thread::park_timeout(Duration::from_millis(2));
            }
        }
        if let Ok(mut t) = shared.publisher_thread.lock() {
            *t = None;
        }
        for &(member, _) in &plan.publishers {
            shared.in_flight[member].store(0, Ordering::Relaxed);
        }
    }
    out
}

/// Sleeps until `now_ns() >= t`, spinning only for the last few tens of microseconds.
pub fn sleep_until(t: u64) {
    loop {
        let now = now_ns();
        if now >= t {
            return;
        }
        let left = t - now;
        if left > 100_000 {
            thread::sleep(Duration::from_nanos(left - 60_000));
        } else {
            thread::yield_now();
        }
    }
}
