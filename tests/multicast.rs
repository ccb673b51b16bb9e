//! Multicast channels and discovery (part 4) in raw datagrams against an in-process server
//! on loopback: MCAST_GROUP, CHANNEL_DATA with its sequence and tag, the switch of a
//! confirmed member from unicast to the group and back, probes, and DISCOVER.

mod common;

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{joined, password_login, register, req, server_with, user, Peer, WAIT};
use proto::channel_data::{mac, verify, PROBE_INTERVAL};
use proto::DISCOVERY_GROUP;
use proto::{batch, channel_data, code, Event, Request};
use socket2::{Domain, Protocol, Socket, Type};
use udpchat::multicast::MulticastConfig;
use udpchat::server::{BatchWindow, RunningServer};

fn mcast_server() -> RunningServer {
    server_with(|c| {
        c.multicast = Some(MulticastConfig::new("239.77.0.0/24".parse().unwrap()));
    })
}

/// A channel's group as MCAST_GROUP told it, and a socket that joined it on loopback.
struct Group {
    title: String,
    addr: SocketAddr,
    key: Vec<u8>,
    sock: UdpSocket,
    last: u64,
    /// Events of a CHANNEL_DATA already read (a BATCH inside holds several) that
    /// `next_event` has not handed out yet.
    pending: std::collections::VecDeque<(u16, String)>,
}

impl Group {
    /// Reads MCAST_GROUP from `p` and joins the group.
    fn from(p: &Peer) -> Group {
        Group::told(p.recv())
    }

    /// Joins the group that the datagram `(c, text)` (an MCAST_GROUP) names.
    fn told((c, text): (u16, String)) -> Group {
        assert_eq!(c, code::MCAST_GROUP, "MCAST_GROUP expected, got {c} {text}");
        let f: Vec<&str> = text.split(' ').collect();
        assert_eq!(f.len(), 5, "{text}");
        let ip: Ipv4Addr = f[1].parse().unwrap();
        assert!(ip.is_multicast());
        let addr = SocketAddr::from((ip, f[2].parse::<u16>().unwrap()));
        let key = base64::engine::general_purpose::STANDARD
            .decode(f[3])
            .unwrap();
        assert_eq!(key.len(), 32);
        let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
        s.set_reuse_address(true).unwrap();
        s.bind(&addr.into()).unwrap();
        s.join_multicast_v4(&ip, &Ipv4Addr::LOCALHOST).unwrap();
        Group {
            title: f[0].into(),
            addr,
            key,
            sock: s.into(),
            last: f[4].parse::<u64>().unwrap() - 1,
            pending: Default::default(),
        }
    }

    /// The next valid CHANNEL_DATA's events (checking tag and sequence), or `None` after
    /// `within`.
    fn recv_within(&mut self, within: Duration) -> Option<Vec<(u16, String)>> {
        let mut buf = [0u8; 65536];
        self.sock
            .set_read_timeout(Some(within.max(Duration::from_millis(1))))
            .unwrap();
        let n = match self.sock.recv(&mut buf) {
            Ok(n) => n,
            Err(_) => return None,
        };
        let cd = channel_data::parse(&buf[..n]).expect("CHANNEL_DATA");
        assert!(verify(&mac(&self.key), &cd), "tag verifies");
        assert!(
            cd.seq > self.last,
            "sequence {} after {}",
            cd.seq,
            self.last
        );
        self.last = cd.seq;
        let inners: Vec<&[u8]> = if cd.inner.starts_with(&code::BATCH.to_be_bytes()) {
            batch::events(cd.inner).unwrap().collect()
        } else {
            vec![cd.inner]
        };
        Some(
            inners
                .into_iter()
                .map(|d| {
                    Event::decode(d).expect("inner event decodes");
                    (
                        u16::from_be_bytes([d[0], d[1]]),
                        String::from_utf8(d[2..].to_vec()).unwrap(),
                    )
                })
                .collect(),
        )
    }

    /// The next event on the group that is not a probe; the events of one CHANNEL_DATA
    /// (several when the server batched them) come out one by one, in order.
    fn next_event(&mut self) -> (u16, String) {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(e) = self.pending.pop_front() {
                return e;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let events = self
                .recv_within(left)
                .expect("expected an event on the group");
            self.pending
                .extend(events.into_iter().filter(|(c, _)| *c != code::MCAST_PROBE));
        }
    }

    /// Waits for a probe of this channel (proof the group is heard).
    fn probe(&mut self) {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let events = self.recv_within(left).expect("expected a probe");
            if events.contains(&(code::MCAST_PROBE, self.title.clone())) {
                return;
            }
        }
    }
}

