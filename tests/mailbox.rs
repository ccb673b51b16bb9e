//! Messages kept for a registered user who is away (issue 20, finding 10), attacked: a
//! guest logged in under a forged source address (`common::spoof`; the tests run as root)
//! tries to fill the mailbox, one sender that proved its address tries the same under
//! several nicknames, guests from several networks try it together, and a sender the
//! recipient refused tries again. Each time the attacker gets nothing kept, and friends
//! (a guest of another network, an account holder) still get their messages through.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::script::Scripted;
use common::{metric, metrics_page, part5, protected, registered, req, server_with, spoof, Peer};
use proto::{code, Request};
use udpchat::server::RunningServer;

/// A server with metrics, its mailboxes as `f` sets them.
fn server(f: impl FnOnce(&mut udpchat::server::ServerConfig)) -> RunningServer {
    server_with(|c| {
        c.metrics = Some("127.0.0.1:0".parse().unwrap());
        f(c);
    })
}

/// A part-5 guest `nick` that proved its address, on a socket bound to `ip`.
fn proved(s: &RunningServer, ip: [u8; 4], nick: &str) -> Peer {
    let p = Peer::at(s, ip);
    p.login(nick);
    p.hello();
    p.prove();
    p
}

/// Sends a private message to `ann` (away) from `p`, and returns the answer.
fn leave(p: &Peer, text: &str) -> (u16, String) {
    p.send(req::private("ann", text));
    p.recv()
}

/// The private messages ann gets kept at her next password login, as `sender text`.
fn ann_reads(s: &RunningServer) -> Vec<String> {
    let ann = protected(s, "ann", "pw");
    let mut got = Vec::new();
    while let Some((c, payload)) = ann.recv_within(Duration::from_millis(500)) {
        assert_eq!(c, code::STORED_PRIVATE, "{payload}");
        // `ms sender text`
        got.push(payload.split_once(' ').unwrap().1.to_owned());
    }
    ann.send(Request::Logoff);
    common::wait_until(|| s.state().address_of("ann").is_none());
    got
}

/// Sends `req` with `from` forged as its source.
fn forge(s: &RunningServer, from: SocketAddr, req: Request<'_>) {
    assert!(
        spoof(from, s.addr(), &req.to_bytes()),
        "raw sockets need root"
    );
}

#[test]
fn a_forged_guest_leaves_nothing_in_a_mailbox_and_friends_still_get_through() {
    let s = server(|_| {});
    registered(&s, "ann", "pw");
    // The victim whose address is forged: a socket, so we see what it is sent.
    let victim = Peer::at(&s, [127, 0, 9, 9]);
    forge(&s, victim.addr(), Request::Login { nick: "junk" });
    common::wait_until(|| s.state().address_of("junk").is_some());
    forge(&s, victim.addr(), Request::Hello { client: "x" });
    for i in 0..50 {
        let text = format!("junk {i}");
        forge(&s, victim.addr(), req::private("ann", &text));
    }
    // Every one refused, none kept: the victim is told why (within its budget).
    let mut told = 0;
    while let Some((c, payload)) = victim.recv_within(Duration::from_millis(500)) {
        assert_ne!(c, code::PRIVATE_STORED);
        if c == code::ERROR {
            assert_eq!(payload, "address not proved");
            told += 1;
        }
    }
    assert!(told > 0);
    let page = metrics_page(&s);
    assert_eq!(metric(&page, "udpchat_mail_unproved_refused_total"), 50);
    // Friends: a guest that proved its address (another network), an account holder.
    let bob = proved(&s, [127, 0, 2, 1], "bob");
    assert_eq!(leave(&bob, "hi"), (code::PRIVATE_STORED, "ann".into()));
    registered(&s, "dave", "pw2");
    let dave = protected(&s, "dave", "pw2");
    dave.hello();
    assert_eq!(leave(&dave, "hello"), (code::PRIVATE_STORED, "ann".into()));
    assert_eq!(ann_reads(&s), ["bob hi", "dave hello"]);
    s.state().check_invariants().unwrap();
}

#[test]
fn one_sender_can_not_fill_a_mailbox_under_any_nickname() {
    let s = server(|c| c.live.mailbox = 12);
    registered(&s, "ann", "pw");
    // Mallory proved her address, and leaves as many as one may: the default 5.
    let mallory = proved(&s, [127, 0, 3, 1], "mallory");
    for i in 0..5 {
        let text = format!("spam {i}");
        assert_eq!(leave(&mallory, &text), (code::PRIVATE_STORED, "ann".into()));
    }
    let too_many = (
        code::ERROR,
        "ann is away and keeps as many of your messages as one may leave".to_string(),
    );
    assert_eq!(leave(&mallory, "spam 5"), too_many);
    // A new nickname, or another address of her network, is the same sender.
    mallory.send(Request::Logoff);
    let again = proved(&s, [127, 0, 3, 1], "mallory2");
    assert_eq!(leave(&again, "spam 6"), too_many);
    let neighbour = proved(&s, [127, 0, 3, 77], "m3");
    assert_eq!(leave(&neighbour, "spam 7"), too_many);
    // Guests of another network may leave theirs until guests together hold half the
    // box (6 of 12); then only account holders get in.
    let eve = proved(&s, [127, 0, 4, 1], "eve");
    assert_eq!(leave(&eve, "e0"), (code::PRIVATE_STORED, "ann".into()));
    let full = (
        code::ERROR,
        "ann is away and can't be sent more messages".to_string(),
    );
    assert_eq!(leave(&eve, "e1"), full);
    registered(&s, "dave", "pw2");
    let dave = protected(&s, "dave", "pw2");
    dave.hello();
    assert_eq!(
        leave(&dave, "from a friend"),
        (code::PRIVATE_STORED, "ann".into())
    );
    let kept = ann_reads(&s);
    assert_eq!(kept.len(), 7, "{kept:?}");
    assert_eq!(kept[6], "dave from a friend");
    assert_eq!(
        metric(&metrics_page(&s), "udpchat_mail_refused_total"),
        4,
        "three over the sender's limit, one over the guests' half"
    );
}

