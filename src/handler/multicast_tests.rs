//! Unit tests of multicast channels and discovery in the state machine: requests in,
//! datagrams and group fan-outs out, no sockets.

use std::time::{Duration, SystemTime};

use super::*;
use crate::config::classic_channels;
use crate::datagram::Incoming;
use crate::multicast::MulticastConfig;
use crate::state::State;
use proto::channel_data::KEY_LEN;
use proto::{code, Request};

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A handler over the classic channels, Weather (1) kept off multicast, and a clock.
struct Rig {
    h: Handler,
    t0: Instant,
}

impl Rig {
    fn new() -> Rig {
        let mut channels = classic_channels();
        channels[1].multicast = false;
        let state = Arc::new(State::new(&channels, 100));
        let groups = MulticastConfig::new("239.77.0.0/24".parse().unwrap()).groups(&channels, 2027);
        let h = Handler::new(state, 1024, Duration::from_secs(120))
            .with_groups(Arc::new(groups))
            .with_discovery(Discovery {
                name: "chat.example".into(),
                port: 2027,
            });
        Rig {
            h,
            t0: Instant::now(),
        }
    }

    fn raw(&self, from: u16, bytes: &[u8]) -> Outbox {
        let mut out = Outbox::new();
        self.h.handle(
            self.t0,
            SystemTime::now(),
            Incoming::new(addr(from), bytes),
            &mut out,
        );
        out
    }

    fn req(&self, from: u16, req: Request<'_>) -> Outbox {
        self.raw(from, &req.to_bytes())
    }

    /// Logs `nick` in at port `from`, asking for multicast if `mcast`.
    fn user(&self, from: u16, nick: &str, mcast: bool) {
        self.req(from, Request::Login { nick });
        if mcast {
            let out = self.req(from, Request::Caps { caps: "multicast" });
            assert_eq!(
                unicast(&out),
                vec![(from, code::CAPS_ACK, "multicast".into())]
            );
        }
    }

    fn group(&self, title: &str) -> Arc<crate::multicast::ChannelGroup> {
        let id = self.h.state.channel_id(title).unwrap();
        self.h.groups.get(id).unwrap()
    }
}

/// Unicast datagrams as (port, code, payload text).
fn unicast(out: &Outbox) -> Vec<(u16, u16, String)> {
    out.datagrams()
        .into_iter()
        .map(|(to, d)| {
            let text = String::from_utf8(d[2..].to_vec()).unwrap();
            (to.port(), u16::from_be_bytes([d[0], d[1]]), text)
        })
        .collect()
}

/// Group events as (code, payload text).
fn grouped(out: &Outbox) -> Vec<(u16, String)> {
    out.group_events()
        .into_iter()
        .map(|(_, d)| {
            let text = String::from_utf8(d[2..].to_vec()).unwrap();
            (u16::from_be_bytes([d[0], d[1]]), text)
        })
        .collect()
}

#[test]
fn a_join_with_the_cap_is_told_the_group_and_the_group_is_probed() {
    let r = Rig::new();
    r.user(1, "ann", true);
    let out = r.req(1, Request::Join { title: "pets" });
    let got = unicast(&out);
    assert_eq!(got[0].1, code::JOIN_ACK);
    let g = r.group("Pets");
    let (port, c, text) = &got[1];
    assert_eq!((*port, *c), (1, code::MCAST_GROUP));
    let fields: Vec<&str> = text.split(' ').collect();
    assert_eq!(fields[0], "Pets");
    assert_eq!(fields[1].parse::<std::net::IpAddr>().unwrap(), g.addr.ip());
    assert_eq!(fields[2], "2028");
    use base64::Engine as _;
    let key = base64::engine::general_purpose::STANDARD
        .decode(fields[3])
        .unwrap();
    assert_eq!(key.len(), KEY_LEN);
    assert_eq!(grouped(&out), vec![(code::MCAST_PROBE, "Pets".into())]);
    assert_eq!(g.counts().pending, 1);
    // A channel kept off multicast, and a client without the cap: no group.
    assert_eq!(
        unicast(&r.req(1, Request::Join { title: "Weather" })).len(),
        1
    );
    r.user(2, "bob", false);
    let out = r.req(2, Request::Join { title: "Pets" });
    assert_eq!(unicast(&out).len(), 2, "USER_JOINS to ann, JOIN_ACK to bob");
}

