//! Part 4 of the protocol in raw datagrams: capabilities (CAPS_REQ/CAPS_ACK), BATCH
//! delivery (layout, size limit, order, mixed channels) and PING/PONG, with their malformed
//! forms. Classic clients never send these and see no change.

mod common;

use std::time::Duration;

use common::{joined, req, server, server_and_user, server_with, user, Peer};
use proto::{code, errors, Event, Request};
use udpchat::server::{BatchWindow, RunningServer};

#[test]
fn caps_are_granted_as_asked_and_unknown_ones_ignored() {
    let s = server();
    let ann = batch_user(&s, "ann", "batch", "batch=1200");
    ann.send(Request::Caps {
        caps: "frobnicate batch=4000 colour",
    });
    ann.expect(code::CAPS_ACK, "batch=4000");
    // Sizes outside 512..=65000 are caps the server does not know: ignored, not refused.
    for bad in [
        "batch=511",
        "batch=65001",
        "batch=",
        "batch=12x",
        "batch=-1",
    ] {
        ann.send(Request::Caps { caps: bad });
        ann.expect(code::CAPS_ACK, "");
    }
    ann.send(Request::Caps { caps: "batch=512" });
    ann.expect(code::CAPS_ACK, "batch=512");
    ann.send(Request::Caps {
        caps: "batch=65000",
    });
    ann.expect(code::CAPS_ACK, "batch=65000");
    // This server has no multicast groups: the cap is not granted.
    ann.send(Request::Caps {
        caps: "multicast batch",
    });
    ann.expect(code::CAPS_ACK, "batch=1200");
    // An empty request drops every cap.
    ann.send(Request::Caps { caps: "" });
    ann.expect(code::CAPS_ACK, "");
}

#[test]
fn caps_and_ping_from_a_stranger_are_told_to_log_in() {
    let s = server_with(|c| c.limits.amplification_guard = false);
    let p = Peer::new(&s);
    p.send(Request::Caps { caps: "batch" });
    p.expect_error(errors::PLEASE_LOG_IN);
    p.send(Request::Ping { token: "t1" });
    p.expect_error(errors::PLEASE_LOG_IN);
}

#[test]
fn a_new_login_starts_without_caps() {
    let s = server();
    let ann = batch_user(&s, "ann", "batch", "batch=1200");
    ann.send(Request::Logoff);
    ann.login("ann");
    assert!(s
        .state()
        .users()
        .iter()
        .all(|(_, u)| u.caps == udpchat::state::Caps::default()));
}

#[test]
fn ping_is_answered_with_its_token() {
    let (_s, ann) = server_and_user("ann");
    ann.send(Request::Ping { token: "abc 123" });
    ann.expect(code::PONG, "abc 123");
    ann.send(Request::Ping { token: "" });
    ann.expect(code::PONG, "");
    let token = "x".repeat(32);
    ann.send(Request::Ping { token: &token });
    ann.expect(code::PONG, &token);
    ann.send(Request::Ping {
        token: &"x".repeat(33),
    });
    ann.expect_error(errors::PING_TOKEN_TOO_LONG);
}

#[test]
fn a_classic_session_never_sees_part_4() {
    let s = server();
    let ann = joined(&s, "ann", "Pets");
    let bob = joined(&s, "bob", "Pets");
    ann.recv(); // bob joined
    bob.send(req::public("hi"));
    ann.expect(code::PUBLIC_MSG, "Pets bob hi");
    bob.expect(code::PUBLIC_MSG, "Pets bob hi");
    ann.expect_nothing();
}

// ---- BATCH: layout, size limit, order, mixed channels ----

/// A sender window long enough that a burst sent by a test lands in one round, so the
/// tests see batches however slow the machine is (production waits at most 1 ms, and only
/// while busy).
const WINDOW: Duration = Duration::from_millis(300);

/// A server with one sender that waits [`WINDOW`] for more, so a burst leaves as batches.
fn batching_server() -> RunningServer {
    server_with(|c| {
        c.senders = 1;
        c.batch_window = BatchWindow::Always(WINDOW);
    })
}

