//! One test per rule of PROTOCOL.md part 1 (and the part 2 requests), spoken as raw
//! datagrams to an in-process server on 127.0.0.1:0.
//!
//! The server runs with its default flood limits. One of them bears on these tests: an
//! address that is not logged in never gets more than three times the bytes it sent, so
//! the tests that expect a long ERROR for a very short request from a stranger retry it,
//! as a classic client retries its login, until enough bytes have arrived to pay for it.

mod common;

use std::time::Duration;

use common::{
    expect_all, in_channel, joined, req, server, server_and_user, server_with, user, Peer,
};
use proto::{code, Request};

const PETS: &str = "Pets 1 For our furry and feathered friends";

#[test]
fn login_is_acknowledged_with_the_nickname_as_typed() {
    let s = server();
    let p = Peer::new(&s);
    p.send(Request::Login { nick: "BoB" });
    p.expect(code::LOGIN_ACK, "BoB");
    p.expect_nothing();
}

#[test]
fn nickname_taken_by_another_address_is_in_use_whatever_its_case() {
    let (s, _bob) = server_and_user("Bob");
    let other = Peer::new(&s);
    for nick in ["bob", "BOB"] {
        let (answer, _) = other.retry_until_answered(&Request::Login { nick }.to_bytes());
        assert_eq!(answer, (code::ERROR, "nickname already in use".into()));
    }
    other.login("bobby");
}

#[test]
fn invalid_nicknames_are_refused() {
    let s = server();
    let long = "x".repeat(33);
    for nick in [
        "",
        "two words",
        "tab\there",
        "bell\u{7}",
        " lead",
        "trail ",
        &long,
    ] {
        let p = Peer::new(&s);
        let (answer, _) = p.retry_until_answered(&Request::Login { nick }.to_bytes());
        assert_eq!(answer, (code::ERROR, "invalid nickname".into()), "{nick:?}");
    }
    // 32 bytes is the limit, and still fine.
    Peer::new(&s).login(&"y".repeat(32));
}

#[test]
fn repeated_login_from_the_same_address_is_acknowledged_again() {
    // The first LOGIN_ACK may be lost: a client retries with the same nickname.
    let s = server();
    let p = joined(&s, "ann", "Pets");
    p.send(Request::Login { nick: "ann" });
    p.expect(code::LOGIN_ACK, "ann");
    // Still the same session: still in Pets.
    p.send(Request::ListUsers);
    p.expect_user_item("ann", "Pets");
}

#[test]
fn login_under_another_nickname_logs_the_old_user_off_first() {
    let s = server();
    let [watcher, p] = in_channel(&s, "Pets", ["watcher", "old"]);
    p.login("new");
    watcher.expect(code::USER_PARTS, "Pets old");
    // The old nickname is free again, and the new user is in no channel.
    let q = Peer::new(&s);
    q.login("old");
    p.send(req::public("hi"));
    p.expect_error("no current channel");
}

/// A datagram of request code `c` with `payload`, or the one form DISCOVER has.
fn request(c: u16, payload: &str) -> Vec<u8> {
    if c == code::DISCOVER {
        return Request::Discover.to_bytes();
    }
    let mut d = Vec::new();
    proto::encode_raw(c, payload, &mut d);
    d
}

/// What an address nobody is logged in from is told for a datagram of request code `c`
/// with `payload` (`1 2 3 4 5`, which every parser of the table accepts, or nothing) by a
/// server named `name` on `port`: to log in, for every request but the logins themselves
/// (judged on what they carry: here no valid nickname, no account) and DISCOVER (answered
/// to anyone).
fn stranger_answer(c: u16, payload: &str, name: &str, port: u16) -> (u16, String) {
    let error = |m: &str| (code::ERROR, m.to_string());
    match c {
        code::LOGIN_REQ => error("invalid nickname"),
        code::AUTH_REQ if payload.is_empty() => error("invalid nickname"),
        code::AUTH_REQ => error("no account with that nickname"),
        code::AUTH_FINISH => error("login failed"),
        code::DISCOVER => (code::SERVER_HERE, format!("{port} {name} 0")),
        _ => error("please log in"),
    }
}

