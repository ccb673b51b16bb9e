//! Cluster mode with a real `redis-server`: three servers sharing one chat space (unique
//! nicknames, public and private messages, joins and parts, counts, lists, hot lists),
//! Redis killed and restarted mid-test, a server killed with `kill -9`, and a captured
//! signed event published again after a re-subscription, a Redis restart and a restart
//! of the receiving server (issue 20 #7).

mod common;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::cluster::{
    converge, login_when_free, metered_node, node, remote_in, remote_users, subscribed,
    wait_connected, CONVERGE, SECRET, TTL,
};
use common::services::{free_udp_port, Redis};
use common::{metric, metrics_page, part5, req, user as login, wait_until, KillOnDrop, Peer};
use proto::{code, Request};
use udpchat::cluster::event::Signer;
use udpchat::server::RunningServer;

const PETS: &str = "For our furry and feathered friends";

/// Servers of the cluster on `redis`, one for each id, their metrics pages on.
fn nodes<const N: usize>(redis: &Redis, ids: [&str; N]) -> [RunningServer; N] {
    ids.map(|id| metered_node(redis, id))
}

/// The value of metric `name` on `s`'s metrics page.
fn metric_of(s: &RunningServer, name: &str) -> u64 {
    metric(&metrics_page(s), name)
}

/// The nicknames of the next `n` USER_ITEMs.
fn items(p: &Peer, n: usize) -> Vec<String> {
    p.recv_n(n)
        .into_iter()
        .map(|(c, text)| {
            assert_eq!(c, code::USER_ITEM, "{text}");
            text.split(' ').next().unwrap().to_string()
        })
        .collect()
}

#[test]
fn three_servers_share_one_chat_space() {
    let redis = Redis::start();
    let [s1, s2, s3] = nodes(&redis, ["s1", "s2", "s3"]);

    // Nicknames are unique across the cluster, without regard to case.
    let ann = login(&s1, "ann");
    let taken = Peer::new(&s2);
    taken.send(Request::Login { nick: "ANN" });
    taken.expect_error("nickname already in use");
    let bob = login(&s2, "bob");
    let cid = login(&s3, "cid");
    converge(|| remote_users(&s1) == 2 && remote_users(&s2) == 2 && remote_users(&s3) == 2);

    // One channel with members on all three; counts cover every server.
    assert_eq!(ann.join("Pets"), format!("Pets 1 {PETS}"));
    converge(|| remote_in(&s2, "Pets") == 1);
    assert_eq!(bob.join("Pets"), format!("Pets 2 {PETS}"));
    ann.expect(code::USER_JOINS, "Pets bob");
    converge(|| remote_in(&s3, "Pets") == 2);
    assert_eq!(cid.join("Pets"), format!("Pets 3 {PETS}"));
    ann.expect(code::USER_JOINS, "Pets cid");
    bob.expect(code::USER_JOINS, "Pets cid");
    converge(|| remote_in(&s1, "Pets") == 2 && remote_in(&s2, "Pets") == 2);
    subscribed(&redis, "pets", 3);

    // A public message reaches the members on every server, once.
    ann.send(req::public("hello all"));
    for p in [&ann, &bob, &cid] {
        p.expect(code::PUBLIC_MSG, "Pets ann hello all");
    }
    cid.send(req::public("hi from s3"));
    for p in [&ann, &bob, &cid] {
        p.expect(code::PUBLIC_MSG, "Pets cid hi from s3");
    }
    ann.expect_nothing();

    // Private messages cross servers; an unknown recipient is an error.
    cid.send(req::private("Ann", "psst"));
    ann.expect(code::PRIVATE_MSG, "cid psst");
    bob.send(req::private("nobody", "x"));
    bob.expect_error("nobody: not logged in");

    // Lists cover every server.
    bob.send(Request::ListUsers);
    let listed: BTreeSet<String> = items(&bob, 3).into_iter().collect();
    assert_eq!(
        listed,
        BTreeSet::from(["ann".into(), "bob".into(), "cid".into()])
    );
    cid.send(Request::Who { prefix: "" });
    assert_eq!(items(&cid, 3), ["ann", "bob", "cid"]);
    cid.send(Request::Whois { nick: "ANN" });
    cid.expect_user_item("ann", "Pets");
    ann.send(Request::ListChannels);
    let channels = ann.recv_n(5);
    assert!(
        channels.contains(&(code::CHANNEL_ITEM, format!("Pets 3 {PETS}"))),
        "{channels:?}"
    );

    // The hot list hears of logins and logoffs on other servers.
    cid.send(Request::Watch { nicks: "ann dan" });
    cid.expect(code::USER_ONLINE, "ann");
    let dan = login(&s1, "dan");
    cid.expect(code::USER_ONLINE, "dan");
    dan.send(Request::Logoff);
    cid.expect(code::USER_OFFLINE, "dan");

    // Parts and logoffs reach the other servers' members; a released name is free.
    bob.send(Request::Part { title: "Pets" });
    bob.expect(code::PART_ACK, &format!("Pets 2 {PETS}"));
    ann.expect(code::USER_PARTS, "Pets bob");
    cid.expect(code::USER_PARTS, "Pets bob");
    cid.send(Request::Logoff);
    ann.expect(code::USER_PARTS, "Pets cid");
    login_when_free(&Peer::new(&s1), "cid");

    for s in [&s1, &s2, &s3] {
        s.state().check_invariants().unwrap();
        let st = &s.cluster().unwrap().stats;
        assert_eq!(st.malformed.load(std::sync::atomic::Ordering::Relaxed), 0);
    }
}

