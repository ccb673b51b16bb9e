//! Delivery planning, without I/O: what a sender writes for a round of fan-outs that were
//! waiting in its queue, member by member.
//!
//! A classic member (batch size 0) gets each event as its own datagram, exactly as part 1
//! of the protocol has it. A member that was granted `batch` gets the events of the round
//! that concern it packed into BATCH datagrams of at most its size
//! ([`protocol::batch::pack`](proto::batch::pack)), in the order of the queue; an
//! event with nothing else waiting for that member goes as it is. So batches form only from
//! what is already waiting: a sender that keeps up sends rounds of one event, unbatched,
//! and an idle server's latency is the classic one.
//!
//! # Cost
//! The events of a round usually share one member snapshot (a busy channel) or a few
//! that grow from one another (a burst of joins: each notice goes to the members before
//! the joiner, so each snapshot is the previous one and one more). The planner groups the
//! round's fan-outs by snapshot and links snapshots that are prefixes of one another into
//! *chains*. Along a chain, members at the same position are the same member, so the
//! positions fall into *bands* that get the same events: a member's events come from its
//! band, with no look-up per member and per snapshot, and each distinct (band, batch size)
//! is encoded once. In the busy-channel case there is one band, so every member of a batch
//! size shares the same BATCH bytes and a round costs one encoding per batch size plus one
//! `sendmmsg` entry per datagram. Only when a round holds several chains (several channels,
//! or a part, which reorders a snapshot) is a member looked up by address, once per chain,
//! to merge its events from all of them.
//!
//! # Order
//! Each member's events are planned in queue order, whatever snapshots they came from, and
//! [`Planner::datagrams`] yields each member's datagrams in that order. Members are visited
//! in passes (every member's first datagram, then every member's second, ...), so a round of
//! classic deliveries goes out event by event, as before batching existed.

use std::collections::hash_map::{Entry, RandomState};
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::Arc;

use crate::state::Member;
use proto::batch::{self, Packed};

/// One fan-out as a sender holds it: the encoded event and the channel's member snapshot
/// (the sender picks out the members it serves).
#[derive(Debug, Clone)]
pub struct Job {
    /// The event datagram, encoded once.
    pub payload: Arc<[u8]>,
    /// The members it is for.
    pub members: Arc<[Member]>,
}

/// Where the bytes of a planned datagram are.
#[derive(Debug, Clone, Copy)]
enum Bytes {
    /// A job's payload, sent as it is.
    Job(u32),
    /// A BATCH built in the planner's arena.
    Arena(u32, u32),
}

#[derive(Debug, Clone, Copy)]
struct Dgram {
    bytes: Bytes,
    events: u32,
}

/// A member's share of the plan: its datagrams are `dgrams` of the planner's list.
/// One planned datagram ([`Planner::deliveries`]).
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    /// The datagram (an event, or a BATCH).
    pub bytes: &'a [u8],
    /// Its member.
    pub to: SocketAddr,
    /// Events inside.
    pub events: u32,
    /// The member's address is not proved.
    pub unproved: bool,
}

#[derive(Debug, Clone)]
struct Dest {
    addr: SocketAddr,
    /// Its address is not proved: the sender holds it to its budget.
    unproved: bool,
    dgrams: Range<u32>,
}

/// Distinct snapshots of a round.
#[derive(Debug, Default)]
struct Group {
    /// A job holding this snapshot.
    job: u32,
    /// Its members.
    len: u32,
    /// The jobs holding it, in queue order.
    jobs: Vec<u32>,
}

/// Snapshots of a round that are prefixes of one another.
#[derive(Debug, Default)]
struct Chain {
    /// The longest (every other group of the chain is a prefix of it).
    head: u32,
    /// Its groups, longest first.
    groups: Vec<u32>,
}

/// Positions of a chain's longest snapshot that get the same events.
#[derive(Debug, Clone)]
struct Band {
    /// A job holding the chain's longest snapshot.
    head_job: u32,
    /// The positions, in that snapshot.
    positions: Range<u32>,
    /// Their jobs, in queue order, in the planner's `lists`.
    list: Range<u32>,
}

/// A member found in several chains of a round.
#[derive(Debug)]
struct Slot {
    addr: SocketAddr,
    /// The smallest batch size it had in those snapshots (0, classic, wins): its caps may
    /// have changed during the round, and a client must never get a batch larger than it
    /// takes now.
    batch: u16,
    /// Unproved in any of those snapshots (it proved during the round, at most).
    unproved: bool,
    /// The bands it is in, one per chain.
    bands: Vec<u32>,
}

