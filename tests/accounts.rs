//! Accounts and protected sessions, spoken as raw datagrams: registration, password login,
//! password change, unregistering, guessing limits, forgery, replay, NAT rebinding,
//! malformed OPAQUE messages, and durability across a `kill -9`.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{
    auth_req, joined, password_login, register, registered_session, req, server, spoof, user, Peer,
    Protected,
};
use proto::auth::{self, seal, SessionKeys};
use proto::{code, Request};
use udpchat::server::RunningServer;

/// `listener`, a guest in Pets, and `ann`, who registered, logged in with the password and
/// joined Pets too (the listener has been told): ann's socket and session.
fn listener_and_protected_ann(s: &RunningServer) -> (Peer, Peer, Protected) {
    let listener = joined(s, "listener", "Pets");
    let (ann, mut keys) = registered_session(s, "ann", "pw");
    keys.send(&ann, Request::Join { title: "Pets" });
    assert_eq!(keys.recv(&ann).0, code::JOIN_ACK);
    listener.expect(code::USER_JOINS, "Pets ann");
    (listener, ann, keys)
}

#[test]
fn a_registered_nickname_needs_its_password() {
    let s = server();
    common::registered(&s, "Ann", "correct horse");

    let other = Peer::new(&s);
    other.send(Request::Login { nick: "ann" });
    other.expect_error("nickname is registered; log in with a password");

    let mut keys = password_login(&other, "Ann", "correct horse");
    keys.send(&other, Request::Join { title: "Pets" });
    keys.expect(
        &other,
        code::JOIN_ACK,
        "Pets 1 For our furry and feathered friends",
    );
    keys.send(&other, req::public("hi"));
    keys.expect(&other, code::PUBLIC_MSG, "Pets Ann hi");
}

#[test]
fn a_wrong_password_fails_on_the_client_and_guessing_is_limited() {
    let s = server();
    let ann = user(&s, "ann");
    register(&ann, "right");
    ann.send(Request::Logoff);
    let guesser = Peer::new(&s);
    let mut limited = false;
    for _ in 0..8 {
        let start = auth::login_start("ann", "wrong");
        let (c, answer) = auth_req(&guesser, &start);
        if c == code::ERROR {
            assert_eq!(answer, "too many login attempts; try again in a minute");
            limited = true;
            break;
        }
        assert_eq!(c, code::AUTH_CHALLENGE);
        assert_eq!(
            start.finish("wrong", &answer).unwrap_err(),
            auth::ClientAuthError::WrongPassword
        );
    }
    assert!(limited, "unlimited guessing");
    // No login happened.
    assert_eq!(s.state().user_count(), 0);
}

#[test]
fn a_guest_that_registers_and_logs_in_keeps_its_channels() {
    let s = server();
    let ann = joined(&s, "ann", "Pets");
    register(&ann, "pw");
    let mut keys = password_login(&ann, "ann", "pw");
    keys.send(&ann, Request::ListUsers);
    let item = keys.recv_code(&ann, code::USER_ITEM);
    assert!(item.ends_with(" Pets"), "{item}");
}

#[test]
fn changing_and_deleting_the_password_need_the_password_session() {
    let s = server();
    let ann = user(&s, "ann");
    register(&ann, "old");
    // A guest holding the nickname may not change an existing account.
    let start = auth::register_start("hijack");
    ann.send_raw(&start.datagram);
    ann.expect_error("log in with your password first");
    ann.send(Request::Unregister);
    ann.expect_error("log in with your password first");

    let mut keys = password_login(&ann, "ann", "old");
    let start = auth::register_start("new");
    keys.send_raw(&ann, &start.datagram);
    let (c, response) = keys.recv(&ann);
    assert_eq!(c, code::REGISTER_RESP);
    keys.send_raw(&ann, &start.finish("new", &response).unwrap());
    keys.expect(&ann, code::ACCOUNT_ACK, "changed ann");
    keys.send(&ann, Request::Logoff);
    common::wait_until(|| s.state().address_of("ann").is_none());

    let p = Peer::new(&s);
    let start = auth::login_start("ann", "old");
    let (_, challenge) = auth_req(&p, &start);
    assert!(
        start.finish("old", &challenge).is_err(),
        "old password still works"
    );
    let mut keys = password_login(&p, "ann", "new");
    keys.send(&p, Request::Unregister);
    keys.expect(&p, code::ACCOUNT_ACK, "unregistered ann");
    keys.send(&p, Request::Logoff);
    common::wait_until(|| s.state().address_of("ann").is_none());
    // Free for guests again.
    Peer::new(&s).login("ann");
}

