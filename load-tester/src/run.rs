//! Runs in one process: a plain scenario, or a sweep over channel sizes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use crate::cli::Args;
use crate::members::Members;
use crate::procstat::UdpCounters;
use crate::report::{MulticastReport, Report};
use crate::scenario::{self, Progress, ServerWatch, SetupOut, Step};
use crate::sys::now_ns;

/// Runs with keepalives going in the background for as long as `f` runs.
fn with_keepalive<T>(ms: &Members, args: &Args, f: impl FnOnce() -> T) -> T {
    let stop = AtomicBool::new(false);
    thread::scope(|s| {
        s.spawn(|| {
            scenario::keepalive(
                &ms.shared,
                Duration::from_secs_f64(args.keepalive.max(1.0)),
                &stop,
            )
        });
        let out = f();
        stop.store(true, Ordering::Relaxed);
        out
    })
}

/// Measures one step on members already bound: login, join, publish, raw.
fn measure(
    ms: &Members,
    args: &Args,
    step: &Step,
    run_id: u32,
    pb: &Progress,
) -> anyhow::Result<Report> {
    let mut watch = ServerWatch::new(&args.server_pid);
    let login = scenario::login(ms, step, run_id, pb);
    pb.println(format!(
        "logged in {}/{} in {:.2} s: {:.0} logins/s ({} requests)",
        login.done,
        login.total,
        login.secs,
        login.rate(),
        login.attempts
    ));
    watch.logged_in(login.done);
    if let Some(caps) = scenario::caps(ms, args, step, pb) {
        pb.println(format!(
            "caps (batch, multicast) answered for {}/{} in {:.2} s",
            caps.done, caps.total, caps.secs
        ));
    }
    let (join, settle_s, fill_s, joined_per_channel) = scenario::join(ms, args, step, pb);
    pb.println(format!(
        "joined {}/{} in {:.2} s: {:.0} joins/s ({} requests); USER_JOINS settled after {:.2} s; channels filled in {:.2} s",
        join.done,
        join.total,
        join.secs,
        join.rate(),
        join.attempts,
        settle_s,
        fill_s
    ));
    let confirmed = scenario::confirm(ms, step, pb);
    if let Some(c) = confirmed {
        pb.println(format!(
            "{} multicast members: {} told a group, {} heard it and confirmed in {:.2} s",
            c.members, c.told, c.confirmed, c.secs
        ));
    }
    watch.joined();
    let setup = SetupOut {
        login,
        join,
        settle_s,
        fill_s,
        joined_per_channel,
    };
    let expected_per_msg: Vec<u64> = setup.joined_per_channel.clone();
    let udp0 = UdpCounters::read();
    let group0 = GroupCounts::read(ms);
    watch.start();
    let start_ns = now_ns() + 100_000_000;
    let phase =
        scenario::publish_phase(ms, args, step, start_ns, &expected_per_msg, pb, &|_, _| {});
    let server = watch.stop();
    let udp = UdpCounters::read().since(&udp0);
    let group = GroupCounts::read(ms).since(&group0);
    let mut report = Report {
        clients: step.members.len(),
        channels: step.channels,
        publishers: step.publishers.len(),
        rate: args.rate,
        batch: args.batch,
        mixed: args.mixed,
        message_size: args.message_size,
        protected: args.protected.min(step.members.len()),
        servers: args.server.clone(),
        processes: 1,
        udp,
        server,
        ..Report::default()
    };
    scenario::fill_report(&mut report, &setup, &[phase], start_ns, args.duration);
    report.multicast = confirmed.map(|c| MulticastReport {
        members: c.members,
        told: c.told,
        confirmed: c.confirmed,
        confirm_s: c.secs,
        group_datagrams: group.accepted,
        bad_tag: group.bad_tag,
        old_sequence: group.old_sequence,
        unicast_after_confirm: group.unicast_after_confirm,
        group_errors: group.errors,
    });
    if args.raw {
        report.raw = Some(scenario::raw_phase(ms, args, step, pb)?);
        if report.multicast.is_some() {
            report.raw_multicast = Some(scenario::raw_multicast_phase(ms, args, step, pb)?);
        }
    }
    if let Some(addr) = args.compare_redis {
        let size = setup.joined_per_channel.first().copied().unwrap_or(0) as usize;
        report.redis_pubsub = Some(crate::redis_cmp::run(addr, args, size, pb)?);
    }
    report.finish();
    Ok(report)
}

/// The receivers' multicast counters at one moment.
#[derive(Debug, Default, Clone, Copy)]
struct GroupCounts {
    accepted: u64,
    bad_tag: u64,
    old_sequence: u64,
    unicast_after_confirm: u64,
    errors: u64,
}

impl GroupCounts {
    fn read(ms: &Members) -> Self {
        let c = &ms.shared.counters;
        let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        GroupCounts {
            accepted: get(&c.group_datagrams),
            bad_tag: get(&c.bad_tag),
            old_sequence: get(&c.old_sequence),
            unicast_after_confirm: get(&c.unicast_after_confirm),
            errors: get(&c.group_errors),
        }
    }

    fn since(&self, before: &Self) -> Self {
        GroupCounts {
            accepted: self.accepted - before.accepted,
            bad_tag: self.bad_tag - before.bad_tag,
            old_sequence: self.old_sequence - before.old_sequence,
            unicast_after_confirm: self.unicast_after_confirm - before.unicast_after_confirm,
            errors: self.errors - before.errors,
        }
    }
}

/// A plain run in this process.
///
/// # Errors
/// Sockets that can't be bound, a raw blaster that can't start.
pub fn single(args: &Args, run_id: u32, pb: &Progress) -> anyhow::Result<Report> {
    let globals: Vec<usize> = (0..args.clients).collect();
    let ms = Members::start(
        globals.clone(),
        &args.server,
        args.receivers,
        args.rcvbuf,
        |g| args.batch_member(g),
        |g| args.wants_multicast(g),
        crate::members::protection(args, args.clients, run_id),
    )?;
    let step = Step::plain(&globals, args.channels, args.publishers);
    let report = with_keepalive(&ms, args, || measure(&ms, args, &step, run_id, pb));
    scenario::logoff_all(&ms, args, pb);
    ms.stop();
    report
}

/// One big channel per size in `args.sweep`, on one pool of members: step k joins the first
/// `size` members into channel `k` (their current channel), so nobody logs off in between.
///
/// # Errors
/// As [`single`].
pub fn sweep(args: &Args, run_id: u32, pb: &Progress) -> anyhow::Result<Vec<Report>> {
    let max = args.sweep.iter().copied().max().unwrap_or(0);
    let globals: Vec<usize> = (0..max).collect();
    let ms = Members::start(
        globals,
        &args.server,
        args.receivers,
        args.rcvbuf,
        |g| args.batch_member(g),
        |g| args.wants_multicast(g),
        crate::members::protection(args, max, run_id),
    )?;
    let reports = with_keepalive(&ms, args, || {
        let mut out = Vec::new();
        for (k, &size) in args.sweep.iter().enumerate() {
            pb.println(format!("-- channel of {size} members --"));
            let step = Step {
                members: (0..size).collect(),
                channel_of: vec![0; size],
                channels: 1,
                title_base: k,
                publishers: (0..args.publishers.min(size)).map(|i| (i, 0)).collect(),
            };
            let r = measure(&ms, args, &step, run_id, pb)?;
            pb.println(r.summary());
            out.push(r);
        }
        Ok::<_, anyhow::Error>(out)
    });
    scenario::logoff_all(&ms, args, pb);
    ms.stop();
    reports
}
