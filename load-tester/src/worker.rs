//! Runs over several processes when one can't hold every client's socket (the open-file
//! limit): the parent re-executes itself as workers, each holding a contiguous share of the
//! clients, steps them through the phases together and merges their results.
//!
//! The parent talks to each worker over its stdin/stdout, one line per message:
//! worker `LOGGED <json>` → parent `JOIN` → worker `READY <json>` → parent `GO <start_ns>` →
//! worker `PROG <sent> <received>`... `DONE <json>` → parent `END` → worker logs off, exits.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::options::FanOut;
use crate::procstat::UdpCounters;
use crate::progress::Progress;
use crate::report::{Report, RoundStats};
use crate::run::{bind_members, with_members};
use crate::scenario::{self, PhaseOut, SetupOut, Step};
use crate::sys::now_ns;
use crate::watch::ServerWatch;

/// The most worker processes a run starts.
pub(crate) const MAX_PROCESSES: usize = 32;

/// The global indices worker `i` of `n` holds out of `clients`.
fn share(clients: usize, i: usize, n: usize) -> std::ops::Range<usize> {
    clients * i / n..clients * (i + 1) / n
}

fn read_line(input: &mut impl BufRead) -> anyhow::Result<String> {
    let mut line = String::new();
    if input.read_line(&mut line)? == 0 {
        bail!("the parent went away");
    }
    Ok(line.trim_end().to_string())
}

/// The worker side: runs the phases for worker `index`'s share of `run`'s clients (of
/// `count` workers) when the parent says so.
///
/// # Errors
/// Sockets that can't be bound, a parent that goes away.
pub(crate) fn worker(run: &FanOut, index: usize, count: usize, run_id: u32) -> anyhow::Result<()> {
    let globals: Vec<usize> = share(run.clients, index, count).collect();
    let ms = bind_members(run, globals.clone(), run.clients, run_id)?;
    let channels = run.population.channels;
    let step = Step::plain(&globals, channels, &run.setup, run.traffic.publishers);
    let pb = Progress::new(true);
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let say = |line: String| -> anyhow::Result<()> {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}")?;
        out.flush()?;
        Ok(())
    };
    with_members(ms, run, &pb, |ms| {
        let login = scenario::login(ms, &step, run_id, &pb);
        say(format!("LOGGED {}", serde_json::to_string(&login)?))?;
        if read_line(&mut input)? != "JOIN" {
            bail!("expected JOIN");
        }
        scenario::caps(ms, &step, &pb);
        let setup = scenario::join(ms, &step, login, &run.setup, &pb);
        scenario::confirm(ms, &step, &pb);
        say(format!("READY {}", serde_json::to_string(&setup)?))?;
        let go = read_line(&mut input)?;
        let start_ns: u64 = go
            .strip_prefix("GO ")
            .and_then(|s| s.parse().ok())
            .context("expected GO <start_ns>")?;
        let report_progress = |sent: u64, got: u64| {
            let _ = say(format!("PROG {sent} {got}"));
        };
        let phase = scenario::publish_phase(
            ms,
            &step,
            &run.traffic,
            start_ns,
            &[],
            &pb,
            &report_progress,
        );
        say(format!("DONE {}", serde_json::to_string(&phase)?))?;
        read_line(&mut input)?;
        Ok(())
    })
}

struct Worker {
    child: Child,
    stdin: ChildStdin,
}

enum Msg {
    Line(usize, String),
    Gone(usize),
}

