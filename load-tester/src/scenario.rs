//! The phases of a run on the members this process holds: log in, join, let the server's
//! USER_JOINS settle, publish and drain, blast raw, log off. Used as is by a single-process
//! run and a sweep, and piece by piece by the workers of a multi-process run.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use proto::Request;
use serde::{Deserialize, Serialize};

use crate::cli::Args;
use crate::members::{Members, Shared, CAPS, CONFIRMED, JOINED, LOGGED_IN, TOLD};
use crate::procstat::{process_cpu_ns, rss_kib, UdpCounters};
use crate::publish::{publish, Plan, Published};
use crate::raw::{blast, blast_groups, GroupBlast};
use crate::report::{Latency, RawReport, Report, ServerReport};
use crate::session::{self, Round, RoundStats};
use crate::sys::now_ns;

/// The progress line on standard error (hidden when asked or when not a terminal).
pub struct Progress(ProgressBar);

impl Progress {
    /// A spinner with a message, or nothing if `hidden`.
    pub fn new(hidden: bool) -> Self {
        let pb = if hidden {
            ProgressBar::hidden()
        } else {
            let pb = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(4));
            pb.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            pb
        };
        Progress(pb)
    }

    /// Shows `msg`.
    pub fn set(&self, msg: String) {
        self.0.set_message(msg);
        self.0.tick();
    }

    /// Prints `line` above the progress line.
    pub fn println(&self, line: String) {
        if self.0.is_hidden() {
            eprintln!("{line}");
        } else {
            self.0.println(line);
        }
    }

    /// Removes the line.
    pub fn finish(&self) {
        self.0.finish_and_clear();
    }
}

/// Which members take part in one measured step and where they go.
pub struct Step {
    /// Local indices of the members taking part.
    pub members: Vec<usize>,
    /// Channel (0-based within the step) of each local member index taking part.
    pub channel_of: Vec<usize>,
    /// Channels in the step.
    pub channels: usize,
    /// Channel `c` of the step is titled `args.title(title_base + c)`.
    pub title_base: usize,
    /// Publishers: (local index, channel).
    pub publishers: Vec<(usize, usize)>,
}

impl Step {
    /// The step of a plain run: local member `i` is global `globals[i]`, in channel
    /// `global % channels`; publishers are globals `0..publishers` held here.
    pub fn plain(globals: &[usize], channels: usize, publishers: usize) -> Self {
        let channel_of: Vec<usize> = globals.iter().map(|g| g % channels).collect();
        let pubs = globals
            .iter()
            .enumerate()
            .filter(|(_, &g)| g < publishers)
            .map(|(i, &g)| (i, g % channels))
            .collect();
        Step {
            members: (0..globals.len()).collect(),
            channel_of,
            channels,
            title_base: 0,
            publishers: pubs,
        }
    }
}

/// What the setup of a step found.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct SetupOut {
    /// The login round.
    pub login: RoundStats,
    /// The join round.
    pub join: RoundStats,
    /// Seconds waited for USER_JOINS to stop.
    pub settle_s: f64,
    /// From the first JOIN_REQ to the last USER_JOINS received: filling the channels.
    #[serde(default)]
    pub fill_s: f64,
    /// Members that got JOIN_ACK, per channel.
    pub joined_per_channel: Vec<u64>,
}

/// What the publishing phase of a step found.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct PhaseOut {
    /// What was sent.
    pub published: Published,
    /// PUBLIC_MSGs received.
    pub received: u64,
    /// Datagrams that carried them.
    #[serde(default)]
    pub datagrams: u64,
    /// When the last one arrived (`now_ns`).
    pub last_ns: u64,
    /// ERRORs received.
    pub errors: u64,
    /// `ERROR please log in` received.
    pub expired: u64,
    /// Latency as (microseconds, count) pairs, to merge across processes.
    pub latency: Vec<(u64, u64)>,
    /// The same, of members that asked for batches only.
    #[serde(default)]
    pub latency_batch: Vec<(u64, u64)>,
    /// The same, of classic members only.
    #[serde(default)]
    pub latency_classic: Vec<(u64, u64)>,
}

/// (microseconds, count) pairs as a histogram.
pub fn histogram(pairs: &[(u64, u64)]) -> Histogram<u64> {
    let mut h = crate::members::new_histogram();
    for &(v, n) in pairs {
        let _ = h.record_n(v, n);
    }
    h
}

