//! The phases of a run on the members this process holds: log in, join, let the server's
//! USER_JOINS settle, publish and drain, blast raw, log off. Used as is by a single-process
//! run and a sweep, and piece by piece by the workers of a multi-process run.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use proto::Request;
use serde::{Deserialize, Serialize};

use crate::hist::{from_pairs, new_histogram, pairs};
use crate::members::{
    GroupInfo, Members, Shared, CAPS, CONFIRMED, JOINED, LOGGED_IN, PROVED, TOLD,
};
use crate::options::{FanOut, Setup, Traffic};
use crate::procstat::UdpCounters;
use crate::progress::Progress;
use crate::publish::{publish, Plan, Published};
use crate::raw::{blast, blast_groups, GroupBlast};
use crate::report::{per, Latency, RawReport, Report, RoundStats};
use crate::sent::Sent;
use crate::session::{self, Round};
use crate::sys::now_ns;

/// Which members take part in one measured step and where they go.
pub(crate) struct Step {
    /// Local indices of the members taking part.
    pub(crate) members: Vec<usize>,
    /// Channel (0-based within the step) of each local member index taking part.
    pub(crate) channel_of: Vec<usize>,
    /// The title of each channel of the step.
    pub(crate) titles: Vec<String>,
    /// Publishers: (local index, channel).
    pub(crate) publishers: Vec<(usize, usize)>,
}

impl Step {
    /// The step of a plain run: local member `i` is global `globals[i]`, in channel
    /// `global % channels` of `setup`'s titles; publishers are globals `0..publishers`
    /// held here.
    pub(crate) fn plain(
        globals: &[usize],
        channels: usize,
        setup: &Setup,
        publishers: usize,
    ) -> Self {
        let pubs = globals
            .iter()
            .enumerate()
            .filter(|(_, &g)| g < publishers)
            .map(|(i, &g)| (i, g % channels))
            .collect();
        Step {
            members: (0..globals.len()).collect(),
            channel_of: globals.iter().map(|g| g % channels).collect(),
            titles: (0..channels).map(|c| setup.title(c)).collect(),
            publishers: pubs,
        }
    }

    /// A step of a sweep: the first `size` members in the one channel `title`, the first
    /// `publishers` of them publishing.
    pub(crate) fn one_channel(size: usize, title: String, publishers: usize) -> Self {
        Step {
            members: (0..size).collect(),
            channel_of: vec![0; size],
            titles: vec![title],
            publishers: (0..publishers.min(size)).map(|i| (i, 0)).collect(),
        }
    }

    /// Channels in the step.
    pub(crate) fn channels(&self) -> usize {
        self.titles.len()
    }

    /// The members taking part for which `keep` holds.
    fn members_where(&self, keep: impl Fn(usize) -> bool) -> Vec<usize> {
        self.members.iter().copied().filter(|&i| keep(i)).collect()
    }
}

/// What the setup of a step found.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub(crate) struct SetupOut {
    /// The login round.
    pub(crate) login: RoundStats,
    /// The join round.
    pub(crate) join: RoundStats,
    /// Seconds waited for USER_JOINS to stop.
    pub(crate) settle_s: f64,
    /// From the first JOIN_REQ to the last USER_JOINS received: filling the channels.
    #[serde(default)]
    pub(crate) fill_s: f64,
    /// Members that got JOIN_ACK, per channel.
    pub(crate) joined_per_channel: Vec<u64>,
}

/// What the publishing phase of a step found.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub(crate) struct PhaseOut {
    /// What was sent.
    pub(crate) published: Published,
    /// PUBLIC_MSGs received.
    pub(crate) received: u64,
    /// Datagrams that carried them.
    #[serde(default)]
    pub(crate) datagrams: u64,
    /// When the last one arrived (`now_ns`).
    pub(crate) last_ns: u64,
    /// ERRORs received.
    pub(crate) errors: u64,
    /// `ERROR please log in` received.
    pub(crate) expired: u64,
    /// Latency as (microseconds, count) pairs, to merge across processes.
    pub(crate) latency: Vec<(u64, u64)>,
    /// The same, of members that asked for batches only.
    #[serde(default)]
    pub(crate) latency_batch: Vec<(u64, u64)>,
    /// The same, of classic members only.
    #[serde(default)]
    pub(crate) latency_classic: Vec<(u64, u64)>,
}

