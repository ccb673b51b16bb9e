//! The client's side of multicast channels (part 4): ask for the `multicast` cap, join a
//! channel's group on `MCAST_GROUP`, check every `CHANNEL_DATA` (tag, then sequence),
//! confirm with `MCAST_JOINED`, notice a group gone quiet (`MCAST_LEFT`), leave the group
//! on part, and say in `/status` how channel traffic arrives.
//!
//! Events heard on a group are shown exactly as the same events by unicast would be.
//! While a channel switches between unicast and its group (from `MCAST_GROUP` until the
//! server has our `MCAST_JOINED`, or back after `MCAST_LEFT`) one event can arrive both
//! ways; [`Pairing`] shows each once: an event seen on one path is remembered for a few
//! seconds, and its twin from the other path is consumed silently. Identical events
//! (someone saying "hi" twice) pair up one for one, so none is lost.
//!
//! One thread per group socket reads it (a client is in a few channels, not thousands);
//! each socket is bound to its group address and port, so it hears that group only, and
//! joins it on every interface that is up, so it hears the group whichever interface the
//! server sends it from.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use base64::Engine as _;
use parking_lot::Mutex;
use socket2::{Domain, Protocol, Socket, Type};

use super::{render, Output, Shared};
use crate::multicast::{mac, verify, ChannelMac, KEY_LEN, LOST_AFTER};
use crate::protocol::{batch, channel_data, code, words, Event, Request};
use crate::server::sys::interfaces;

/// How long an event seen on one path waits for its twin from the other.
const PAIR_FOR: Duration = Duration::from_secs(3);
/// Events remembered per path and channel at most.
const PAIR_MAX: usize = 256;
/// A confirmed channel whose events still come by unicast this long after MCAST_JOINED
/// went out: the server did not get it, so it is sent again.
const REJOIN_AFTER: Duration = Duration::from_secs(1);
/// How long a group socket's thread blocks before it looks at its stop flag.
const GROUP_POLL: Duration = Duration::from_millis(100);
/// Channels with a group at most (a user may be in 64 channels by default): a server that
/// names more groups can't make the client open sockets and threads without end.
const MAX_GROUPS: usize = 64;

/// Group datagrams dropped, by reason (shown by `/status`).
#[derive(Debug, Default)]
pub struct Drops {
    /// The tag did not verify under any channel key of the group.
    pub bad_tag: AtomicU64,
    /// The sequence was not above the last one accepted.
    pub old_sequence: AtomicU64,
    /// Not a CHANNEL_DATA, or its inside did not decode.
    pub malformed: AtomicU64,
}

/// How a channel's events reach us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    /// Told the group; nothing valid heard on it yet: unicast.
    Waiting,
    /// Heard the group and sent MCAST_JOINED: the group.
    Confirmed,
    /// Heard nothing on the group for a while and sent MCAST_LEFT: unicast.
    Lost,
}

/// Remembers recent events of one channel on each path; see the module docs.
#[derive(Debug, Default)]
struct Pairing {
    unicast: VecDeque<(Box<[u8]>, Instant)>,
    group: VecDeque<(Box<[u8]>, Instant)>,
}

impl Pairing {
    /// An event arrived on the group (`from_group`) or by unicast: whether to show it.
    fn arrive(&mut self, event: &[u8], from_group: bool, now: Instant) -> bool {
        for q in [&mut self.unicast, &mut self.group] {
            while q
                .front()
                .is_some_and(|(_, t)| now.saturating_duration_since(*t) > PAIR_FOR)
            {
                q.pop_front();
            }
        }
        let (twins, mine) = if from_group {
            (&mut self.unicast, &mut self.group)
        } else {
            (&mut self.group, &mut self.unicast)
        };
        if let Some(i) = twins.iter().position(|(e, _)| **e == *event) {
            twins.remove(i);
            return false;
        }
        if mine.len() == PAIR_MAX {
            mine.pop_front();
        }
        mine.push_back((event.into(), now));
        true
    }
}

/// A channel we were told the group of.
struct Channel {
    title: String,
    group: SocketAddr,
    key: [u8; KEY_LEN],
    mac: ChannelMac,
    last_seq: u64,
    path: Path,
    last_heard: Option<Instant>,
    joined_sent: Option<Instant>,
    /// Events shown that came on the group, and by unicast.
    by_group: u64,
    by_unicast: u64,
    pairing: Pairing,
}