#[test]
fn forged_mac_replays_and_plain_datagrams_do_not_speak_for_a_protected_user() {
    let s = server();
    let (listener, ann, mut keys) = listener_and_protected_ann(&s);

    // A plain datagram from ann's own address: not acted on.
    ann.send(req::public("plain"));
    // A sealed one under another key: not acted on.
    let wrong = SessionKeys::derive(&[9u8; 64]);
    let mut forged = seal(&wrong, 2, &req::public("badmac").to_bytes());
    forged[2..10].copy_from_slice(&keys.keys.id.to_be_bytes());
    ann.send_raw(&forged);
    // A genuine one, then its replay: acted on once.
    let genuine = keys.send(&ann, req::public("once"));
    listener.expect(code::PUBLIC_MSG, "Pets ann once");
    ann.send_raw(&genuine);
    // A stale counter, far behind the window: not acted on.
    ann.send_raw(&seal(&keys.keys, 500, &Request::StillHere.to_bytes()));
    ann.send_raw(&seal(&keys.keys, 3, &req::public("stale").to_bytes()));
    listener.expect_nothing();
    assert!(s.state().auth_rejected() >= 4);
}

#[test]
fn a_session_moves_only_once_its_new_address_answers_a_challenge() {
    let s = server();
    let (listener, ann, mut keys) = listener_and_protected_ann(&s);
    // A new socket stands for ann behind a NAT that changed her port.
    let moved = Peer::new(&s);
    let bad = SessionKeys::derive(&[3u8; 64]);
    let mut forged = seal(&bad, 90, &req::public("x").to_bytes());
    forged[2..10].copy_from_slice(&keys.keys.id.to_be_bytes());
    moved.send_raw(&forged);
    moved.expect_no_datagram();

    // A genuine datagram from the new address is acted on for ann where she is...
    keys.send(&moved, req::public("from new"));
    listener.expect(code::PUBLIC_MSG, "Pets ann from new");
    keys.expect(&ann, code::PUBLIC_MSG, "Pets ann from new");
    // ...and the new address gets only a sealed challenge.
    let (c, data) = keys.recv(&moved);
    assert_eq!(c, code::PATH_CHALLENGE);
    // A wrong answer moves nothing.
    keys.send(
        &moved,
        Request::PathResponse {
            data: "0000000000000000",
        },
    );
    listener.send(req::public("still old"));
    listener.recv();
    keys.expect(&ann, code::PUBLIC_MSG, "Pets listener still old");
    // The right one, from the new address, moves the session there.
    keys.send(&moved, Request::PathResponse { data: &data });
    common::wait_until(|| s.state().address_of("ann") == Some(moved.addr()));
    listener.send(req::public("to new"));
    listener.recv();
    keys.expect(&moved, code::PUBLIC_MSG, "Pets listener to new");
    ann.expect_no_datagram();
    s.state().check_invariants().unwrap();
}

#[test]
fn malformed_authentication_messages_get_errors_and_the_server_keeps_serving() {
    let s = server();
    let ann = user(&s, "ann");
    for (c, payload) in [
        (code::REGISTER_REQ, "!!!not base64"),
        (code::REGISTER_REQ, "AAAA"),
        (code::REGISTER_REQ, ""),
    ] {
        ann.send_code(c, payload);
        ann.expect_error("malformed authentication message");
    }
    // An upload without the cookie of a REGISTER_RESP is dropped unanswered (it may be a
    // forgery in a victim's name); with one, a malformed upload is an error.
    ann.send_code(code::REGISTER_UPLOAD, "AAAA");
    ann.expect_nothing();
    let start = auth::register_start("pw");
    ann.send_raw(&start.datagram);
    let response = ann.recv_code(code::REGISTER_RESP);
    let cookie = response.split_once(' ').unwrap().1;
    for upload in ["AAAA".to_string(), "A".repeat(300)] {
        ann.send_code(code::REGISTER_UPLOAD, &format!("{upload} {cookie}"));
        ann.expect_error("malformed authentication message");
    }
    register(&ann, "pw");
    let p = Peer::new(&s);
    let pad = ".".repeat(500);
    p.send_code(code::AUTH_REQ, &format!("ann !!! {pad}"));
    p.expect_error("malformed authentication message");
    p.send_code(code::AUTH_REQ, &format!("ann AAAA {pad}"));
    p.expect_error("malformed authentication message");
    p.send_code(code::AUTH_FINISH, &"A".repeat(88));
    p.expect_error("login failed");
    // A real start, then a broken finish.
    let start = auth::login_start("ann", "pw");
    assert_eq!(auth_req(&p, &start).0, code::AUTH_CHALLENGE);
    p.send_code(code::AUTH_FINISH, "!!!");
    p.expect_error("malformed authentication message");
    let long_sealed = [&[0x01u8, 0x90][..], &[7u8; 2000]].concat();
    for junk in [&[0x01u8, 0x90][..], &[0x01, 0x90, 1, 2, 3], &long_sealed] {
        p.send_raw(junk);
    }
    p.send(Request::Login { nick: "guest" });
    p.expect(code::LOGIN_ACK, "guest");
}

