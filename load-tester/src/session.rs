//! Logging members in, joining them, keeping them alive and logging them off, with retries:
//! UDP drops, so every request that has an answer is resent until the answer arrives.
//!
//! Requests go out through a window of outstanding ones, so the pace adapts to how fast the
//! server answers instead of flooding it (a join into a channel of n members costs the server
//! n USER_JOINS, so joins into big channels must go slowly).

use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use proto::Request;

use crate::members::names::nickname;
use crate::members::{Shared, JOINED};
use crate::report::RoundStats;

/// The rules of one round.
pub(crate) struct Round<'a> {
    /// Status bit that the answer sets.
    pub(crate) bit: u8,
    /// Requests outstanding at most.
    pub(crate) window: usize,
    /// Resend after this long without an answer.
    pub(crate) retry: Duration,
    /// Give up at this time.
    pub(crate) deadline: Instant,
    /// Called now and then with the number done.
    pub(crate) progress: &'a dyn Fn(usize),
}

impl<'a> Round<'a> {
    /// A round of requests the server answers at once, whatever the channel sizes (LOGIN_REQ,
    /// CAPS_REQ): 256 outstanding, resent after a second, given up after `within`.
    pub(crate) fn quick(bit: u8, within: Duration, progress: &'a dyn Fn(usize)) -> Self {
        Round {
            bit,
            window: 256,
            retry: Duration::from_secs(1),
            deadline: Instant::now() + within,
            progress,
        }
    }
}

/// Sends `make(i)` for each member `i` in `members` until its status has `round.bit`.
fn run_round(
    shared: &Shared,
    members: &[usize],
    round: &Round<'_>,
    make: impl Fn(usize) -> Vec<u8>,
) -> RoundStats {
    let start = Instant::now();
    let has = |i: usize| shared.has(i, round.bit);
    let mut queue: std::collections::VecDeque<usize> = members.iter().copied().collect();
    let mut in_flight: Vec<(usize, Instant)> = Vec::with_capacity(round.window);
    let mut attempts = 0u64;
    let mut done = 0usize;
    let mut last_progress = Instant::now();
    loop {
        let now = Instant::now();
        in_flight.retain(|&(i, sent)| {
            if has(i) {
                done += 1;
                false
            } else if now.duration_since(sent) > round.retry {
                queue.push_front(i);
                false
            } else {
                true
            }
        });
        while in_flight.len() < round.window {
            let Some(i) = queue.pop_front() else { break };
            if has(i) {
                done += 1;
                continue;
            }
            // A failed send is just a lost request: the retry covers it.
            let _ = shared.send(i, &make(i));
            attempts += 1;
            in_flight.push((i, now));
        }
        if in_flight.is_empty() && queue.is_empty() {
            break;
        }
        if now >= round.deadline {
            break;
        }
        if now.duration_since(last_progress) > Duration::from_millis(100) {
            (round.progress)(done);
            last_progress = now;
        }
        thread::sleep(Duration::from_micros(200));
    }
    (round.progress)(done);
    RoundStats {
        total: members.len(),
        done,
        attempts,
        secs: start.elapsed().as_secs_f64(),
    }
}

/// Logs in the members not yet logged in.
pub(crate) fn login(
    shared: &Shared,
    members: &[usize],
    round: &Round<'_>,
    run_id: u32,
) -> RoundStats {
    run_round(shared, members, round, |i| {
        let nick = nickname(run_id, shared.global[i]);
        Request::Login { nick: &nick }.to_bytes()
    })
}

/// Asks each member for the caps it wants (CAPS_REQ, e.g. `batch=1200 multicast`) until
/// the server says which it grants (CAPS_ACK).
pub(crate) fn caps(shared: &Shared, members: &[usize], round: &Round<'_>) -> RoundStats {
    run_round(shared, members, round, |i| {
        Request::Caps {
            caps: &shared.caps(i),
        }
        .to_bytes()
    })
}

/// Joins each member `i` into `title(i)`, clearing the joined bit first.
pub(crate) fn join<'t>(
    shared: &Shared,
    members: &[usize],
    round: &Round<'_>,
    title: impl Fn(usize) -> &'t str,
) -> RoundStats {
    for &i in members {
        shared.status[i].fetch_and(!JOINED, Ordering::Relaxed);
    }
    run_round(shared, members, round, |i| {
        Request::Join { title: title(i) }.to_bytes()
    })
}

/// Sends one request without an answer (LOGOFF, STILL_HERE) from each member to its server, `per_sec` at
/// most, so a burst does not overflow the server's receive buffer.
pub(crate) fn send_each(shared: &Shared, members: &[usize], req: &[u8], per_sec: u64) {
    let start = Instant::now();
    for (n, &i) in members.iter().enumerate() {
        let _ = shared.send(i, req);
        if n % 256 == 255 {
            let due = Duration::from_secs_f64((n + 1) as f64 / per_sec.max(1) as f64);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                thread::sleep(wait);
            }
        }
    }
}

/// Logs off `members`.
pub(crate) fn logoff(shared: &Shared, members: &[usize]) {
    send_each(shared, members, &Request::Logoff.to_bytes(), 50_000);
    for &i in members {
        shared.status[i].store(0, Ordering::Relaxed);
    }
}
