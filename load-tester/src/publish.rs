//! Publishers: members that send SEND_PUBLIC, either at a planned constant rate (latency is
//! then measured from the planned time, so a stalled server can't hide its backlog) or, with
//! rate 0, as fast as the server fans out: each publisher keeps a few messages in flight and
//! sends the next when its own copy comes back.

use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use proto::Request;
use serde::{Deserialize, Serialize};

use crate::members::Shared;
use crate::options::Traffic;
use crate::pace::sleep_until;
use crate::sys::now_ns;
use crate::text::message_text;

/// What to publish.
pub(crate) struct Plan<'a> {
    /// Publishing members: (local index, channel index).
    pub(crate) publishers: &'a [(usize, usize)],
    /// Number of channels, for the per-channel counts.
    pub(crate) channels: usize,
    /// Planned start (`now_ns` clock).
    pub(crate) start_ns: u64,
    /// The rate (0: closed loop), length, message size and window.
    pub(crate) traffic: &'a Traffic,
}

impl Plan<'_> {
    /// The planned end (`now_ns` clock).
    pub(crate) fn end_ns(&self) -> u64 {
        self.start_ns + Duration::from_secs_f64(self.traffic.duration).as_nanos() as u64
    }
}

/// What was published.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub(crate) struct Published {
    /// Messages sent.
    pub(crate) sent: u64,
    /// Messages sent per channel: deliveries expected are these times the channel sizes.
    pub(crate) sent_per_channel: Vec<u64>,
    /// Closed loop: windows given up on after a lost message.
    pub(crate) stalls: u64,
    /// Rated: the largest lag behind the plan at a send, in microseconds.
    pub(crate) max_lag_us: u64,
}

/// Publishes according to `plan`, counting sends in `sent` as it goes.
pub(crate) fn publish(shared: &Shared, plan: &Plan<'_>, sent: &AtomicU64) -> Published {
    let mut out = Published {
        sent_per_channel: vec![0; plan.channels],
        ..Published::default()
    };
    let (traffic, end_ns) = (plan.traffic, plan.end_ns());
    if plan.publishers.is_empty() {
        sleep_until(end_ns);
        return out;
    }
    sleep_until(plan.start_ns);
    let mut buf = Vec::with_capacity(traffic.message_size + 16);
    let mut send = |p: usize, seq: u64, intended: u64, out: &mut Published| {
        let (member, channel) = plan.publishers[p];
        let text = message_text(seq, intended, shared.global[member], traffic.message_size);
        buf.clear();
        Request::SendPublic { text: &text }.encode(&mut buf);
        // A refused send is a lost message: it stays counted as sent, so it shows as loss.
        let _ = shared.send(member, &buf);
        out.sent += 1;
        out.sent_per_channel[channel] += 1;
        sent.fetch_add(1, Ordering::Relaxed);
    };
    if traffic.rate > 0.0 {
        let interval_ns = 1e9 / (traffic.rate * plan.publishers.len() as f64);
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
        shared.publisher_thread.register();
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
                if flight.load(Ordering::Relaxed) < traffic.window {
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
        shared.publisher_thread.clear();
        for &(member, _) in plan.publishers {
            shared.in_flight[member].store(0, Ordering::Relaxed);
        }
    }
    out
}