#[test]
fn every_request_but_login_needs_a_login() {
    let s = server_with(|c| c.name = Some("conformance".into()));
    let port = s.addr().port();
    for &c in proto::REQUEST_CODES {
        for payload in ["1 2 3 4 5", ""] {
            let p = Peer::new(&s);
            let (answer, _) = p.retry_until_answered(&request(c, payload));
            assert_eq!(
                answer,
                stranger_answer(c, payload, "conformance", port),
                "{:?} {payload:?}",
                proto::name(c)
            );
        }
    }
    // An unknown code from an unknown address is also told to log in.
    let p = Peer::new(&s);
    let (answer, _) = p.retry_until_answered(&[0x03, 0xe7]);
    assert_eq!(answer, (code::ERROR, "please log in".into()));
}

#[test]
fn unknown_code_from_a_logged_in_user_is_unimplemented() {
    let (_s, p) = server_and_user("ann");
    // Codes the protocol does not define, and every code of its table that is no request
    // (but SEALED, which is opened, not handled: tests/accounts.rs).
    let not_requests = proto::ALL_CODES
        .iter()
        .copied()
        .filter(|c| !proto::REQUEST_CODES.contains(c) && *c != code::SEALED);
    for c in [0u16, 11, 299, 65535].into_iter().chain(not_requests) {
        p.send_code(c, "whatever");
        p.expect_error("unimplemented event code");
    }
}

#[test]
fn list_channels_gives_the_five_classic_channels_with_counts() {
    let s = server();
    let a = joined(&s, "a", "Weather");
    a.send(Request::ListChannels);
    assert_eq!(
        a.recv_n(5),
        vec![
            (
                code::CHANNEL_ITEM,
                "CurrentEvents 0 Discussion of current events".into()
            ),
            (
                code::CHANNEL_ITEM,
                "Weather 1 Talk about the weather".into()
            ),
            (
                code::CHANNEL_ITEM,
                "Gardening 0 For those with the green thumb".into()
            ),
            (
                code::CHANNEL_ITEM,
                "Hobbies 0 For hobbyists of all types".into()
            ),
            (
                code::CHANNEL_ITEM,
                "Pets 0 For our furry and feathered friends".into()
            ),
        ]
    );
    a.expect_nothing();
}

#[test]
fn join_unknown_channel_names_it_as_typed() {
    let (_s, p) = server_and_user("ann");
    p.send(Request::Join { title: "NoSuch" });
    p.expect_error("no channel named NoSuch");
}

#[test]
fn join_tells_the_members_but_not_the_joiner_and_reports_the_count() {
    let (s, a) = server_and_user("a");
    assert_eq!(
        a.join("pets"),
        PETS,
        "titles ignore case, shown as configured"
    );
    let b = user(&s, "b");
    assert_eq!(b.join("PETS"), "Pets 2 For our furry and feathered friends");
    a.expect(code::USER_JOINS, "Pets b");
    b.expect_nothing();
}

#[test]
fn joining_again_tells_nobody_and_makes_the_channel_current() {
    let s = server();
    let [a, b] = in_channel(&s, "Pets", ["a", "b"]);
    b.join("Weather");
    assert_eq!(b.join("Pets"), "Pets 2 For our furry and feathered friends");
    a.expect_nothing();
    b.send(req::public("back"));
    a.expect(code::PUBLIC_MSG, "Pets b back");
}

#[test]
fn the_most_recently_joined_channel_is_current() {
    let (s, a) = server_and_user("a");
    let pets = joined(&s, "petsonly", "Pets");
    let weather = joined(&s, "weatheronly", "Weather");
    a.join("Pets");
    pets.expect(code::USER_JOINS, "Pets a");
    a.join("Weather");
    weather.expect(code::USER_JOINS, "Weather a");
    a.send(req::public("rain"));
    weather.expect(code::PUBLIC_MSG, "Weather a rain");
    pets.expect_nothing();
    // USER_ITEM lists the channels most recent first.
    a.recv(); // own copy of the message
    a.send(Request::ListUsers);
    let items = a.recv_n(2);
    assert!(items
        .iter()
        .any(|(_, p)| p.starts_with("a ") && p.ends_with(" Weather Pets")));
}

