//! Worker threads: apply requests and effect results to the shared state through the
//! [`Handler`], send the single-address replies themselves, pass fan-outs to the sender
//! pool and effects to the effect threads.
//!
//! Each datagram goes to the worker that owns its route (`jobs::worker_for`): its address,
//! or for a sealed datagram its session. So one client's requests are handled in the order
//! they arrived and each user record has a single writer (see `state`'s module docs).
//! Replies to a single address are written by the worker directly (in one `sendmmsg` batch
//! per round of requests): handing them to the pool would cost a queue hop and a wake-up
//! per reply while the kernel's cost stays the same.
//!
//! A worker takes work from two queues: datagrams (and idle log-offs) from the receive
//! thread and the sweeper, and the results of effects from the effect threads. It never
//! waits on an effect: a request that needs one is a state in the handler until its result
//! arrives here.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use crossbeam_channel::{never, select, Receiver};

use super::effects::Effects;
use super::jobs::Job;
use super::limit::{Limiter, Limits, Verdict};
use super::send::{sealed_replies, send_replies, ErrorLog, SenderPool};
use super::stats::Stats;
use crate::datagram::Incoming;
use crate::handler::Handler;
use crate::outbox::{Done, Outbox};

/// Requests a worker takes off its queues before it flushes replies.
const JOBS_PER_ROUND: usize = 64;

/// What a worker needs besides its queues.
pub(crate) struct Worker {
    /// The state machine.
    pub handler: Handler,
    /// Flood limits.
    pub limits: Limits,
    /// The socket replies go out on.
    pub socket: socket2::Socket,
    /// The sender pool.
    pub senders: SenderPool,
    /// Where effects go.
    pub effects: Effects,
    /// Counters.
    pub stats: Arc<Stats>,
}

enum Input {
    Job(Job),
    Done(Done),
}

impl Worker {
    /// The worker's loop: runs until the receive thread and the sweeper have hung up, then
    /// returns, dropping its handles on the sender pool and the effect threads.
    pub(crate) fn run(self, jobs: Receiver<Job>, done: Receiver<Done>) {
        let mut out = Outbox::new();
        let mut limiter = Limiter::new(self.limits, Instant::now());
        let mut log = ErrorLog::new();
        let closed = never();
        let mut done_open = true;
        loop {
            let results = if done_open { &done } else { &closed };
            let first = select! {
                recv(jobs) -> j => match j {
                    Ok(j) => Input::Job(j),
                    Err(_) => break,
                },
                recv(results) -> d => match d {
                    Ok(d) => Input::Done(d),
                    Err(_) => {
                        done_open = false;
                        continue;
                    }
                },
            };
            let wall = SystemTime::now();
            let mut next = Some(first);
            let mut taken = 0;
            while let Some(input) = next.take() {
                match input {
                    Input::Job(job) => self.job(job, wall, &mut limiter, &mut out),
                    Input::Done(d) => self.handler.complete(Instant::now(), wall, d, &mut out),
                }
                taken += 1;
                if taken < JOBS_PER_ROUND {
                    next = done
                        .try_recv()
                        .map(Input::Done)
                        .or_else(|_| jobs.try_recv().map(Input::Job))
                        .ok();
                }
            }
            self.flush(wall, &mut out, &mut log);
        }
    }

    fn job(&self, job: Job, wall: SystemTime, limiter: &mut Limiter, out: &mut Outbox) {
        match job {
            Job::Datagram {
                from,
                at,
                class,
                data,
            } => {
                if limiter.admit(from, class.len, at) == Verdict::RateLimited {
                    self.stats
                        .dropped_rate_limited
                        .fetch_add(1, Ordering::Relaxed);
                    return;
                }
                // An unproved guest earns three times what it sends (`crate::budget`).
                self.handler.state().budgets().earn(from, class.len);
                let mark = out.unicast_len();
                let known =
                    self.handler
                        .handle(at, wall, Incoming::classified(from, class, &data), out);
                if !known {
                    let withheld = limiter.police_stranger_replies(from, class, out, mark, at);
                    self.stats
                        .replies_withheld
                        .fetch_add(withheld as u64, Ordering::Relaxed);
                }
            }
            Job::Expire(addr) => {
                if self.handler.expire(Instant::now(), addr, out) {
                    self.stats.sweep_logoffs.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%addr, "idle user logged off");
                }
            }
        }
    }

    /// Sends what the round produced and hands its effects over; effects that can't be
    /// taken fail at once, and their results are applied in the same round.
    fn flush(&self, wall: SystemTime, out: &mut Outbox, log: &mut ErrorLog) {
        loop {
            let effects = std::mem::take(&mut out.effects);
            if effects.is_empty() {
                break;
            }
            for effect in effects {
                if let Some(failed) = self.effects.submit(effect) {
                    self.handler.complete(Instant::now(), wall, failed, out);
                }
            }
        }
        for fanout in out.fanouts.drain(..) {
            self.senders.dispatch(fanout);
        }
        if out.unicast_len() > 0 {
            let replies = sealed_replies(out, self.handler.state(), Instant::now());
            send_replies(&self.socket, &replies, &self.stats, log);
        }
        out.clear();
    }
}