#[test]
fn confirmed_members_hear_the_channel_only_on_the_group() {
    let r = Rig::new();
    r.user(1, "ann", true);
    r.user(2, "bob", false);
    r.req(1, Request::Join { title: "Pets" });
    r.req(2, Request::Join { title: "Pets" });
    // Pending: still unicast, and the group gets it too.
    let out = r.req(2, Request::SendPublic { text: "hi" });
    let ports: Vec<u16> = unicast(&out).iter().map(|d| d.0).collect();
    assert_eq!(ports.len(), 2);
    assert_eq!(grouped(&out).len(), 1);
    assert!(
        r.req(1, Request::McastJoined { title: "PETS" }).is_empty(),
        "no answer"
    );
    let out = r.req(2, Request::SendPublic { text: "hi" });
    assert_eq!(
        unicast(&out),
        vec![(2, code::PUBLIC_MSG, "Pets bob hi".into())]
    );
    assert_eq!(
        grouped(&out),
        vec![(code::PUBLIC_MSG, "Pets bob hi".into())]
    );
    // Join and part notices too; replies and private messages stay unicast.
    r.user(3, "cid", false);
    let out = r.req(3, Request::Join { title: "Pets" });
    assert_eq!(grouped(&out), vec![(code::USER_JOINS, "Pets cid".into())]);
    assert!(unicast(&out).iter().all(|d| d.0 != 1));
    let out = r.req(
        3,
        Request::SendPrivate {
            recipient: "ann",
            text: "psst",
        },
    );
    assert_eq!(
        unicast(&out),
        vec![(1, code::PRIVATE_MSG, "cid psst".into())]
    );
    let out = r.req(3, Request::Part { title: "Pets" });
    assert_eq!(grouped(&out), vec![(code::USER_PARTS, "Pets cid".into())]);
    // MCAST_LEFT: back on unicast; nobody listens any more, so the group gets nothing.
    r.req(1, Request::McastLeft { title: "Pets" });
    let out = r.req(2, Request::SendPublic { text: "yo" });
    assert_eq!(unicast(&out).len(), 2);
    assert!(grouped(&out).is_empty());
}

/// Cluster mode: what another server reports reaches this server's confirmed members
/// through this server's group, and its classic members by unicast.
#[test]
fn remote_messages_and_notices_go_through_this_servers_group() {
    use crate::cluster::{ClusterInput, UserInfo};
    let r = Rig::new();
    r.user(1, "ann", true);
    r.user(2, "bob", false);
    r.req(1, Request::Join { title: "Pets" });
    r.req(2, Request::Join { title: "Pets" });
    r.req(1, Request::McastJoined { title: "Pets" });
    let mut out = Outbox::new();
    r.h.cluster_input(
        ClusterInput::User {
            server: "there".into(),
            nick: "Zed".into(),
            info: Some(UserInfo {
                nick: "Zed".into(),
                login_ms: 0,
                channels: vec!["Pets".into()],
            }),
        },
        &mut out,
    );
    assert_eq!(grouped(&out), vec![(code::USER_JOINS, "Pets Zed".into())]);
    assert_eq!(
        unicast(&out),
        vec![(2, code::USER_JOINS, "Pets Zed".into())]
    );
    let mut out = Outbox::new();
    r.h.cluster_input(
        ClusterInput::Public {
            title: "pets".into(),
            nick: "Zed".into(),
            text: "from afar".into(),
            id: 0,
            ms: 0,
        },
        &mut out,
    );
    assert_eq!(
        grouped(&out),
        vec![(code::PUBLIC_MSG, "Pets Zed from afar".into())]
    );
    assert_eq!(
        unicast(&out),
        vec![(2, code::PUBLIC_MSG, "Pets Zed from afar".into())]
    );
    assert_eq!(out.group_events()[0].0, r.group("Pets").addr);
}

