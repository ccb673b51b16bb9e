//! Part 5 over a cluster: three servers on a real `redis-server` sharing accounts and the
//! community's data in PostgreSQL (`initdb` in a temporary folder). A channel created on
//! one server is known, joinable and heard on the others (history included); a ban set on
//! one removes a member held by another and refuses its joins everywhere, a server
//! started later included (it loads the ban from the database); a kick crosses servers;
//! a temporary channel goes everywhere with its last member.

mod common;

use std::cell::RefCell;
use std::time::{Duration, Instant};

use common::services::{Postgres, Redis};
use common::{Peer, Protected};
use proto::{code, Request};
use udpchat::accounts::StoreKind;
use udpchat::cluster::ClusterConfig;
use udpchat::server::RunningServer;

/// How long a test waits for the cluster to converge.
const CONVERGE: Duration = Duration::from_secs(30);

fn node(redis: &Redis, pg: &Postgres, id: &str) -> RunningServer {
    let (url, db) = (redis.url(), pg.url());
    let s = common::server_with(move |c| {
        c.cluster = Some(ClusterConfig {
            lease_ttl: Duration::from_millis(3000),
            ..ClusterConfig::new(url, id, b"community test secret, 32 bytes.")
        });
        c.store = StoreKind::Postgres(db);
        c.limits.amplification_guard = false;
    });
    let c = s.cluster().unwrap().clone();
    converge(|| c.is_connected());
    s
}

#[track_caller]
fn converge(mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + CONVERGE;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "cluster did not converge in time"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until `n` servers subscribe to the topic of channel `title` (lower case).
fn subscribed(redis: &Redis, title: &str, n: i64) {
    let mut con = redis.connection();
    let topic = format!("udpchat:chan:{title}");
    converge(|| {
        let got: Vec<(String, i64)> = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(&topic)
            .query(&mut con)
            .unwrap();
        got[0].1 == n
    });
}

fn guest(s: &RunningServer, nick: &str) -> Peer {
    let p = Peer::new(s);
    p.login(nick);
    p
}

/// A password session: its datagrams are sealed both ways.
struct Account {
    peer: Peer,
    session: RefCell<Protected>,
}

impl Account {
    fn send(&self, req: Request<'_>) {
        self.session.borrow_mut().send(&self.peer, req);
    }

    #[track_caller]
    fn recv(&self) -> (u16, String) {
        self.session.borrow_mut().recv(&self.peer)
    }

    #[track_caller]
    fn expect(&self, code: u16, payload: &str) {
        assert_eq!(self.recv(), (code, payload.to_string()));
    }
}

/// Registers `nick` on `s` and logs in with the password there; says HELLO.
fn account(s: &RunningServer, nick: &str, password: &str) -> Account {
    let p = guest(s, nick);
    assert_eq!(common::register(&p, password), format!("registered {nick}"));
    let session = RefCell::new(common::password_login(&p, nick, password));
    let a = Account { peer: p, session };
    a.send(Request::Hello { client: "test" });
    assert_eq!(a.recv().0, code::HELLO_ACK);
    a
}

fn knows(s: &RunningServer, title: &str) -> bool {
    s.state().channel_id(title).is_some()
}

fn remote_in(s: &RunningServer, title: &str) -> usize {
    s.state()
        .channel_id(title)
        .map_or(0, |id| s.state().remote().count(id))
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
    ann.send(Request::ChanCreate {
        title: "Club",
        description: "all servers",
    });
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
    ann.send(Request::SendPublic { text: "welcome" });
    ann.expect(code::PUBLIC_MSG, "Club ann welcome");
    for p in [&bob, &cid] {
        p.expect(code::PUBLIC_MSG, "Club ann welcome");
    }
    cid.send(Request::History {
        title: "Club",
        how: "last",
        number: "5",
    });
    let (c, h) = cid.recv();
    assert_eq!(c, code::HISTORY_MSG, "{h}");
    assert!(h.starts_with("Club ") && h.ends_with(" ann welcome"), "{h}");
    assert_eq!(cid.recv().0, code::HISTORY_END);

    // A ban set on s1 removes cid, a member held by s3, and refuses its joins.
    ann.send(Request::ChanBan {
        title: "Club",
        seconds: "0",
        mask: "cid",
        reason: "spam",
    });
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
    converge(|| {
        again.send(Request::Login { nick: "cid" });
        again.recv_within(Duration::from_millis(200)) == Some((code::LOGIN_ACK, "cid".into()))
    });
    again.send(Request::Join { title: "Club" });
    again.expect_error("you are banned from Club: spam");

    // A kick from s1 removes bob, held by s2.
    ann.send(Request::ChanKick {
        title: "Club",
        nick: "bob",
        reason: "bye",
    });
    ann.expect(code::CHAN_NOTICE, "Club ann kick bob bye");
    bob.expect(code::PART_ACK, "Club 1 all servers");
    bob.expect_error("you were removed from Club by ann: bye");
    ann.expect(code::USER_PARTS, "Club bob");

    // A guest's channel on s2 goes everywhere once its last member leaves.
    bob.send(Request::Hello { client: "test" });
    assert_eq!(bob.recv().0, code::HELLO_ACK);
    bob.send(Request::ChanCreate {
        title: "Tmp",
        description: "",
    });
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
