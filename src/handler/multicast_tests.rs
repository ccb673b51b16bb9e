//! Unit tests of multicast channels and discovery in the state machine: requests in,
//! datagrams and group fan-outs out, no sockets.

use std::sync::Arc;
use std::time::Duration;

use crate::cluster::{ClusterInput, PublicMessage, UserInfo};
use crate::config::classic_channels;
use crate::handler::rig::{addr, decode_all as unicast, Rig};
use crate::handler::{Discovery, Handler, Outbox};
use crate::multicast::{ChannelGroup, MulticastConfig};
use crate::state::State;
use proto::channel_data::KEY_LEN;
use proto::{code, Event, Request};

/// A handler over the classic channels, Weather (1) kept off multicast, room for 100
/// users, answering DISCOVER.
fn rig() -> Rig {
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
    Rig::with(h)
}

/// Logs `nick` in at port `from`, asking for multicast if `mcast`.
fn user(r: &Rig, from: u16, nick: &str, mcast: bool) {
    r.send(from, Request::Login { nick });
    if mcast {
        let out = r.send(from, Request::Caps { caps: "multicast" });
        assert_eq!(
            unicast(&out),
            vec![(from, code::CAPS_ACK, "multicast".into())]
        );
    }
}

/// ann (with the multicast cap, at port 1) and bob (without, at port 2) join Pets.
fn ann_and_bob_in_pets(r: &Rig) {
    user(r, 1, "ann", true);
    user(r, 2, "bob", false);
    r.send(1, Request::Join { title: "Pets" });
    r.send(2, Request::Join { title: "Pets" });
}

/// The group of channel `title`.
fn group(r: &Rig, title: &str) -> Arc<ChannelGroup> {
    let id = r.h.state().channel_id(title).unwrap();
    r.h.sh.groups.get(id).unwrap()
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
    let r = rig();
    user(&r, 1, "ann", true);
    let out = r.send(1, Request::Join { title: "pets" });
    let got = unicast(&out);
    assert_eq!(got[0].1, code::JOIN_ACK);
    let g = group(&r, "Pets");
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
        unicast(&r.send(1, Request::Join { title: "Weather" })).len(),
        1
    );
    user(&r, 2, "bob", false);
    let out = r.send(2, Request::Join { title: "Pets" });
    assert_eq!(unicast(&out).len(), 2, "USER_JOINS to ann, JOIN_ACK to bob");
}