/// A group socket and the thread reading it.
struct Listener {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Listener {
    fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[derive(Default)]
struct Inner {
    /// Whether the server granted the cap.
    granted: bool,
    /// The channels we are in, as JOIN_ACK named them (for `/status`).
    joined: Vec<String>,
    /// Channels with a group, by lower-cased title.
    channels: HashMap<String, Channel>,
    /// Group sockets by group address.
    listeners: HashMap<SocketAddr, Listener>,
    /// Groups that could not be joined, with why (for `/status`).
    failed: HashMap<SocketAddr, String>,
}

/// What a client knows of multicast; lives in [`Shared`].
pub struct Multicast {
    /// Whether to ask for the cap at all (`--no-multicast` says no).
    wanted: bool,
    inner: Mutex<Inner>,
    /// Dropped group datagrams.
    pub drops: Drops,
}

/// What to send once the lock is released.
enum Say {
    Joined(String),
    Left(String),
}

impl Multicast {
    /// Multicast state that asks for the cap if `wanted`.
    pub fn new(wanted: bool) -> Self {
        Multicast {
            wanted,
            inner: Mutex::new(Inner::default()),
            drops: Drops::default(),
        }
    }

    /// After a login (a new login starts without caps): ask for `multicast`.
    pub(super) fn ask(&self, shared: &Shared) {
        if self.wanted {
            let _ = shared.send(&Request::Caps { caps: "multicast" });
        }
    }

    /// Forgets everything (logged off, or logged in anew) and stops the group threads.
    pub fn reset(&self) {
        {
            let mut i = self.inner.lock();
            i.granted = false;
            i.joined.clear();
        }
        self.drop_groups();
    }

    /// Forgets every group and stops their threads (the channels stay joined).
    fn drop_groups(&self) {
        let listeners: Vec<Listener> = {
            let mut i = self.inner.lock();
            i.channels.clear();
            i.failed.clear();
            i.listeners.drain().map(|(_, l)| l).collect()
        };
        for l in listeners {
            l.stop();
        }
    }

    /// Stops every group thread (the client is ending).
    pub fn shutdown(&self) {
        self.reset();
    }

    /// An event that came by unicast, before it is shown: keeps the bookkeeping of caps,
    /// channels and groups. Returns whether to show it (its twin may have come on the group).
    pub(super) fn on_unicast(&self, shared: &Arc<Shared>, out: &Output, event: &Event<'_>) -> bool {
        let now = Instant::now();
        let mut say = None;
        let show = {
            let mut i = self.inner.lock();
            match event {
                Event::CapsAck { caps } => {
                    i.granted = words(caps).any(|c| c == "multicast");
                    if !i.granted {
                        drop(i);
                        self.drop_groups();
                    }
                    return true;
                }
                Event::JoinAck(info) => {
                    if !i.joined.iter().any(|t| t.eq_ignore_ascii_case(info.title)) {
                        i.joined.push(info.title.to_string());
                    }
                    true
                }
                Event::PartAck(info) => {
                    i.joined.retain(|t| !t.eq_ignore_ascii_case(info.title));
                    let lost = i.channels.remove(&info.title.to_lowercase());
                    let unused = lost.and_then(|c| {
                        let used = i.channels.values().any(|o| o.group == c.group);
                        (!used).then_some(c.group)
                    });
                    if let Some(l) = unused.and_then(|g| i.listeners.remove(&g)) {
                        drop(i);
                        l.stop();
                    }
                    true
                }
                Event::McastGroup {
                    title,
                    group,
                    port,
                    key,
                } => {
                    drop(i);
                    self.told_group(shared, out, title, group, *port, key);
                    return false;
                }
                Event::PublicMsg { title, .. }
                | Event::UserJoins { title, .. }
                | Event::UserParts { title, .. } => match i.channels.get_mut(&title.to_lowercase())
                {
                    Some(c) => {
                        // The event's own bytes: decoding and encoding these events gives
                        // back the same bytes (and a sealed datagram's are inside it).
                        let show = c.pairing.arrive(&event.to_bytes(), false, now);
                        if show {
                            c.by_unicast += 1;
                            // Confirmed, yet the channel still comes by unicast: the server
                            // missed our MCAST_JOINED.
                            if c.path == Path::Confirmed
                                && c.joined_sent.is_some_and(|t| {
                                    now.saturating_duration_since(t) > REJOIN_AFTER
                                })
                            {
                                c.joined_sent = Some(now);
                                say = Some(Say::Joined(c.title.clone()));
                            }
                        }
                        show
                    }
                    None => true,
                },
                _ => true,
            }
        };
        self.say(shared, say);
        show
    }

    fn say(&self, shared: &Shared, say: Option<Say>) {
        let _ = match say {
            Some(Say::Joined(title)) => shared.send(&Request::McastJoined { title: &title }),
            Some(Say::Left(title)) => shared.send(&Request::McastLeft { title: &title }),
            None => Ok(()),
        };
    }