/// How the step's multicast members came to hear their channel's group.
#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct ConfirmOut {
    /// Members that asked for multicast and joined.
    pub(crate) members: usize,
    /// Of those, how many were told a group (their channel has one).
    pub(crate) told: usize,
    /// Of those, how many confirmed their group.
    pub(crate) confirmed: usize,
    /// Seconds waited for them.
    pub(crate) secs: f64,
}

/// Logs in the step's members not yet logged in, each proving its address (the receiver
/// answers LOGIN_ACK with PROVE_REQ and the token with PROVE): the round ends when they
/// are proved, so no delivery is held back by the budget of an unproved address.
pub(crate) fn login(ms: &Members, step: &Step, run_id: u32, pb: &Progress) -> RoundStats {
    let total = step.members.len();
    let progress = |n: usize| pb.set(format!("logging in: {n}/{total}"));
    let round = Round::quick(PROVED, Duration::from_secs(600), &progress);
    session::login(&ms.shared, &step.members, &round, run_id)
}

/// The step's members that ask for batches (`--batch`, every other one with `--mixed`)
/// or multicast (`--multicast`) ask for them, in one CAPS_REQ each, those that have not
/// already (before they join, so that MCAST_GROUP follows their JOIN_ACK). Any CAPS_ACK
/// will do: a server that grants less (no `--multicast`) shows in the multicast figures.
/// `None` if no member asks for anything.
pub(crate) fn caps(ms: &Members, step: &Step, pb: &Progress) -> Option<RoundStats> {
    let shared = &ms.shared;
    let members = step.members_where(|i| shared.batch[i] || shared.multicast[i]);
    if members.is_empty() {
        return None;
    }
    // A new step's channel: its group is yet to be told and heard.
    for &i in &members {
        shared.status[i].fetch_and(!(CONFIRMED | TOLD), Ordering::Relaxed);
    }
    let total = members.len();
    let progress = |n: usize| pb.set(format!("asking for caps: {n}/{total}"));
    let round = Round::quick(CAPS, Duration::from_secs(120), &progress);
    Some(session::caps(shared, &members, &round))
}

/// With `--multicast`: waits (at most a minute) until every multicast member that joined
/// and was told its channel's group has heard it and confirmed (a channel kept off
/// multicast tells nobody). `None` without multicast members.
pub(crate) fn confirm(ms: &Members, step: &Step, pb: &Progress) -> Option<ConfirmOut> {
    let shared = &ms.shared;
    let members = step.members_where(|i| shared.multicast[i] && shared.has(i, JOINED));
    if members.is_empty() {
        return None;
    }
    let start = Instant::now();
    let count = |bit: u8| members.iter().filter(|&&i| shared.has(i, bit)).count();
    loop {
        // MCAST_GROUP follows JOIN_ACK at once: a moment settles who is told.
        thread::sleep(Duration::from_millis(50));
        let (told, n) = (count(TOLD), count(CONFIRMED));
        pb.set(format!("hearing the groups: {n}/{told} confirmed"));
        let settled = start.elapsed() > Duration::from_millis(300);
        if (settled && n == told) || start.elapsed() > Duration::from_secs(60) {
            // A moment for the last MCAST_JOINEDs to reach the server.
            thread::sleep(Duration::from_millis(200));
            return Some(ConfirmOut {
                members: members.len(),
                told,
                confirmed: n,
                secs: start.elapsed().as_secs_f64(),
            });
        }
    }
}