#[test]
fn a_refused_sender_is_told_and_others_still_get_through() {
    let s = server(|_| {});
    registered(&s, "ann", "pw");
    registered(&s, "mallory", "pw3");
    // Ann, logged in with her password, refuses a nickname pattern and an account.
    let ann = protected(&s, "ann", "pw");
    ann.hello();
    // Each answer is the list after the change, lower-cased and sorted; an empty mask
    // only asks for it.
    for (mask, list) in [
        ("Spam*", "spam*"),
        ("account:Mallory", "account:mallory spam*"),
        ("", "account:mallory spam*"),
    ] {
        ann.send(Request::MailRefuse { mask });
        ann.expect(code::MAIL_REFUSALS, list);
    }
    ann.send(Request::MailAccept { mask: "account:" });
    ann.expect_error("invalid mask; give a nickname pattern (* ?) or account:NAME");
    ann.send(Request::Logoff);
    common::wait_until(|| s.state().address_of("ann").is_none());
    // A guest can't keep a list: it belongs to an account.
    let bob = proved(&s, [127, 0, 2, 1], "bob");
    bob.send(Request::MailRefuse { mask: "x" });
    bob.expect_error("log in with your password first");

    let spammer = proved(&s, [127, 0, 5, 1], "SpamBot");
    let refused = (
        code::ERROR,
        "ann refuses your messages while away".to_string(),
    );
    assert_eq!(leave(&spammer, "buy"), refused);
    let mallory = protected(&s, "mallory", "pw3");
    mallory.hello();
    assert_eq!(leave(&mallory, "hi"), refused);
    assert_eq!(
        leave(&bob, "still me"),
        (code::PRIVATE_STORED, "ann".into())
    );
    assert_eq!(ann_reads(&s), ["bob still me"]);

    // Accepted again, mallory gets through.
    let ann = protected(&s, "ann", "pw");
    ann.send(Request::MailAccept {
        mask: "account:mallory",
    });
    ann.expect(code::MAIL_REFUSALS, "spam*");
    ann.send(Request::Logoff);
    common::wait_until(|| s.state().address_of("ann").is_none());
    assert_eq!(leave(&mallory, "hi"), (code::PRIVATE_STORED, "ann".into()));
    // A part-5 client is not needed to be refused: the text is an ERROR.
    let cid = Peer::at(&s, [127, 0, 6, 1]);
    cid.login("spam2");
    cid.prove();
    assert_eq!(leave(&cid, "x"), refused);
}

#[test]
fn a_deleted_accounts_refusals_do_not_pass_to_the_next_owner_of_the_nickname() {
    let s = server(|_| {});
    let ann = Peer::new(&s);
    ann.login("ann");
    common::register(&ann, "pw");
    let ann = ann.with_password("ann", "pw");
    ann.send(Request::MailRefuse { mask: "bob" });
    ann.expect(code::MAIL_REFUSALS, "bob");
    ann.send(Request::Unregister);
    ann.expect(code::ACCOUNT_ACK, "unregistered ann");
    ann.send(Request::Logoff);
    common::wait_until(|| s.state().address_of("ann").is_none());
    // Someone else registers the nickname: nothing of the old account's list is theirs.
    registered(&s, "ann", "other");
    let new = protected(&s, "ann", "other");
    new.send(Request::MailRefuse { mask: "" });
    new.expect(code::MAIL_REFUSALS, "");
    new.send(Request::Logoff);
    common::wait_until(|| s.state().address_of("ann").is_none());
    let bob = proved(&s, [127, 0, 2, 1], "bob");
    assert_eq!(leave(&bob, "hi"), (code::PRIVATE_STORED, "ann".into()));
}

#[test]
fn the_client_refuses_and_accepts_senders_and_lists_them() {
    let s = server(|_| {});
    registered(&s, "ann", "secret words");
    let mut client = Scripted::start(s.addr().port(), &["--nick", "ann"]);
    client.expect_line("\t** ERROR: nickname is registered; log in with a password **");
    client.send("secret words\n");
    client.expect_line("\tLog in successful. Welcome ann.");
    client.send("/refuse spam*\n");
    client.expect_line("\t<messages kept while you are away: refusing spam*>");
    client.send("/refuse account:mallory\n");
    client.expect_line("\t<messages kept while you are away: refusing account:mallory, spam*>");
    client.send("/accept spam*\n");
    client.expect_line("\t<messages kept while you are away: refusing account:mallory>");
    client.send("/accept account:mallory\n");
    client.expect_line("\t<messages kept while you are away: refusing nobody>");
    client.finish_ok();
    // A guest is told why not.
    let guest = part5(&s, "zed");
    guest.send(Request::MailRefuse { mask: "" });
    guest.expect_error("log in with your password first");
}
