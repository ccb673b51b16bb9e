//! The receiver threads: each polls its share of the member sockets (and their group
//! sockets), reads every datagram, opens the sealed ones of protected members, splits
//! BATCHes, and counts what came in a [`Tally`] added to the shared counters once a round.

use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use anyhow::Context;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use proto::{batch, code};

use super::count::{one_event, Tally, Via};
use super::mcast::GroupSocks;
use super::shared::Shared;
use crate::hist::Hists;
use crate::sys::now_ns;

/// The largest datagram a group socket may get: a BATCH of a few events, or one long
/// message.
const LARGEST_GROUP_DATAGRAM: usize = 65_536;

/// Starts receiver `t` of `threads`, reading members `t`, `t + threads`, ... of `shared`.
///
/// # Errors
/// A poller that can't be made, a socket that can't be registered, a thread that can't
/// start.
pub(super) fn spawn(
    shared: &Arc<Shared>,
    t: usize,
    threads: usize,
    rcvbuf: usize,
) -> anyhow::Result<JoinHandle<()>> {
    let n = shared.sockets.len();
    let poll = Poll::new().context("creating a poller")?;
    for i in (t..n).step_by(threads) {
        let fd = shared.sockets[i].as_raw_fd();
        poll.registry()
            .register(&mut SourceFd(&fd), Token(i), Interest::READABLE)
            .context("registering a member socket")?;
    }
    let shared = Arc::clone(shared);
    let groups = GroupSocks::new(n, rcvbuf, LARGEST_GROUP_DATAGRAM);
    Ok(thread::Builder::new()
        .name(format!("receiver-{t}"))
        .spawn(move || receive_loop(poll, &shared, groups))?)
}

fn receive_loop(mut poll: Poll, shared: &Shared, mut groups: GroupSocks) {
    let mut events = Events::with_capacity(1024);
    let mut hists = Hists::default();
    let mut buf = vec![0u8; 65536];
    let c = &shared.counters;
    let mut epoch = shared.epoch.load(Ordering::Relaxed);
    while !shared.stop.load(Ordering::Relaxed) {
        let now_epoch = shared.epoch.load(Ordering::Relaxed);
        if now_epoch != epoch {
            let h = std::mem::take(&mut hists);
            if let Ok(mut v) = shared.handed_in.lock() {
                v.push((epoch, h));
            }
            epoch = now_epoch;
        }
        if poll
            .poll(&mut events, Some(Duration::from_millis(50)))
            .is_err()
        {
            continue;
        }
        let mut t = Tally::default();
        for ev in events.iter() {
            if let Some(i) = groups.member_of(ev.token()) {
                groups.read(shared, i, &mut t, &mut hists);
                continue;
            }
            let i = ev.token().0;
            let Some(sock) = shared.sockets.get(i) else {
                continue;
            };
            // Edge-triggered: read until the socket is empty or the next edge is lost.
            loop {
                let len = match sock.recv(&mut buf) {
                    Ok(len) => len,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    // ICMP errors queued on the socket (e.g. a refused send): read past them.
                    Err(_) => continue,
                };
                let opened;
                let d: &[u8] = match shared.sessions[i].as_ref() {
                    Some(s) => match s
                        .lock()
                        .ok()
                        .and_then(|mut s| s.open(&buf[..len]).map(|b| b.into_owned()))
                    {
                        Some(b) => {
                            opened = b;
                            &opened
                        }
                        None => {
                            c.garbage.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                    },
                    None => &buf[..len],
                };
                let before = t.public;
                // One clock reading per datagram: the events of a batch arrived together.
                let now = now_ns();
                let mut one = |e: &[u8]| {
                    if let Some(told) =
                        one_event(shared, i, e, now, &mut t, &mut hists, Via::Unicast)
                    {
                        groups.told(shared, poll.registry(), i, &told);
                    }
                };
                if d.starts_with(&code::BATCH.to_be_bytes()) {
                    match batch::events(d) {
                        Ok(entries) => entries.for_each(&mut one),
                        Err(_) => {
                            c.garbage.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                } else {
                    one(d);
                }
                if t.public > before {
                    t.public_datagrams += 1;
                }
            }
        }
        let now = now_ns();
        if t.public + t.raw > 0 {
            c.public.fetch_add(t.public, Ordering::Relaxed);
            c.public_datagrams
                .fetch_add(t.public_datagrams, Ordering::Relaxed);
            c.raw.fetch_add(t.raw, Ordering::Relaxed);
            c.last_public_ns.store(now, Ordering::Relaxed);
            if t.raw > 0 {
                shared.raw_thread.wake();
            }
        }
        if t.membership > 0 {
            c.membership.fetch_add(t.membership, Ordering::Relaxed);
            c.last_membership_ns.store(now, Ordering::Relaxed);
        }
    }
}
