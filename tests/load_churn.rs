//! A short `load-tester churn` against an in-process server: channels are created, used and
//! destroyed while others chat, and none is left behind. Memory is sampled but not judged
//! here (a test process's RSS says little); docs/ROBUSTNESS.md has the measured runs.

mod common;

use common::load;
use load_tester::churn::ChurnReport;

#[test]
fn channels_come_and_go_while_others_chat_and_none_is_left() {
    let server = load::server(|_| {});
    let line = format!(
        "churn {} --duration 2 --rate 40 --creators 2 --chatters 3 --sample 0.5 --json",
        load::watching(&server)
    );
    let report: ChurnReport = load::report(&mut load::command("load-tester", &line));
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
