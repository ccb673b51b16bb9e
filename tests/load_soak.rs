//! A short run of the soak driver against an in-process server with a short idle timeout:
//! clients move, log off and vanish; none that departed gets a delivery, and every
//! vanished one is gone once the idle timeout and two sweeps have passed.

mod common;

use std::time::Duration;

use common::load;
use load_tester::soak::SoakReport;

#[test]
fn departed_clients_get_nothing_and_vanished_ones_are_swept() {
    let server = load::server(|cfg| {
        cfg.channels = load::channels(4);
        cfg.idle_timeout = Duration::from_secs(2);
        cfg.check_interval = Duration::from_millis(500);
    });
    let line = format!(
        "{} --duration 6 --clients 100 --channels 4 --rate 50 --churn 5 --moves 5 --sample 2 \
         --idle-timeout 2 --check-interval 0.5 --linger 1 --json --quiet",
        load::watching(&server)
    );
    let report: SoakReport = load::report(&mut load::command("soak", &line));
    assert!(report.clean);
    assert_eq!(report.departed_delivered, 0);
    assert_eq!(report.parted_delivered, 0);
    assert_eq!(report.departed_other, 0);
    // About 15 of each kind of departure in 6 s; at least a few of each must have happened.
    assert!(report.logged_off >= 5, "{report:?}");
    assert!(report.vanished >= 5, "{report:?}");
    assert_eq!(report.vanished_checked, report.vanished);
    assert_eq!(report.vanished_still_there, 0);
    assert!(report.moves_done >= 5, "{report:?}");
    assert!(report.messages_sent >= 250, "{report:?}");
    assert!(report.deliveries_received > 0);
    assert!(report.samples.len() >= 3);
    assert!(report
        .samples
        .iter()
        .all(|s| s.rss_kib.is_some() && s.threads.is_some()));
    // Every client logged off at the end: the server holds nobody.
    assert_eq!(report.users_after_logoff, Some(0));
    server.shutdown().unwrap();
}
