//! What the `load-tester` binary does with its flags: the flood or the churn, a channels
//! file, a chart from saved reports, or a fan-out run (a sweep, one process, or workers),
//! its report printed on stdout.

use anyhow::Context;

use crate::cli::{Args, Command};
use crate::options::FanOut;
use crate::progress::Progress;
use crate::report::Report;
use crate::{chart, churn, flood, sys, worker};

/// Files a process keeps open besides the client sockets (std streams, pollers, pipes).
const SPARE_FILES: u64 = 200;

/// A channels file for the server with `n` channels titled `<prefix>0` ...
fn channels_toml(prefix: &str, n: usize) -> String {
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
    fan_out(&args.fan_out(), args)
}

/// A fan-out run: as a worker of a parent when `--worker` says so, else a sweep, or a
/// plain run in one process or over as many as the open-file limit requires.
fn fan_out(run: &FanOut, args: &Args) -> anyhow::Result<()> {
    let run_id = args.run_id.unwrap_or(std::process::id());
    let sockets = run.population.sockets_per_client();
    let limit = if run.population.multicast.is_some() {
        let biggest = run.sweep.iter().copied().max().unwrap_or(run.clients);
        sys::raise_nofile_limit_to((biggest * sockets) as u64 + SPARE_FILES)
    } else {
        sys::raise_nofile_limit()
    };
    let per_process = args
        .max_per_process
        .unwrap_or(limit.saturating_sub(SPARE_FILES) as usize / sockets)
        .max(1);
    if let Some(index) = args.worker {
        return worker::worker(run, index, args.worker_count, run_id);
    }
    let pb = Progress::new(args.output.quiet);
    if !run.sweep.is_empty() {
        let max = run.sweep.iter().copied().max().unwrap_or(0);
        anyhow::ensure!(
            max <= per_process,
            "a sweep holds all {max} clients in one process, but the open-file limit ({limit}) allows {per_process}"
        );
        let reports = crate::run::sweep(run, run_id, &pb)?;
        pb.finish();
        if let Some(path) = &args.chart {
            chart::draw(&reports, path)?;
        }
        return args.output.print(&reports[..]);
    }
    let processes = run.clients.div_ceil(per_process);
    anyhow::ensure!(
        processes <= worker::MAX_PROCESSES,
        "{} clients need {processes} processes of {per_process} (open-file limit {limit}); at most {} are started",
        run.clients,
        worker::MAX_PROCESSES
    );
    let report = if processes > 1 {
        worker::parent(run, processes, run_id, &pb)?
    } else {
        crate::run::single(run, run_id, &pb)?
    };
    pb.finish();
    args.output.print(&report)
}
