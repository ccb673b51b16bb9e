//! The idle sweep: on its own clock, every `--check-interval`, lists the users silent for
//! longer than `--idle-timeout` and hands a log-off for each to the worker that owns it, so
//! the log-off is ordered like any other request of that user (and re-checked there: the
//! user may have spoken in between). It also runs the handler's housekeeping.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use super::jobs::{worker_for, Job};
use crate::handler::Handler;

/// How often the sweeper looks at the stop flag while it waits.
const POLL: Duration = Duration::from_millis(50);

/// Runs until `stop` is set.
pub(crate) fn run_sweeper(
    handler: Handler,
    interval: Duration,
    workers: Vec<Sender<Job>>,
    stop: Arc<AtomicBool>,
) {
    let mut next = Instant::now() + interval;
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now < next {
            std::thread::sleep((next - now).min(POLL));
            continue;
        }
        next = now + interval;
        handler.housekeeping(now);
        for (addr, route) in handler.idle_users(now) {
            // Blocking is fine here: the sweeper has nothing else to do, and a full worker
            // queue drains within milliseconds. A closed queue means shutdown.
            if workers[worker_for(route, workers.len())]
                .send(Job::Expire(addr))
                .is_err()
            {
                return;
            }
        }
    }
}
