//! `load-tester flood`: many distinct source addresses send one kind of request to a server
//! on loopback, while one well-behaved user keeps talking in a channel; the report gives the
//! flood's rate, the server's CPU time per flood datagram and its memory before and after,
//! what the server answered, and how many of the user's messages came back and how fast.
//!
//! The parts:
//! - `args`: the flags;
//! - `sender`: the flood, one socket speaking for every source address;
//! - `steady`: the user that keeps talking;
//! - `report`: the figures and the human summary.
//!
//! The run: the steady user logs in and joins, talks alone for `--before` seconds (the
//! baseline), the flood goes out, and the user talks on for `--after` seconds; its messages
//! are judged by when they were sent.

mod args;
mod report;
mod sender;
mod steady;

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

pub(crate) use args::FloodArgs;
pub use args::Kind;
pub use report::{FloodReport, ServerCost, ServerCounts, SteadyUser};
pub use sender::Replies;
pub use steady::Window;

use crate::procstat::{process_cpu_ns, UdpCounters};
use crate::progress::Progress;
use crate::scrape::scrape;
use crate::sys::{now_ns, SEC};
use sender::Flooder;
use steady::Steady;

/// How long the steady user's last messages get to come back.
const ECHO_WAIT: Duration = Duration::from_millis(500);

/// Runs the flood and returns its report.
///
/// # Errors
/// Invalid flags, sockets that can't be made, a server that does not let the steady user
/// log in and join.
fn flood(args: &FloodArgs) -> anyhow::Result<FloodReport> {
    args.validate()?;
    let run_id = std::process::id();
    let metrics = args.figures.metrics_addr()?;
    let pb = Progress::new(args.output.quiet);
    let steady = Steady::start(args.server, format!("steady{run_id:x}"), &args.channel)?;
    let mut flooder = Flooder::new(args, run_id)?;
    let pid = args.figures.server_pid;
    let counts0 = metrics.and_then(scrape);
    let udp0 = UdpCounters::read();
    let rss_before = args.figures.rss_kib();
    let mut rss_max = rss_before;
    let sample_rss = |rss_max: &mut Option<u64>| {
        if let Some(now) = args.figures.rss_kib() {
            *rss_max = Some(rss_max.map_or(now, |m| m.max(now)));
        }
    };
    let sending = AtomicBool::new(true);
    let stop = AtomicBool::new(false);
    let interval = Duration::from_millis(args.interval_ms);

    let (log, flood_start, flood_end, cpu) = thread::scope(|s| {
        let talker = s.spawn(|| steady.talk(interval, &sending, &stop));
        pb.set("steady user alone (baseline)".into());
        thread::sleep(Duration::from_secs_f64(args.before));

        let flood_start = now_ns();
        let cpu0 = pid.and_then(process_cpu_ns);
        let mut next_rss = flood_start;
        flooder.flood(|out| {
            let now = now_ns();
            if now >= next_rss {
                sample_rss(&mut rss_max);
                next_rss = now + SEC / 10;
            }
            pb.set(format!(
                "flooding: {} sent, {} LOGIN_ACKs back",
                out.sending.sent, out.replies.login_acks
            ));
        });
        let flood_end = now_ns();

        // After the flood: the user talks on; the answers to the flood are still counted.
        pb.set("after the flood".into());
        // The server's CPU time is counted to the end of this stretch: a flood can leave
        // it seconds of queued work, which is part of what the flood cost.
        let after_end = flood_end + (args.after * 1e9) as u64;
        loop {
            let now = now_ns();
            if now >= after_end {
                break;
            }
            flooder.drain();
            if now >= next_rss {
                sample_rss(&mut rss_max);
                next_rss = now + SEC / 10;
            }
            thread::sleep(Duration::from_millis(1));
        }
        let cpu1 = pid.and_then(process_cpu_ns);
        sending.store(false, Ordering::Relaxed);
        let wait_end = now_ns() + ECHO_WAIT.as_nanos() as u64;
        while now_ns() < wait_end {
            flooder.drain();
            thread::sleep(Duration::from_millis(1));
        }
        stop.store(true, Ordering::Relaxed);
        let log = talker.join().expect("the steady user's thread panicked");
        let cpu = cpu0.zip(cpu1).map(|(a, b)| b.saturating_sub(a));
        (log, flood_start, flood_end, cpu)
    });
    pb.finish();
    // Read before the steady user logs off, so that both readings count it.
    let counts1 = metrics.and_then(scrape);
    steady.log_off();

    let out = &flooder.out.sending;
    let rss_after = args.figures.rss_kib();
    sample_rss(&mut rss_max);
    let server_cost = match (cpu, rss_before, rss_after) {
        (Some(cpu_ns), Some(before), Some(after)) => Some(ServerCost {
            cpu_ns,
            cpu_ns_per_datagram: cpu_ns as f64 / out.sent.max(1) as f64,
            rss_before_kib: before,
            rss_after_kib: after,
            rss_max_kib: rss_max.unwrap_or(after),
        }),
        _ => None,
    };
    let server_counts = match (counts0, counts1) {
        (Some(a), Some(b)) => {
            let get = |m: &std::collections::HashMap<String, u64>, k: &str| {
                m.get(k).copied().unwrap_or(0)
            };
            let delta = |k: &str| get(&b, k).saturating_sub(get(&a, k));
            Some(ServerCounts {
                users_before: get(&a, "udpchat_users"),
                users_after: get(&b, "udpchat_users"),
                datagrams_received: delta("udpchat_datagrams_received_total"),
                rate_limited: delta("udpchat_dropped_total{reason=\"rate_limited\"}"),
                queue_full: delta("udpchat_dropped_total{reason=\"queue_full\"}"),
                replies_withheld: delta("udpchat_dropped_total{reason=\"reply_withheld\"}"),
            })
        }
        _ => None,
    };
    let after = Window::of(&log, flood_end, u64::MAX);
    let served_again = log
        .answered
        .iter()
        .filter(|&&(sent, _)| sent >= flood_end)
        .map(|&(sent, rtt)| sent + rtt - flood_end)
        .min();
    Ok(FloodReport {
        server: args.server.to_string(),
        kind: Some(args.kind),
        addresses: args.addresses,
        rate: args.rate,
        sent: out.sent,
        refused: out.refused,
        secs: out.secs,
        sent_per_s: out.sent as f64 / out.secs.max(1e-9),
        passes: out.sent as f64 / args.addresses as f64,
        sender_cpu_ns_per_datagram: out.cpu_ns as f64 / out.sent.max(1) as f64,
        udp: UdpCounters::read().since(&udp0),
        replies: flooder.out.replies.clone(),
        server_cost,
        server_counts,
        steady: SteadyUser {
            nick: steady.nick.clone(),
            channel: args.channel.clone(),
            interval_ms: args.interval_ms,
            before: Window::of(&log, 0, flood_start),
            during: Window::of(&log, flood_start, flood_end),
            served: after.answered > 0,
            served_again_after_s: served_again.map(|ns| ns as f64 / 1e9),
            after,
            errors: log.errors,
        },
    })
}

/// Runs the flood and prints the report (JSON with --json); returns whether the steady user
/// was still served after the flood.
///
/// # Errors
/// As [`flood`].
pub(crate) fn main_with(args: &FloodArgs) -> anyhow::Result<bool> {
    let r = flood(args)?;
    args.output.print(&r)?;
    Ok(r.steady.served)
}