impl PhaseOut {
    /// The latency pairs as a histogram.
    pub fn histogram(&self) -> Histogram<u64> {
        histogram(&self.latency)
    }
}

fn pairs(h: &Histogram<u64>) -> Vec<(u64, u64)> {
    h.iter_recorded()
        .map(|v| (v.value_iterated_to(), v.count_at_value()))
        .collect()
}

/// Logs in the step's members not yet logged in.
pub fn login(ms: &Members, step: &Step, run_id: u32, pb: &Progress) -> RoundStats {
    let total = step.members.len();
    let progress = |n: usize| pb.set(format!("logging in: {n}/{total}"));
    let round = Round {
        bit: LOGGED_IN,
        window: 256,
        retry: Duration::from_secs(1),
        deadline: Instant::now() + Duration::from_secs(600),
        progress: &progress,
    };
    session::login(&ms.shared, &step.members, &round, run_id)
}

/// The step's members that ask for multicast.
fn multicast_members(ms: &Members, step: &Step) -> Vec<usize> {
    step.members
        .iter()
        .copied()
        .filter(|&i| ms.shared.multicast[i])
        .collect()
}

/// The caps member `i` asks for (part 4: `batch=BYTES` with `--batch`, `multicast` with
/// `--multicast`), space-separated; empty if none. One CAPS_REQ names them all, since each
/// one replaces the caps granted before.
pub fn caps_of(ms: &Members, args: &Args, i: usize) -> String {
    let mut words = Vec::new();
    if let (Some(size), true) = (args.batch, ms.shared.batch[i]) {
        words.push(format!("batch={size}"));
    }
    if ms.shared.multicast[i] {
        words.push("multicast".to_string());
    }
    words.join(" ")
}

/// The step's members that ask for batches (`--batch`, every other one with `--mixed`)
/// or multicast (`--multicast`) ask for them, in one CAPS_REQ each, those that have not
/// already (before they join, so that MCAST_GROUP follows their JOIN_ACK). Any CAPS_ACK
/// will do: a server that grants less (no `--multicast`) shows in the multicast figures.
/// `None` if no member asks for anything.
pub fn caps(ms: &Members, args: &Args, step: &Step, pb: &Progress) -> Option<RoundStats> {
    let members: Vec<usize> = step
        .members
        .iter()
        .copied()
        .filter(|&i| ms.shared.batch[i] || ms.shared.multicast[i])
        .collect();
    if members.is_empty() {
        return None;
    }
    // A new step's channel: its group is yet to be told and heard.
    for &i in &members {
        ms.shared.status[i].fetch_and(!(CONFIRMED | TOLD), Ordering::Relaxed);
    }
    let total = members.len();
    let progress = |n: usize| pb.set(format!("asking for caps: {n}/{total}"));
    let round = Round {
        bit: CAPS,
        window: 256,
        retry: Duration::from_secs(1),
        deadline: Instant::now() + Duration::from_secs(120),
        progress: &progress,
    };
    Some(session::caps(&ms.shared, &members, &round, |i| {
        caps_of(ms, args, i)
    }))
}

/// How the step's multicast members came to hear their channel's group.
#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize)]
pub struct ConfirmOut {
    /// Members that asked for multicast and joined.
    pub members: usize,
    /// Of those, how many were told a group (their channel has one).
    pub told: usize,
    /// Of those, how many confirmed their group.
    pub confirmed: usize,
    /// Seconds waited for them.
    pub secs: f64,
}

