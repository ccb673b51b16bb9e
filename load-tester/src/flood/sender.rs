//! The flood itself: one socket sends a datagram from each source address in turn,
//! [`MAX_BATCH`] per system call with the source chosen per datagram, and reads what the
//! server answers to all those addresses between batches.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use proto::{errors, Event, Request};
use serde::{Deserialize, Serialize};
use udp::{send_batch_from, RecvBatch, MAX_BATCH};

use super::args::{source, FloodArgs, Kind, HOT_LIST_NAMES};
use crate::sent::{Sent, Start};
use crate::sys::now_ns;

/// Answers longer than this are cut when read; the flood only needs their start.
const REPLY_SLOT: usize = 256;
/// Receive calls after each sent batch at most, so reading never starves sending.
const DRAINS_PER_BATCH: usize = 4;

/// The nickname the `i`-th flood address logs in with on pass `pass` of run `run_id`.
fn flood_nick(run_id: u32, pass: u64, i: usize) -> String {
    format!("f{run_id:x}_{pass}_{i}")
}

/// The address index in a nickname made by [`flood_nick`] for `run_id`.
fn nick_index(run_id: u32, nick: &str) -> Option<usize> {
    let rest = nick.strip_prefix(&format!("f{run_id:x}_"))?;
    rest.split_once('_')?.1.parse().ok()
}

/// The datagram `step` (see [`Kind::steps`]) of the `i`-th address on pass `pass`.
fn datagram(
    kind: Kind,
    run_id: u32,
    pass: u64,
    (i, step): (usize, usize),
    channel: &str,
    out: &mut Vec<u8>,
) {
    out.clear();
    match kind {
        Kind::Login => Request::Login {
            nick: &flood_nick(run_id, pass, i),
        }
        .encode(out),
        Kind::HotList if step == 0 => Request::Login {
            nick: &flood_nick(run_id, pass, i),
        }
        .encode(out),
        Kind::HotList => {
            // Names no other address watches, so each is an entry of the server's own.
            let nicks: Vec<String> = (0..HOT_LIST_NAMES)
                .map(|j| format!("w{i:x}_{}", (step - 1) * HOT_LIST_NAMES + j))
                .collect();
            Request::Watch {
                nicks: &nicks.join(" "),
            }
            .encode(out)
        }
        Kind::Join => Request::Join { title: channel }.encode(out),
        Kind::Public => Request::SendPublic {
            text: "flood from a stranger",
        }
        .encode(out),
        Kind::StillHere => Request::StillHere.encode(out),
    }
}

/// What the server answered to the flood's addresses.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Replies {
    /// LOGIN_ACKs.
    pub login_acks: u64,
    /// Distinct flood addresses that got a LOGIN_ACK: each proves the server took that
    /// source for a user of its own.
    pub distinct_logged_in: u64,
    /// `ERROR server full`.
    pub server_full: u64,
    /// `ERROR please log in`.
    pub please_log_in: u64,
    /// Other ERRORs.
    pub other_errors: u64,
    /// Anything else.
    pub other: u64,
}

/// What the flood did.
#[derive(Debug, Default, Clone)]
pub(super) struct Flooded {
    /// The datagrams sent, and what sending them cost.
    pub(super) sending: Sent,
    /// Replies read so far.
    pub(super) replies: Replies,
}

/// The flood's socket and what it has seen.
pub(super) struct Flooder<'a> {
    args: &'a FloodArgs,
    run_id: u32,
    socket: UdpSocket,
    batch: RecvBatch,
    /// One bit per address: whether it got a LOGIN_ACK.
    acked: Vec<u64>,
    /// The tallies.
    pub(super) out: Flooded,
}

impl<'a> Flooder<'a> {
    /// A non-blocking socket on `0.0.0.0`, so that the answers to every flood address (they
    /// all go to this socket's port) arrive here to be counted.
    ///
    /// # Errors
    /// If the socket can't be made.
    pub(super) fn new(args: &'a FloodArgs, run_id: u32) -> io::Result<Self> {
        let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
        socket.set_nonblocking(true)?;
        // Room for answers that come faster than they are read; the kernel may grant less.
        let _ = socket2::SockRef::from(&socket).set_recv_buffer_size(8 << 20);
        Ok(Flooder {
            args,
            run_id,
            socket,
            batch: RecvBatch::new(REPLY_SLOT),
            acked: vec![0; args.addresses.div_ceil(64)],
            out: Flooded::default(),
        })
    }