#[test]
fn a_hot_list_is_kept_with_the_account() {
    let s = server();
    let _bob = user(&s, "bob");
    let (ann, mut keys) = registered_session(&s, "ann", "pw");
    keys.send(&ann, Request::Watch { nicks: "bob" });
    keys.expect(&ann, code::USER_ONLINE, "bob");
    keys.send(&ann, Request::Logoff);
    common::wait_until(|| s.state().address_of("ann").is_none());
    let again = Peer::new(&s);
    let mut keys = password_login(&again, "ann", "pw");
    keys.expect(&again, code::USER_ONLINE, "bob");
}

#[test]
fn forged_source_addresses_act_for_guests_but_never_for_protected_users() {
    let s = server();
    let [listener, guest] = common::in_channel(&s, "Pets", ["listener", "guest"]);
    // The forgery works at all: a guest can be impersonated (the classic protocol's hole).
    let forged = req::public("forged").to_bytes();
    assert!(
        spoof(guest.addr(), s.addr(), &forged),
        "raw sockets need root; the tests run as root"
    );
    listener.expect(code::PUBLIC_MSG, "Pets guest forged");
    guest.expect(code::PUBLIC_MSG, "Pets guest forged");

    let (ann, mut keys) = registered_session(&s, "ann", "pw");
    keys.send(&ann, Request::Join { title: "Pets" });
    keys.recv(&ann);
    listener.recv();
    guest.recv();
    assert!(spoof(ann.addr(), s.addr(), &forged));
    let captured = seal(&keys.keys, 1, &req::public("replayed").to_bytes());
    assert!(spoof(ann.addr(), s.addr(), &captured));
    listener.expect_nothing();
    guest.expect_nothing();
}

const BIN: &str = env!("CARGO_BIN_EXE_chat-server");

#[test]
fn accounts_survive_kill_9_and_the_database_stays_sound() {
    let parent = tempfile::tempdir().unwrap();
    let data = parent.path().join("data");
    let port = {
        let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let start = || {
        let child = Command::new(BIN)
            .args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--data"])
            .arg(&data)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        // Wait until it answers.
        let probe = Peer::to(addr);
        let mut up = false;
        for _ in 0..100 {
            probe.send(Request::Login { nick: "probe" });
            if probe.recv_within(Duration::from_millis(100)).is_some() {
                probe.send(Request::Logoff);
                up = true;
                break;
            }
        }
        assert!(up, "server did not come up");
        (child, addr)
    };
    let (mut child, addr) = start();
    let ann = Peer::to(addr);
    ann.login("ann");
    assert_eq!(register(&ann, "durable"), "registered ann");
    common::signal(child.id(), common::Signal::SIGKILL);
    child.wait().unwrap();

    let store = udpchat::accounts::SqliteStore::open_dir(&data).unwrap();
    assert_eq!(store.integrity_check().unwrap(), "ok");
    drop(store);

    let (mut child, addr) = start();
    let p = Peer::to(addr);
    password_login(&p, "ann", "durable");
    child.kill().unwrap();
    child.wait().unwrap();

    let list = Command::new(BIN)
        .args(["accounts", "list", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(
        text.contains("ann") && text.contains("1 accounts"),
        "{text}"
    );
    let del = Command::new(BIN)
        .args(["accounts", "delete", "ANN", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(del.status.success());
    let list = Command::new(BIN)
        .args(["accounts", "list", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&list.stdout).contains("0 accounts"));
}

/// A session whose address keeps changing (two sockets taking turns) stays one user with
/// one writer: its sealed datagrams go to the session's worker whichever address they
/// come from, so with several workers nothing races and every message arrives in order.
#[test]
fn a_session_moving_between_addresses_stays_consistent_with_many_workers() {
    let s = common::server_with(|c| c.workers = 4);
    let (listener, ann, mut keys) = listener_and_protected_ann(&s);
    let other = Peer::new(&s);
    let sockets = [&ann, &other];
    for n in 2..42u64 {
        let text = format!("message {n}");
        keys.send(sockets[(n % 2) as usize], req::public(&text));
    }
    for n in 2..42u64 {
        listener.expect(code::PUBLIC_MSG, &format!("Pets ann message {n}"));
    }
    s.state().check_invariants().unwrap();
    assert_eq!(s.state().user_count(), 2);
}