/// Joins the step's members and waits for the server's USER_JOINS to stop; returns the
/// setup of the step: `login`, the join round, the wait, the time from the first join to
/// the last USER_JOINS (filling the channels), and the members joined per channel.
pub(crate) fn join(
    ms: &Members,
    step: &Step,
    login: RoundStats,
    setup: &Setup,
    pb: &Progress,
) -> SetupOut {
    let start_ns = now_ns();
    let total = step.members.len();
    let size = total.div_ceil(step.channels().max(1)).max(1);
    let window = setup.join_window.unwrap_or((20_000 / size).clamp(1, 64));
    let progress = |n: usize| pb.set(format!("joining: {n}/{total} (window {window})"));
    let round = Round {
        bit: JOINED,
        window,
        retry: Duration::from_secs(3),
        deadline: Instant::now() + Duration::from_secs_f64(setup.settle_max.max(60.0) * 2.0),
        progress: &progress,
    };
    let join = session::join(&ms.shared, &step.members, &round, |i| {
        step.titles[step.channel_of[i]].as_str()
    });
    let settle_s = settle(&ms.shared, setup.settle_max, pb, "joins");
    let mut joined_per_channel = vec![0u64; step.channels()];
    for &i in &step.members {
        if ms.shared.has(i, JOINED) {
            joined_per_channel[step.channel_of[i]] += 1;
        }
    }
    let last = ms
        .shared
        .counters
        .last_membership_ns
        .load(Ordering::Relaxed);
    let fill_s = if last > start_ns {
        ((last - start_ns) as f64 / 1e9).max(join.secs)
    } else {
        join.secs
    };
    SetupOut {
        login,
        join,
        settle_s,
        fill_s,
        joined_per_channel,
    }
}

/// Waits until no USER_JOINS/USER_PARTS arrived for half a second, `max` seconds at most.
fn settle(shared: &Shared, max: f64, pb: &Progress, what: &str) -> f64 {
    let start = Instant::now();
    let c = &shared.counters;
    loop {
        let quiet_ns = now_ns().saturating_sub(c.last_membership_ns.load(Ordering::Relaxed));
        if quiet_ns > 500_000_000 || start.elapsed().as_secs_f64() > max {
            return start.elapsed().as_secs_f64();
        }
        pb.set(format!(
            "waiting for the server to finish the {what}' notices: {} received",
            c.membership.load(Ordering::Relaxed)
        ));
        thread::sleep(Duration::from_millis(100));
    }
}

