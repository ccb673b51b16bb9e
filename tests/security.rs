//! The proofs of concept of the security review (issue 12), each turned into a test in
//! which the attacker gains nothing: raw datagrams through real sockets, forged source
//! addresses through a raw socket (`common::spoof`; the tests run as root), replays of
//! captured datagrams, and floods of logins.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{
    auth_req, password_login, register, registered as account, registered_session, req, server,
    server_with, spoof, user, Peer, Protected,
};
use proto::auth::{self, Sealed};
use proto::{code, Request};
use udpchat::accounts::limits::PER_ACCOUNT_PREFIX;
use udpchat::server::RunningServer;

/// A server on which `alice` has an account (password `pw`) and is not logged in.
fn with_alice() -> RunningServer {
    let s = server();
    account(&s, "alice", "pw");
    s
}

/// Alice logs in with her password from the network of `ip` (not 127.0.0.1's); her socket
/// and session.
fn alice_from(s: &RunningServer, ip: [u8; 4]) -> (Peer, Protected) {
    let alice = Peer::at(s, ip);
    let session = password_login(&alice, "alice", "pw");
    (alice, session)
}

// ---- 1. any registered user could take over any address ----

#[test]
fn a_sealed_datagram_from_someone_elses_address_moves_nothing_and_logs_nobody_off() {
    let s = server();
    let bob = user(&s, "bob");
    let alice = user(&s, "alice");
    let (mallory, mut m) = registered_session(&s, "mallory", "evil");
    // Mallory seals a datagram with her own session and alice's address as its source.
    let forged = m.session.seal(&Request::Join { title: "Pets" }.to_bytes());
    assert!(
        spoof(alice.addr(), s.addr(), &forged),
        "raw sockets need root"
    );
    // Mallory's session stays where it was, alice stays alice.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(s.state().address_of("alice"), Some(alice.addr()));
    assert_eq!(s.state().address_of("mallory"), Some(mallory.addr()));
    // Bob's private message to mallory reaches mallory, not alice's socket.
    bob.send(req::private("mallory", "for mallory only"));
    let (c, got) = m.recv(&mallory);
    // (Mallory's own JOIN was acted on where she is: its JOIN_ACK comes first.)
    let got = if c == code::JOIN_ACK {
        m.recv(&mallory).1
    } else {
        got
    };
    assert_eq!(got, "bob for mallory only");
    // All alice's address got is one path challenge, sealed for mallory's session (which
    // alice can't open and mallory never sees), no bigger than 3 times what was sent.
    let challenge = alice
        .recv_raw_within(common::WAIT)
        .expect("a path challenge");
    let sealed = Sealed::parse(&challenge).expect("sealed");
    assert_eq!(sealed.session, m.keys.id);
    assert!(challenge.len() <= 3 * forged.len());
    alice.expect_no_datagram();
    // Alice is still a working user.
    alice.send(Request::Whois { nick: "alice" });
    alice.recv_code(code::USER_ITEM);
    s.state().check_invariants().unwrap();
}

#[test]
fn a_forged_source_can_not_point_a_session_at_a_bystander() {
    let s = server();
    let bob = user(&s, "bob");
    let bystander = Peer::new(&s); // not logged in: nobody holds its address
    let (mallory, mut m) = registered_session(&s, "mallory", "evil");
    // Mallory's session, sealed from the bystander's address, would have moved there at
    // once (and everything sent to mallory with it): now it stays.
    let forged = m.session.seal(&Request::StillHere.to_bytes());
    assert!(spoof(bystander.addr(), s.addr(), &forged));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(s.state().address_of("mallory"), Some(mallory.addr()));
    bob.send(req::private("mallory", "not for the bystander"));
    m.expect(&mallory, code::PRIVATE_MSG, "bob not for the bystander");
    // The bystander got one challenge, no bigger than three times the forged datagram.
    let challenge = bystander
        .recv_raw_within(common::WAIT)
        .expect("a path challenge");
    assert!(challenge.len() <= 3 * forged.len());
    bystander.expect_no_datagram();
}

