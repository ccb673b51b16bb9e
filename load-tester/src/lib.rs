//! The udpchat load tester: simulates thousands of clients on loopback, each with its own
//! UDP socket, against a running server (or the servers of a cluster, the clients spread
//! over them), and measures fan-out against the kernel's limit.
//!
//! - [`cli`]: the flags.
//! - [`members`]: the client sockets, spread over 127.0.0.0/8, and the receiver threads.
//! - [`mcast`]: with `--multicast`, the members' group sockets and their checks.
//! - [`session`]: log-in, join, keepalive and log-off rounds with retries.
//! - [`secure`]: protected members (`--protected`): registration and password login
//!   before the run, sealed traffic during it.
//! - [`publish`]: publishers at a planned rate or in closed loop.
//! - [`raw`]: the `sendmmsg` blaster that measures the kernel's own limit, flat out or
//!   paced.
//! - [`redis_cmp`]: the same fan-out through a redis-server's PUBLISH (`--compare-redis`).
//! - [`flood`]: `load-tester flood`, many source addresses against one server while a
//!   steady user keeps talking.
//! - [`churn`]: `load-tester churn`, channels created and destroyed at a steady rate while
//!   others chat, with the server's memory sampled.
//! - [`soak`]: the `soak` binary, steady load with churn for a long time.
//! - [`scenario`]: the phases of a run on the members of one process.
//! - [`run`]: a run, or a sweep over channel sizes, in one process.
//! - [`worker`]: a run spread over several processes when the open-file limit requires it.
//! - [`report`]: the figures, human summary and JSON; [`chart`]: the SVG chart.
//! - [`procstat`]: server CPU, memory and threads and the kernel's UDP counters from
//!   `/proc`; [`scrape`]: the server's metrics page; [`sys`]: clocks and the open-file
//!   limit. Batched sends go through the server's own `udpchat-udp`.

pub mod chart;
pub mod churn;
pub mod cli;
pub mod flood;
pub mod mcast;
pub mod members;
pub mod procstat;
pub mod publish;
pub mod raw;
pub mod redis_cmp;
pub mod report;
pub mod run;
pub mod scenario;
pub mod scrape;
pub mod secure;
pub mod session;
pub mod soak;
pub mod sys;
pub mod worker;

use std::io::Write;

use anyhow::Context;

pub use cli::{Args, Command};
use report::Report;
use scenario::Progress;

/// Files a process keeps open besides the client sockets (std streams, pollers, pipes).
const SPARE_FILES: u64 = 200;

/// A channels file for the server with `n` channels titled `<prefix>0` ...
pub fn channels_toml(prefix: &str, n: usize) -> String {
    let mut s = String::new();
    for c in 0..n {
        s.push_str(&format!(
            "[[channel]]\ntitle = \"{prefix}{c}\"\ndescription = \"Load test channel {c}\"\n\n"
        ));
    }
    s
}

/// Runs what the flags ask for, printing the results on stdout.
///
/// # Errors
/// Invalid flags, sockets that can't be bound, workers that fail.
pub fn run(args: &Args) -> anyhow::Result<()> {
    if let Some(Command::Flood(flood_args)) = &args.command {
        anyhow::ensure!(
            flood::main_with(flood_args)?,
            "the steady user was not served after the flood"
        );
        return Ok(());
    }
    if let Some(Command::Churn(churn_args)) = &args.command {
        anyhow::ensure!(
            churn::main_with(churn_args)?,
            "some channels could not be created, used and left"
        );
        return Ok(());
    }
    if let Some(n) = args.print_channels {
        print!("{}", channels_toml(&args.title_prefix, n));
        return Ok(());
    }
    if !args.chart_from.is_empty() {
        let mut reports: Vec<Report> = Vec::new();
        for from in &args.chart_from {
            let text = std::fs::read_to_string(from)
                .with_context(|| format!("reading {}", from.display()))?;
            let some: Vec<Report> = serde_json::from_str(&text)
                .or_else(|_| serde_json::from_str::<Report>(&text).map(|r| vec![r]))
                .with_context(|| format!("parsing {}", from.display()))?;
            reports.extend(some);
        }
        let out = args
            .chart
            .as_deref()
            .context("--chart-from needs --chart FILE")?;
        return chart::draw(&reports, out);
    }
    args.validate()?;
    let run_id = args.run_id.unwrap_or(std::process::id());
    let limit = if args.multicast {
        let biggest = args.sweep.iter().copied().max().unwrap_or(args.clients);
        sys::raise_nofile_limit_to((biggest * args.sockets_per_client()) as u64 + SPARE_FILES)
    } else {
        sys::raise_nofile_limit()
    };
    let per_process = args
        .max_per_process
        .unwrap_or(limit.saturating_sub(SPARE_FILES) as usize / args.sockets_per_client())
        .max(1);
    if let Some(index) = args.worker {
        return worker::worker(args, index, run_id);
    }
    let pb = Progress::new(args.quiet);
    let out = if !args.sweep.is_empty() {
        let max = args.sweep.iter().copied().max().unwrap_or(0);
        anyhow::ensure!(
            max <= per_process,
            "a sweep holds all {max} clients in one process, but the open-file limit ({limit}) allows {per_process}"
        );
        let reports = run::sweep(args, run_id, &pb)?;
        pb.finish();
        if let Some(path) = &args.chart {
            chart::draw(&reports, path)?;
        }
        if args.json {
            serde_json::to_string_pretty(&reports)?
        } else {
            sweep_table(&reports)
        }
    } else {
        let processes = args.clients.div_ceil(per_process);
        anyhow::ensure!(
            processes <= worker::MAX_PROCESSES,
            "{} clients need {processes} processes of {per_process} (open-file limit {limit}); at most {} are started",
            args.clients,
            worker::MAX_PROCESSES
        );
        let report = if processes > 1 {
            worker::parent(args, processes, run_id, &pb)?
        } else {
            run::single(args, run_id, &pb)?
        };
        pb.finish();
        if args.json {
            serde_json::to_string_pretty(&report)?
        } else {
            report.summary()
        }
    };
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{out}")?;
    Ok(())
}

/// The table of a sweep.
pub fn sweep_table(reports: &[Report]) -> String {
    let mut s = String::from(
        "| members | server deliveries/s | events/datagram | raw deliveries/s | server/raw | loss % | server CPU ns/delivery | raw CPU ns/datagram |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in reports {
        let raw = r.raw.as_ref();
        s.push_str(&format!(
            "| {} | {:.0} | {:.2} | {} | {} | {:.3} | {} | {} |\n",
            r.channel_size,
            r.deliveries_per_s,
            r.events_per_datagram,
            raw.map(|x| format!("{:.0}", x.deliveries_per_s))
                .unwrap_or_default(),
            raw.map(|x| format!("{:.3}", x.server_ratio))
                .unwrap_or_default(),
            r.loss_pct,
            r.server
                .as_ref()
                .map(|x| format!("{:.0}", x.cpu_ns_per_delivery))
                .unwrap_or_default(),
            raw.map(|x| format!("{:.0}", x.cpu_ns_per_datagram))
                .unwrap_or_default(),
        ));
    }
    s
}