/// Publishes `traffic` from the step's publishers from `start_ns`, then waits for the
/// deliveries to stop arriving. `expected_per_msg` (the members of each channel, if known
/// here) shows what is missing; `on_progress` hears (sent, received) every 100 ms.
pub(crate) fn publish_phase(
    ms: &Members,
    step: &Step,
    traffic: &Traffic,
    start_ns: u64,
    expected_per_msg: &[u64],
    pb: &Progress,
    on_progress: &dyn Fn(u64, u64),
) -> PhaseOut {
    let c = &ms.shared.counters;
    let _ = ms.take_latency();
    let recv0 = c.public.load(Ordering::Relaxed);
    let dgrams0 = c.public_datagrams.load(Ordering::Relaxed);
    let (err0, exp0) = (
        c.errors.load(Ordering::Relaxed),
        c.expired.load(Ordering::Relaxed),
    );
    let plan = Plan {
        publishers: &step.publishers,
        channels: step.channels(),
        start_ns,
        traffic,
    };
    let sent = AtomicU64::new(0);
    let done = AtomicBool::new(false);
    let end_ns = plan.end_ns();
    // What is missing is only told apart for one channel, whose members all get each one.
    let one_channel = step.channels() == 1;
    let published = thread::scope(|s| {
        let h = s.spawn(|| {
            let p = publish(&ms.shared, &plan, &sent);
            done.store(true, Ordering::Relaxed);
            p
        });
        let mut last_change = Instant::now();
        let mut last_recv = 0;
        loop {
            thread::sleep(Duration::from_millis(100));
            let got = c.public.load(Ordering::Relaxed) - recv0;
            let n = sent.load(Ordering::Relaxed);
            let expected: u64 = expected_per_msg.iter().max().copied().unwrap_or(0) * n;
            on_progress(n, got);
            pb.set(format!(
                "publishing: {n} messages sent, {got} deliveries received{}",
                if expected > 0 && one_channel {
                    format!(
                        " ({:.2}% missing)",
                        100.0 * expected.saturating_sub(got) as f64 / expected as f64
                    )
                } else {
                    String::new()
                }
            ));
            if got != last_recv {
                last_recv = got;
                last_change = Instant::now();
            }
            if done.load(Ordering::Relaxed) && now_ns() > end_ns {
                // Drain: stop once deliveries have stopped for 300 ms, or for 2 s while some
                // of one channel's are still missing (a receiver thread descheduled on a
                // busy machine must not turn into loss); 10 s at most.
                let missing = expected > 0 && one_channel && got < expected;
                let wait = Duration::from_millis(if missing { 2000 } else { 300 });
                let quiet = last_change.elapsed() > wait;
                let overdue = now_ns() > end_ns + 10_000_000_000;
                if quiet || overdue {
                    break;
                }
            }
        }
        h.join().unwrap_or_default()
    });
    let hists = ms.take_latency();
    PhaseOut {
        published,
        received: c.public.load(Ordering::Relaxed) - recv0,
        datagrams: c.public_datagrams.load(Ordering::Relaxed) - dgrams0,
        last_ns: c.last_public_ns.load(Ordering::Relaxed),
        errors: c.errors.load(Ordering::Relaxed) - err0,
        expired: c.expired.load(Ordering::Relaxed) - exp0,
        latency: pairs(&hists.all),
        latency_batch: pairs(&hists.batch),
        latency_classic: pairs(&hists.classic),
    }
}

/// A raw blaster to run beside the receivers: what its progress line and its panic say.
struct Blaster {
    /// Shown on the progress line.
    label: &'static str,
    /// The error if its thread panics.
    panicked: &'static str,
}

/// Runs `blast` (which counts its sends in the counter it is given) while showing its
/// progress, until it is done and the receivers have been quiet for 300 ms, so its last
/// deliveries are in; then the figures of what they received of it. `expected` is the
/// sent count unless the caller knows better, and there is no rate or latency.
fn blast_and_count(
    ms: &Members,
    blaster: Blaster,
    pb: &Progress,
    blast: impl FnOnce(&AtomicU64) -> anyhow::Result<Sent> + Send,
) -> anyhow::Result<RawReport> {
    let c = &ms.shared.counters;
    let raw0 = c.raw.load(Ordering::Relaxed);
    let udp0 = UdpCounters::read();
    let sent = AtomicU64::new(0);
    let start = now_ns();
    let done = AtomicBool::new(false);
    let blasted = thread::scope(|s| {
        let h = s.spawn(|| {
            let r = blast(&sent);
            done.store(true, Ordering::Relaxed);
            r
        });
        let mut last = (Instant::now(), 0);
        loop {
            thread::sleep(Duration::from_millis(100));
            let got = c.raw.load(Ordering::Relaxed) - raw0;
            pb.set(format!(
                "{}: {} sent, {got} received",
                blaster.label,
                sent.load(Ordering::Relaxed)
            ));
            if got != last.1 {
                last = (Instant::now(), got);
            }
            if done.load(Ordering::Relaxed) && last.0.elapsed() > Duration::from_millis(300) {
                break;
            }
        }
        h.join().map_err(|_| anyhow::anyhow!(blaster.panicked))
    })??;
    let received = c.raw.load(Ordering::Relaxed) - raw0;
    let last_ns = c.last_public_ns.load(Ordering::Relaxed);
    let secs = last_ns.saturating_sub(start) as f64 / 1e9;
    Ok(RawReport {
        sent: blasted.sent,
        received,
        secs,
        deliveries_per_s: per(received as f64, secs),
        cpu_ns_per_datagram: per(blasted.cpu_ns as f64, blasted.sent as f64),
        server_ratio: 0.0,
        udp: UdpCounters::read().since(&udp0),
        expected: blasted.sent,
        rate: 0.0,
        latency_us: None,
    })
}