#[test]
fn a_session_never_moves_onto_an_address_someone_holds() {
    let s = server();
    let alice = user(&s, "alice");
    let (mallory, mut m) = registered_session(&s, "mallory", "evil");
    // Even answering the challenge (mallory is on the path and sees it) from alice's
    // address does not push alice out.
    let forged = m.session.seal(&Request::StillHere.to_bytes());
    assert!(spoof(alice.addr(), s.addr(), &forged));
    let raw = alice.recv_raw_within(common::WAIT).expect("challenge");
    let inner = m.session.open(&raw).expect("sealed for mallory's session");
    let data = std::str::from_utf8(&inner[2..]).unwrap().to_string();
    let answer = m
        .session
        .seal(&Request::PathResponse { data: &data }.to_bytes());
    assert!(spoof(alice.addr(), s.addr(), &answer));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(s.state().address_of("alice"), Some(alice.addr()));
    assert_eq!(s.state().address_of("mallory"), Some(mallory.addr()));
    s.state().check_invariants().unwrap();
}

// ---- 2. a forged source address registered someone else's nickname ----

#[test]
fn a_registration_upload_needs_the_cookie_sent_to_that_address_for_that_nickname() {
    let s = server();
    let bob = user(&s, "bob");
    let mallory = user(&s, "mallory");
    // Mallory gets a genuine REGISTER_RESP (and cookie) for herself and makes an upload
    // with her password...
    let start = auth::register_start("mallorys password");
    mallory.send_raw(&start.datagram);
    let response = mallory.recv_code(code::REGISTER_RESP);
    let upload = start.finish("mallorys password", &response).unwrap();
    let (bare, _cookie) =
        upload[2..].split_at(upload[2..].iter().position(|&b| b == b' ').unwrap());
    let mut without_cookie = upload[..2].to_vec();
    without_cookie.extend_from_slice(bare);
    // ...and sends it from bob's address, with her cookie and without one.
    assert!(spoof(bob.addr(), s.addr(), &upload));
    assert!(spoof(bob.addr(), s.addr(), &without_cookie));
    std::thread::sleep(Duration::from_millis(300));
    assert!(s.state().address_of("bob").is_some());
    bob.expect_nothing();
    // Nothing was registered: bob still logs in without a password.
    bob.send(Request::Logoff);
    common::wait_until(|| s.state().address_of("bob").is_none());
    Peer::new(&s).login("bob");
}

#[test]
fn one_replayed_upload_registers_nothing_more() {
    let s = server();
    let mallory = user(&s, "mallory");
    let start = auth::register_start("pw");
    mallory.send_raw(&start.datagram);
    let (_, response) = mallory.recv();
    let upload = start.finish("pw", &response).unwrap();
    mallory.send_raw(&upload);
    mallory.expect(code::ACCOUNT_ACK, "registered mallory");
    // The same upload from 200 guests of hers: each is another address and nickname.
    let guests: Vec<Peer> = (0..200).map(|i| user(&s, &format!("sock{i}"))).collect();
    for g in &guests {
        g.send_raw(&upload);
    }
    std::thread::sleep(Duration::from_millis(500));
    for (i, g) in guests.iter().enumerate().step_by(50) {
        g.expect_nothing();
        assert!(s.state().address_of(&format!("sock{i}")).is_some());
    }
    // Only mallory's account exists.
    let p = Peer::new(&s);
    p.send(Request::Login { nick: "sock7" });
    p.expect_error("nickname already in use");
    for g in &guests {
        g.send(Request::Logoff);
    }
    common::wait_until(|| s.state().user_count() == 1);
    for nick in ["sock0", "sock199"] {
        Peer::new(&s).login(nick);
    }
}

#[test]
fn registrations_are_limited_per_network() {
    let s = server_with(|c| c.register_limit = 3);
    let mut refused = 0;
    for i in 0..5 {
        let p = user(&s, &format!("new{i}"));
        let start = auth::register_start("pw");
        p.send_raw(&start.datagram);
        let (_, response) = p.recv();
        p.send_raw(&start.finish("pw", &response).unwrap());
        match p.recv() {
            (c, _) if c == code::ACCOUNT_ACK => {}
            (c, e) => {
                assert_eq!(
                    (c, e.as_str()),
                    (code::ERROR, "too many registrations; try again later")
                );
                refused += 1;
            }
        }
    }
    assert_eq!(refused, 2);
    // Another network may still register.
    let other = Peer::at(&s, [127, 0, 9, 1]);
    other.login("elsewhere");
    assert_eq!(register(&other, "pw"), "registered elsewhere");
}

// ---- 3. nothing the server sent was authenticated ----