#[test]
fn servers_ride_out_a_redis_restart() {
    let mut redis = Redis::start();
    let [s1, s2] = nodes(&redis, ["r1", "r2"]);
    let ann = login(&s1, "ann");
    let bob = login(&s2, "bob");
    ann.join("Pets");
    converge(|| remote_in(&s2, "Pets") == 1);
    bob.join("Pets");
    ann.expect(code::USER_JOINS, "Pets bob");
    converge(|| remote_in(&s1, "Pets") == 1);
    subscribed(&redis, "pets", 2);
    bob.send(req::public("before"));
    ann.expect(code::PUBLIC_MSG, "Pets bob before");
    bob.expect(code::PUBLIC_MSG, "Pets bob before");

    assert_eq!(metric_of(&s1, "udpchat_cluster_connected"), 1);
    redis.kill();
    wait_connected(&s1, false);
    wait_connected(&s2, false);
    assert_eq!(metric_of(&s1, "udpchat_cluster_connected"), 0);

    // Each server keeps serving its own users.
    ann.send(req::public("still here"));
    ann.expect(code::PUBLIC_MSG, "Pets ann still here");
    let eve = login(&s1, "eve");
    assert_eq!(eve.join("Pets").split(' ').nth(1), Some("3"));
    ann.expect(code::USER_JOINS, "Pets eve");
    // The last known view still guards remote names.
    let dup = Peer::new(&s1);
    dup.send(Request::Login { nick: "bob" });
    dup.expect_error("nickname already in use");

    // Redis comes back (empty): the servers republish and the view converges.
    redis.restart();
    wait_connected(&s1, true);
    wait_connected(&s2, true);
    converge(|| remote_in(&s2, "Pets") == 2 && remote_in(&s1, "Pets") == 1);
    bob.expect(code::USER_JOINS, "Pets eve");
    let mut con = redis.connection();
    let holder: Option<String> = redis::cmd("GET")
        .arg("udpchat:nick:eve")
        .query(&mut con)
        .unwrap();
    assert_eq!(
        holder.as_deref().and_then(|h| h.split('.').next()),
        Some("r1")
    );

    // Messages cross again and lists are complete.
    converge(|| {
        bob.send(req::public("back"));
        eve.recv_within(Duration::from_millis(200))
            == Some((code::PUBLIC_MSG, "Pets bob back".to_string()))
    });
    bob.send(Request::ListUsers);
    // Drain our own echoes of the "back" attempts first.
    let mut names = BTreeSet::new();
    while names.len() < 3 {
        let (c, text) = bob.recv();
        if c == code::USER_ITEM {
            names.insert(text.split(' ').next().unwrap().to_string());
        }
    }
    assert_eq!(
        names,
        BTreeSet::from(["ann".into(), "bob".into(), "eve".into()])
    );
    assert_eq!(metric_of(&s2, "udpchat_cluster_connected"), 1);
    assert_eq!(metric_of(&s1, "udpchat_cluster_local_only_logins_total"), 2);
    assert!(
        s1.cluster()
            .unwrap()
            .stats
            .connects
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 2
    );
}