#[test]
fn parting_logging_off_and_dropping_the_cap_end_group_delivery() {
    let r = Rig::new();
    r.user(1, "ann", true);
    r.req(1, Request::Join { title: "Pets" });
    r.req(1, Request::Join { title: "Hobbies" });
    r.req(1, Request::McastJoined { title: "Pets" });
    r.req(1, Request::McastJoined { title: "Hobbies" });
    let (pets, hobbies) = (r.group("Pets"), r.group("Hobbies"));
    assert!(pets.is_confirmed(addr(1)) && hobbies.is_confirmed(addr(1)));
    r.req(1, Request::Part { title: "Hobbies" });
    assert!(!hobbies.is_confirmed(addr(1)));
    // Dropping the cap: unicast everywhere; asking again offers the groups again.
    let out = r.req(1, Request::Caps { caps: "" });
    assert!(grouped(&out).is_empty() && !pets.is_confirmed(addr(1)));
    let out = r.req(1, Request::Caps { caps: "multicast" });
    let codes: Vec<u16> = unicast(&out).iter().map(|d| d.1).collect();
    assert_eq!(codes, [code::CAPS_ACK, code::MCAST_GROUP]);
    assert_eq!(grouped(&out).len(), 1);
    r.req(1, Request::McastJoined { title: "Pets" });
    r.req(1, Request::Logoff);
    assert!(!pets.is_confirmed(addr(1)) && !pets.active());
}

#[test]
fn mcast_joined_counts_only_from_members_with_the_cap() {
    let r = Rig::new();
    r.user(1, "ann", false);
    r.req(1, Request::Join { title: "Pets" });
    r.req(1, Request::McastJoined { title: "Pets" });
    assert!(!r.group("Pets").is_confirmed(addr(1)), "no cap");
    r.user(2, "bob", true);
    r.req(2, Request::McastJoined { title: "Pets" });
    assert!(!r.group("Pets").is_confirmed(addr(2)), "not a member");
    for title in ["Weather", "Nowhere", ""] {
        assert!(r.req(2, Request::McastJoined { title }).is_empty());
        assert!(r.req(2, Request::McastLeft { title }).is_empty());
    }
}

#[test]
fn discover_is_answered_no_larger_than_it_was_asked() {
    let r = Rig::new();
    let ask = Request::Discover.to_bytes();
    let out = r.raw(9, &ask);
    assert_eq!(
        unicast(&out),
        vec![(9, code::SERVER_HERE, "2027 chat.example 0".into())]
    );
    // A long name is cut so the answer fits in the question (66 bytes).
    let long =
        Handler::new(r.h.state.clone(), 1024, Duration::from_secs(1)).with_discovery(Discovery {
            name: "é".repeat(60),
            port: 2027,
        });
    let mut out = Outbox::new();
    long.handle(
        r.t0,
        SystemTime::now(),
        Incoming::new(addr(9), &ask),
        &mut out,
    );
    let (_, d) = &out.datagrams()[0];
    assert!(
        d.len() <= ask.len() && d.len() >= ask.len() - 1,
        "{}",
        d.len()
    );
    assert!(matches!(
        Event::decode(d),
        Ok(Event::ServerHere { users: 0, .. })
    ));
    // Short padding or another word: malformed, no answer, logged in or not.
    assert!(r.raw(9, b"\x02\x44udpchat").is_empty());
    assert!(r.raw(9, b"\x02\x44hello").is_empty());
    r.user(1, "ann", false);
    assert!(r.raw(1, b"\x02\x44hello").is_empty());
    // Without discovery, nothing.
    let quiet = Handler::new(r.h.state.clone(), 1024, Duration::from_secs(1));
    let mut out = Outbox::new();
    quiet.handle(
        r.t0,
        SystemTime::now(),
        Incoming::new(addr(9), &ask),
        &mut out,
    );
    assert!(out.is_empty());
}

#[test]
fn a_server_without_groups_never_grants_multicast() {
    let state = Arc::new(State::new(&classic_channels(), 10));
    let h = Handler::new(state, 1024, Duration::from_secs(1));
    let mut out = Outbox::new();
    let now = Instant::now();
    let login = Request::Login { nick: "ann" }.to_bytes();
    h.handle(
        now,
        SystemTime::now(),
        Incoming::new(addr(1), &login),
        &mut out,
    );
    out.clear();
    let caps = Request::Caps { caps: "multicast" }.to_bytes();
    h.handle(
        now,
        SystemTime::now(),
        Incoming::new(addr(1), &caps),
        &mut out,
    );
    assert_eq!(unicast(&out), vec![(1, code::CAPS_ACK, String::new())]);
}