#[test]
fn part_unknown_channel_is_an_error_and_part_of_a_non_member_is_silent() {
    let (_s, p) = server_and_user("ann");
    p.send(Request::Part { title: "Nowhere" });
    p.expect_error("no channel named Nowhere");
    p.send(Request::Part { title: "Pets" });
    p.expect_nothing();
}

#[test]
fn part_tells_the_rest_and_acknowledges_with_the_new_count() {
    let s = server();
    let [a, b] = in_channel(&s, "Pets", ["a", "b"]);
    b.send(Request::Part { title: "pets" });
    b.expect(code::PART_ACK, "Pets 1 For our furry and feathered friends");
    a.expect(code::USER_PARTS, "Pets b");
    // b had no other channel: no JOIN_ACK follows.
    b.expect_nothing();
}

#[test]
fn parting_the_current_channel_makes_the_next_one_current() {
    let s = server();
    let a = joined(&s, "a", "Weather");
    a.join("Gardening");
    a.join("Pets");
    a.send(Request::Part { title: "" }); // empty: the current channel, Pets
    a.expect(code::PART_ACK, "Pets 0 For our furry and feathered friends");
    a.expect(code::JOIN_ACK, "Gardening 1 For those with the green thumb");
    // Parting a channel that is not current changes nothing else.
    a.send(Request::Part { title: "Weather" });
    a.expect(code::PART_ACK, "Weather 0 Talk about the weather");
    a.expect_nothing();
    a.send(req::public("x"));
    a.expect(code::PUBLIC_MSG, "Gardening a x");
}

#[test]
fn public_message_reaches_every_member_sender_included() {
    let s = server();
    // Each member has been told of those who came later, and nothing waits.
    let members = in_channel(&s, "Hobbies", ["m0", "m1", "m2", "m3", "m4"]);
    let outsider = joined(&s, "out", "Pets");
    members[2].send(req::public("hello  all, spaces kept "));
    expect_all(
        &members.each_ref(),
        code::PUBLIC_MSG,
        "Hobbies m2 hello  all, spaces kept ",
    );
    outsider.expect_nothing();
}

#[test]
fn public_message_without_a_channel_is_an_error() {
    let (_s, a) = server_and_user("a");
    a.send(req::public("anyone?"));
    a.expect_error("no current channel");
}

#[test]
fn private_message_reaches_the_recipient_only() {
    let (s, a) = server_and_user("a");
    let b = user(&s, "Bob");
    a.send(req::private("bob", "psst, a secret"));
    b.expect(code::PRIVATE_MSG, "a psst, a secret");
    a.expect_nothing();
}

#[test]
fn private_message_errors() {
    let (_s, a) = server_and_user("a");
    a.send_code(code::SEND_PRIVATE, "");
    a.expect_error("no nickname given for recipient of private message");
    a.send(req::private("Ghost", "boo"));
    a.expect_error("Ghost: not logged in");
}

#[test]
fn list_users_gives_every_member_of_the_current_channel() {
    let (s, a) = server_and_user("a");
    a.send(Request::ListUsers);
    a.expect_error("no current channel");
    let b = user(&s, "b");
    a.join("Pets");
    b.join("Weather");
    b.join("Pets");
    a.expect(code::USER_JOINS, "Pets b");
    a.send(Request::ListUsers);
    let mut items = a.recv_n(2);
    items.sort();
    assert_eq!(items[0].0, code::USER_ITEM);
    let fields: Vec<Vec<&str>> = items.iter().map(|(_, p)| p.split(' ').collect()).collect();
    assert_eq!(fields[0][0], "a");
    assert_eq!(&fields[0][2..], ["Pets"]);
    assert_eq!(fields[1][0], "b");
    assert_eq!(&fields[1][2..], ["Pets", "Weather"]);
    for f in &fields {
        let secs: u64 = f[1].parse().expect("seconds online is a number");
        assert!(secs < 60);
    }
    a.expect_nothing();
}