/// Logs `nick` in with the multicast cap, joins `title`, hears the group and confirms.
fn confirmed(s: &RunningServer, nick: &str, title: &str) -> (Peer, Group) {
    let p = user(s, nick);
    p.send(Request::Caps { caps: "multicast" });
    p.expect(code::CAPS_ACK, "multicast");
    p.join(title);
    let mut g = Group::from(&p);
    g.probe();
    p.send(Request::McastJoined { title });
    // No answer; wait until the server counts it.
    let id = s.state().channel_id(title).unwrap();
    let group = s.groups().get(id).unwrap();
    let me = p.addr();
    common::wait_until(|| group.is_confirmed(me));
    (p, g)
}

#[test]
fn a_confirmed_member_hears_the_channel_on_the_group_only() {
    let s = mcast_server();
    let (ann, mut g) = confirmed(&s, "ann", "Pets");
    let bob = joined(&s, "bob", "Pets");
    assert_eq!(g.next_event(), (code::USER_JOINS, "Pets bob".into()));
    bob.send(req::public("hello"));
    bob.expect(code::PUBLIC_MSG, "Pets bob hello");
    assert_eq!(g.next_event(), (code::PUBLIC_MSG, "Pets bob hello".into()));
    ann.send(req::public("hi bob"));
    bob.expect(code::PUBLIC_MSG, "Pets ann hi bob");
    assert_eq!(g.next_event(), (code::PUBLIC_MSG, "Pets ann hi bob".into()));
    // Private messages and replies stay unicast.
    bob.send(req::private("ann", "psst"));
    ann.expect(code::PRIVATE_MSG, "bob psst");
    bob.send(Request::Part { title: "Pets" });
    assert_eq!(g.next_event(), (code::USER_PARTS, "Pets bob".into()));
    // Nothing of the channel came to ann by unicast.
    ann.expect_nothing();
}

#[test]
fn a_protected_member_is_told_its_group_sealed_and_hears_the_channel_there() {
    let s = mcast_server();
    let ann = user(&s, "ann");
    register(&ann, "pw");
    // Every datagram `a` reads must be sealed for ann's session (`Protected::recv`).
    let mut a = password_login(&ann, "ann", "pw");
    a.send(&ann, Request::Caps { caps: "multicast" });
    a.expect(&ann, code::CAPS_ACK, "multicast");
    a.send(&ann, Request::Join { title: "Pets" });
    assert_eq!(a.recv(&ann).0, code::JOIN_ACK);
    let mut g = Group::told(a.recv(&ann));
    g.probe();
    let bob = joined(&s, "bob", "Pets");
    // Not confirmed yet: the channel still comes by unicast, sealed for ann (and to the
    // group, which ann has been told).
    a.expect(&ann, code::USER_JOINS, "Pets bob");
    assert_eq!(g.next_event(), (code::USER_JOINS, "Pets bob".into()));
    a.send(&ann, Request::McastJoined { title: "Pets" });
    let group = s
        .groups()
        .get(s.state().channel_id("Pets").unwrap())
        .unwrap();
    common::wait_until(|| group.is_confirmed(ann.addr()));
    bob.send(req::public("hello"));
    bob.expect(code::PUBLIC_MSG, "Pets bob hello");
    assert_eq!(g.next_event(), (code::PUBLIC_MSG, "Pets bob hello".into()));
    // Private messages stay unicast, and sealed.
    bob.send(req::private("ann", "psst"));
    a.expect(&ann, code::PRIVATE_MSG, "bob psst");
    ann.expect_no_datagram();
}

#[test]
fn waiting_group_events_go_out_together_in_one_channel_data() {
    // A sender that always waits a moment for more (tests only), so the three messages
    // below wait together whatever the machine's load.
    let s = server_with(|c| {
        c.multicast = Some(MulticastConfig::new("239.77.0.0/24".parse().unwrap()));
        c.senders = 2;
        c.batch_window = BatchWindow::Always(Duration::from_millis(200));
    });
    let (ann, mut g) = confirmed(&s, "ann", "Pets");
    let bob = joined(&s, "bob", "Pets");
    assert_eq!(g.next_event(), (code::USER_JOINS, "Pets bob".into()));
    for text in ["one", "two", "three"] {
        bob.send(req::public(text));
    }
    let mut got = Vec::new();
    let mut datagrams = 0;
    while got.len() < 3 {
        let events = g.recv_within(WAIT).expect("the messages on the group");
        datagrams += 1;
        got.extend(events.into_iter().filter(|(c, _)| *c != code::MCAST_PROBE));
    }
    let want: Vec<(u16, String)> = ["one", "two", "three"]
        .iter()
        .map(|t| (code::PUBLIC_MSG, format!("Pets bob {t}")))
        .collect();
    assert_eq!(got, want, "in order, each once");
    assert!(
        datagrams < 3,
        "{datagrams} CHANNEL_DATA for 3 waiting events"
    );
    ann.expect_nothing();
}

