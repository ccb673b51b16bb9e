//! Runs in one process: a plain scenario, or a sweep over channel sizes.

use crate::members::Members;
use crate::options::{FanOut, Traffic};
use crate::procstat::UdpCounters;
use crate::progress::Progress;
use crate::redis_cmp;
use crate::report::{MulticastReport, Report, Summary};
use crate::scenario::{self, Step};
use crate::sys::now_ns;
use crate::watch::ServerWatch;

/// Measures one step on members already bound: login, join, publish, raw.
fn measure(
    ms: &Members,
    run: &FanOut,
    step: &Step,
    run_id: u32,
    pb: &Progress,
) -> anyhow::Result<Report> {
    let mut watch = ServerWatch::new(&run.server_pids);
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
    if let Some(caps) = scenario::caps(ms, step, pb) {
        pb.println(format!(
            "caps (batch, multicast) answered for {}/{} in {:.2} s",
            caps.done, caps.total, caps.secs
        ));
    }
    let setup = scenario::join(ms, step, login, &run.setup, pb);
    let join = &setup.join;
    pb.println(format!(
        "joined {}/{} in {:.2} s: {:.0} joins/s ({} requests); USER_JOINS settled after {:.2} s; channels filled in {:.2} s",
        join.done,
        join.total,
        join.secs,
        join.rate(),
        join.attempts,
        setup.settle_s,
        setup.fill_s
    ));
    let confirmed = scenario::confirm(ms, step, pb);
    if let Some(c) = confirmed {
        pb.println(format!(
            "{} multicast members: {} told a group, {} heard it and confirmed in {:.2} s",
            c.members, c.told, c.confirmed, c.secs
        ));
    }
    watch.joined();
    let udp0 = UdpCounters::read();
    // What the groups heard from here on is the publishing phase's.
    let _ = ms.shared.counters.group.take();
    watch.start();
    let start_ns = now_ns() + 100_000_000;
    let phase = scenario::publish_phase(
        ms,
        step,
        &run.traffic,
        start_ns,
        &setup.joined_per_channel,
        pb,
        &|_, _| {},
    );
    let server = watch.stop();
    let udp = UdpCounters::read().since(&udp0);
    let heard = ms.shared.counters.group.take();
    let mut report = Report {
        udp,
        server,
        ..scenario::new_report(
            run,
            step.members.len(),
            step.channels(),
            step.publishers.len(),
            1,
        )
    };
    scenario::fill_report(
        &mut report,
        &setup,
        &[phase],
        start_ns,
        run.traffic.duration,
    );
    report.multicast = confirmed.map(|c| MulticastReport {
        members: c.members,
        told: c.told,
        confirmed: c.confirmed,
        confirm_s: c.secs,
        heard,
    });
    if let Some(secs) = run.raw {
        // The blasters stand in for the publishers, for --raw-duration.
        let traffic = Traffic {
            duration: secs,
            ..run.traffic
        };
        report.raw = Some(scenario::raw_phase(ms, step, &traffic, pb)?);
        if report.multicast.is_some() {
            let raw = scenario::raw_multicast_phase(ms, step, &traffic, pb)?;
            report.raw_multicast = Some(raw);
        }
    }
    if let Some(addr) = run.compare_redis {
        let size = setup.joined_per_channel.first().copied().unwrap_or(0) as usize;
        let readers = run.population.receivers;
        let redis = redis_cmp::run(addr, size, readers, &run.traffic, pb)?;
        report.redis_pubsub = Some(redis);
    }
    report.finish();
    Ok(report)
}

/// The members of `globals`, out of a run of `clients`, bound and read.
///
/// # Errors
/// As [`Members::start`].
pub(crate) fn bind_members(
    run: &FanOut,
    globals: Vec<usize>,
    clients: usize,
    run_id: u32,
) -> anyhow::Result<Members> {
    let protection = run.population.protection(clients, run_id);
    Members::start(globals, &run.population, protection)
}

/// Runs `f` on `ms` with keepalives going, then logs everyone off and stops the receivers.
pub(crate) fn with_members<T>(
    ms: Members,
    run: &FanOut,
    pb: &Progress,
    f: impl FnOnce(&Members) -> T,
) -> T {
    let out = scenario::with_keepalive(&ms, run.setup.keepalive, || f(&ms));
    scenario::logoff_all(&ms, run.setup.settle_max, pb);
    ms.stop();
    out
}

/// A plain run in this process.
///
/// # Errors
/// Sockets that can't be bound, a raw blaster that can't start.
pub(crate) fn single(run: &FanOut, run_id: u32, pb: &Progress) -> anyhow::Result<Report> {
    let globals: Vec<usize> = (0..run.clients).collect();
    let ms = bind_members(run, globals.clone(), run.clients, run_id)?;
    let channels = run.population.channels;
    let step = Step::plain(&globals, channels, &run.setup, run.traffic.publishers);
    with_members(ms, run, pb, |ms| measure(ms, run, &step, run_id, pb))
}

/// One big channel per size in `run.sweep`, on one pool of members: step k joins the first
/// `size` members into channel `k` (their current channel), so nobody logs off in between.
///
/// # Errors
/// As [`single`].
pub(crate) fn sweep(run: &FanOut, run_id: u32, pb: &Progress) -> anyhow::Result<Vec<Report>> {
    let max = run.sweep.iter().copied().max().unwrap_or(0);
    let ms = bind_members(run, (0..max).collect(), max, run_id)?;
    with_members(ms, run, pb, |ms| {
        let mut out = Vec::new();
        for (k, &size) in run.sweep.iter().enumerate() {
            pb.println(format!("-- channel of {size} members --"));
            let step = Step::one_channel(size, run.setup.title(k), run.traffic.publishers);
            let r = measure(ms, run, &step, run_id, pb)?;
            pb.println(r.summary());
            out.push(r);
        }
        Ok(out)
    })
}