/// A datagram as the client sees it: its events (one, or a BATCH's entries, checked
/// against the layout of part 4 by hand, not only by the library's parser).
fn unpack(d: &[u8]) -> Vec<(u16, String)> {
    assert!(d.len() >= 2);
    let code = u16::from_be_bytes([d[0], d[1]]);
    let entries: Vec<&[u8]> = if code == code::BATCH {
        let mut rest = &d[2..];
        let mut v = Vec::new();
        while !rest.is_empty() {
            assert!(rest.len() >= 2, "a length cut in half");
            let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
            assert!(len >= 2 && rest.len() >= 2 + len, "an entry past the end");
            v.push(&rest[2..2 + len]);
            rest = &rest[2 + len..];
        }
        assert!(v.len() >= 2, "a BATCH holds several events");
        v
    } else {
        vec![d]
    };
    entries
        .into_iter()
        .map(|e| {
            Event::decode(e).expect("every entry is a whole event");
            let c = u16::from_be_bytes([e[0], e[1]]);
            assert_ne!(c, code::BATCH, "never nested");
            (c, String::from_utf8(e[2..].to_vec()).unwrap())
        })
        .collect()
}

/// Events as (code, payload text).
type Events = Vec<(u16, String)>;

/// Every datagram until `n` events have arrived: (datagram sizes and codes, events).
fn collect(p: &Peer, n: usize) -> (Vec<(usize, u16)>, Events) {
    let (mut dgrams, mut events) = (Vec::new(), Vec::new());
    while events.len() < n {
        let d = p.recv_raw_within(common::WAIT).expect("more events");
        dgrams.push((d.len(), u16::from_be_bytes([d[0], d[1]])));
        events.extend(unpack(&d));
    }
    (dgrams, events)
}

fn batch_user(s: &RunningServer, nick: &str, caps: &str, granted: &str) -> Peer {
    let p = user(s, nick);
    p.send(Request::Caps { caps });
    p.expect(code::CAPS_ACK, granted);
    p
}

/// The text of test message `i`: long enough that 30 of them fill several batches.
fn msg(i: usize) -> String {
    format!("m{i:02} {}", "x".repeat(30))
}

fn texts(n: usize) -> Vec<(u16, String)> {
    (0..n)
        .map(|i| (code::PUBLIC_MSG, format!("Pets ann {}", msg(i))))
        .collect()
}

#[test]
fn waiting_events_reach_batch_members_in_batches_and_classic_members_one_by_one() {
    let s = batching_server();
    let ann = batch_user(&s, "ann", "batch", "batch=1200");
    let bob = batch_user(&s, "bob", "batch=512", "batch=512");
    let cid = user(&s, "cid");
    for p in [&ann, &bob, &cid] {
        p.join("Pets");
    }
    // The joins' notices: drain them (they may come batched too).
    collect(&ann, 2);
    collect(&bob, 1);
    for i in 0..30 {
        ann.send(req::public(&msg(i)));
    }
    let (a_dgrams, a_events) = collect(&ann, 30);
    let (b_dgrams, b_events) = collect(&bob, 30);
    assert_eq!(a_events, texts(30), "every event once, in order");
    assert_eq!(b_events, texts(30));
    // Batches, each within the size asked for.
    assert!(
        a_dgrams.iter().any(|&(_, c)| c == code::BATCH),
        "{a_dgrams:?}"
    );
    assert!(a_dgrams.len() < 30 && b_dgrams.len() < 30);
    assert!(a_dgrams.iter().all(|&(len, _)| len <= 1200));
    assert!(b_dgrams.iter().all(|&(len, _)| len <= 512), "{b_dgrams:?}");
    assert!(
        b_dgrams.len() > a_dgrams.len(),
        "smaller batches, more of them: {a_dgrams:?} {b_dgrams:?}"
    );
    // The classic member of the same channel: one plain PUBLIC_MSG per event, as in part 1.
    assert_eq!(cid.recv_n(30), texts(30));
    for p in [&ann, &bob, &cid] {
        p.expect_nothing();
    }
}