#[test]
fn a_protected_user_refuses_what_a_forger_sends_in_the_servers_name() {
    let s = server();
    let bob = user(&s, "bob");
    let (ann, mut a) = registered_session(&s, "ann", "pw");
    // Forged from the server's address: a private message, a LOGIN_ACK, an ERROR, and a
    // REGISTER_RESP with the attacker's own OPRF key (as during /passwd).
    let fake_resp = {
        let other = udpchat::accounts::Service::in_memory();
        let start = auth::register_start("x");
        let msg = String::from_utf8(start.datagram[2..].to_vec()).unwrap();
        let r = other.registration_response("ann", &msg).unwrap();
        let mut d = code::REGISTER_RESP.to_be_bytes().to_vec();
        d.extend_from_slice(r.as_bytes());
        d
    };
    let mut private = code::PRIVATE_MSG.to_be_bytes().to_vec();
    private.extend_from_slice(b"bob send me your password");
    for forged in [
        private,
        [&code::LOGIN_ACK.to_be_bytes()[..], b"ann"].concat(),
        [&code::ERROR.to_be_bytes()[..], b"login failed"].concat(),
        fake_resp,
    ] {
        assert!(spoof(s.addr(), ann.addr(), &forged));
    }
    // Each arrives at ann's socket, unsealed, and her session opens none of them.
    for _ in 0..4 {
        let raw = ann
            .recv_raw_within(common::WAIT)
            .expect("the forgery arrives");
        assert!(a.session.open(&raw).is_none(), "accepted {raw:?}");
    }
    // The real private message is sealed, confidential and opens.
    bob.send(req::private("ann", "the real one"));
    let raw = ann.recv_raw_within(common::WAIT).unwrap();
    assert!(
        !raw.windows(8).any(|w| w == b"real one"),
        "not in the clear"
    );
    let inner = a.session.open(&raw).expect("genuine");
    assert_eq!(&inner[2..], b"bob the real one");
}

#[test]
fn a_changed_server_key_is_caught_by_the_pin() {
    use udpchat_client::secure::{KnownServers, Pin};
    let dir = tempfile::tempdir().unwrap();
    let known = KnownServers::new(dir.path().join("known"));
    let s = server();
    // First registration: the real server's key is pinned.
    let ann = user(&s, "ann");
    let start = auth::register_start("pw");
    ann.send_raw(&start.datagram);
    let (_, response) = ann.recv();
    let (_, key) = start.finish_with_key("pw", &response).unwrap();
    assert_eq!(known.check("srv", &key).unwrap(), Pin::New);
    // A forger answers the next registration with its own OPRF key and server key.
    let forger = udpchat::accounts::Service::in_memory();
    let start = auth::register_start("new");
    let msg = String::from_utf8(start.datagram[2..].to_vec()).unwrap();
    let forged = forger.registration_response("ann", &msg).unwrap();
    let (_, forged_key) = start.finish_with_key("new", &forged).unwrap();
    assert!(matches!(
        known.check("srv", &forged_key).unwrap(),
        Pin::Changed(_)
    ));
}

// ---- 4. anyone could lock an account ----

#[test]
fn forged_auth_requests_spend_no_attempts_and_lock_nothing() {
    let s = with_alice();
    let start = auth::login_start("alice", "guess");
    // 50 AUTH_REQs for alice from forged addresses: each gets only a retry token, sent
    // to the forged address; nothing is counted.
    for i in 0..50u8 {
        let from = SocketAddr::from(([127, 0, 3, i + 1], 40000 + u16::from(i)));
        assert!(spoof(from, s.addr(), &start.datagram));
        // Even with a token made up or copied from elsewhere.
        assert!(spoof(
            from,
            s.addr(),
            &start.with_token("AAAAAAAAAAAAAAAAAAAAAA")
        ));
    }
    std::thread::sleep(Duration::from_millis(300));
    let (alice, mut a) = alice_from(&s, [127, 0, 4, 1]);
    a.send(&alice, Request::Whois { nick: "alice" });
    assert!(a.recv_code(&alice, code::USER_ITEM).starts_with("alice "));
}