/// Which events a memoised encoding holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum ListKey {
    /// The jobs of a band.
    Band(u32),
    /// A merged list, by fingerprint; the list itself is kept to rule out collisions.
    Merged(u64),
}

/// Plans rounds; keeps its buffers from one round to the next, so a warm planner does not
/// allocate.
#[derive(Debug, Default)]
pub struct Planner {
    /// Distinct snapshots of the round (the first `used_groups`; the rest keep their
    /// buffers).
    groups: Vec<Group>,
    used_groups: usize,
    /// Chains of groups (the first `used_chains`).
    chains: Vec<Chain>,
    used_chains: usize,
    bands: Vec<Band>,
    /// Job lists of bands and merged lists.
    lists: Vec<u32>,
    /// Address → index into `slots`, for members of several chains.
    slot_of: HashMap<SocketAddr, u32>,
    slots: Vec<Slot>,
    used_slots: usize,
    /// Encodings already made this round: (events, batch size) → datagrams and, for a
    /// merged list, the list it was made from (in `lists`).
    memo: HashMap<(ListKey, u16), (Range<u32>, Range<u32>)>,
    hasher: RandomState,
    scratch: Vec<u32>,
    /// BATCH datagrams built this round.
    arena: Vec<u8>,
    dgrams: Vec<Dgram>,
    dests: Vec<Dest>,
    /// The most datagrams any member gets this round.
    passes: u32,
    /// Whether a member of this round takes batches.
    batch_members: bool,
}

impl Planner {
    /// A planner with empty buffers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Plans the delivery of `jobs`, in queue order, to every member of their snapshots
    /// for which `own` is true; read the result with [`datagrams`](Self::datagrams).
    pub fn plan(&mut self, jobs: &[Job], own: impl Fn(&Member) -> bool) {
        self.clear();
        self.group(jobs);
        self.chain(jobs);
        self.band();
        // One chain (one busy channel, or a burst of joins): a member's events are its
        // band's, with no look-up.
        let single = self.used_chains == 1;
        for b in 0..self.bands.len() {
            let band = self.bands[b].clone();
            let members = jobs[band.head_job as usize].members.clone();
            let at = band.positions.start as usize..band.positions.end as usize;
            for m in members[at].iter().filter(|m| own(m)) {
                if single {
                    let dgrams = self.band_encoding(jobs, b as u32, m.batch);
                    self.push_dest(m.addr, m.batch, m.unproved, dgrams);
                } else {
                    self.note(m, b as u32);
                }
            }
        }
        for i in 0..self.used_slots {
            let (addr, batch) = (self.slots[i].addr, self.slots[i].batch);
            let unproved = self.slots[i].unproved;
            let dgrams = if let [b] = self.slots[i].bands[..] {
                self.band_encoding(jobs, b, batch)
            } else {
                self.merged_encoding(jobs, i, batch)
            };
            self.push_dest(addr, batch, unproved, dgrams);
        }
    }