#[test]
fn logoff_leaves_every_channel_and_frees_the_nickname() {
    let s = server();
    // Both in Pets and Weather.
    let [a, b] = in_channel(&s, "Pets", ["a", "b"]);
    for p in [&a, &b] {
        p.join("Weather");
    }
    a.expect(code::USER_JOINS, "Weather b");
    b.send_code(code::LOGOFF, "b");
    a.expect_in_any_order(&[
        (code::USER_PARTS, "Pets b"),
        (code::USER_PARTS, "Weather b"),
    ]);
    b.expect_nothing();
    let (answer, _) = b.retry_until_answered(&Request::ListUsers.to_bytes());
    assert_eq!(answer, (code::ERROR, "please log in".into()));
    let c = Peer::new(&s);
    c.login("b");
}

#[test]
fn silent_users_are_logged_off_by_the_sweep_and_keepalives_keep_users_on() {
    let s = server_with(|c| {
        c.idle_timeout = Duration::from_millis(1500);
        c.check_interval = Duration::from_millis(100);
    });
    let [talker, silent] = in_channel(&s, "Pets", ["talker", "silent"]);
    // The talker keeps sending STILL_HERE; the silent one says nothing, and nobody else
    // sends anything: the sweep must run on its own clock.
    let start = std::time::Instant::now();
    let mut parted = None;
    while start.elapsed() < Duration::from_secs(6) && parted.is_none() {
        talker.send(Request::StillHere);
        parted = talker.recv_within(Duration::from_millis(300));
    }
    assert_eq!(parted, Some((code::USER_PARTS, "Pets silent".into())));
    assert!(
        start.elapsed() >= Duration::from_millis(1000),
        "logged off too early"
    );
    let (answer, _) = silent.retry_until_answered(&Request::ListUsers.to_bytes());
    assert_eq!(answer, (code::ERROR, "please log in".into()));
    talker.send(Request::ListUsers);
    talker.expect_user_item("talker", "Pets");
    assert_eq!(s.stats().sweep_logoffs, 1);
}

#[test]
fn datagram_over_the_limit_is_refused_not_truncated() {
    let s = server_with(|c| c.max_datagram = 100);
    let a = joined(&s, "a", "Pets");
    let fits = "f".repeat(98);
    a.send(req::public(&fits));
    a.expect(code::PUBLIC_MSG, &format!("Pets a {fits}"));
    let over = "o".repeat(99);
    a.send(req::public(&over));
    a.expect_error("datagram too long");
    a.expect_nothing();
    // Also answered for one far over the default limit.
    let s = server();
    let b = Peer::new(&s);
    b.send_raw(&vec![0u8; 5000]);
    b.expect_error("datagram too long");
}

#[test]
fn invalid_text_is_an_error_for_users_and_dropped_for_strangers() {
    let s = server();
    let stranger = Peer::new(&s);
    stranger.send_raw(&[0, code::LOGIN_REQ as u8, 0xff, 0xfe]);
    stranger.expect_nothing();
    let a = user(&s, "a");
    a.send_raw(&[0, code::SEND_PUBLIC as u8, b'h', 0xc3]);
    a.expect_error("invalid text");
}