#[test]
fn guessing_from_one_network_locks_only_that_network_out() {
    let s = with_alice();
    let guesser = Peer::new(&s);
    let mut locked = false;
    for _ in 0..PER_ACCOUNT_PREFIX + 1 {
        let start = auth::login_start("alice", "guess");
        let (c, answer) = auth_req(&guesser, &start);
        if c == code::ERROR {
            assert_eq!(answer, "too many login attempts; try again in a minute");
            locked = true;
        }
    }
    assert!(locked, "unlimited guessing");
    // Alice, from another network, is not locked out.
    alice_from(&s, [127, 0, 5, 1]);
}

#[test]
fn a_replayed_auth_request_does_not_replace_the_login_under_way() {
    let s = with_alice();
    let alice = Peer::new(&s);
    let start = auth::login_start("alice", "pw");
    alice.send_raw(&start.datagram);
    let (_, token) = alice.recv();
    let with_token = start.with_token(&token);
    alice.send_raw(&with_token);
    let challenge = alice.recv_code(code::AUTH_CHALLENGE);
    // The attacker replays alice's AUTH_REQ (token and all) from alice's address.
    assert!(spoof(alice.addr(), s.addr(), &with_token));
    let (_, again) = alice.recv();
    assert_eq!(again, challenge, "the same answer, nothing new under way");
    let (finish, keys) = start.finish("pw", &challenge).unwrap();
    alice.send_raw(&finish);
    let mut a = common::Protected::new(keys);
    a.expect(&alice, code::LOGIN_ACK, "alice");
}

#[test]
fn a_flood_of_guest_logins_leaves_room_for_account_holders() {
    let s = server_with(|c| c.max_users = 50);
    account(&s, "alice", "pw");
    // 100 forged guest logins from as many addresses: guests stop at 45 of 50.
    for i in 0..100u16 {
        let from = SocketAddr::from(([127, 0, 6, (i % 200 + 1) as u8], 30000 + i));
        let nick = format!("flood{i}");
        assert!(spoof(
            from,
            s.addr(),
            &Request::Login { nick: &nick }.to_bytes()
        ));
    }
    common::wait_until(|| s.state().user_count() == 45);
    let late = Peer::new(&s);
    let (answer, _) = late.retry_until_answered(&Request::Login { nick: "late" }.to_bytes());
    assert_eq!(answer, (code::ERROR, "server full; try again later".into()));
    // Alice has her password: she gets in.
    alice_from(&s, [127, 0, 7, 1]);
}

#[test]
fn free_accounts_can_not_fill_the_pending_logins_of_everyone_else() {
    let s = server_with(|c| c.register_limit = 100);
    for i in 0..4 {
        account(&s, &format!("free{i}"), "pw");
    }
    account(&s, "alice", "pw");
    // The attacker starts logins (never finished) of its free accounts from many ports of
    // one network, each with a valid token.
    let mut refused = 0;
    for i in 0..20 {
        let p = Peer::new(&s);
        let start = auth::login_start(&format!("free{}", i % 4), "pw");
        match auth_req(&p, &start) {
            (c, _) if c == code::AUTH_CHALLENGE => {}
            (_, e) => {
                assert_eq!(e, "too many login attempts; try again in a minute");
                refused += 1;
            }
        }
    }
    assert!(refused >= 4, "pending logins per network are capped");
    alice_from(&s, [127, 0, 8, 1]);
}

// ---- 6. cheap requests, expensive work ----

#[test]
fn an_unproven_auth_request_costs_a_token_and_nothing_else() {
    let s = with_alice();
    let start = auth::login_start("alice", "pw");
    let p = Peer::new(&s);
    // Unpadded: the token is still shorter than the request (no amplification).
    let unpadded: Vec<u8> = {
        let text = std::str::from_utf8(&start.datagram[2..]).unwrap();
        let mut parts = text.split(' ');
        let (n, m) = (parts.next().unwrap(), parts.next().unwrap());
        let mut d = code::AUTH_REQ.to_be_bytes().to_vec();
        d.extend_from_slice(format!("{n} {m}").as_bytes());
        d
    };
    p.send_raw(&unpadded);
    let token = p.recv_code(code::AUTH_RETRY);
    assert!(2 + token.len() < unpadded.len());
}

// ---- 8. a classic client that lost its session is told to log in ----

#[test]
fn a_stranger_is_told_to_log_in_at_its_first_short_request() {
    let s = server();
    let p = Peer::new(&s);
    p.send(Request::Join { title: "Pets" });
    p.expect_error("please log in");
}

