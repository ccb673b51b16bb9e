//! The sender pool: threads that write fan-outs (one payload, many members) to the socket
//! in `sendmmsg` batches, and the send loop the workers use for their own replies.
//!
//! # Policy on send errors
//! A failed send to one peer never stops the server. `sendmmsg` reports an error only when
//! the first datagram of a batch failed, having sent none; after a partial send the loop
//! resumes at the first datagram not sent. For the failing datagram:
//! - `Interrupted`: retried at once;
//! - `WouldBlock` (the socket is blocking, so only with a send timeout): retried after a
//!   short pause, up to a few times, then counted as dropped;
//! - anything else (`ENOBUFS`: the kernel dropped it; `EPERM`, `ENETUNREACH`, ...): counted
//!   in [`Stats::send_errors`], skipped, and logged at most once per [`LOG_EVERY`].
//!
//! `IP_RECVERR` stays off, so an ICMP port-unreachable from a departed client does not make
//! later batches stop short (`docs/PERFORMANCE.md`).
//!
//! # Who sends to whom, and order
//! Every member has a *lane*, a stable hash of its address computed when it joins
//! ([`Member::lane`]); sender `i` of `n` writes to the members whose lane is `i` modulo
//! `n`, for every fan-out of every channel. A fan-out is handed whole (one shared payload,
//! one shared member snapshot) to each sender that has members in it, and each sender picks
//! out its own. So:
//! - one busy channel spreads over every sender, whatever its size;
//! - all of a member's events pass through one FIFO queue, so it gets them in the order
//!   they were queued;
//! - the fan-outs of one channel are queued on all senders under one lock of
//!   [`ORDER_STRIPES`] (chosen by the channel), so every sender holds them in the same
//!   order, and every member of a channel sees its events in one order, the order in which
//!   the workers dispatched them. That lock is held across the queue pushes of one fan-out,
//!   which may wait for room: it is only ever taken alone, and the senders never take it,
//!   so a push under it always completes.
//!
//! # Batches
//! A sender takes what is waiting in its queue (up to [`JOBS_PER_ROUND`] fan-outs) and
//! plans the round with [`Planner`]: classic members get one datagram per event, members
//! granted `batch` get the round's events packed into BATCH datagrams of their size. When
//! the sender keeps up, rounds hold one fan-out and nothing is batched; when a busy channel's
//! fan-outs queue up behind it, they go out together. Nothing is ever held back to wait for
//! more.
//!
//! # Sealing
//! A protected user's copy of a fan-out or reply is sealed for its session just before it
//! is written ([`Sealers::seal_for`], the one function every send path calls): the
//! payload stays shared, and only protected members cost an AEAD seal and a buffer. A
//! member granted `batch` that is protected gets each of its datagrams, BATCH or single
//! event, sealed for it alone after the [`Planner`] has laid it out (so a sealed BATCH is
//! the member's batch size plus the 34 bytes of sealing).
//!
//! # Multicast groups
//! A fan-out whose channel has an active group names it ([`Fanout::group`]): the group is
//! one more member that gets the event once, on the group socket, sealed in CHANNEL_DATA
//! with the channel's next sequence number. It rides with the job queued on sender
//! `key % senders` (under the channel's order lock, like every push of the fan-out), so one
//! sender seals every CHANNEL_DATA of a channel and the sequence numbers leave in the order
//! they were taken (`multicast::group`). A round's waiting events of one group go out
//! together: packed into BATCHes of at most [`GROUP_BATCH`] bytes, one CHANNEL_DATA each
//! (part 4 of the protocol), as members granted `batch` get theirs. The group socket is
//! separate from the chat socket: it carries the multicast interface and hop limit, and it
//! may be IPv6 when the chat socket is IPv4.

use std::borrow::Cow;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use parking_lot::Mutex;

use super::stats::{Stats, Tally};
use crate::budget::Budgets;
use crate::delivery::{Job, Planner};
use crate::multicast::ChannelGroup;
use crate::outbox::{Fanout, Outbox};
use crate::sealing::Sealers;
use crate::state::Member;
use crate::state::State;
use proto::batch;
use udp::{send_batch, MAX_BATCH};

