//! The phases of a soak: build the population a window at a time, run the steady load
//! with churn and samples, drain until every departure is judged, log everyone off.

use std::time::Duration;

use proto::Request;

use super::args::SoakArgs;
use super::client::Phase;
use super::driver::Soak;
use super::report::{finish, SoakReport};
use crate::scrape::scrape;
use crate::sys::{now_ns, MS, SEC};

/// Bookkeeping (keepalives, retries, churn) runs this often.
const TICK_NS: u64 = 100 * MS;
/// Logins and joins outstanding at once while the population is built.
const SETUP_WINDOW: usize = 200;

/// Runs the soak and returns its report.
///
/// # Errors
/// Invalid flags, sockets that can't be bound, a population that can't be built.
fn soak(args: &SoakArgs) -> anyhow::Result<SoakReport> {
    args.validate()?;
    crate::sys::raise_nofile_limit();
    let metrics = args.figures.metrics_addr()?;
    let mut s = Soak::new(args)?;
    s.report.duration_s = args.duration;
    s.report.clients = args.clients;
    s.report.channels = args.channels;
    s.report.rate = args.rate;
    s.report.churn = args.churn;
    s.report.moves = args.moves;
    s.report.grace_ms = args.grace_ms;

    // The checker logs in first; it joins no channel, so it hears no traffic.
    let checker_nick = format!("sk{:x}_check", s.run_id);
    s.send(
        &s.checker,
        &Request::Login {
            nick: &checker_nick,
        }
        .to_bytes(),
    );

    // Build the population a window at a time, so that joins do not flood the server.
    let setup_start = now_ns();
    let setup_deadline = setup_start + 120 * SEC;
    let mut spawned = 0;
    let mut next_tick = now_ns();
    while s.active() < args.clients {
        let now = now_ns();
        anyhow::ensure!(
            now < setup_deadline,
            "only {} of {} clients logged in and joined within 120 s",
            s.active(),
            args.clients
        );
        while spawned < args.clients && s.pending_setup() < SETUP_WINDOW {
            s.spawn(spawned % args.channels)?;
            spawned += 1;
        }
        if now >= next_tick {
            s.housekeeping(now);
            next_tick = now + TICK_NS;
        }
        s.poll_once(Duration::from_millis(5));
    }
    s.report.setup_s = (now_ns() - setup_start) as f64 / 1e9;
    s.log(format!(
        "{} clients in {} channels after {:.1} s",
        args.clients, args.channels, s.report.setup_s
    ));
    s.report.logins = 0;

    // Steady load.
    let start = now_ns();
    s.start_ns = start;
    let end = start + (args.duration * SEC as f64) as u64;
    let pub_every = if args.rate > 0.0 {
        (SEC as f64 / args.rate) as u64
    } else {
        u64::MAX
    };
    let sample_every = (args.sample * SEC as f64) as u64;
    let mut next_pub = start;
    let mut next_sample = start;
    let mut next_tick = start;
    let (mut churn_due, mut moves_due) = (0.0f64, 0.0f64);
    loop {
        let now = now_ns();
        if now >= next_sample {
            let sm = s.sample((now - start) as f64 / 1e9, metrics);
            s.log(format!(
                "rss {} KiB, threads {}, users {}, delivered {}/{}",
                sm.rss_kib.map_or("-".into(), |v| v.to_string()),
                sm.threads.map_or("-".into(), |v| v.to_string()),
                sm.users.map_or("-".into(), |v| v.to_string()),
                sm.received,
                sm.expected
            ));
            s.report.samples.push(sm);
            next_sample += sample_every;
            if now >= end {
                break;
            }
        }
        while next_pub <= now && now < end {
            s.publish();
            next_pub += pub_every;
        }
        if now >= next_tick {
            if now < end {
                churn_due += args.churn * TICK_NS as f64 / SEC as f64;
                moves_due += args.moves * TICK_NS as f64 / SEC as f64;
                while churn_due >= 1.0 {
                    s.replace_one()?;
                    churn_due -= 1.0;
                }
                while moves_due >= 1.0 {
                    s.move_one();
                    moves_due -= 1.0;
                }
            }
            s.housekeeping(now);
            next_tick += TICK_NS;
        }
        // The last sample is due at the end, even if the sampling period does not divide it.
        if now >= end && next_sample > now {
            next_sample = now;
        }
        let wait = next_pub
            .min(next_tick)
            .min(next_sample)
            .saturating_sub(now_ns());
        s.poll_once(Duration::from_nanos(wait.clamp(MS / 2, 5 * MS)));
    }

    // Drain: keep the population alive until every vanished client has been checked and
    // every departed socket closed, then log everyone off.
    // Late deliveries of the last messages are counted with the last sample.
    let drain_start = now_ns();
    let drain_end = drain_start + args.vanish_deadline_ns() + 5 * SEC;
    let mut next_tick = drain_start;
    loop {
        let now = now_ns();
        let settled =
            s.vanished.is_empty() && !s.clients.values().any(|c| c.phase == Phase::Departed);
        if now >= drain_end || (settled && now > drain_start + 500 * MS) {
            break;
        }
        if now >= next_tick {
            s.housekeeping(now);
            next_tick = now + TICK_NS;
        }
        s.poll_once(Duration::from_millis(5));
    }
    let (expected, received) = std::mem::take(&mut s.period);
    if let Some(last) = s.report.samples.last_mut() {
        last.expected += expected;
        last.received += received;
    }
    s.report.deliveries_expected = s.report.samples.iter().map(|x| x.expected).sum();
    s.report.deliveries_received = s.report.samples.iter().map(|x| x.received).sum();
    let unchecked = s.vanished.len() as u64;
    if unchecked > 0 {
        s.log(format!(
            "{unchecked} vanished clients were never answered for"
        ));
    }
    let all: Vec<usize> = s.clients.keys().copied().collect();
    for &g in &all {
        s.send(&s.clients[&g].socket, &Request::Logoff.to_bytes());
    }
    s.send(&s.checker, &Request::Logoff.to_bytes());
    for g in all {
        s.close(g);
    }
    if let Some(m) = metrics {
        std::thread::sleep(Duration::from_secs(2));
        s.report.users_after_logoff = scrape(m).and_then(|m| m.get("udpchat_users").copied());
    }
    finish(&mut s.report, unchecked);
    Ok(s.report)
}

/// Runs the soak and prints the report (JSON with --json); returns whether every check
/// passed.
///
/// # Errors
/// Invalid flags, sockets that can't be bound, a population that can't be built.
pub fn main_with(args: &SoakArgs) -> anyhow::Result<bool> {
    let r = soak(args)?;
    args.output.print(&r)?;
    Ok(r.clean)
}