#[test]
fn a_forged_source_gets_at_most_three_times_what_was_sent_in_its_name() {
    let s = server();
    let victim = Peer::new(&s);
    let mut sent = 0;
    for _ in 0..20 {
        let d = Request::ListChannels.to_bytes();
        assert!(spoof(victim.addr(), s.addr(), &d));
        sent += d.len();
    }
    let mut got = 0;
    while let Some(d) = victim.recv_raw_within(Duration::from_millis(300)) {
        got += d.len();
    }
    assert!(got > 0 && got <= 3 * sent, "sent {sent}, reflected {got}");
}

// ---- 9. a lost LOGIN_ACK after a password login ----

#[test]
fn a_lost_login_ack_is_asked_for_again_sealed() {
    let s = with_alice();
    let alice = Peer::new(&s);
    let start = auth::login_start("alice", "pw");
    let (_, challenge) = auth_req(&alice, &start);
    let (finish, keys) = start.finish("pw", &challenge).unwrap();
    alice.send_raw(&finish);
    // The LOGIN_ACK is lost.
    assert!(alice.recv_raw_within(common::WAIT).is_some());
    let mut a = common::Protected::new(keys);
    // The client's retry: a sealed LOGIN_REQ, answered with a sealed LOGIN_ACK.
    a.send(&alice, Request::Login { nick: "alice" });
    a.expect(&alice, code::LOGIN_ACK, "alice");
    a.send(&alice, Request::Join { title: "Pets" });
    a.recv_code(&alice, code::JOIN_ACK);
}

// ---- 10. look-alike nicknames ----

#[test]
fn look_alikes_of_a_registered_nickname_are_refused() {
    let s = with_alice();
    let p = Peer::new(&s);
    for (nick, error) in [
        ("ALICE", "nickname is registered; log in with a password"),
        (
            "ＡＬＩＣＥ",
            "nickname is registered; log in with a password",
        ),
        ("\u{430}lice", "nickname is too like a registered one"),
        ("a1ice", "nickname is too like a registered one"),
    ] {
        let (answer, _) = p.retry_until_answered(&Request::Login { nick }.to_bytes());
        assert_eq!(answer, (code::ERROR, error.into()), "{nick}");
    }
    // Registering a look-alike is refused too.
    let q = user(&s, "bоb");
    account(&s, "bob", "pw2");
    let start = auth::register_start("x");
    q.send_raw(&start.datagram);
    q.expect_error("nickname is too like a registered one");
}

// ---- 11. operators can see attacks ----

#[test]
fn logins_failures_lockouts_registrations_and_path_changes_are_counted() {
    let s = server_with(|c| c.metrics = Some("127.0.0.1:0".parse().unwrap()));
    account(&s, "alice", "pw");
    let p = Peer::new(&s);
    for _ in 0..PER_ACCOUNT_PREFIX + 1 {
        // (Paced: a stranger gets at most a few ERRORs a second.)
        std::thread::sleep(Duration::from_millis(600));
        let start = auth::login_start("alice", "pw");
        let (c, challenge) = auth_req(&p, &start);
        if c == code::AUTH_CHALLENGE {
            // A finish that does not verify (tampered on the way).
            let (mut finish, _) = start.finish("pw", &challenge).unwrap();
            let i = finish.len() - 4;
            finish[i] = if finish[i] == b'A' { b'B' } else { b'A' };
            p.send_raw(&finish);
            p.expect_error("login failed");
        }
    }
    let (_alice, mut a) = alice_from(&s, [127, 0, 10, 1]);
    let moved = Peer::at(&s, [127, 0, 10, 2]);
    a.send(&moved, Request::StillHere);
    let (_, data) = a.recv(&moved);
    a.send(&moved, Request::PathResponse { data: &data });
    common::wait_until(|| s.state().address_of("alice") == Some(moved.addr()));
    let page = common::metrics_page(&s);
    for line in [
        "udpchat_password_logins_total 1",
        "udpchat_registrations_total 1",
        "udpchat_lockouts_total 1",
        "udpchat_path_changes_total 1",
        "udpchat_protected_sessions 1",
    ] {
        assert!(page.contains(line), "{line} not in\n{page}");
    }
    assert!(!page.contains("udpchat_auth_retries_total 0"));
    assert!(!page.contains("udpchat_login_failures_total 0"));
}