#[test]
fn a_lone_event_goes_to_a_batch_member_as_it_is() {
    let s = server();
    let ann = batch_user(&s, "ann", "batch", "batch=1200");
    ann.join("Pets");
    let bob = joined(&s, "bob", "Pets");
    // Nothing else waits for ann: the notice and the message come as classic datagrams.
    ann.expect(code::USER_JOINS, "Pets bob");
    bob.send(req::public("hi"));
    ann.expect(code::PUBLIC_MSG, "Pets bob hi");
    bob.expect(code::PUBLIC_MSG, "Pets bob hi");
}

#[test]
fn an_event_too_big_for_the_batch_size_goes_alone() {
    let s = batching_server();
    let ann = batch_user(&s, "ann", "batch=512", "batch=512");
    ann.join("Pets");
    let big = "b".repeat(600);
    ann.send(req::public("a"));
    ann.send(req::public(&big));
    ann.send(req::public("c"));
    let (dgrams, events) = collect(&ann, 3);
    let want: Vec<(u16, String)> = ["a", &big, "c"]
        .iter()
        .map(|t| (code::PUBLIC_MSG, format!("Pets ann {t}")))
        .collect();
    assert_eq!(events, want);
    // The big one could share no 512-byte batch: three plain datagrams, in order.
    assert_eq!(dgrams.len(), 3);
    assert!(dgrams.iter().all(|&(_, c)| c == code::PUBLIC_MSG));
}

#[test]
fn join_and_part_notices_are_batched_too() {
    let s = batching_server();
    let ann = batch_user(&s, "ann", "batch", "batch=1200");
    ann.join("Pets");
    let others: Vec<Peer> = (0..8).map(|i| user(&s, &format!("u{i}"))).collect();
    for p in &others {
        p.send(Request::Join { title: "Pets" });
    }
    for p in &others {
        p.send(Request::Part { title: "Pets" });
    }
    let (dgrams, events) = collect(&ann, 16);
    // Users on different workers may be handled in any order; each one's join comes
    // before its part.
    for i in 0..8 {
        let at = |c| events.iter().position(|e| *e == (c, format!("Pets u{i}")));
        let (join, part) = (at(code::USER_JOINS), at(code::USER_PARTS));
        assert!(
            join.is_some() && part.is_some() && join < part,
            "{events:?}"
        );
    }
    assert!(dgrams.len() < 16, "{dgrams:?}");
}

#[test]
fn dropping_the_batch_cap_brings_back_one_event_per_datagram() {
    let s = batching_server();
    let ann = batch_user(&s, "ann", "batch", "batch=1200");
    ann.join("Pets");
    ann.send(Request::Caps { caps: "" });
    ann.expect(code::CAPS_ACK, "");
    for i in 0..5 {
        ann.send(req::public(&msg(i)));
    }
    assert_eq!(ann.recv_n(5), texts(5));
}

#[test]
fn every_member_gets_a_channels_events_in_one_order_across_senders() {
    let s = server_with(|c| {
        c.senders = 4;
        c.workers = 4;
        c.batch_window = BatchWindow::Always(Duration::from_millis(20));
    });
    let members: Vec<Peer> = (0..24)
        .map(|i| {
            let p = if i % 2 == 0 {
                batch_user(&s, &format!("m{i}"), "batch=512", "batch=512")
            } else {
                user(&s, &format!("m{i}"))
            };
            p.join("Pets");
            p
        })
        .collect();
    // Everyone has heard of everyone who joined after it.
    for (i, p) in members.iter().enumerate() {
        collect(p, members.len() - 1 - i);
    }
    // Three publishers on (likely) different workers, interleaved bursts.
    for round in 0..20 {
        for p in &members[..3] {
            p.send(req::public(&format!("r{round}")));
        }
    }
    let mut orders = Vec::new();
    for p in &members {
        let (_, events) = collect(p, 60);
        // Each publisher's messages in the order it sent them.
        for who in ["m0", "m1", "m2"] {
            let mine: Vec<&String> = events
                .iter()
                .filter(|(_, t)| t.starts_with(&format!("Pets {who} ")))
                .map(|(_, t)| t)
                .collect();
            let want: Vec<String> = (0..20).map(|r| format!("Pets {who} r{r}")).collect();
            assert_eq!(mine, want.iter().collect::<Vec<_>>());
        }
        orders.push(events);
    }
    // One order for the channel, whichever sender serves the member.
    assert!(orders.windows(2).all(|w| w[0] == w[1]));
    members[0].expect_nothing();
}

