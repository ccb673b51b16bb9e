//! Part 4 of the protocol in raw datagrams: capabilities (CAPS_REQ/CAPS_ACK) and PING/PONG,
//! with their malformed forms. Classic clients never send these and see no change.

mod common;

use common::{server, server_with, user, Peer};
use udpchat::protocol::{code, errors, Request};

#[test]
fn caps_are_granted_as_asked_and_unknown_ones_ignored() {
    let s = server();
    let ann = user(&s, "ann");
    ann.send(Request::Caps { caps: "batch" });
    ann.expect(code::CAPS_ACK, "batch=1200");
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
    let ann = user(&s, "ann");
    ann.send(Request::Caps { caps: "batch" });
    ann.expect(code::CAPS_ACK, "batch=1200");
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
    let s = server();
    let ann = user(&s, "ann");
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
    let ann = user(&s, "ann");
    ann.join("Pets");
    let bob = user(&s, "bob");
    bob.join("Pets");
    ann.recv(); // bob joined
    bob.send(Request::SendPublic { text: "hi" });
    ann.expect(code::PUBLIC_MSG, "Pets bob hi");
    bob.expect(code::PUBLIC_MSG, "Pets bob hi");
    ann.expect_nothing();
}