/// Issue 20 #6: whoever was told a channel's key can tag CHANNEL_DATA as the server, so
/// a member that leaves takes the key with it. Its part changes the key at once: the
/// members left are told the new one by unicast (with the first sequence it seals), get
/// the channel by unicast too until they confirm again, and lose nothing; the one that
/// left is told nothing.
#[test]
fn a_member_leaving_changes_the_key_and_the_others_lose_nothing() {
    let s = mcast_server();
    let (ann, mut g) = confirmed(&s, "ann", "Pets");
    let (bob, _) = confirmed(&s, "bob", "Pets");
    assert_eq!(g.next_event(), (code::USER_JOINS, "Pets bob".into()));
    // The probe bob confirmed on, under the old key.
    while g.recv_within(Duration::from_millis(200)).is_some() {}
    let old = g.key.clone();
    bob.send(Request::Part { title: "Pets" });
    assert_eq!(bob.recv().0, code::PART_ACK);
    // ann: the new key first, then the part by unicast (she is waiting to confirm again).
    let (c, told) = ann.recv();
    assert_eq!(c, code::MCAST_GROUP, "{told}");
    let f: Vec<&str> = told.split(' ').collect();
    let key = base64::engine::general_purpose::STANDARD
        .decode(f[3])
        .unwrap();
    let from: u64 = f[4].parse().unwrap();
    assert_ne!(key, old, "a new key");
    assert_eq!(from, g.last + 1, "from the next sequence on");
    ann.expect(code::USER_PARTS, "Pets bob");
    // On the group, the same event under the new key, from `from` on.
    g.key = key;
    assert_eq!(g.next_event(), (code::USER_PARTS, "Pets bob".into()));
    assert_eq!(g.last, from);
    // Confirmed again under the new key: the group only.
    g.probe();
    ann.send(Request::McastJoined { title: "Pets" });
    let group = s
        .groups()
        .get(s.state().channel_id("Pets").unwrap())
        .unwrap();
    common::wait_until(|| group.is_confirmed(ann.addr()));
    let cid = joined(&s, "cid", "Pets");
    assert_eq!(g.next_event(), (code::USER_JOINS, "Pets cid".into()));
    cid.send(req::public("hi"));
    assert_eq!(g.next_event(), (code::PUBLIC_MSG, "Pets cid hi".into()));
    ann.expect_nothing();
    bob.expect_nothing();
}

#[test]
fn mcast_left_puts_the_member_back_on_unicast() {
    let s = mcast_server();
    let (ann, mut g) = confirmed(&s, "ann", "Hobbies");
    let bob = joined(&s, "bob", "Hobbies");
    assert_eq!(g.next_event().0, code::USER_JOINS);
    ann.send(Request::McastLeft { title: "Hobbies" });
    let group = s.groups().get(3).unwrap();
    common::wait_until(|| !group.is_confirmed(ann.addr()));
    bob.send(req::public("still there?"));
    ann.expect(code::PUBLIC_MSG, "Hobbies bob still there?");
    // The group has nobody left to hear it: no probes either.
    assert!(g.recv_within(PROBE_INTERVAL * 2).is_none());
}

#[test]
fn classic_and_multicast_members_share_a_channel() {
    let s = mcast_server();
    let (_ann, mut g) = confirmed(&s, "ann", "Gardening");
    let classic = joined(&s, "old", "Gardening");
    // A client with the cap that never confirms stays on unicast.
    let slow = user(&s, "slow");
    slow.send(Request::Caps { caps: "multicast" });
    slow.expect(code::CAPS_ACK, "multicast");
    slow.join("Gardening");
    slow.recv_code(code::MCAST_GROUP);
    classic.expect(code::USER_JOINS, "Gardening slow");
    classic.send(req::public("roses"));
    classic.expect(code::PUBLIC_MSG, "Gardening old roses");
    slow.expect(code::PUBLIC_MSG, "Gardening old roses");
    let mut seen = Vec::new();
    while seen.len() < 3 {
        seen.push(g.next_event());
    }
    assert_eq!(
        seen,
        [
            (code::USER_JOINS, "Gardening old".to_string()),
            (code::USER_JOINS, "Gardening slow".to_string()),
            (code::PUBLIC_MSG, "Gardening old roses".to_string()),
        ]
    );
}