    /// The planned datagrams as (bytes, destination, events inside): every member's first
    /// datagram, then every member's second, and so on; each member's in queue order.
    pub fn datagrams<'a>(
        &'a self,
        jobs: &'a [Job],
    ) -> impl Iterator<Item = (&'a [u8], SocketAddr, u32)> + 'a {
        self.deliveries(jobs).map(|d| (d.bytes, d.to, d.events))
    }

    /// The planned datagrams as [`datagrams`](Self::datagrams) lays them out, each with
    /// whether its member is unproved (its sender holds it to the member's budget).
    pub fn deliveries<'a>(&'a self, jobs: &'a [Job]) -> impl Iterator<Item = Delivery<'a>> + 'a {
        (0..self.passes).flat_map(move |pass| {
            self.dests.iter().filter_map(move |d| {
                let i = d.dgrams.start + pass;
                (i < d.dgrams.end).then(|| {
                    let g = self.dgrams[i as usize];
                    let bytes = match g.bytes {
                        Bytes::Job(j) => &jobs[j as usize].payload[..],
                        Bytes::Arena(a, b) => &self.arena[a as usize..b as usize],
                    };
                    Delivery {
                        bytes,
                        to: d.addr,
                        events: g.events,
                        unproved: d.unproved,
                    }
                })
            })
        })
    }

    /// Whether the round planned has a member granted `batch` (whether waiting for more
    /// events could have saved datagrams).
    pub fn batch_members(&self) -> bool {
        self.batch_members
    }

    /// Datagrams planned.
    pub fn datagram_count(&self) -> usize {
        self.dests.iter().map(|d| d.dgrams.len()).sum()
    }

    fn clear(&mut self) {
        self.used_groups = 0;
        self.used_chains = 0;
        self.bands.clear();
        self.lists.clear();
        self.slot_of.clear();
        self.used_slots = 0;
        self.memo.clear();
        self.arena.clear();
        self.dgrams.clear();
        self.dests.clear();
        self.passes = 0;
        self.batch_members = false;
    }

    /// Sorts the jobs into groups by snapshot (pointer identity: the fan-outs of one
    /// channel between two membership changes share one `Arc`).
    fn group(&mut self, jobs: &[Job]) {
        let mut last = 0usize;
        for (j, job) in jobs.iter().enumerate() {
            let same = |g: &Group| Arc::ptr_eq(&jobs[g.job as usize].members, &job.members);
            let g = find_or_add(
                &mut self.groups,
                &mut self.used_groups,
                last,
                same,
                |group| {
                    group.job = j as u32;
                    group.len = job.members.len() as u32;
                    group.jobs.clear();
                },
            );
            self.groups[g].jobs.push(j as u32);
            last = g;
        }
    }

    /// Links the groups into chains, longest snapshot first: a group joins the first chain
    /// whose longest snapshot starts with exactly its members.
    fn chain(&mut self, jobs: &[Job]) {
        let snapshot = |g: &Group| &jobs[g.job as usize].members[..];
        let mut order = std::mem::take(&mut self.scratch);
        order.clear();
        order.extend(0..self.used_groups as u32);
        order.sort_unstable_by_key(|&g| std::cmp::Reverse(self.groups[g as usize].len));
        let mut last = 0usize;
        for &g in &order {
            let members = snapshot(&self.groups[g as usize]);
            let fits = |c: &Chain| is_prefix(snapshot(&self.groups[c.head as usize]), members);
            let c = find_or_add(
                &mut self.chains,
                &mut self.used_chains,
                last,
                fits,
                |chain| {
                    chain.head = g;
                    chain.groups.clear();
                },
            );
            self.chains[c].groups.push(g);
            last = c;
        }
        self.scratch = order;
    }

    /// Cuts each chain's longest snapshot into bands: the positions below the shortest
    /// snapshot get every job of the chain, those between it and the next one every job
    /// but the shortest snapshot's, and so on.
    fn band(&mut self) {
        for c in 0..self.used_chains {
            let chain = &self.chains[c];
            let head_job = self.groups[chain.head as usize].job;
            let mut start = 0u32;
            // Shortest first: the chain lists its groups longest first.
            for i in (0..chain.groups.len()).rev() {
                let end = self.groups[chain.groups[i] as usize].len;
                if end <= start {
                    continue; // the same members as the group before: same band
                }
                // Every group at least this long reaches these positions.
                let from = self.lists.len();
                for &h in &chain.groups[..=i] {
                    self.lists.extend_from_slice(&self.groups[h as usize].jobs);
                }
                self.lists[from..].sort_unstable();
                self.bands.push(Band {
                    head_job,
                    positions: start..end,
                    list: from as u32..self.lists.len() as u32,
                });
                start = end;
            }
        }
    }

    /// Records that member `m` (of a round with several chains) is in band `b`.
    fn note(&mut self, m: &Member, b: u32) {
        let slot = match self.slot_of.entry(m.addr) {
            Entry::Occupied(e) => *e.get() as usize,
            Entry::Vacant(e) => {
                let i = self.used_slots;
                self.used_slots += 1;
                if self.slots.len() < self.used_slots {
                    self.slots.push(Slot {
                        addr: m.addr,
                        batch: m.batch,
                        unproved: m.unproved,
                        bands: Vec::new(),
                    });
                }
                let s = &mut self.slots[i];
                s.addr = m.addr;
                s.batch = m.batch;
                s.unproved = m.unproved;
                s.bands.clear();
                e.insert(i as u32);
                i
            }
        };
        let s = &mut self.slots[slot];
        s.batch = s.batch.min(m.batch);
        s.unproved |= m.unproved;
        s.bands.push(b);
    }

    fn push_dest(&mut self, addr: SocketAddr, batch: u16, unproved: bool, dgrams: Range<u32>) {
        self.batch_members |= batch > 0;
        self.passes = self.passes.max(dgrams.end - dgrams.start);
        if !dgrams.is_empty() {
            self.dests.push(Dest {
                addr,
                unproved,
                dgrams,
            });
        }
    }

    /// The datagrams carrying the jobs of band `b` to a member of batch size `batch`, made
    /// once per round.
    fn band_encoding(&mut self, jobs: &[Job], b: u32, batch: u16) -> Range<u32> {
        let key = (ListKey::Band(b), batch);
        if let Some((dgrams, _)) = self.memo.get(&key) {
            return dgrams.clone();
        }
        let range = self.bands[b as usize].list.clone();
        let list = std::mem::take(&mut self.lists);
        let dgrams = self.encode(jobs, &list[range.start as usize..range.end as usize], batch);
        self.lists = list;
        self.memo.insert(key, (dgrams.clone(), 0..0));
        dgrams
    }

    /// The datagrams for slot `i`, which is in several chains: the jobs of its bands merged
    /// in queue order.
    fn merged_encoding(&mut self, jobs: &[Job], i: usize, batch: u16) -> Range<u32> {
        let mut list = std::mem::take(&mut self.scratch);
        list.clear();
        for &b in &self.slots[i].bands {
            let r = self.bands[b as usize].list.clone();
            list.extend_from_slice(&self.lists[r.start as usize..r.end as usize]);
        }
        // Each job is in exactly one group, and each group in one chain, so the merge is a
        // sort without duplicates.
        list.sort_unstable();
        let key = (ListKey::Merged(self.hasher.hash_one(&list[..])), batch);
        let dgrams = match self.memo.get(&key) {
            Some((dgrams, made_from))
                if self.lists[made_from.start as usize..made_from.end as usize] == list[..] =>
            {
                dgrams.clone()
            }
            hit => {
                let collided = hit.is_some();
                let dgrams = self.encode(jobs, &list, batch);
                if !collided {
                    let start = self.lists.len() as u32;
                    self.lists.extend_from_slice(&list);
                    let made_from = start..self.lists.len() as u32;
                    self.memo.insert(key, (dgrams.clone(), made_from));
                }
                dgrams
            }
        };
        self.scratch = list;
        dgrams
    }

    /// Appends the datagrams carrying `list` (job indices, in order) to a member of batch
    /// size `batch` (0: one event per datagram).
    fn encode(&mut self, jobs: &[Job], list: &[u32], batch: u16) -> Range<u32> {
        let start = self.dgrams.len() as u32;
        if batch == 0 {
            self.dgrams.extend(list.iter().map(|&j| Dgram {
                bytes: Bytes::Job(j),
                events: 1,
            }));
        } else {
            let dgrams = &mut self.dgrams;
            batch::pack(
                list.iter().map(|&j| &jobs[j as usize].payload[..]),
                usize::from(batch),
                &mut self.arena,
                |p| {
                    dgrams.push(match p {
                        Packed::Single(i) => Dgram {
                            bytes: Bytes::Job(list[i]),
                            events: 1,
                        },
                        Packed::Batch { range, events } => Dgram {
                            bytes: Bytes::Arena(range.start as u32, range.end as u32),
                            events: events as u32,
                        },
                    })
                },
            );
        }
        start..self.dgrams.len() as u32
    }
}