#[test]
fn malformed_datagrams_of_every_kind_leave_the_server_answering() {
    let s = server();
    let a = joined(&s, "a", "Pets");
    let junk: Vec<Vec<u8>> = vec![
        vec![],
        vec![0],
        vec![0xff],
        vec![0, 90, 0xf0, 0x28, 0x8c, 0x28],
        vec![0; 2000],
        vec![0xff, 0xff],
        vec![0x12, 0x34, 1, 2, 3],
        vec![0, 50],
        vec![0, 120, b' '],
    ];
    for j in &junk {
        a.send_raw(j);
    }
    // Stranger junk too.
    let x = Peer::new(&s);
    for j in &junk {
        x.send_raw(j);
    }
    // Whatever errors came back, the server still serves: a public message round-trips.
    a.send(req::public("still here"));
    let mut got = Vec::new();
    while let Some(d) = a.recv_within(Duration::from_secs(5)) {
        if d.0 == code::PUBLIC_MSG {
            got.push(d);
            break;
        }
        assert_eq!(d.0, code::ERROR);
    }
    assert_eq!(got, vec![(code::PUBLIC_MSG, "Pets a still here".into())]);
    s.state().check_invariants().unwrap();
}

#[test]
fn who_lists_users_by_prefix_and_caps_the_answer() {
    let (s, a) = server_and_user("alice");
    for nick in ["Albert", "bob"] {
        user(&s, nick);
    }
    a.send(Request::Who { prefix: "al" });
    let mut items: Vec<String> = a
        .recv_n(2)
        .into_iter()
        .map(|(c, p)| {
            assert_eq!(c, code::USER_ITEM);
            p.split(' ').next().unwrap().to_string()
        })
        .collect();
    items.sort();
    assert_eq!(items, ["Albert", "alice"]);
    a.expect_nothing();
    let many: Vec<Peer> = (0..101).map(|i| user(&s, &format!("z{i:03}"))).collect();
    a.send(Request::Who { prefix: "z" });
    let answers = a.recv_n(101);
    assert!(answers[..100].iter().all(|(c, _)| *c == code::USER_ITEM));
    assert_eq!(
        answers[100],
        (
            code::ERROR,
            "more than 100 users match; give a longer prefix".into()
        )
    );
    drop(many);
}

#[test]
fn whois_describes_one_user() {
    let (s, a) = server_and_user("a");
    let _bob = joined(&s, "Bob", "Pets");
    a.send(Request::Whois { nick: "BOB" });
    a.expect_user_item("Bob", "Pets");
    a.send(Request::Whois { nick: "nobody" });
    a.expect_error("nobody: not logged in");
}

#[test]
fn hot_list_tells_when_watched_users_come_and_go() {
    let (s, a) = server_and_user("a");
    let b = user(&s, "Bob");
    a.send(Request::Watch { nicks: "bob carol" });
    a.expect(code::USER_ONLINE, "Bob");
    a.expect_nothing();
    let c = user(&s, "Carol");
    a.expect(code::USER_ONLINE, "Carol");
    b.send(Request::Logoff);
    a.expect(code::USER_OFFLINE, "Bob");
    a.send(Request::Unwatch { nicks: "CAROL" });
    a.expect_nothing();
    c.send(Request::Logoff);
    a.expect_nothing();
}

#[test]
fn server_serves_ipv6_and_ipv4_when_bound_to_the_unspecified_v6_address() {
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        panic!("this test needs IPv6 on loopback");
    }
    let s = server_with(|c| c.bind = "[::]:0".parse().unwrap());
    let port = s.addr().port();
    let v6 = Peer::to(format!("[::1]:{port}").parse().unwrap());
    let v4 = Peer::to(format!("127.0.0.1:{port}").parse().unwrap());
    v6.login("six");
    v4.login("four");
    v6.join("Pets");
    v4.join("Pets");
    v6.expect(code::USER_JOINS, "Pets four");
    v4.send(req::public("hi"));
    expect_all(&[&v6, &v4], code::PUBLIC_MSG, "Pets four hi");
}

#[test]
fn max_users_refuses_further_logins() {
    let s = server_with(|c| c.max_users = 2);
    let _a = user(&s, "a");
    let b = user(&s, "b");
    let c = Peer::new(&s);
    let (answer, _) = c.retry_until_answered(&Request::Login { nick: "c" }.to_bytes());
    assert_eq!(answer, (code::ERROR, "server full; try again later".into()));
    b.send(Request::Logoff);
    std::thread::sleep(Duration::from_millis(100));
    c.login("c");
}