/// Blasts the step's channels with `sendmmsg`, paced like the server run (the same
/// planned messages per second in all), and counts what the receivers get.
///
/// # Errors
/// If the blaster's socket can't be made.
pub(crate) fn raw_phase(
    ms: &Members,
    step: &Step,
    traffic: &Traffic,
    pb: &Progress,
) -> anyhow::Result<RawReport> {
    let mut dests: Vec<Vec<SocketAddr>> = vec![Vec::new(); step.channels()];
    for &i in &step.members {
        dests[step.channel_of[i]].push(ms.addr(i));
    }
    let _ = ms.take_latency();
    let duration = Duration::from_secs_f64(traffic.duration);
    let rate = traffic.rate * step.publishers.len() as f64;
    let blaster = Blaster {
        label: "raw sendmmsg",
        panicked: "the raw blaster panicked",
    };
    let report = blast_and_count(ms, blaster, pb, |sent| {
        blast(&dests, traffic.message_size, duration, rate, sent)
    })?;
    let hist = ms.take_latency().raw;
    Ok(RawReport {
        rate,
        latency_us: (rate > 0.0).then(|| Latency::of(&hist)),
        ..report
    })
}

/// Blasts each of the step's channels' groups (as MCAST_GROUP named them) from one socket,
/// CHANNEL_DATA-shaped and tagged with the channel's key, and counts what the same
/// receivers get on the members' group sockets. It runs in closed loop on the receivers'
/// count, never paced: no latency of its own.
///
/// # Errors
/// If the blaster's socket can't be made, or no group of the step is known.
pub(crate) fn raw_multicast_phase(
    ms: &Members,
    step: &Step,
    traffic: &Traffic,
    pb: &Progress,
) -> anyhow::Result<RawReport> {
    let shared = &ms.shared;
    let (groups, members): (Vec<GroupInfo>, Vec<u64>) = {
        let known = shared
            .groups
            .lock()
            .map_err(|_| anyhow::anyhow!("a receiver panicked"))?;
        step.titles
            .iter()
            .enumerate()
            .filter_map(|(c, title)| {
                let members = step
                    .members
                    .iter()
                    .filter(|&&i| step.channel_of[i] == c && shared.multicast[i])
                    .count() as u64;
                known
                    .get(&title.to_lowercase())
                    .cloned()
                    .map(|g| (g, members))
            })
            .unzip()
    };
    anyhow::ensure!(
        !groups.is_empty(),
        "no channel group known for the raw multicast blaster"
    );
    let plan = GroupBlast {
        groups: &groups,
        members: &members,
        size: traffic.message_size,
        window: u64::from(traffic.window),
        duration: Duration::from_secs_f64(traffic.duration),
    };
    let blaster = Blaster {
        label: "raw multicast",
        panicked: "the raw multicast blaster panicked",
    };
    let c = &shared.counters;
    let report = blast_and_count(ms, blaster, pb, |sent| {
        blast_groups(&plan, sent, &c.raw, &shared.raw_thread)
    })?;
    // Deliveries the blast should have made: each datagram to every multicast member of
    // its channel (channels are blasted in turn).
    let per_round: u64 = members.iter().sum();
    Ok(RawReport {
        expected: report.sent * per_round / groups.len().max(1) as u64,
        ..report
    })
}

/// Runs `f` with keepalives (STILL_HERE from every logged-in member every `interval`)
/// going in the background.
pub(crate) fn with_keepalive<T>(ms: &Members, interval: Duration, f: impl FnOnce() -> T) -> T {
    let stop = AtomicBool::new(false);
    thread::scope(|s| {
        s.spawn(|| keepalive(&ms.shared, interval, &stop));
        let out = f();
        stop.store(true, Ordering::Relaxed);
        out
    })
}