#[test]
fn active_groups_are_probed_every_few_seconds() {
    let s = mcast_server();
    let (_ann, mut g) = confirmed(&s, "ann", "Weather");
    let start = Instant::now();
    let mut probes = 0;
    while probes < 2 {
        let events = g
            .recv_within(PROBE_INTERVAL * 2)
            .expect("a probe within two intervals");
        if events == [(code::MCAST_PROBE, "Weather".into())] {
            probes += 1;
        }
    }
    assert!(start.elapsed() >= PROBE_INTERVAL, "{:?}", start.elapsed());
}

#[test]
fn tags_are_keyed_per_channel_and_forgeries_fail() {
    let s = mcast_server();
    let (_ann, mut pets) = confirmed(&s, "ann", "Pets");
    let (_bob, weather) = confirmed(&s, "bob", "Weather");
    assert_ne!(pets.key, weather.key);
    assert_ne!(pets.addr, weather.addr);
    // A datagram sealed with another channel's key does not verify under this one's.
    let forged = channel_data::encode(u64::MAX, b"\x00\x64Pets eve boo", |b| {
        proto::channel_data::tag(&weather.key, b)
    });
    let parsed = channel_data::parse(&forged).unwrap();
    assert!(!verify(&mac(&pets.key), &parsed));
    pets.probe();
}

#[test]
fn discover_is_answered_on_the_discovery_group_with_the_chat_port() {
    let s = server_with(|c| c.name = Some("lab server".into()));
    let asker = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket2::SockRef::from(&asker)
        .set_multicast_if_v4(&Ipv4Addr::LOCALHOST)
        .unwrap();
    asker
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let ask = Request::Discover.to_bytes();
    let to = SocketAddr::from((DISCOVERY_GROUP, s.addr().port()));
    let mut buf = [0u8; 2048];
    let (n, from) = (0..20)
        .find_map(|_| {
            asker.send_to(&ask, to).unwrap();
            asker.recv_from(&mut buf).ok()
        })
        .expect("SERVER_HERE");
    assert_eq!(from, s.addr(), "answered from the chat socket");
    assert!(n <= ask.len());
    assert_eq!(
        Event::decode(&buf[..n]).unwrap(),
        Event::ServerHere {
            port: s.addr().port(),
            name: "lab server",
            users: 0
        }
    );
}

#[test]
fn no_discovery_means_no_answer() {
    let s = server_with(|c| c.discovery = false);
    let p = Peer::new(&s);
    p.send(Request::Discover);
    p.expect_nothing();
}

#[test]
fn the_metrics_page_counts_group_traffic_and_listeners() {
    let s = server_with(|c| {
        c.multicast = Some(MulticastConfig::new("239.77.0.0/24".parse().unwrap()));
        c.metrics = Some("127.0.0.1:0".parse().unwrap());
    });
    let (ann, mut g) = confirmed(&s, "ann", "Pets");
    ann.send(req::public("counted"));
    assert_eq!(
        g.next_event(),
        (code::PUBLIC_MSG, "Pets ann counted".into())
    );
    let page = common::metrics_page(&s);
    assert!(
        page.contains("udpchat_multicast_listeners{channel=\"Pets\",state=\"confirmed\"} 1"),
        "{page}"
    );
    let sent = common::metric(&page, "udpchat_multicast_datagrams_sent_total");
    assert!(sent >= 2, "a probe and the message: {sent}");
}

#[test]
fn the_server_refuses_a_bad_range_or_interface_and_says_why() {
    let data = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_chat-server"))
            .args(["--bind", "127.0.0.1", "--port", "0", "--data"])
            // A folder the server makes itself (private, as it requires).
            .arg(data.path().join("data"))
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} was accepted");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let e = run(&["--multicast", "10.0.0.0/8"]);
    assert!(e.contains("is not all multicast"), "{e}");
    let e = run(&["--multicast", "239.77.0.9/24"]);
    assert!(e.contains("did you mean 239.77.0.0/24"), "{e}");
    let e = run(&[
        "--multicast",
        "239.77.0.0/24",
        "--multicast-if",
        "192.0.2.77",
    ]);
    assert!(e.contains("cannot set up multicast"), "{e}");
    let e = run(&["--multicast-if", "127.0.0.1"]);
    assert!(e.contains("--multicast"), "needs a range: {e}");
}