/// The parent side: starts `n` workers, each with the parent's own flags, and merges what
/// they measure.
///
/// # Errors
/// A worker that can't start, fails or says something unexpected.
pub(crate) fn parent(run: &FanOut, n: usize, run_id: u32, pb: &Progress) -> anyhow::Result<Report> {
    let clients = run.clients;
    if run.compare_redis.is_some() {
        bail!("--compare-redis needs every client in one process; {clients} clients need {n} here");
    }
    if run.raw.is_some() {
        bail!(
            "--raw needs every client in one process, and {clients} clients need {n} processes here \
             (open-file limit); run --raw with fewer clients"
        );
    }
    let exe = std::env::current_exe().context("finding the load tester's own executable")?;
    // The parent's own flags, less those it sets for the workers itself.
    let mut own = Vec::new();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--run-id" => {
                it.next();
            }
            _ if a.starts_with("--run-id=") => {}
            _ => own.push(a),
        }
    }
    let (tx, rx) = mpsc::channel();
    let mut workers = Vec::new();
    let sent = Vec::from_iter((0..n).map(|_| AtomicU64::new(0)));
    let got = Vec::from_iter((0..n).map(|_| AtomicU64::new(0)));
    for i in 0..n {
        let mut child = Command::new(&exe)
            .args(&own)
            .args([
                "--worker",
                &i.to_string(),
                "--worker-count",
                &n.to_string(),
                "--run-id",
                &run_id.to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting worker {i}"))?;
        let stdin = child.stdin.take().context("worker stdin")?;
        let stdout = child.stdout.take().context("worker stdout")?;
        let tx = tx.clone();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(Msg::Line(i, line)).is_err() {
                    return;
                }
            }
            let _ = tx.send(Msg::Gone(i));
        });
        workers.push(Worker { child, stdin });
    }
    drop(tx);
    pb.println(format!(
        "{clients} clients over {n} processes (open-file limit)"
    ));
    let mut watch = ServerWatch::new(&run.server_pids);
    // Collects one message of `kind` from every worker, tracking PROG lines meanwhile.
    let collect = |kind: &str, pb: &Progress| -> anyhow::Result<Vec<String>> {
        let mut got_from: Vec<Option<String>> = vec![None; n];
        while got_from.iter().any(Option::is_none) {
            match rx.recv_timeout(Duration::from_secs(1)) {
                Ok(Msg::Line(i, line)) => {
                    if let Some(rest) = line.strip_prefix("PROG ") {
                        let mut f = rest.split(' ').map(|x| x.parse::<u64>().unwrap_or(0));
                        sent[i].store(f.next().unwrap_or(0), Ordering::Relaxed);
                        got[i].store(f.next().unwrap_or(0), Ordering::Relaxed);
                        let s: u64 = sent.iter().map(|a| a.load(Ordering::Relaxed)).sum();
                        let g: u64 = got.iter().map(|a| a.load(Ordering::Relaxed)).sum();
                        pb.set(format!(
                            "publishing: {s} messages sent, {g} deliveries received"
                        ));
                    } else if let Some(rest) = line.strip_prefix(kind) {
                        got_from[i] = Some(rest.trim_start().to_string());
                    } else {
                        bail!("worker {i} said {line:?} while {kind} was expected");
                    }
                }
                Ok(Msg::Gone(i)) => bail!("worker {i} ended early (see its error above)"),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let have = got_from.iter().filter(|x| x.is_some()).count();
                    pb.set(format!("waiting for workers: {have}/{n} {kind}"));
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => bail!("all workers went away"),
            }
        }
        Ok(got_from.into_iter().flatten().collect())
    };
    let tell = |workers: &mut Vec<Worker>, line: &str| -> anyhow::Result<()> {
        for w in workers.iter_mut() {
            writeln!(w.stdin, "{line}")?;
            w.stdin.flush()?;
        }
        Ok(())
    };
    let result = (|| {
        let logins: Vec<RoundStats> = collect("LOGGED", pb)?
            .iter()
            .map(|j| serde_json::from_str(j))
            .collect::<Result<_, _>>()?;
        let login = merge_rounds(&logins);
        pb.println(format!(
            "logged in {}/{} in {:.2} s: {:.0} logins/s",
            login.done,
            login.total,
            login.secs,
            login.rate()
        ));
        watch.logged_in(login.done);
        tell(&mut workers, "JOIN")?;
        let setups: Vec<SetupOut> = collect("READY", pb)?
            .iter()
            .map(|j| serde_json::from_str(j))
            .collect::<Result<_, _>>()?;
        watch.joined();
        let mut setup = SetupOut {
            login,
            join: merge_rounds(&setups.iter().map(|s| s.join).collect::<Vec<_>>()),
            settle_s: setups.iter().map(|s| s.settle_s).fold(0.0, f64::max),
            fill_s: setups.iter().map(|s| s.fill_s).fold(0.0, f64::max),
            joined_per_channel: vec![0; run.population.channels],
        };
        for s in &setups {
            for (a, b) in setup
                .joined_per_channel
                .iter_mut()
                .zip(&s.joined_per_channel)
            {
                *a += b;
            }
        }
        pb.println(format!(
            "joined {}/{} in {:.2} s: {:.0} joins/s",
            setup.join.done,
            setup.join.total,
            setup.join.secs,
            setup.join.rate()
        ));
        let udp0 = UdpCounters::read();
        watch.start();
        let start_ns = now_ns() + 200_000_000;
        tell(&mut workers, &format!("GO {start_ns}"))?;
        let phases: Vec<PhaseOut> = collect("DONE", pb)?
            .iter()
            .map(|j| serde_json::from_str(j))
            .collect::<Result<_, _>>()?;
        let server = watch.stop();
        let channels = run.population.channels;
        let mut report = Report {
            udp: UdpCounters::read().since(&udp0),
            server,
            ..scenario::new_report(run, clients, channels, run.traffic.publishers, n)
        };
        let duration = run.traffic.duration;
        scenario::fill_report(&mut report, &setup, &phases, start_ns, duration);
        report.finish();
        tell(&mut workers, "END")?;
        Ok(report)
    })();
    pb.set("workers logging off".to_string());
    for mut w in workers {
        if result.is_err() {
            let _ = w.child.kill();
        }
        drop(w.stdin);
        let _ = w.child.wait();
    }
    result
}

fn merge_rounds(rounds: &[RoundStats]) -> RoundStats {
    RoundStats {
        total: rounds.iter().map(|r| r.total).sum(),
        done: rounds.iter().map(|r| r.done).sum(),
        attempts: rounds.iter().map(|r| r.attempts).sum(),
        secs: rounds.iter().map(|r| r.secs).fold(0.0, f64::max),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_cover_everyone_once() {
        let n = 3;
        let mut all: Vec<usize> = (0..n).flat_map(|i| share(20_001, i, n)).collect();
        all.dedup();
        assert_eq!(all, (0..20_001).collect::<Vec<_>>());
    }
}
