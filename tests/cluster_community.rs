//! Part 5 over a cluster: three servers on a real `redis-server` sharing accounts and the
//! community's data in PostgreSQL (`initdb` in a temporary folder). A channel created on
//! one server is known, joinable and heard on the others (history included); a ban set on
//! one removes a member held by another and refuses its joins everywhere, a server
//! started later included (it loads the ban from the database); a kick crosses servers;
//! a temporary channel goes everywhere with its last member.

mod common;

use common::cluster::{converge, knows, login_when_free, remote_in, subscribed};
use common::services::{Postgres, Redis};
use common::{req, user as guest, Peer};
use proto::{code, Request};
use udpchat::accounts::StoreKind;
use udpchat::server::RunningServer;

/// A server of the cluster on `redis` as `id`, with accounts and the community's data in
/// `pg`.
fn node(redis: &Redis, pg: &Postgres, id: &str) -> RunningServer {
    let db = pg.url();
    common::cluster::node(&redis.url(), id, move |c| c.store = StoreKind::Postgres(db))
}

/// Registers `nick` on `s` and logs in with the password there; says HELLO.
fn account(s: &RunningServer, nick: &str, password: &str) -> Peer {
    let p = guest(s, nick);
    assert_eq!(common::register(&p, password), format!("registered {nick}"));
    let a = p.with_password(nick, password);
    a.hello();
    a
}

#[test]
fn created_channels_bans_and_kicks_span_the_cluster() {
    let redis = Redis::start();
    let pg = Postgres::start();
    let s1 = node(&redis, &pg, "c1");
    let s2 = node(&redis, &pg, "c2");
    let s3 = node(&redis, &pg, "c3");

    // A registered user of s1 creates a channel: every server knows it.
    let ann = account(&s1, "ann", "pw");
    ann.send(req::create("Club", "all servers"));
    ann.expect(code::CHAN_NOTICE, "Club ann create registered all servers");
    ann.expect(code::JOIN_ACK, "Club 1 all servers");
    converge(|| knows(&s2, "Club") && knows(&s3, "Club"));
    converge(|| remote_in(&s2, "Club") == 1 && remote_in(&s3, "Club") == 1);

    // Classic users of the other servers list it and join it.
    let bob = guest(&s2, "bob");
    bob.send(Request::ListChannels);
    let items = bob.recv_n(6);
    assert_eq!(items[5], (code::CHANNEL_ITEM, "Club 1 all servers".into()));
    assert_eq!(bob.join("Club"), "Club 2 all servers");
    ann.expect(code::USER_JOINS, "Club bob");
    converge(|| remote_in(&s3, "Club") == 2);
    let cid = guest(&s3, "cid");
    assert_eq!(cid.join("Club"), "Club 3 all servers");
    ann.expect(code::USER_JOINS, "Club cid");
    bob.expect(code::USER_JOINS, "Club cid");
    subscribed(&redis, "club", 3);

    // A message is heard everywhere and kept in every server's history.
    ann.send(req::public("welcome"));
    ann.expect(code::PUBLIC_MSG, "Club ann welcome");
    for p in [&bob, &cid] {
        p.expect(code::PUBLIC_MSG, "Club ann welcome");
    }
    cid.send(req::history("Club", "last", "5"));
    let h = cid.recv_code(code::HISTORY_MSG);
    assert!(h.starts_with("Club ") && h.ends_with(" ann welcome"), "{h}");
    assert_eq!(cid.recv().0, code::HISTORY_END);

    // A ban set on s1 removes cid, a member held by s3, and refuses its joins.
    ann.send(req::ban("Club", "0", "cid", "spam"));
    ann.expect(code::CHAN_NOTICE, "Club ann ban cid 0 spam");
    cid.expect(code::PART_ACK, "Club 2 all servers");
    cid.expect_error("you were removed from Club by ann: banned: spam");
    ann.expect(code::USER_PARTS, "Club cid");
    bob.expect(code::USER_PARTS, "Club cid");
    cid.send(Request::Join { title: "Club" });
    cid.expect_error("you are banned from Club: spam");
    // The ban lives in the shared database: a server started now refuses cid too.
    let s4 = node(&redis, &pg, "c4");
    assert!(
        knows(&s4, "Club"),
        "registered channels are loaded at start"
    );
    cid.send(Request::Logoff);
    let again = Peer::new(&s4);
    login_when_free(&again, "cid");
    again.send(Request::Join { title: "Club" });
    again.expect_error("you are banned from Club: spam");

    // A kick from s1 removes bob, held by s2.
    ann.send(req::kick("Club", "bob", "bye"));
    ann.expect(code::CHAN_NOTICE, "Club ann kick bob bye");
    bob.expect(code::PART_ACK, "Club 1 all servers");
    bob.expect_error("you were removed from Club by ann: bye");
    ann.expect(code::USER_PARTS, "Club bob");

    // A guest's channel on s2 goes everywhere once its last member leaves (a guest that
    // proved its address: creating needs it).
    bob.hello();
    bob.prove();
    bob.send(req::create("Tmp", ""));
    bob.expect(code::CHAN_NOTICE, "Tmp bob create temporary ");
    bob.recv();
    converge(|| knows(&s1, "Tmp") && knows(&s3, "Tmp"));
    let dan = guest(&s1, "dan");
    converge(|| remote_in(&s1, "Tmp") == 1);
    assert_eq!(dan.join("Tmp"), "Tmp 2 ");
    bob.expect(code::USER_JOINS, "Tmp dan");
    bob.send(Request::Part { title: "Tmp" });
    bob.recv();
    assert!(knows(&s1, "Tmp"), "dan is still in it");
    dan.expect(code::USER_PARTS, "Tmp bob");
    dan.send(Request::Part { title: "Tmp" });
    dan.recv();
    converge(|| !knows(&s1, "Tmp") && !knows(&s2, "Tmp") && !knows(&s3, "Tmp"));

    for s in [&s1, &s2, &s3, &s4] {
        s.state().check_invariants().unwrap();
    }
}