/// With `--multicast`: waits (at most a minute) until every multicast member that joined
/// and was told its channel's group has heard it and confirmed (a channel kept off
/// multicast tells nobody). `None` without multicast members.
pub fn confirm(ms: &Members, step: &Step, pb: &Progress) -> Option<ConfirmOut> {
    let members: Vec<usize> = multicast_members(ms, step)
        .into_iter()
        .filter(|&i| ms.shared.status[i].load(Ordering::Relaxed) & JOINED != 0)
        .collect();
    if members.is_empty() {
        return None;
    }
    let start = Instant::now();
    let count = |bit: u8| {
        members
            .iter()
            .filter(|&&i| ms.shared.status[i].load(Ordering::Relaxed) & bit != 0)
            .count()
    };
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
/// join round, the wait, the time from the first join to the last USER_JOINS (filling the
/// channels), and the members joined per channel.
pub fn join(
    ms: &Members,
    args: &Args,
    step: &Step,
    pb: &Progress,
) -> (RoundStats, f64, f64, Vec<u64>) {
    let start_ns = now_ns();
    let total = step.members.len();
    let size = total.div_ceil(step.channels.max(1)).max(1);
    let window = args.join_window.unwrap_or((20_000 / size).clamp(1, 64));
    let progress = |n: usize| pb.set(format!("joining: {n}/{total} (window {window})"));
    let round = Round {
        bit: JOINED,
        window,
        retry: Duration::from_secs(3),
        deadline: Instant::now() + Duration::from_secs_f64(args.settle_max.max(60.0) * 2.0),
        progress: &progress,
    };
    let stats = session::join(&ms.shared, &step.members, &round, |i| {
        args.title(step.title_base + step.channel_of[i])
    });
    let settle = settle(&ms.shared, args.settle_max, pb, "joins");
    let mut joined = vec![0u64; step.channels];
    for &i in &step.members {
        if ms.shared.status[i].load(Ordering::Relaxed) & JOINED != 0 {
            joined[step.channel_of[i]] += 1;
        }
    }
    let last = ms
        .shared
        .counters
        .last_membership_ns
        .load(Ordering::Relaxed);
    let fill = if last > start_ns {
        ((last - start_ns) as f64 / 1e9).max(stats.secs)
    } else {
        stats.secs
    };
    (stats, settle, fill, joined)
}

/// Waits until no USER_JOINS/USER_PARTS arrived for half a second, `max` seconds at most.
pub fn settle(shared: &Shared, max: f64, pb: &Progress, what: &str) -> f64 {
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

/// Publishes from the step's publishers from `start_ns` for `--duration`, then waits for the
/// deliveries to stop arriving.
pub fn publish_phase(
    ms: &Members,
    args: &Args,
    step: &Step,
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
        publishers: step.publishers.clone(),
        rate: args.rate,
        start_ns,
        duration: Duration::from_secs_f64(args.duration),
        size: args.message_size,
        window: args.window,
        channels: step.channels,
    };
    let sent = AtomicU64::new(0);
    let done = AtomicBool::new(false);
    let end_ns = start_ns + plan.duration.as_nanos() as u64;
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
                if expected > 0 && args.channels == 1 {
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
                let missing = expected > 0 && args.channels == 1 && got < expected;
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

/// Shows a raw blaster's progress (`sent` by it, `received` counted from `from`) until it
/// is `done` and its receivers have been quiet for 300 ms, so its last deliveries are in.
fn watch_raw(
    label: &str,
    received: &AtomicU64,
    from: u64,
    sent: &AtomicU64,
    done: &AtomicBool,
    pb: &Progress,
) {
    let mut last = (Instant::now(), 0);
    loop {
        thread::sleep(Duration::from_millis(100));
        let got = received.load(Ordering::Relaxed) - from;
        pb.set(format!(
            "{label}: {} sent, {got} received",
            sent.load(Ordering::Relaxed)
        ));
        if got != last.1 {
            last = (Instant::now(), got);
        }
        if done.load(Ordering::Relaxed) && last.0.elapsed() > Duration::from_millis(300) {
            break;
        }
    }
}

/// Blasts the step's channels with `sendmmsg` and counts what the receivers get.
///
/// # Errors
/// If the blaster's socket can't be made.
pub fn raw_phase(
    ms: &Members,
    args: &Args,
    step: &Step,
    pb: &Progress,
) -> anyhow::Result<RawReport> {
    let mut dests: Vec<Vec<SocketAddr>> = vec![Vec::new(); step.channels];
    for &i in &step.members {
        dests[step.channel_of[i]].push(ms.addr(i));
    }
    let c = &ms.shared.counters;
    let _ = ms.take_latency();
    let raw0 = c.raw.load(Ordering::Relaxed);
    let udp0 = UdpCounters::read();
    let duration = Duration::from_secs_f64(args.raw_duration.unwrap_or(args.duration));
    // Paced like the server run: the same planned messages per second in all.
    let rate = args.rate * step.publishers.len() as f64;
    let sent = AtomicU64::new(0);
    let start = now_ns();
    let done = AtomicBool::new(false);
    let blasted = thread::scope(|s| {
        let h = s.spawn(|| {
            let r = blast(&dests, args.message_size, duration, rate, &sent);
            done.store(true, Ordering::Relaxed);
            r
        });
        watch_raw("raw sendmmsg", &c.raw, raw0, &sent, &done, pb);
        h.join()
            .map_err(|_| anyhow::anyhow!("the raw blaster panicked"))
    })??;
    let received = c.raw.load(Ordering::Relaxed) - raw0;
    let hist = ms.take_latency().raw;
    let secs = (c
        .last_public_ns
        .load(Ordering::Relaxed)
        .saturating_sub(start)) as f64
        / 1e9;
    Ok(RawReport {
        sent: blasted.sent,
        received,
        secs,
        deliveries_per_s: if secs > 0.0 {
            received as f64 / secs
        } else {
            0.0
        },
        cpu_ns_per_datagram: if blasted.sent > 0 {
            blasted.cpu_ns as f64 / blasted.sent as f64
        } else {
            0.0
        },
        server_ratio: 0.0,
        udp: UdpCounters::read().since(&udp0),
        expected: blasted.sent,
        rate,
        latency_us: (rate > 0.0).then(|| Latency::of(&hist)),
    })
}

/// Blasts each of the step's channels' groups (as MCAST_GROUP named them) from one socket,
/// CHANNEL_DATA-shaped and tagged with the channel's key, and counts what the same
/// receivers get on the members' group sockets.
///
/// # Errors
/// If the blaster's socket can't be made, or no group of the step is known.
pub fn raw_multicast_phase(
    ms: &Members,
    args: &Args,
    step: &Step,
    pb: &Progress,
) -> anyhow::Result<RawReport> {
    let groups: Vec<(crate::mcast::GroupInfo, u64)> = {
        let known = ms
            .shared
            .groups
            .lock()
            .map_err(|_| anyhow::anyhow!("a receiver panicked"))?;
        (0..step.channels)
            .filter_map(|c| {
                let title = args.title(step.title_base + c).to_lowercase();
                let members = step
                    .members
                    .iter()
                    .filter(|&&i| step.channel_of[i] == c && ms.shared.multicast[i])
                    .count() as u64;
                known.get(&title).cloned().map(|g| (g, members))
            })
            .collect()
    };
    anyhow::ensure!(
        !groups.is_empty(),
        "no channel group known for the raw multicast blaster"
    );
    let c = &ms.shared.counters;
    let raw0 = c.raw.load(Ordering::Relaxed);
    let udp0 = UdpCounters::read();
    let duration = Duration::from_secs_f64(args.raw_duration.unwrap_or(args.duration));
    let sent = AtomicU64::new(0);
    let start = now_ns();
    let done = AtomicBool::new(false);
    let infos: Vec<crate::mcast::GroupInfo> = groups.iter().map(|(g, _)| g.clone()).collect();
    let members: Vec<u64> = groups.iter().map(|(_, m)| *m).collect();
    let blasted = thread::scope(|s| {
        let h = s.spawn(|| {
            let plan = GroupBlast {
                groups: &infos,
                members: &members,
                size: args.message_size,
                window: u64::from(args.window),
                duration,
            };
            let r = blast_groups(&plan, &sent, &c.raw, &ms.shared.raw_thread);
            done.store(true, Ordering::Relaxed);
            r
        });
        watch_raw("raw multicast", &c.raw, raw0, &sent, &done, pb);
        h.join()
            .map_err(|_| anyhow::anyhow!("the raw multicast blaster panicked"))
    })??;
    let received = c.raw.load(Ordering::Relaxed) - raw0;
    let secs = (c
        .last_public_ns
        .load(Ordering::Relaxed)
        .saturating_sub(start)) as f64
        / 1e9;
    // Deliveries the blast should have made: each datagram to every multicast member of
    // its channel (channels are blasted in turn).
    let per_round: u64 = groups.iter().map(|(_, m)| *m).sum();
    let expected = blasted.sent * per_round / groups.len().max(1) as u64;
    Ok(RawReport {
        sent: blasted.sent,
        received,
        secs,
        deliveries_per_s: if secs > 0.0 {
            received as f64 / secs
        } else {
            0.0
        },
        cpu_ns_per_datagram: if blasted.sent > 0 {
            blasted.cpu_ns as f64 / blasted.sent as f64
        } else {
            0.0
        },
        server_ratio: 0.0,
        udp: UdpCounters::read().since(&udp0),
        expected,
        // Closed loop on the receivers' count, never paced: no latency of its own.
        rate: 0.0,
        latency_us: None,
    })
}

/// Sends STILL_HERE from every logged-in member every `interval` until `stop`.
pub fn keepalive(shared: &Shared, interval: Duration, stop: &AtomicBool) {
    let still_here = Request::StillHere.to_bytes();
    let mut next = Instant::now() + interval;
    while !stop.load(Ordering::Relaxed) {
        if Instant::now() >= next {
            let alive: Vec<usize> = (0..shared.sockets.len())
                .filter(|&i| shared.status[i].load(Ordering::Relaxed) & LOGGED_IN != 0)
                .collect();
            session::send_each(shared, &alive, &still_here, 50_000);
            next += interval;
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// Logs every member off and waits for the USER_PARTS to stop, so the next run starts on
/// a quiet server.
pub fn logoff_all(ms: &Members, args: &Args, pb: &Progress) {
    let all: Vec<usize> = (0..ms.len())
        .filter(|&i| ms.shared.status[i].load(Ordering::Relaxed) & LOGGED_IN != 0)
        .collect();
    pb.set(format!("logging off {} clients", all.len()));
    session::logoff(&ms.shared, &all);
    settle(&ms.shared, args.settle_max, pb, "log-offs");
}

/// Fills a report's deliveries, latency and server figures from the phase outputs.
pub fn fill_report(
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
    let mut hist = crate::members::new_histogram();
    let mut hist_batch = crate::members::new_histogram();
    let mut hist_classic = crate::members::new_histogram();
    let mut last_ns = 0;
    for p in phases {
        report.messages_sent += p.published.sent;
        report.deliveries_received += p.received;
        report.datagrams_received += p.datagrams;
        let _ = hist_batch.add(histogram(&p.latency_batch));
        let _ = hist_classic.add(histogram(&p.latency_classic));
        report.stalls += p.published.stalls;
        report.max_publish_lag_us = report.max_publish_lag_us.max(p.published.max_lag_us);
        report.errors += p.errors;
        report.expired += p.expired;
        for (c, n) in p.published.sent_per_channel.iter().enumerate() {
            if let Some(s) = sent_per_channel.get_mut(c) {
                *s += n;
            }
        }
        let _ = hist.add(p.histogram());
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

/// Server CPU and memory readings taken around the phases, summed over the server processes
/// given (the servers of a cluster share the work of one channel).
#[derive(Debug, Default)]
pub struct ServerWatch {
    pids: Vec<u32>,
    report: ServerReport,
    cpu0: u64,
}

impl ServerWatch {
    /// Watches `pids`, if any, and takes the memory baseline.
    pub fn new(pids: &[u32]) -> Self {
        let mut w = ServerWatch {
            pids: pids.to_vec(),
            ..Self::default()
        };
        if let Some(&first) = pids.first() {
            w.report.pid = first;
            if pids.len() > 1 {
                w.report.pids = pids.to_vec();
            }
            w.report.rss_before_kib = w.rss();
        }
        w
    }

    fn rss(&self) -> u64 {
        self.pids.iter().map(|&p| rss_kib(p).unwrap_or(0)).sum()
    }

    fn cpu(&self) -> u64 {
        self.pids
            .iter()
            .map(|&p| process_cpu_ns(p).unwrap_or(0))
            .sum()
    }

    /// After the logins of `users` users.
    pub fn logged_in(&mut self, users: usize) {
        if !self.pids.is_empty() {
            thread::sleep(Duration::from_millis(300));
            self.report.rss_after_login_kib = self.rss();
            let grown = self
                .report
                .rss_after_login_kib
                .saturating_sub(self.report.rss_before_kib);
            self.report.rss_bytes_per_user = (grown * 1024) as f64 / users.max(1) as f64;
        }
    }

    /// After the joins.
    pub fn joined(&mut self) {
        if !self.pids.is_empty() {
            self.report.rss_after_join_kib = self.rss();
        }
    }

    /// At the start of publishing.
    pub fn start(&mut self) {
        if !self.pids.is_empty() {
            self.cpu0 = self.cpu();
        }
    }

    /// At the end of publishing: the figures so far.
    pub fn stop(&mut self) -> Option<ServerReport> {
        if self.pids.is_empty() {
            return None;
        }
        self.report.cpu_ns = self.cpu().saturating_sub(self.cpu0);
        Some(self.report.clone())
    }
}