#[test]
fn malformed_caps_forms_are_ignored_not_granted() {
    let (_s, ann) = server_and_user("ann");
    for (asked, granted) in [
        ("batch=+600", ""),
        ("batch= 600", ""),
        ("batch=600=1", ""),
        ("BATCH", ""),
        ("batch=99999999999999999999999", ""),
        ("batch=0600", "batch=600"),
        ("batch  batch=700", "batch=700"),
        ("batch=700 batch", "batch=1200"),
        ("multicast=1 batch=512", "batch=512"),
    ] {
        ann.send(Request::Caps { caps: asked });
        ann.expect(code::CAPS_ACK, granted);
    }
    // Not UTF-8: the usual answer to such text.
    ann.send_raw(&[0x01, 0xf4, b'b', 0xff]);
    ann.expect_error(errors::INVALID_TEXT);
}

#[test]
fn a_protected_member_gets_its_batches_sealed_for_it_alone() {
    let s = batching_server();
    // Dan registers, then logs in with the password: every datagram sealed both ways.
    common::registered(&s, "dan", "pw");
    let dan = Peer::new(&s);
    let mut keys = common::password_login(&dan, "dan", "pw");
    keys.send(&dan, Request::Caps { caps: "batch" });
    keys.expect(&dan, code::CAPS_ACK, "batch=1200");
    keys.send(&dan, Request::Join { title: "Pets" });
    keys.expect(
        &dan,
        code::JOIN_ACK,
        "Pets 1 For our furry and feathered friends",
    );
    let ann = batch_user(&s, "ann", "batch", "batch=1200");
    let cid = batch_user(&s, "cid", "batch", "batch=1200");
    ann.join("Pets");
    cid.join("Pets");
    // Dan's notices of the two joins, then his own copy of a burst of 30 messages.
    let (mut sealed, mut events) = (Vec::new(), Vec::new());
    let mut note = |raw: Vec<u8>, events: &mut Events| {
        assert_eq!(&raw[..2], &code::SEALED.to_be_bytes(), "sealed: {raw:?}");
        let inner = keys.session.open(&raw).expect("sealed for dan's session");
        sealed.push((raw.len(), u16::from_be_bytes([inner[0], inner[1]])));
        events.extend(unpack(&inner));
    };
    while events.len() < 2 {
        note(
            dan.recv_raw_within(common::WAIT).expect("join notices"),
            &mut events,
        );
    }
    events.clear();
    collect(&ann, 1);
    for i in 0..30 {
        ann.send(req::public(&msg(i)));
    }
    while events.len() < 30 {
        note(
            dan.recv_raw_within(common::WAIT).expect("more events"),
            &mut events,
        );
    }
    assert_eq!(events, texts(30), "every event once, in order");
    // Batches inside the sealing: the batch within the size asked for, plus the 34 bytes
    // of the seal's header and tag.
    assert!(sealed.iter().any(|&(_, c)| c == code::BATCH), "{sealed:?}");
    assert!(
        sealed.iter().all(|&(len, _)| len <= 1200 + 34),
        "{sealed:?}"
    );
    // The guests in the same channel get the same events in the clear.
    assert_eq!(collect(&cid, 30).1, texts(30));
    dan.expect_no_datagram();
}