/// Fan-outs a sender takes off its queue for one round: the most events one round can
/// batch together for a member. 256 lets a 1,200-byte batch fill (about 14 public messages
/// or 60 join notices) several times over per round, so few batches go out part-full.
pub const JOBS_PER_ROUND: usize = 256;
/// Locks that order the fan-outs of channels across the senders (a channel uses one).
pub const ORDER_STRIPES: usize = 64;
/// A fan-out with at most this many members is queued only on its members' senders; a
/// larger one goes to every sender (each picks out its own members).
const SMALL_FANOUT: usize = 8;
/// The largest BATCH inside a CHANNEL_DATA to a group: the protocol's default batch size.
/// A group has no size negotiated with its listeners, and 1,200 bytes plus the 26 of
/// CHANNEL_DATA fit any LAN's datagrams unfragmented.
pub const GROUP_BATCH: usize = 1200;
/// How often a persisting send error is logged at most.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

/// A fan-out as queued for one sender: the members' part (each sender picks out its own),
/// and, for the one sender that seals its channel's CHANNEL_DATA, the group.
#[derive(Debug, Clone)]
pub struct SendJob {
    /// The event and the members it is for.
    pub job: Job,
    /// The channel's group, on the job queued for sender `key % senders` only.
    pub group: Option<Arc<ChannelGroup>>,
}

/// The sender of `member` among `senders`.
pub fn sender_of(member: &Member, senders: usize) -> usize {
    usize::from(member.lane) % senders.max(1)
}

/// The queues of the sender pool, as the workers and the cluster thread hold them.
#[derive(Debug, Clone)]
pub struct SenderPool {
    queues: Vec<crossbeam_channel::Sender<SendJob>>,
    /// Makes the queue pushes of one fan-out atomic with respect to other fan-outs of its
    /// channel (see the module docs); striped so unrelated channels rarely meet.
    order: Arc<[Mutex<()>]>,
}