#[test]
fn confirmed_members_hear_the_channel_only_on_the_group() {
    let r = rig();
    ann_and_bob_in_pets(&r);
    // Pending: still unicast, and the group gets it too.
    let out = r.send(2, Request::SendPublic { text: "hi" });
    let ports: Vec<u16> = unicast(&out).iter().map(|d| d.0).collect();
    assert_eq!(ports.len(), 2);
    assert_eq!(grouped(&out).len(), 1);
    assert!(
        r.send(1, Request::McastJoined { title: "PETS" }).is_empty(),
        "no answer"
    );
    let out = r.send(2, Request::SendPublic { text: "hi" });
    assert_eq!(
        unicast(&out),
        vec![(2, code::PUBLIC_MSG, "Pets bob hi".into())]
    );
    assert_eq!(
        grouped(&out),
        vec![(code::PUBLIC_MSG, "Pets bob hi".into())]
    );
    // Join and part notices too; replies and private messages stay unicast.
    user(&r, 3, "cid", false);
    let out = r.send(3, Request::Join { title: "Pets" });
    assert_eq!(grouped(&out), vec![(code::USER_JOINS, "Pets cid".into())]);
    assert!(unicast(&out).iter().all(|d| d.0 != 1));
    let out = r.send(
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
    let out = r.send(3, Request::Part { title: "Pets" });
    assert_eq!(grouped(&out), vec![(code::USER_PARTS, "Pets cid".into())]);
    // MCAST_LEFT: back on unicast; nobody listens any more, so the group gets nothing.
    r.send(1, Request::McastLeft { title: "Pets" });
    let out = r.send(2, Request::SendPublic { text: "yo" });
    assert_eq!(unicast(&out).len(), 2);
    assert!(grouped(&out).is_empty());
}

/// Cluster mode: what another server reports reaches this server's confirmed members
/// through this server's group, and its classic members by unicast.
#[test]
fn remote_messages_and_notices_go_through_this_servers_group() {
    let r = rig();
    ann_and_bob_in_pets(&r);
    r.send(1, Request::McastJoined { title: "Pets" });
    let out = r.cluster_input(ClusterInput::User {
        server: "there".into(),
        nick: "Zed".into(),
        info: Some(UserInfo {
            nick: "Zed".into(),
            login_ms: 0,
            channels: vec!["Pets".into()],
        }),
    });
    assert_eq!(grouped(&out), vec![(code::USER_JOINS, "Pets Zed".into())]);
    assert_eq!(
        unicast(&out),
        vec![(2, code::USER_JOINS, "Pets Zed".into())]
    );
    let out = r.cluster_input(ClusterInput::Public(PublicMessage {
        title: "pets".into(),
        nick: "Zed".into(),
        text: "from afar".into(),
        id: 0,
        ms: 0,
    }));
    assert_eq!(
        grouped(&out),
        vec![(code::PUBLIC_MSG, "Pets Zed from afar".into())]
    );
    assert_eq!(
        unicast(&out),
        vec![(2, code::PUBLIC_MSG, "Pets Zed from afar".into())]
    );
    assert_eq!(out.group_events()[0].0, group(&r, "Pets").addr);
}

#[test]
fn parting_logging_off_and_dropping_the_cap_end_group_delivery() {
    let r = rig();
    user(&r, 1, "ann", true);
    for title in ["Pets", "Hobbies"] {
        r.send(1, Request::Join { title });
        r.send(1, Request::McastJoined { title });
    }
    let (pets, hobbies) = (group(&r, "Pets"), group(&r, "Hobbies"));
    assert!(pets.is_confirmed(addr(1)) && hobbies.is_confirmed(addr(1)));
    r.send(1, Request::Part { title: "Hobbies" });
    assert!(!hobbies.is_confirmed(addr(1)));
    // Dropping the cap: unicast everywhere; asking again offers the groups again.
    let out = r.send(1, Request::Caps { caps: "" });
    assert!(grouped(&out).is_empty() && !pets.is_confirmed(addr(1)));
    let out = r.send(1, Request::Caps { caps: "multicast" });
    let codes: Vec<u16> = unicast(&out).iter().map(|d| d.1).collect();
    assert_eq!(codes, [code::CAPS_ACK, code::MCAST_GROUP]);
    assert_eq!(grouped(&out).len(), 1);
    r.send(1, Request::McastJoined { title: "Pets" });
    r.send(1, Request::Logoff);
    assert!(!pets.is_confirmed(addr(1)) && !pets.active());
}

#[test]
fn mcast_joined_counts_only_from_members_with_the_cap() {
    let r = rig();
    user(&r, 1, "ann", false);
    r.send(1, Request::Join { title: "Pets" });
    r.send(1, Request::McastJoined { title: "Pets" });
    assert!(!group(&r, "Pets").is_confirmed(addr(1)), "no cap");
    user(&r, 2, "bob", true);
    r.send(2, Request::McastJoined { title: "Pets" });
    assert!(!group(&r, "Pets").is_confirmed(addr(2)), "not a member");
    for title in ["Weather", "Nowhere", ""] {
        assert!(r.send(2, Request::McastJoined { title }).is_empty());
        assert!(r.send(2, Request::McastLeft { title }).is_empty());
    }
}

#[test]
fn discover_is_answered_no_larger_than_it_was_asked() {
    let r = rig();
    let ask = Request::Discover.to_bytes();
    let out = r.bytes(9, &ask);
    assert_eq!(
        unicast(&out),
        vec![(9, code::SERVER_HERE, "2027 chat.example 0".into())]
    );
    // A long name is cut so the answer fits in the question (66 bytes).
    let state = r.h.state().clone();
    let long =
        Handler::new(state.clone(), 1024, Duration::from_secs(1)).with_discovery(Discovery {
            name: "é".repeat(60),
            port: 2027,
        });
    let out = Rig::with(long).bytes(9, &ask);
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
    assert!(r.bytes(9, b"\x02\x44udpchat").is_empty());
    assert!(r.bytes(9, b"\x02\x44hello").is_empty());
    user(&r, 1, "ann", false);
    assert!(r.bytes(1, b"\x02\x44hello").is_empty());
    // Without discovery, nothing.
    let quiet = Handler::new(state, 1024, Duration::from_secs(1));
    assert!(Rig::with(quiet).bytes(9, &ask).is_empty());
}

#[test]
fn a_server_without_groups_never_grants_multicast() {
    let state = Arc::new(State::new(&classic_channels(), 10));
    let r = Rig::with(Handler::new(state, 1024, Duration::from_secs(1)));
    r.send(1, Request::Login { nick: "ann" });
    let out = r.send(1, Request::Caps { caps: "multicast" });
    assert_eq!(unicast(&out), vec![(1, code::CAPS_ACK, String::new())]);
}