#[test]
fn a_killed_server_leaves_no_ghosts() {
    let redis = Redis::start();
    let s1 = metered_node(&redis, "k1");
    let data = tempfile::tempdir().unwrap();
    let secret = data.path().join("secret");
    std::fs::write(&secret, SECRET).unwrap();
    let port = free_udp_port();
    // Its accounts would be in its own SQLite file, which a cluster refuses: accounts off.
    let child = Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args(["--redis", &redis.url(), "--server-id", "k3"])
        .arg("--cluster-secret-file")
        .arg(&secret)
        .arg("--accounts-off")
        .args(["--lease-ttl-ms", &TTL.as_millis().to_string()])
        .args(["--allow-amplification", "--workers", "1", "--senders", "1"])
        .arg("--data")
        .arg(data.path().join("data"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chat-server");
    let mut child = KillOnDrop(child);
    let ann = login(&s1, "ann");
    ann.join("Pets");
    ann.send(Request::Watch { nicks: "cid" });

    let cid = Peer::to(format!("127.0.0.1:{port}").parse().unwrap());
    login_when_free(&cid, "cid");
    ann.expect(code::USER_ONLINE, "cid");
    converge(|| remote_in(&s1, "Pets") == 0 && remote_users(&s1) == 1);
    while cid.recv_within(Duration::from_millis(50)).is_some() {}
    converge(|| {
        cid.send(Request::Join { title: "Pets" });
        matches!(cid.recv_within(Duration::from_millis(200)), Some((c, _)) if c == code::JOIN_ACK)
    });
    ann.expect(code::USER_JOINS, "Pets cid");
    cid.send(req::public("bye"));
    ann.expect(code::PUBLIC_MSG, "Pets cid bye");

    child.0.kill().unwrap(); // SIGKILL: no goodbye, no lease released
    child.0.wait().unwrap();
    // Once its lease runs out, both notices come, in either order.
    let first = ann
        .recv_within(CONVERGE)
        .expect("a notice after the server died");
    let second = ann
        .recv_within(Duration::from_secs(2))
        .expect("the other notice");
    let notices = [first, second];
    for notice in [(code::USER_PARTS, "Pets cid"), (code::USER_OFFLINE, "cid")] {
        let notice = (notice.0, notice.1.to_string());
        assert!(notices.contains(&notice), "{notices:?}");
    }
    assert_eq!(remote_users(&s1), 0);
    ann.send(Request::Whois { nick: "cid" });
    ann.expect_error("cid: not logged in");
    // Its lease expired with it: the name is free.
    let again = login(&s1, "cid");
    again.send(Request::Join { title: "Pets" });
    assert_eq!(again.recv().1, format!("Pets 2 {PETS}"));
}

/// `json` (an event without its seal time) with `"t"`, the time it is sealed, set to now.
fn sealed_now(json: &[u8]) -> Vec<u8> {
    let json = std::str::from_utf8(json).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    json.replacen(r#","b":"#, &format!(r#","t":{now},"b":"#), 1)
        .into_bytes()
}

#[test]
fn malformed_events_are_counted_and_dropped() {
    let redis = Redis::start();
    let s1 = metered_node(&redis, "m1");
    let ann = login(&s1, "ann");
    ann.join("Pets");
    let mut con = redis.connection();
    subscribed(&redis, "pets", 1);
    let publish = |con: &mut redis::Connection, topic: &str, payload: &[u8]| {
        let _: i64 = redis::cmd("PUBLISH")
            .arg(topic)
            .arg(payload)
            .query(con)
            .unwrap();
    };
    let pets = "udpchat:chan:pets";
    for junk in [
        &b"\xff\xfe"[..],
        b"{}",
        br#"{"s":"x y","e":1,"q":1,"b":{"t":"hello"}}"#,
        br#"{"s":"x","e":1,"q":1,"b":{"t":"public","chan":"Pets","nick":"a b","text":"t"}}"#,
    ] {
        publish(&mut con, pets, junk);
    }
    let stats = &s1.cluster().unwrap().stats;
    let malformed = || stats.malformed.load(std::sync::atomic::Ordering::Relaxed);
    converge(|| malformed() == 4);
    let signer = Signer::new(SECRET);
    let sign = |topic: &str, json: &[u8]| signer.seal_event(topic, &sealed_now(json));
    // Publishes `json` on `topic`, signed for it with the cluster secret.
    let signed = |con: &mut redis::Connection, topic: &str, json: &[u8]| {
        publish(con, topic, &sign(topic, json));
    };
    // A well-formed event without the cluster secret's tag is forged: dropped, counted.
    let good =
        br#"{"s":"x","e":1,"q":1,"b":{"t":"public","chan":"pets","nick":"zed","text":"hey"}}"#;
    publish(&mut con, pets, &sealed_now(good));
    publish(
        &mut con,
        pets,
        &Signer::new(b"not the cluster secret").seal_event("udpchat:chan:pets", &sealed_now(good)),
    );
    // Signed for another topic and moved here: forged too.
    publish(&mut con, pets, &sign("udpchat:chan:weather", good));
    converge(|| malformed() == 7);
    ann.expect_nothing();
    // Signed, from an unknown server: gets through, once.
    for _ in 0..2 {
        signed(&mut con, pets, good);
    }
    ann.expect(code::PUBLIC_MSG, "Pets zed hey");
    ann.expect_nothing();
    converge(|| stats.duplicates.load(std::sync::atomic::Ordering::Relaxed) == 1);
    // An epoch of u64::MAX would make every later event of "x" stale: refused, even signed.
    let max = br#"{"s":"x","e":18446744073709551615,"q":9,"b":{"t":"public","chan":"pets","nick":"zed","text":"max"}}"#;
    signed(&mut con, pets, max);
    converge(|| malformed() == 8);
    // A jump in the sequence is counted as a gap, and the event still applies.
    let later =
        br#"{"s":"x","e":1,"q":5,"b":{"t":"public","chan":"pets","nick":"zed","text":"later"}}"#;
    signed(&mut con, pets, later);
    ann.expect(code::PUBLIC_MSG, "Pets zed later");
    converge(|| stats.gaps.load(std::sync::atomic::Ordering::Relaxed) == 3);
    // A users hash that is not a hash is counted, not a reason to reconnect; one whose
    // values are not signed shows nobody.
    let hello = br#"{"s":"bad","e":1,"q":1,"b":{"t":"hello"}}"#;
    let _: () = redis::pipe()
        .set("udpchat:server:bad", 1)
        .set("udpchat:users:bad", "junk")
        .query(&mut con)
        .unwrap();
    signed(&mut con, "udpchat:presence", hello);
    converge(|| malformed() == 9);
    let forged_user = r#"{"nick":"mallory","login_ms":1,"channels":["Pets"]}"#;
    let hello2 = br#"{"s":"bad2","e":1,"q":1,"b":{"t":"hello"}}"#;
    let _: () = redis::pipe()
        .set("udpchat:server:bad2", 1)
        .hset("udpchat:users:bad2", "mallory", forged_user)
        .query(&mut con)
        .unwrap();
    signed(&mut con, "udpchat:presence", hello2);
    converge(|| malformed() == 10);
    assert_eq!(remote_in(&s1, "Pets"), 0, "a forged user appeared");
    // A forged lease (not made with the secret) does not keep its nickname from anyone.
    let _: () = redis::cmd("SET")
        .arg("udpchat:nick:zoe")
        .arg("m1")
        .query(&mut con)
        .unwrap();
    login(&s1, "zoe");
    let holder: String = redis::cmd("GET")
        .arg("udpchat:nick:zoe")
        .query(&mut con)
        .unwrap();
    assert!(holder.starts_with("m1."), "{holder}");
    assert!(s1.cluster().unwrap().is_connected());
    assert_eq!(stats.connects.load(std::sync::atomic::Ordering::Relaxed), 1);
    wait_until(|| s1.state().check_invariants().is_ok());
}

#[test]
fn a_cluster_without_a_shared_account_store_or_a_secret_does_not_start() {
    let redis = Redis::start();
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "0123456789abcdef0123456789abcdef").unwrap();
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_chat-server"))
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                "0",
                "--redis",
                &redis.url(),
            ])
            .arg("--data")
            .arg(dir.path().join("data"))
            .args(extra)
            .output()
            .unwrap()
    };
    let out = run(&[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--cluster-secret-file"));
    let out = run(&["--cluster-secret-file", secret.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("every server shares") && err.contains("--accounts-off"),
        "{err}"
    );
}

#[test]
fn a_server_stopped_cleanly_says_goodbye_at_once() {
    let redis = Redis::start();
    let [s1, s2] = nodes(&redis, ["g1", "g2"]);
    let ann = login(&s1, "ann");
    let _bob = bob_joins_ann_in_pets(&s2, &ann);
    // Leases and alive keys outlive their TTL while renewed.
    std::thread::sleep(TTL * 2);
    let mut con = redis.connection();
    for (key, holder) in [
        ("udpchat:nick:ann", "g1"),
        ("udpchat:nick:bob", "g2"),
        ("udpchat:server:g2", ""),
    ] {
        let value: Option<String> = redis::cmd("GET").arg(key).query(&mut con).unwrap();
        let value = value.unwrap_or_else(|| panic!("{key} expired"));
        // A lease's value is its server's id and the tag made with the cluster secret.
        let server = value.split('.').next().unwrap_or_default();
        assert!(holder.is_empty() || server == holder, "{key} = {value}");
    }
    assert_eq!(remote_in(&s1, "Pets"), 1);
    // A server whose keys vanished (a stall longer than the TTL) republishes them.
    let _: () = redis::pipe()
        .del("udpchat:server:g2")
        .del("udpchat:users:g2")
        .query(&mut con)
        .unwrap();
    converge(|| {
        let users: i64 = redis::cmd("HLEN")
            .arg("udpchat:users:g2")
            .query(&mut con)
            .unwrap();
        users == 1
    });
    converge(|| remote_in(&s1, "Pets") == 1);
    let started = Instant::now();
    s2.shutdown().unwrap();
    ann.expect(code::USER_PARTS, "Pets bob");
    // Well before the lease TTL: the goodbye, not the expiry, told s1.
    assert!(started.elapsed() < TTL, "{:?}", started.elapsed());
    let lease: Option<String> = redis::cmd("GET")
        .arg("udpchat:nick:bob")
        .query(&mut con)
        .unwrap();
    assert_eq!(lease, None);
    login(&s1, "bob");
}

/// A Redis that takes 2 s to answer lease requests holds up only the logins that wait for
/// a lease: the worker that took the login keeps serving everyone else at once.
#[test]
fn a_slow_redis_never_holds_up_other_users() {
    use std::sync::atomic::Ordering;
    let redis = Redis::start();
    let proxy = common::services::SlowRedis::start(redis.port, Duration::from_secs(2));
    // One worker: every address, ann's and bob's, goes through the same thread.
    let s = node(&proxy.url(), "slow", |c| c.workers = 1);
    let bob = login(&s, "bob");
    bob.join("Pets");

    proxy.slow.store(true, Ordering::Relaxed);
    let ann = Peer::new(&s);
    let asked = Instant::now();
    ann.send(Request::Login { nick: "ann" });
    std::thread::sleep(Duration::from_millis(50));
    bob.send(req::public("still here?"));
    bob.expect(code::PUBLIC_MSG, "Pets bob still here?");
    let bob_served = asked.elapsed();
    // ann's login completes once the lease request gives up on Redis (decided locally,
    // as the cluster does while Redis is unreachable), after bob was served.
    let (c, p) = ann
        .recv_within(Duration::from_secs(10))
        .expect("ann's login is answered");
    let ann_served = asked.elapsed();
    assert_eq!((c, p.as_str()), (code::LOGIN_ACK, "ann"));
    assert!(
        bob_served < ann_served,
        "bob waited for ann's lease: served after {bob_served:?}, ann after {ann_served:?}"
    );
    assert!(
        bob_served < Duration::from_secs(2),
        "bob waited {bob_served:?}, as long as Redis"
    );
    proxy.slow.store(false, Ordering::Relaxed);
}

/// The texts of `p`'s history of `title` (the last 50).
fn history_texts(p: &Peer, title: &str) -> Vec<String> {
    p.send(req::history(title, "last", "50"));
    let mut texts = Vec::new();
    loop {
        let (c, text) = p.recv();
        match c {
            code::HISTORY_MSG => texts.push(text.splitn(5, ' ').nth(4).unwrap().to_string()),
            code::HISTORY_END => return texts,
            other => panic!("unexpected {other} {text}"),
        }
    }
}

/// Issue 20 #7, as an attacker who can write to Redis but has no secret would: capture a
/// signed PUBLIC event off the channel's topic, and PUBLISH it again right away, after
/// the servers re-subscribe (their subscriber connections killed), after Redis restarts
/// empty, and after the receiving server restarts. It is never delivered again nor kept
/// in history a second time; messages sent meanwhile still flow.
#[test]
fn a_captured_event_published_again_is_not_news() {
    let mut redis = Redis::start();
    // No age bound in the way (a day): what refuses the replays here is the receivers'
    // memory, which outlives re-subscriptions, and the time each topic was subscribed.
    let day = |c: &mut udpchat::server::ServerConfig| {
        c.metrics = Some("127.0.0.1:0".parse().unwrap());
        c.cluster.as_mut().unwrap().freshness.max_age = Duration::from_secs(86_400);
    };
    let s1 = node(&redis.url(), "p1", day);
    let s2 = node(&redis.url(), "p2", day);
    let ann = part5(&s1, "ann");
    let bob = bob_joins_ann_in_pets(&s2, &ann);
    subscribed(&redis, "pets", 2);
    let topic = "udpchat:chan:pets";
    let captured: Vec<u8> = {
        let mut spy = redis.connection();
        let mut ps = spy.as_pubsub();
        ps.subscribe(topic).unwrap();
        ps.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        bob.send(req::public("only once"));
        ann.expect(code::PUBLIC_MSG, "Pets bob only once");
        bob.expect(code::PUBLIC_MSG, "Pets bob only once");
        loop {
            let msg = ps.get_message().unwrap();
            let payload = msg.get_payload_bytes().to_vec();
            if String::from_utf8_lossy(&payload).contains("only once") {
                break payload;
            }
        }
    };
    assert_eq!(history_texts(&ann, "Pets"), ["only once"]);
    let replay = |redis: &Redis| {
        let n: i64 = redis::cmd("PUBLISH")
            .arg(topic)
            .arg(&captured)
            .query(&mut redis.connection())
            .unwrap();
        assert!(n >= 1, "nobody subscribed to {topic}");
    };
    let stat = |s: &RunningServer, which: &str| {
        let st = &s.cluster().unwrap().stats;
        let c = match which {
            "duplicates" => &st.duplicates,
            _ => &st.too_old,
        };
        c.load(std::sync::atomic::Ordering::Relaxed)
    };
    let connects = |s: &RunningServer| {
        s.cluster()
            .unwrap()
            .stats
            .connects
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    // The captured event published again is refused by `s` (counted under `which`) and
    // ann hears nothing of it.
    let refused = |redis: &Redis, s: &RunningServer, ann: &Peer, which: &str| {
        let before = stat(s, which);
        replay(redis);
        ann.expect_nothing();
        converge(|| stat(s, which) == before + 1);
    };
    // Sends a genuine message from bob until ann hears it (so the path is open).
    fn genuine(bob: &Peer, ann: &Peer, text: &str) {
        let want = (code::PUBLIC_MSG, format!("Pets bob {text}"));
        converge(|| {
            bob.send(req::public(text));
            while let Some(got) = bob.recv_within(Duration::from_millis(100)) {
                assert_eq!(got, want);
            }
            ann.recv_within(Duration::from_millis(300)) == Some(want.clone())
        });
        // Attempts that crossed before the path was up came through too: drain them.
        while let Some(got) = ann.recv_within(Duration::from_millis(300)) {
            assert_eq!(got, want);
        }
    }

    // 1. At once, on the live subscription.
    refused(&redis, &s1, &ann, "duplicates");

    // 2. After the servers re-subscribe: the topic's sequence is remembered.
    let _: redis::Value = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query(&mut redis.connection())
        .unwrap();
    converge(|| connects(&s1) >= 2 && connects(&s2) >= 2);
    subscribed(&redis, "pets", 2);
    // Before anything new from p2 on the topic: only the memory of it refuses it.
    refused(&redis, &s1, &ann, "duplicates");
    genuine(&bob, &ann, "after the re-subscription");

    // 3. After Redis restarts, empty.
    redis.kill();
    wait_connected(&s1, false);
    redis.restart();
    wait_connected(&s1, true);
    wait_connected(&s2, true);
    subscribed(&redis, "pets", 2);
    refused(&redis, &s1, &ann, "duplicates");
    genuine(&bob, &ann, "after the redis restart");
    assert_eq!(
        history_texts(&ann, "Pets"),
        [
            "only once",
            "after the re-subscription",
            "after the redis restart"
        ]
    );

    // 4. After the receiving server restarts (nothing remembered): the event was sealed
    // before that server subscribed to the topic, so it is a replay.
    drop(ann);
    s1.shutdown().unwrap();
    bob.expect(code::USER_PARTS, "Pets ann");
    let s1 = node(&redis.url(), "p1", day);
    let ann = Peer::new(&s1);
    login_when_free(&ann, "ann");
    ann.hello();
    ann.join("Pets");
    bob.expect(code::USER_JOINS, "Pets ann");
    subscribed(&redis, "pets", 2);
    let kept = history_texts(&ann, "Pets");
    refused(&redis, &s1, &ann, "too_old");
    assert_eq!(history_texts(&ann, "Pets"), kept);
    genuine(&bob, &ann, "after the restart");
    assert!(metric_of(&s1, "udpchat_cluster_too_old_total") >= 1);
}

/// ann (on another server) joins Pets; once `s2` sees her there, bob logs in to `s2` and
/// joins too, and ann hears of it.
fn bob_joins_ann_in_pets(s2: &RunningServer, ann: &Peer) -> Peer {
    ann.join("Pets");
    converge(|| remote_in(s2, "Pets") == 1);
    let bob = login(s2, "bob");
    bob.join("Pets");
    ann.expect(code::USER_JOINS, "Pets bob");
    bob
}