impl SenderPool {
    /// A pool over these queues, sender `i` reading `queues[i]`.
    pub fn new(queues: Vec<crossbeam_channel::Sender<SendJob>>) -> Self {
        SenderPool {
            queues,
            order: (0..ORDER_STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }

    /// Number of senders.
    pub fn len(&self) -> usize {
        self.queues.len()
    }

    /// Whether the pool has no senders.
    pub fn is_empty(&self) -> bool {
        self.queues.is_empty()
    }

    /// Fan-outs waiting in each sender's queue.
    pub fn depths(&self) -> Vec<usize> {
        self.queues.iter().map(|q| q.len()).collect()
    }

    /// Queues `fanout` on the senders of its members.
    ///
    /// Blocks while a sender's queue is full: that is the back-pressure that slows workers
    /// down (and, behind them, makes the receive thread drop) when the kernel can't keep up.
    /// Returns `false` when the pool is gone (shutdown).
    pub fn dispatch(&self, fanout: Fanout) -> bool {
        let n = self.queues.len();
        if n == 0 || (fanout.members.is_empty() && fanout.group.is_none()) {
            return true;
        }
        // The one sender that seals this channel's CHANNEL_DATA (module docs).
        let group_sender = (fanout.key % n as u64) as usize;
        let mut small = [usize::MAX; SMALL_FANOUT + 1];
        let targets: &[usize] = if fanout.members.len() <= SMALL_FANOUT && n > 1 {
            let mut used = 0;
            for m in fanout.members.iter() {
                small[used] = sender_of(m, n);
                used += 1;
            }
            if fanout.group.is_some() {
                small[used] = group_sender;
                used += 1;
            }
            let used = &mut small[..used];
            used.sort_unstable();
            let mut k = 0;
            for i in 0..used.len() {
                if i == 0 || used[i] != used[k - 1] {
                    used[k] = used[i];
                    k += 1;
                }
            }
            &small[..k]
        } else {
            &[]
        };
        let job = Job {
            payload: fanout.payload,
            members: fanout.members,
        };
        let group = fanout.group;
        let push = |i: usize| {
            let group = if i == group_sender {
                group.clone()
            } else {
                None
            };
            let job = job.clone();
            self.queues[i].send(SendJob { job, group }).is_ok()
        };
        let _order = self.order[(fanout.key % ORDER_STRIPES as u64) as usize].lock();
        let mut ok = true;
        if targets.is_empty() {
            for i in 0..n {
                ok &= push(i);
            }
        } else {
            for &i in targets {
                ok &= push(i);
            }
        }
        ok
    }
}

/// Sends every datagram of `msgs`, one event each (replies), resuming after partial
/// batches and skipping the ones that fail (see the module's policy). Counts datagrams,
/// bytes, events and errors in `stats`.
pub fn send_all(
    socket: &impl AsFd,
    msgs: &[(&[u8], SocketAddr)],
    stats: &Stats,
    log: &mut ErrorLog,
) {
    send_counted(socket, msgs, None, stats, log);
}

/// As [`send_all`], where datagram `i` carries `events[i]` events (a BATCH carries several).
fn send_counted(
    socket: &impl AsFd,
    msgs: &[(&[u8], SocketAddr)],
    events: Option<&[u32]>,
    stats: &Stats,
    log: &mut ErrorLog,
) {
    let mut tally = Tally::default();
    let mut at = 0;
    let mut would_block = 0;
    while at < msgs.len() {
        match send_batch(socket, &msgs[at..]) {
            Ok(sent) => {
                for i in at..at + sent {
                    tally.sent(msgs[i].0.len(), events.map_or(1, |e| e[i]));
                }
                at += sent;
                would_block = 0;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && would_block < 3 => {
                would_block += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => {
                stats.send_errors.fetch_add(1, Ordering::Relaxed);
                log.report(msgs[at].1, &e);
                at += 1;
                would_block = 0;
            }
        }
    }
    tally.flush(stats);
}

/// The single-address replies of `out` as they must go out at `now`: each sealed for its
/// session if the handler named one (a path challenge), or if its address is a protected
/// user's; those to an unproved guest only while its budget allows (the rest are held
/// back and counted in the budgets).
pub fn sealed_replies<'a>(
    out: &'a Outbox,
    state: &State,
    now: Instant,
) -> Vec<(Cow<'a, [u8]>, SocketAddr)> {
    let (sealers, budgets) = (state.sealers(), state.budgets());
    out.unicast_sealed()
        .filter(|(to, bytes, sealer)| sealer.is_some() || budgets.allow(*to, bytes.len(), now))
        .map(|(to, bytes, sealer)| {
            let payload = match sealer {
                Some(s) => Cow::Owned(s.seal(bytes)),
                None => sealers.seal_for(to, bytes),
            };
            (payload, to)
        })
        .collect()
}

/// Sends `replies` (from [`sealed_replies`]) with [`send_all`].
pub fn send_replies(
    socket: &impl AsFd,
    replies: &[(Cow<'_, [u8]>, SocketAddr)],
    stats: &Stats,
    log: &mut ErrorLog,
) {
    let msgs: Vec<(&[u8], SocketAddr)> = replies.iter().map(|(p, a)| (&**p, *a)).collect();
    send_all(socket, &msgs, stats, log);
}

/// Logs send errors at most once per [`LOG_EVERY`], with how many were suppressed.
#[derive(Debug)]
pub struct ErrorLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl ErrorLog {
    /// A log that has reported nothing yet.
    pub fn new() -> Self {
        ErrorLog {
            last: None,
            suppressed: 0,
        }
    }

    fn report(&mut self, dest: SocketAddr, err: &io::Error) {
        let now = Instant::now();
        if self.last.is_some_and(|t| now.duration_since(t) < LOG_EVERY) {
            self.suppressed += 1;
            return;
        }
        tracing::warn!(%dest, error = %err, suppressed = self.suppressed, "send failed; datagram dropped");
        self.last = Some(now);
        self.suppressed = 0;
    }
}

impl Default for ErrorLog {
    fn default() -> Self {
        Self::new()
    }
}

/// How long a sender may wait, after the first fan-out of a round, for more to batch with
/// it.
///
/// Batches form from what is already waiting; a short wait helps only when a sender is
/// busy and members take batches: then events arrive while it sends, and a few hundred
/// microseconds of waiting turn many half-empty rounds into a few full ones (filling a
/// channel of 10,000 batch clients, a burst of joins whose notices trickle in, went from
/// about 60-75 s to 16-26 s with 1 ms in `docs/BENCHMARKS.md`). An idle sender never
/// waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchWindow {
    /// Never wait: a round is what is queued when the sender looks.
    Off,
    /// Wait up to this long only while busy: the previous round ended with fan-outs already
    /// queued, and it delivered to members granted `batch`.
    WhenBusy(Duration),
    /// Always wait up to this long (tests use it to make batching deterministic).
    Always(Duration),
}

impl BatchWindow {
    /// How long the next round may wait, given whether the sender is busy.
    fn wait(self, busy: bool) -> Option<Duration> {
        match self {
            BatchWindow::Off => None,
            BatchWindow::WhenBusy(d) if busy && !d.is_zero() => Some(d),
            BatchWindow::WhenBusy(_) => None,
            BatchWindow::Always(d) => (!d.is_zero()).then_some(d),
        }
    }
}

/// One sender thread of the pool.
pub struct Sender {
    /// The socket it writes to.
    pub socket: socket2::Socket,
    /// Its index in the pool: it serves the members whose lane is `index` modulo `senders`.
    pub index: usize,
    /// Size of the pool.
    pub senders: usize,
    /// How long to wait for more fan-outs after the first of a round.
    pub window: BatchWindow,
    /// Counters.
    pub stats: Arc<Stats>,
    /// The protected members' sealers: their datagrams are sealed just before they go.
    pub sealers: Sealers,
    /// The unproved members' budgets: their datagrams go only while these allow.
    pub budgets: Budgets,
    /// The server's multicast socket, if it has one: CHANNEL_DATA to groups goes out here.
    pub group_socket: Option<socket2::Socket>,
}

impl Sender {
    /// Takes fan-outs until every worker has hung up (shutdown), a round at a time (what is
    /// waiting, up to [`JOBS_PER_ROUND`]), and writes its members' datagrams as the
    /// [`Planner`] lays them out, in `sendmmsg` batches of up to [`MAX_BATCH`]. The round's
    /// group events go first ([`group_datagrams`]): one datagram reaches every listener of
    /// a channel, while the unicast part of a big fan-out takes a while.
    pub fn run(self, jobs: Receiver<SendJob>) {
        let mut log = ErrorLog::new();
        let mut group_log = ErrorLog::new();
        let mut planner = Planner::new();
        let mut round: Vec<Job> = Vec::with_capacity(JOBS_PER_ROUND);
        let mut group_events: Vec<(Arc<ChannelGroup>, Arc<[u8]>)> = Vec::new();
        let mut group_out: Vec<(Vec<u8>, SocketAddr)> = Vec::new();
        let mut busy = false;
        while let Ok(first) = jobs.recv() {
            let mut take = |s: SendJob| {
                if let Some(g) = s.group {
                    group_events.push((g, s.job.payload.clone()));
                }
                round.push(s.job);
            };
            take(first);
            let deadline = self.window.wait(busy).map(|d| Instant::now() + d);
            for _ in 1..JOBS_PER_ROUND {
                let next = match deadline {
                    None => jobs.try_recv().ok(),
                    Some(t) => jobs.recv_deadline(t).ok(),
                };
                match next {
                    Some(job) => take(job),
                    None => break,
                }
            }
            if let Some(gs) = &self.group_socket {
                group_datagrams(&group_events, &mut group_out);
                if !group_out.is_empty() {
                    let msgs: Vec<(&[u8], SocketAddr)> =
                        group_out.iter().map(|(d, a)| (&d[..], *a)).collect();
                    send_all(gs, &msgs, &self.stats, &mut group_log);
                    self.stats
                        .group_datagrams_out
                        .fetch_add(msgs.len() as u64, Ordering::Relaxed);
                    group_out.clear();
                }
            }
            group_events.clear();
            let (index, senders) = (self.index, self.senders);
            planner.plan(&round, |m| sender_of(m, senders) == index);
            let mut msgs: Vec<(Cow<'_, [u8]>, SocketAddr)> = Vec::with_capacity(MAX_BATCH);
            let mut events: Vec<u32> = Vec::with_capacity(MAX_BATCH);
            let now = Instant::now();
            for d in planner.deliveries(&round) {
                if d.unproved && !self.budgets.allow(d.to, d.bytes.len(), now) {
                    continue;
                }
                msgs.push((self.sealers.seal_for(d.to, d.bytes), d.to));
                events.push(d.events);
                if msgs.len() == MAX_BATCH {
                    self.send(&msgs, &events, &mut log);
                    msgs.clear();
                    events.clear();
                }
            }
            self.send(&msgs, &events, &mut log);
            drop(msgs);
            round.clear();
            busy = !jobs.is_empty() && planner.batch_members();
        }
    }

    /// Writes `msgs` (sealed where needed), datagram `i` carrying `events[i]` events.
    fn send(&self, msgs: &[(Cow<'_, [u8]>, SocketAddr)], events: &[u32], log: &mut ErrorLog) {
        let refs: Vec<(&[u8], SocketAddr)> = msgs.iter().map(|(p, a)| (&**p, *a)).collect();
        send_counted(&self.socket, &refs, Some(events), &self.stats, log);
    }
}

/// The CHANNEL_DATA datagrams of a round's group events, appended to `out` as (datagram,
/// group address): each group's events in round order, packed into BATCHes of at most
/// [`GROUP_BATCH`] bytes where several wait (an event alone goes as it is), each datagram
/// sealed with its channel's key and next sequence number. This thread is the only one
/// sealing for these channels (module docs), so the sequences leave in order.
fn group_datagrams(
    events: &[(Arc<ChannelGroup>, Arc<[u8]>)],
    out: &mut Vec<(Vec<u8>, SocketAddr)>,
) {
    // The round's groups in order of first appearance, each with its events' indexes; a
    // round holds at most JOBS_PER_ROUND events, so a linear search is cheap.
    let mut groups: Vec<(&Arc<ChannelGroup>, Vec<usize>)> = Vec::new();
    for (i, (g, _)) in events.iter().enumerate() {
        match groups.iter_mut().find(|(h, _)| Arc::ptr_eq(h, g)) {
            Some((_, list)) => list.push(i),
            None => groups.push((g, vec![i])),
        }
    }
    let mut arena = Vec::new();
    let mut packed = Vec::new();
    for (g, list) in groups {
        arena.clear();
        packed.clear();
        batch::pack(
            list.iter().map(|&i| &events[i].1[..]),
            GROUP_BATCH,
            &mut arena,
            |p| packed.push(p),
        );
        for p in packed.drain(..) {
            let inner = match p {
                batch::Packed::Single(k) => &events[list[k]].1[..],
                batch::Packed::Batch { range, .. } => &arena[range],
            };
            out.push((g.seal(inner), g.addr));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbeam_channel::bounded;
    use proto::code;

    fn fanout(members: usize, key: u64) -> Fanout {
        let members: Vec<Member> = (0..members)
            .map(|i| Member::new(SocketAddr::from(([127, 0, 0, 1], 1000 + i as u16)), 0))
            .collect();
        Fanout {
            payload: Arc::from(&b"xy"[..]),
            members: members.into(),
            key,
            group: None,
        }
    }

    #[test]
    fn a_big_fanout_goes_to_every_sender_and_each_takes_its_own_members() {
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..3).map(|_| bounded(16)).unzip();
        let pool = SenderPool::new(txs);
        let f = fanout(1000, 1);
        assert!(pool.dispatch(f.clone()));
        let mut seen = 0;
        for (i, rx) in rxs.iter().enumerate() {
            let job = rx.try_recv().expect("every sender gets the fan-out").job;
            assert!(Arc::ptr_eq(&job.members, &f.members), "shared, not copied");
            let own = job.members.iter().filter(|m| sender_of(m, 3) == i).count();
            // A hash spreads 1,000 members about evenly.
            assert!((200..=470).contains(&own), "sender {i} has {own}");
            seen += own;
        }
        assert_eq!(seen, 1000);
    }

    fn group() -> Arc<ChannelGroup> {
        Arc::new(ChannelGroup::new(
            "Pets",
            "239.77.0.1:2028".parse().unwrap(),
            [1; 32],
        ))
    }

    #[test]
    fn the_group_rides_with_its_channels_sender_alone_even_without_members() {
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..3).map(|_| bounded(16)).unzip();
        let pool = SenderPool::new(txs);
        let g = group();
        let mut f = fanout(1000, 2);
        f.group = Some(g.clone());
        pool.dispatch(f);
        let jobs: Vec<(usize, SendJob)> = rxs
            .iter()
            .enumerate()
            .flat_map(|(i, rx)| rx.try_iter().map(move |j| (i, j)))
            .collect();
        assert_eq!(jobs.len(), 3, "every sender has members");
        let with_group: Vec<usize> = jobs
            .iter()
            .filter(|(_, j)| j.group.is_some())
            .map(|(i, _)| *i)
            .collect();
        assert_eq!(with_group, vec![2], "key 2 of 3 senders");
        // No unicast member at all: only the group's sender gets it.
        let mut f = fanout(0, 4);
        f.group = Some(g);
        pool.dispatch(f);
        let got: Vec<usize> = (0..3).filter(|&i| !rxs[i].is_empty()).collect();
        assert_eq!(got, vec![1]);
        assert!(rxs[1].try_recv().unwrap().group.is_some());
    }

    #[test]
    fn a_rounds_group_events_leave_sealed_in_order_and_batched() {
        use proto::channel_data;
        use proto::channel_data::{mac, verify};
        let (g, other) = (group(), group());
        let ev = |t: &str| -> Arc<[u8]> { [&b"\x00\x64"[..], t.as_bytes()].concat().into() };
        // Three small events of one group, one of another between them.
        let events = vec![
            (g.clone(), ev("one")),
            (other.clone(), ev("elsewhere")),
            (g.clone(), ev("two")),
            (g.clone(), ev("three")),
        ];
        let mut out = Vec::new();
        group_datagrams(&events, &mut out);
        let read = |d: &[u8]| {
            let cd = channel_data::parse(d).unwrap();
            assert!(verify(&mac(&[1; 32]), &cd));
            let inner: Vec<Vec<u8>> = if cd.inner.starts_with(&code::BATCH.to_be_bytes()) {
                batch::events(cd.inner)
                    .unwrap()
                    .map(<[u8]>::to_vec)
                    .collect()
            } else {
                vec![cd.inner.to_vec()]
            };
            (cd.seq, inner)
        };
        assert_eq!(out.len(), 2, "one CHANNEL_DATA per group");
        assert_eq!(
            read(&out[0].0),
            (
                1,
                vec![ev("one").to_vec(), ev("two").to_vec(), ev("three").to_vec()]
            )
        );
        assert_eq!(read(&out[1].0), (1, vec![ev("elsewhere").to_vec()]));
        // More than a batch holds: several CHANNEL_DATA, sequences one up each, nothing lost.
        let text = "x".repeat(500);
        let many: Vec<_> = (0..5).map(|_| (g.clone(), ev(&text))).collect();
        out.clear();
        group_datagrams(&many, &mut out);
        let read_all: Vec<(u64, Vec<Vec<u8>>)> = out.iter().map(|(d, _)| read(d)).collect();
        let seqs: Vec<u64> = read_all.iter().map(|(s, _)| *s).collect();
        assert_eq!(seqs, vec![2, 3, 4]);
        assert_eq!(read_all.iter().map(|(_, e)| e.len()).sum::<usize>(), 5);
        assert!(out.iter().all(|(d, _)| d.len() <= GROUP_BATCH + 26));
    }

    #[test]
    fn a_small_fanout_goes_only_to_its_members_senders() {
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..4).map(|_| bounded(16)).unzip();
        let pool = SenderPool::new(txs);
        let f = fanout(2, 7);
        pool.dispatch(f.clone());
        let mut want: Vec<usize> = f.members.iter().map(|m| sender_of(m, 4)).collect();
        want.dedup();
        want.sort();
        want.dedup();
        let got: Vec<usize> = (0..4).filter(|&i| !rxs[i].is_empty()).collect();
        assert_eq!(got, want);
        assert!(rxs.iter().all(|rx| rx.len() <= 1));
    }

    #[test]
    fn only_a_busy_sender_waits_unless_told_to_always() {
        let ms = Duration::from_millis(1);
        assert_eq!(BatchWindow::Off.wait(true), None);
        assert_eq!(BatchWindow::WhenBusy(ms).wait(false), None);
        assert_eq!(BatchWindow::WhenBusy(ms).wait(true), Some(ms));
        assert_eq!(BatchWindow::WhenBusy(Duration::ZERO).wait(true), None);
        assert_eq!(BatchWindow::Always(ms).wait(false), Some(ms));
    }

    #[test]
    fn failing_destination_is_counted_and_skipped() {
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let good = rx.local_addr().unwrap();
        // An IPv6 destination can't be reached from an IPv4 socket: EAFNOSUPPORT.
        let bad: SocketAddr = "[::1]:9".parse().unwrap();
        let msgs: Vec<(&[u8], SocketAddr)> = vec![
            (b"a", good),
            (b"b", bad),
            (b"c", good),
            (b"d", bad),
            (b"e", good),
        ];
        let stats = Stats::default();
        send_all(&tx, &msgs, &stats, &mut ErrorLog::new());
        assert_eq!(stats.send_errors.load(Ordering::Relaxed), 2);
        assert_eq!(stats.datagrams_out.load(Ordering::Relaxed), 3);
        let mut buf = [0u8; 8];
        let got: Vec<u8> = (0..3)
            .map(|_| {
                let (n, _) = rx.recv_from(&mut buf).unwrap();
                assert_eq!(n, 1);
                buf[0]
            })
            .collect();
        assert_eq!(got, b"ace");
    }
}