    /// MCAST_GROUP: remember the channel's group and key, and listen to the group.
    fn told_group(
        &self,
        shared: &Arc<Shared>,
        out: &Output,
        title: &str,
        group: &str,
        port: u16,
        key_b64: &str,
    ) {
        let ip: Option<IpAddr> = group.parse().ok().filter(|ip: &IpAddr| ip.is_multicast());
        let key = base64::engine::general_purpose::STANDARD
            .decode(key_b64)
            .ok()
            .and_then(|k| <[u8; KEY_LEN]>::try_from(k).ok());
        let (Some(ip), Some(key), true) = (ip, key, port != 0) else {
            self.drops.malformed.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let group = SocketAddr::new(ip, port);
        let mut i = self.inner.lock();
        let lower = title.to_lowercase();
        if !i.channels.contains_key(&lower) && i.channels.len() >= MAX_GROUPS {
            self.drops.malformed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let same = i
            .channels
            .get(&lower)
            .is_some_and(|c| c.group == group && c.key == key);
        if let (true, Some(c)) = (same, i.channels.get_mut(&lower)) {
            // The server counts us as waiting to confirm again (a repeated join, caps
            // asked again after a password login): confirm on the next datagram.
            c.path = Path::Waiting;
        } else {
            i.channels.insert(
                lower,
                Channel {
                    title: title.to_string(),
                    group,
                    key,
                    mac: mac(&key),
                    last_seq: 0,
                    path: Path::Waiting,
                    last_heard: None,
                    joined_sent: None,
                    by_group: 0,
                    by_unicast: 0,
                    pairing: Pairing::default(),
                },
            );
        }
        if i.listeners.contains_key(&group) {
            return;
        }
        match listen(group) {
            Ok(socket) => {
                i.failed.remove(&group);
                let stop = Arc::new(AtomicBool::new(false));
                let thread = {
                    let (shared, out, stop) = (Arc::clone(shared), out.clone(), stop.clone());
                    thread::Builder::new()
                        .name(format!("group {group}"))
                        .spawn(move || read_group(&shared, &out, &socket, group, &stop))
                        .ok()
                };
                i.listeners.insert(group, Listener { stop, thread });
            }
            Err(e) => {
                i.failed.insert(group, e.to_string());
            }
        }
    }

    /// A datagram heard on `group`: check it, confirm the channel if that is news, and
    /// show its events.
    fn on_group(&self, shared: &Shared, out: &Output, group: SocketAddr, datagram: &[u8]) {
        let now = Instant::now();
        let Ok(data) = channel_data::parse(datagram) else {
            self.drops.malformed.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let me = shared.nick.lock().clone().unwrap_or_default();
        let mut lines = Vec::new();
        let mut say = None;
        {
            let mut i = self.inner.lock();
            let mut ours = i
                .channels
                .values_mut()
                .filter(|c| c.group == group)
                .peekable();
            if ours.peek().is_none() {
                // A group we left a moment ago: nothing to check it against.
                return;
            }
            let Some(c) = ours.find(|c| verify(&c.mac, &data)) else {
                self.drops.bad_tag.fetch_add(1, Ordering::Relaxed);
                return;
            };
            if data.seq <= c.last_seq {
                self.drops.old_sequence.fetch_add(1, Ordering::Relaxed);
                return;
            }
            let inners: Vec<&[u8]> = if data.inner.starts_with(&code::BATCH.to_be_bytes()) {
                match batch::events(data.inner) {
                    Ok(events) => events.collect(),
                    Err(_) => {
                        self.drops.malformed.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                }
            } else {
                vec![data.inner]
            };
            c.last_seq = data.seq;
            c.last_heard = Some(now);
            if c.path != Path::Confirmed {
                c.path = Path::Confirmed;
                c.joined_sent = Some(now);
                say = Some(Say::Joined(c.title.clone()));
            }
            for inner in inners {
                let Ok(event) = Event::decode(inner) else {
                    self.drops.malformed.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                let (title, own) = match &event {
                    Event::PublicMsg { title, .. } => (*title, false),
                    Event::UserJoins { title, nick } | Event::UserParts { title, nick } => {
                        // Unicast never tells a user of its own coming and going.
                        (*title, *nick == me)
                    }
                    _ => continue,
                };
                if own || !title.eq_ignore_ascii_case(&c.title) {
                    continue;
                }
                if c.pairing.arrive(inner, true, now) {
                    c.by_group += 1;
                    lines.push(render::render(&event));
                }
            }
        }
        self.say(shared, say);
        for line in lines {
            out.line(line);
        }
    }

    /// Called now and then by the receive thread: a confirmed group that has gone quiet
    /// (no probe for [`LOST_AFTER`]) is given up with MCAST_LEFT.
    pub(super) fn tick(&self, shared: &Shared) {
        let now = Instant::now();
        let mut lost = Vec::new();
        {
            let mut i = self.inner.lock();
            for c in i.channels.values_mut() {
                let quiet = c
                    .last_heard
                    .is_none_or(|t| now.saturating_duration_since(t) > LOST_AFTER);
                if c.path == Path::Confirmed && quiet {
                    c.path = Path::Lost;
                    lost.push(c.title.clone());
                }
            }
        }
        for title in lost {
            self.say(shared, Some(Say::Left(title)));
        }
    }

    /// The lines `/status` shows about multicast.
    pub(super) fn status(&self) -> Vec<String> {
        let i = self.inner.lock();
        let now = Instant::now();
        let mut lines = Vec::new();
        lines.push(match (self.wanted, i.granted) {
            (false, _) => "\tMulticast: not asked for (--no-multicast)".to_string(),
            (true, true) => "\tMulticast: granted by the server".to_string(),
            (true, false) => "\tMulticast: not offered by this server".to_string(),
        });
        for title in &i.joined {
            let line = match i.channels.get(&title.to_lowercase()) {
                None => format!("\t{}: by unicast", render::sanitize(title)),
                Some(c) => {
                    let how = match c.path {
                        Path::Confirmed => "by multicast",
                        Path::Waiting => "by unicast (waiting to hear the group)",
                        Path::Lost => "by unicast (the group went quiet)",
                    };
                    let heard = c.last_heard.map_or("never".to_string(), |t| {
                        format!(
                            "{:.1} s ago",
                            now.saturating_duration_since(t).as_secs_f64()
                        )
                    });
                    let failed = i
                        .failed
                        .get(&c.group)
                        .map(|e| format!("; cannot join the group: {e}"))
                        .unwrap_or_default();
                    format!(
                        "\t{}: {how} on group {}; {} events by multicast, {} by unicast; group last heard {heard}{failed}",
                        render::sanitize(&c.title),
                        c.group,
                        c.by_group,
                        c.by_unicast,
                    )
                }
            };
            lines.push(line);
        }
        let d = &self.drops;
        let (tag, seq, bad) = (
            d.bad_tag.load(Ordering::Relaxed),
            d.old_sequence.load(Ordering::Relaxed),
            d.malformed.load(Ordering::Relaxed),
        );
        lines.push(format!(
            "\tGroup datagrams dropped: {} (bad tag {tag}, old sequence {seq}, malformed {bad})",
            tag + seq + bad
        ));
        lines
    }
}

/// A socket bound to `group` that joined it on every interface that is up (module docs).
fn listen(group: SocketAddr) -> io::Result<UdpSocket> {
    let v6 = group.is_ipv6();
    let s = Socket::new(
        if v6 { Domain::IPV6 } else { Domain::IPV4 },
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    // Other clients of this machine listen to the same group and port.
    s.set_reuse_address(true)?;
    s.set_read_timeout(Some(GROUP_POLL))?;
    s.bind(&group.into())?;
    let mut joined = 0;
    let mut last_error = None;
    let mut indexes = Vec::new();
    for iface in interfaces()?.into_iter().filter(|i| i.up) {
        let result = match (group.ip(), iface.addr) {
            (IpAddr::V4(g), IpAddr::V4(local)) => s.join_multicast_v4(&g, &local),
            // IPv6 joins by interface index, whatever addresses it has (a fresh link may
            // not have its link-local address yet).
            (IpAddr::V6(g), _) if iface.index != 0 && !indexes.contains(&iface.index) => {
                indexes.push(iface.index);
                s.join_multicast_v6(&g, iface.index)
            }
            _ => continue,
        };
        match result {
            Ok(()) => joined += 1,
            Err(e) => last_error = Some(e),
        }
    }
    if joined == 0 {
        return Err(last_error
            .unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no interface is up")));
    }
    Ok(s.into())
}

/// A group socket's thread: reads until told to stop.
fn read_group(
    shared: &Shared,
    out: &Output,
    socket: &UdpSocket,
    group: SocketAddr,
    stop: &AtomicBool,
) {
    let mut buf = vec![0u8; 65536];
    while !stop.load(Ordering::Relaxed) && !shared.stop.load(Ordering::Relaxed) {
        match socket.recv(&mut buf) {
            Ok(n) => shared.multicast.on_group(shared, out, group, &buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            // Unexpected and possibly lasting: don't spin on it.
            Err(_) => thread::sleep(GROUP_POLL),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twins_pair_up_one_for_one_and_expire() {
        let mut p = Pairing::default();
        let t = Instant::now();
        assert!(p.arrive(b"hi", false, t));
        assert!(p.arrive(b"hi", false, t), "said twice");
        assert!(!p.arrive(b"hi", true, t), "first twin");
        assert!(!p.arrive(b"hi", true, t), "second twin");
        assert!(p.arrive(b"hi", true, t), "a third hi, on the group only");
        assert!(p.arrive(b"yo", true, t));
        assert!(
            p.arrive(b"yo", false, t + PAIR_FOR * 2),
            "too late to be a twin"
        );
    }
}