/// Sends STILL_HERE from every logged-in member every `interval` until `stop`.
fn keepalive(shared: &Shared, interval: Duration, stop: &AtomicBool) {
    let still_here = Request::StillHere.to_bytes();
    let mut next = Instant::now() + interval;
    while !stop.load(Ordering::Relaxed) {
        if Instant::now() >= next {
            let alive: Vec<usize> = (0..shared.sockets.len())
                .filter(|&i| shared.has(i, LOGGED_IN))
                .collect();
            session::send_each(shared, &alive, &still_here, 50_000);
            next += interval;
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// Logs every member off and waits (`settle_max` seconds at most) for the USER_PARTS to
/// stop, so the next run starts on a quiet server.
pub(crate) fn logoff_all(ms: &Members, settle_max: f64, pb: &Progress) {
    let all: Vec<usize> = (0..ms.len())
        .filter(|&i| ms.shared.has(i, LOGGED_IN))
        .collect();
    pb.set(format!("logging off {} clients", all.len()));
    session::logoff(&ms.shared, &all);
    settle(&ms.shared, settle_max, pb, "log-offs");
}

/// The report of a run of `run` over `clients` members in `channels` channels, with
/// `publishers`, in `processes` processes: the flags' part filled in, the figures to come.
pub(crate) fn new_report(
    run: &FanOut,
    clients: usize,
    channels: usize,
    publishers: usize,
    processes: usize,
) -> Report {
    let (pop, traffic) = (&run.population, &run.traffic);
    Report {
        clients,
        channels,
        publishers,
        rate: traffic.rate,
        batch: pop.batch,
        mixed: pop.mixed,
        message_size: traffic.message_size,
        protected: pop.protected.min(clients),
        servers: pop.servers.clone(),
        processes,
        ..Report::default()
    }
}

/// Fills a report's deliveries, latency and server figures from the phase outputs.
pub(crate) fn fill_report(
    report: &mut Report,
    setup: &SetupOut,
    phases: &[PhaseOut],
    start_ns: u64,
    duration: f64,
) {
    report.login = setup.login;
    report.join = setup.join;
    report.settle_s = setup.settle_s;
    report.fill_s = setup.fill_s;
    report.duration_s = duration;
    let mut sent_per_channel = vec![0u64; setup.joined_per_channel.len()];
    let mut hist = new_histogram();
    let mut hist_batch = new_histogram();
    let mut hist_classic = new_histogram();
    let mut last_ns = 0;
    for p in phases {
        report.messages_sent += p.published.sent;
        report.deliveries_received += p.received;
        report.datagrams_received += p.datagrams;
        let _ = hist_batch.add(from_pairs(&p.latency_batch));
        let _ = hist_classic.add(from_pairs(&p.latency_classic));
        report.stalls += p.published.stalls;
        report.max_publish_lag_us = report.max_publish_lag_us.max(p.published.max_lag_us);
        report.errors += p.errors;
        report.expired += p.expired;
        for (c, n) in p.published.sent_per_channel.iter().enumerate() {
            if let Some(s) = sent_per_channel.get_mut(c) {
                *s += n;
            }
        }
        let _ = hist.add(from_pairs(&p.latency));
        last_ns = last_ns.max(p.last_ns);
    }
    report.deliveries_expected = sent_per_channel
        .iter()
        .zip(&setup.joined_per_channel)
        .map(|(s, j)| s * j)
        .sum();
    report.channel_size = setup.joined_per_channel.iter().copied().max().unwrap_or(0) as usize;
    report.publish_s = if report.deliveries_received > 0 && last_ns > start_ns {
        (last_ns - start_ns) as f64 / 1e9
    } else {
        duration
    };
    report.latency_us = Latency::of(&hist);
    if report.mixed {
        report.latency_batch_us = Some(Latency::of(&hist_batch));
        report.latency_classic_us = Some(Latency::of(&hist_classic));
    }
}