/// The index of the first of `pool[..*used]` that `matches`, trying `last` first (most
/// rounds have one snapshot, or runs of one); else of a new entry at the end of those in
/// use, reused from an earlier round if the pool has one (no allocation once warm) and
/// set up by `init`.
fn find_or_add<T: Default>(
    pool: &mut Vec<T>,
    used: &mut usize,
    last: usize,
    matches: impl Fn(&T) -> bool,
    init: impl FnOnce(&mut T),
) -> usize {
    if last < *used && matches(&pool[last]) {
        return last;
    }
    if let Some(i) = pool[..*used].iter().position(matches) {
        return i;
    }
    let i = *used;
    *used += 1;
    if pool.len() < *used {
        pool.push(T::default());
    }
    init(&mut pool[i]);
    i
}

/// Whether `head` starts with exactly the members of `part` (same addresses, batch sizes
/// and lanes, in the same places). The ends are compared first: unrelated snapshots
/// usually differ there.
fn is_prefix(head: &[Member], part: &[Member]) -> bool {
    match (part.first(), part.last()) {
        (Some(first), Some(last)) => {
            part.len() <= head.len()
                && head[0] == *first
                && head[part.len() - 1] == *last
                && head[..part.len()] == *part
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::{code, Event};

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn job(text: &str, members: &Arc<[Member]>) -> Job {
        Job {
            payload: Event::PublicMsg {
                title: "Pets",
                sender: "ann",
                text,
            }
            .to_bytes()
            .into(),
            members: members.clone(),
        }
    }

    /// What each member receives, as (port, texts in order), batches unpacked.
    fn received(p: &Planner, jobs: &[Job]) -> Vec<(u16, Vec<String>)> {
        let mut got: HashMap<u16, Vec<String>> = HashMap::new();
        for (bytes, to, n) in p.datagrams(jobs) {
            let events: Vec<&[u8]> = if bytes[..2] == code::BATCH.to_be_bytes() {
                batch::events(bytes).unwrap().collect()
            } else {
                vec![bytes]
            };
            assert_eq!(events.len(), n as usize);
            for e in events {
                let Ok(Event::PublicMsg { text, .. }) = Event::decode(e) else {
                    panic!("not a public message");
                };
                got.entry(to.port()).or_default().push(text.to_string());
            }
        }
        let mut v: Vec<_> = got.into_iter().collect();
        v.sort();
        v
    }

    #[test]
    fn a_busy_channel_shares_one_batch_among_its_batch_members() {
        let members: Arc<[Member]> = vec![
            Member::new(addr(1), 1200),
            Member::new(addr(2), 0),
            Member::new(addr(3), 1200),
        ]
        .into();
        let jobs: Vec<Job> = (0..5).map(|i| job(&i.to_string(), &members)).collect();
        let mut p = Planner::new();
        p.plan(&jobs, |_| true);
        let texts: Vec<String> = (0..5).map(|i| i.to_string()).collect();
        assert_eq!(
            received(&p, &jobs),
            vec![(1, texts.clone()), (2, texts.clone()), (3, texts)]
        );
        // One BATCH each for 1 and 3 (the same bytes), five datagrams for the classic 2.
        assert_eq!(p.datagram_count(), 7);
        assert_eq!(
            p.arena.len(),
            batch::size_of(jobs.iter().map(|j| j.payload.len()))
        );
        // The first pass gives everyone its first datagram.
        let first: Vec<u16> = p
            .datagrams(&jobs)
            .take(3)
            .map(|(_, a, _)| a.port())
            .collect();
        assert_eq!(first, [1, 2, 3]);
    }

    #[test]
    fn a_lone_event_goes_unbatched() {
        let members: Arc<[Member]> = vec![Member::new(addr(1), 1200)].into();
        let jobs = vec![job("x", &members)];
        let mut p = Planner::new();
        p.plan(&jobs, |_| true);
        let got: Vec<_> = p.datagrams(&jobs).collect();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, &jobs[0].payload[..]);
    }

    #[test]
    fn joins_during_a_round_keep_each_members_order() {
        // A burst of joins: each notice goes to the members before the joiner.
        let mut list = vec![Member::new(addr(1), 600)];
        let mut jobs = Vec::new();
        for p in 2..8u16 {
            let snap: Arc<[Member]> = list.clone().into();
            jobs.push(job(&format!("j{p}"), &snap));
            list.push(Member::new(addr(p), if p % 2 == 0 { 0 } else { 600 }));
        }
        let mut p = Planner::new();
        p.plan(&jobs, |_| true);
        let got = received(&p, &jobs);
        for (port, texts) in got {
            let want: Vec<String> = (port + 1..8).map(|j| format!("j{j}")).collect();
            assert_eq!(texts, want, "member {port}");
        }
    }

    #[test]
    fn only_own_members_are_planned() {
        let members: Arc<[Member]> = (1..=10).map(|p| Member::new(addr(p), 0)).collect();
        let jobs = vec![job("a", &members)];
        let mut p = Planner::new();
        p.plan(&jobs, |m| m.addr.port() % 2 == 0);
        let ports: Vec<u16> = p.datagrams(&jobs).map(|(_, a, _)| a.port()).collect();
        assert_eq!(ports, [2, 4, 6, 8, 10]);
    }

    #[test]
    fn batches_never_exceed_the_members_size() {
        let members: Arc<[Member]> = vec![Member::new(addr(1), 512)].into();
        let text = "y".repeat(100);
        let jobs: Vec<Job> = (0..40).map(|_| job(&text, &members)).collect();
        let mut p = Planner::new();
        p.plan(&jobs, |_| true);
        let mut events = 0;
        for (bytes, _, n) in p.datagrams(&jobs) {
            assert!(bytes.len() <= 512);
            events += n;
        }
        assert_eq!(events, 40);
    }
}
