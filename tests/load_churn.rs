//! A short `load-tester churn` against an in-process server: channels are created, used and
//! destroyed while others chat, and none is left behind. Memory is sampled but not judged
//! here (a test process's RSS says little); docs/ROBUSTNESS.md has the measured runs.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::load;
use load_tester::churn::ChurnReport;

#[test]
fn channels_come_and_go_while_others_chat_and_none_is_left() {
    let server = load::server(|_| {});
    // Creating a channel needs a proved address, and the load tester's guests don't prove
    // theirs: this stands in for the proof, for every guest that logs in.
    // (It stops by itself too, so that a failed run can't leave the scope waiting on it.)
    let state = server.state();
    let done = AtomicBool::new(false);
    let report: ChurnReport = std::thread::scope(|s| {
        s.spawn(|| {
            let until = Instant::now() + Duration::from_secs(120);
            while !done.load(Ordering::Relaxed) && Instant::now() < until {
                for (addr, _) in state.users() {
                    state.prove(addr);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        let report = churn(&server);
        done.store(true, Ordering::Relaxed);
        report
    });
    assert_eq!(report.failures, 0, "{report:#?}");
    assert!(report.channels_created >= 10, "{report:#?}");
    assert!(
        report.chat_sent > 0 && report.chat_received > 0,
        "{report:#?}"
    );
    // Every created channel was destroyed with its last member: the count is back.
    assert_eq!(report.channels_before, Some(5), "{report:#?}");
    assert_eq!(report.channels_after, Some(5), "{report:#?}");
    assert!(report.rss_kib.len() >= 2, "{report:#?}");
    server.state().check_invariants().unwrap();
}

/// A short churn against `server`.
fn churn(server: &udpchat::server::RunningServer) -> ChurnReport {
    let line = format!(
        "churn {} --duration 2 --rate 40 --creators 2 --chatters 3 --sample 0.5 --json",
        load::watching(server)
    );
    load::report(&mut load::command("load-tester", &line))
}