    /// Sends until the pass is done (or passes, with --duration), at --rate, calling `tick`
    /// between batches (for progress and samples).
    pub(super) fn flood(&mut self, mut tick: impl FnMut(&Flooded)) {
        let args = self.args;
        let server: SocketAddr = args.server;
        let n = args.addresses;
        let start = Start::now();
        let deadline = args
            .duration
            .map(|d| start.ns + (d * 1e9) as u64)
            .unwrap_or(u64::MAX);
        // At a set rate, batches small enough to keep the pace smooth (about 1 ms each).
        let per_batch = if args.rate > 0.0 {
            ((args.rate / 1000.0) as usize).clamp(1, MAX_BATCH)
        } else {
            MAX_BATCH
        };
        // Each address's datagrams go in one batch, in order.
        let steps = args.kind.steps();
        let per_batch = (per_batch / steps).max(1);
        let mut bufs: Vec<Vec<u8>> = (0..per_batch * steps)
            .map(|_| Vec::with_capacity(64))
            .collect();
        let mut tried = 0u64;
        let mut next_tick = start.ns;
        'passes: for pass in 0u64.. {
            let mut i = 0;
            while i < n {
                let now = now_ns();
                if now >= deadline {
                    break 'passes;
                }
                if args.rate > 0.0 {
                    let due = start.ns + (tried as f64 / args.rate * 1e9) as u64;
                    if due > now {
                        self.drain();
                        std::thread::sleep(Duration::from_nanos((due - now).min(2_000_000)));
                        continue;
                    }
                }
                let k = (n - i).min(per_batch);
                let d = k * steps;
                for (j, buf) in bufs[..d].iter_mut().enumerate() {
                    let at = (i + j / steps, j % steps);
                    datagram(args.kind, self.run_id, pass, at, &args.channel, buf);
                }
                let msgs: Vec<(&[u8], Ipv4Addr, SocketAddr)> = bufs[..d]
                    .iter()
                    .enumerate()
                    .map(|(j, b)| (&b[..], source(i + j / steps), server))
                    .collect();
                for chunk in msgs.chunks(MAX_BATCH) {
                    self.send(chunk);
                }
                tried += d as u64;
                i += k;
                self.drain();
                if now >= next_tick {
                    tick(&self.out);
                    next_tick = now + 100_000_000;
                }
            }
            if args.duration.is_none() {
                break;
            }
        }
        self.out.sending.stop(start);
    }

    /// Sends one batch, resuming after partial sends and skipping a datagram the kernel
    /// refuses rather than spinning on it.
    fn send(&mut self, msgs: &[(&[u8], Ipv4Addr, SocketAddr)]) {
        let mut done = 0;
        while done < msgs.len() {
            match send_batch_from(&self.socket, &msgs[done..]) {
                Ok(k) if k > 0 => {
                    self.out.sending.sent += k as u64;
                    done += k;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // The send buffer is full: let the kernel catch up.
                    self.drain();
                    std::thread::sleep(Duration::from_micros(50));
                }
                _ => {
                    self.out.sending.refused += 1;
                    done += 1;
                }
            }
        }
    }

    /// Reads the answers that are queued (a few batches at most) and counts them.
    pub(super) fn drain(&mut self) {
        for _ in 0..DRAINS_PER_BATCH {
            match self.batch.recv(&self.socket) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let r = &mut self.out.replies;
            for (_, bytes) in self.batch.iter() {
                match Event::decode(bytes) {
                    Ok(Event::LoginAck { nick }) => {
                        r.login_acks += 1;
                        if let Some(i) = nick_index(self.run_id, nick) {
                            if let Some(word) = self.acked.get_mut(i / 64) {
                                let bit = 1u64 << (i % 64);
                                if *word & bit == 0 {
                                    *word |= bit;
                                    r.distinct_logged_in += 1;
                                }
                            }
                        }
                    }
                    Ok(Event::Error { message }) => match message {
                        errors::SERVER_FULL => r.server_full += 1,
                        errors::PLEASE_LOG_IN => r.please_log_in += 1,
                        _ => r.other_errors += 1,
                    },
                    _ => r.other += 1,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nicknames_are_valid_and_give_back_their_index() {
        let nick = flood_nick(0xffff_ffff, 99, 9_999_999);
        assert!(nick.len() <= proto::MAX_NICK_LEN);
        assert_eq!(nick_index(0xffff_ffff, &nick), Some(9_999_999));
        assert_eq!(nick_index(0xabc, &nick), None);
        assert_eq!(nick_index(7, "steady"), None);
    }

    #[test]
    fn datagrams_decode_as_the_kind_asked_for() {
        let mut buf = Vec::new();
        let max = proto::DEFAULT_MAX_DATAGRAM;
        datagram(Kind::Login, 1, 0, (5, 0), "Pets", &mut buf);
        assert_eq!(
            Request::decode(&buf, max),
            Ok(Request::Login { nick: "f1_0_5" })
        );
        datagram(Kind::Join, 1, 0, (5, 0), "Pets", &mut buf);
        assert_eq!(
            Request::decode(&buf, max),
            Ok(Request::Join { title: "Pets" })
        );
        datagram(Kind::StillHere, 1, 0, (5, 0), "Pets", &mut buf);
        assert_eq!(Request::decode(&buf, max), Ok(Request::StillHere));
        datagram(Kind::HotList, 1, 0, (5, 0), "Pets", &mut buf);
        assert_eq!(
            Request::decode(&buf, max),
            Ok(Request::Login { nick: "f1_0_5" })
        );
        let mut names = Vec::new();
        for step in 1..Kind::HotList.steps() {
            datagram(Kind::HotList, 1, 0, (5, step), "Pets", &mut buf);
            let Ok(Request::Watch { nicks }) = Request::decode(&buf, max) else {
                panic!("a WATCH_REQ within {max} bytes");
            };
            names.extend(nicks.split(' ').map(str::to_owned));
        }
        assert_eq!(names.len(), 100);
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 100, "no name twice");
        assert!(names.iter().all(|n| proto::valid_nick(n)));
    }
}
