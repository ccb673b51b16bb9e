//! Part 5 of PROTOCOL.md, the community features, spoken as raw datagrams to an in-process
//! server on 127.0.0.1:0: channels users create, every moderation request and every
//! refusal (not an operator, banned, channel full, invite-only, moderated), history (also
//! after a reconnect), private messages kept for users away (delivered once), server
//! operators, hostile input, and what survives a restart.
//!
//! Classic peers here check that they see exactly part 1: `Peer::recv` decodes every
//! datagram, and [`classic`] asserts the code is a part-1 one.

mod common;

use std::time::Duration;

use common::{
    joined, part5, protected, registered as register, req, server, server_with, user, Peer,
};
use proto::{code, Request};
use udpchat::accounts::StoreKind;
use udpchat::server::RunningServer;

/// Creates `title` from `p` and checks the answers; returns the JOIN_ACK payload.
fn create(p: &Peer, title: &str, description: &str, kind: &str) -> String {
    p.send(req::create(title, description));
    let notice = p.recv_code(code::CHAN_NOTICE);
    assert!(
        notice.ends_with(&format!("create {kind} {description}")),
        "{notice}"
    );
    p.recv_code(code::JOIN_ACK)
}

/// Part-5 `ann`, in a temporary channel `Den` of her own (without a description).
fn ann_in_her_den(s: &RunningServer) -> Peer {
    let ann = part5(s, "ann");
    create(&ann, "Den", "", "temporary");
    ann
}

/// Asserts that every datagram `p` gets for a moment is part 1 (a classic client must never
/// see another code), and returns them.
#[track_caller]
fn classic(p: &Peer, n: usize) -> Vec<(u16, String)> {
    let got = p.recv_n(n);
    for (c, text) in &got {
        assert!(*c < 300, "a classic client got code {c} {text}");
    }
    p.expect_nothing();
    got
}

#[test]
fn a_guest_creates_a_temporary_channel_that_goes_with_its_last_member() {
    let s = server();
    let ann = part5(&s, "ann");
    assert_eq!(create(&ann, "Den", "our den", "temporary"), "Den 1 our den");
    // Classic clients list it and join it like any channel.
    let bob = user(&s, "bob");
    bob.send(Request::ListChannels);
    let items = classic(&bob, 6);
    assert_eq!(items[5], (code::CHANNEL_ITEM, "Den 1 our den".into()));
    assert_eq!(bob.join("den"), "Den 2 our den");
    ann.expect(code::USER_JOINS, "Den bob");
    bob.send(Request::Part { title: "Den" });
    bob.expect(code::PART_ACK, "Den 1 our den");
    ann.expect(code::USER_PARTS, "Den bob");
    ann.send(Request::Part { title: "Den" });
    ann.expect(code::PART_ACK, "Den 0 our den");
    // The last member left: the channel is gone, and its title free again.
    bob.send(Request::Join { title: "Den" });
    bob.expect_error("no channel named Den");
    bob.send(Request::ListChannels);
    assert_eq!(classic(&bob, 5).len(), 5);
    create(&ann, "Den", "again", "temporary");
    s.state().check_invariants().unwrap();
}

#[test]
fn channel_creation_refusals_name_the_rule() {
    let s = server_with(|c| {
        c.live.max_channels_per_creator = 1;
        c.live.max_created_channels = 2;
        c.live.max_title_len = 8;
    });
    let ann = part5(&s, "ann");
    let bad = "invalid channel title; use 1 to 8 letters, digits, - _ . #";
    for title in ["bad!", "waytoolongtitle", ""] {
        ann.send(req::create(title, "x"));
        ann.expect_error(bad);
    }
    ann.send(req::create("ok", "bell\u{7}"));
    ann.expect_error("invalid description");
    ann.send(req::create("pets", ""));
    ann.expect_error("a channel named pets exists");
    create(&ann, "One", "", "temporary");
    ann.send(req::create("Two", ""));
    ann.expect_error("you have created too many channels; drop one first");
    create(&part5(&s, "bob"), "Two", "", "temporary");
    let cid = part5(&s, "cid");
    cid.send(req::create("Three", ""));
    cid.expect_error("too many channels on this server; try again later");
}

/// A channel `Den` made by part-5 `ann` (its operator) with classic `bob` and `dan` and
/// part-5 `cid` in it.
fn den(s: &RunningServer) -> (Peer, Peer, Peer, Peer) {
    let ann = part5(s, "ann");
    create(&ann, "Den", "our den", "temporary");
    let bob = joined(s, "bob", "Den");
    let cid = part5(s, "cid");
    cid.join("Den");
    let dan = joined(s, "dan", "Den");
    for (p, n) in [(&ann, 3), (&bob, 2), (&cid, 1)] {
        for _ in 0..n {
            assert_eq!(p.recv().0, code::USER_JOINS);
        }
    }
    (ann, bob, cid, dan)
}

#[test]
fn a_kicked_classic_member_gets_part_ack_and_an_error_and_others_see_it_part() {
    let s = server();
    let (ann, bob, cid, dan) = den(&s);
    ann.send(req::kick("Den", "bob", "too loud"));
    assert_eq!(
        classic(&bob, 2),
        [
            (code::PART_ACK, "Den 3 our den".into()),
            (
                code::ERROR,
                "you were removed from Den by ann: too loud".into()
            )
        ]
    );
    assert_eq!(classic(&dan, 1), [(code::USER_PARTS, "Den bob".into())]);
    for p in [&ann, &cid] {
        p.expect(code::CHAN_NOTICE, "Den ann kick bob too loud");
    }
    // Kicked, not banned: bob may come back.
    assert_eq!(bob.join("Den"), "Den 4 our den");
    for p in [&ann, &cid, &dan] {
        p.expect(code::USER_JOINS, "Den bob");
    }
    // A part-5 member kicked gets the notice instead of the ERROR.
    ann.send(req::kick("Den", "cid", ""));
    cid.expect(code::PART_ACK, "Den 3 our den");
    cid.expect(code::CHAN_NOTICE, "Den ann kick cid no reason given");
    ann.expect(code::CHAN_NOTICE, "Den ann kick cid no reason given");
    for p in [&bob, &dan] {
        p.expect(code::USER_PARTS, "Den cid");
    }
    ann.send(req::kick("Den", "cid", ""));
    ann.expect_error("cid is not in Den");
    s.state().check_invariants().unwrap();
}

#[test]
fn moderation_by_someone_who_is_not_an_operator_is_refused_and_changes_nothing() {
    let s = server();
    let (ann, _bob, cid, _dan) = den(&s);
    let refused = "you are not an operator of Den";
    let requests = [
        req::kick("Den", "ann", "coup"),
        req::ban("Den", "0", "ann", ""),
        req::unban("Den", "x"),
        req::mode("Den", "+i", ""),
        req::mode("Den", "+o", "cid"),
        req::invite("Den", "eve"),
        req::topic("Den", "mine now"),
    ];
    for r in requests {
        cid.send(r);
        cid.expect_error(refused);
    }
    cid.send(Request::ChanDrop { title: "Den" });
    cid.expect_error("only the founder of Den may drop it");
    // Pets is configured: only server operators moderate it. Nowhere is no channel.
    for (title, error) in [
        ("Pets", "you are not an operator of Pets"),
        ("Nowhere", "no channel named Nowhere"),
    ] {
        ann.send(req::kick(title, "cid", ""));
        ann.expect_error(error);
    }
    // Nothing changed.
    cid.send(req::mode("Den", "", ""));
    cid.expect(code::CHAN_MODES, "Den +t 0 ann");
    cid.expect(code::CHAN_ENTRY, "Den op ann");
    cid.expect_nothing();
    ann.expect_nothing();
    assert_eq!(s.state().channel_by_title("Den").unwrap().len(), 4);
}

#[test]
fn a_ban_removes_a_member_refuses_its_joins_until_lifted_or_expired() {
    let s = server();
    let (ann, bob, cid, dan) = den(&s);
    ann.send(req::ban("Den", "0", "BO*", "flooding"));
    // The ban's notice and the removal's come from two workers: in either order.
    for p in [&ann, &cid] {
        p.expect_in_any_order(&[
            (code::CHAN_NOTICE, "Den ann ban bo* 0 flooding"),
            (code::CHAN_NOTICE, "Den ann kick bob banned: flooding"),
        ]);
    }
    assert_eq!(
        classic(&bob, 2),
        [
            (code::PART_ACK, "Den 3 our den".into()),
            (
                code::ERROR,
                "you were removed from Den by ann: banned: flooding".into()
            )
        ]
    );
    dan.expect(code::USER_PARTS, "Den bob");
    bob.send(Request::Join { title: "Den" });
    bob.expect_error("you are banned from Den: flooding");
    // Another nickname is not covered.
    assert_eq!(user(&s, "rob").join("Den"), "Den 4 our den");
    ann.expect(code::USER_JOINS, "Den rob");
    ann.send(req::unban("Den", "bo*"));
    ann.expect(code::CHAN_NOTICE, "Den ann unban bo*");
    ann.send(req::unban("Den", "bo*"));
    ann.expect_error("no ban on bo* in Den");
    assert_eq!(bob.join("Den"), "Den 5 our den");
    ann.expect(code::USER_JOINS, "Den bob");
    // A timed ban ends by itself.
    ann.send(req::ban("Den", "1", "eve", ""));
    ann.expect(code::CHAN_NOTICE, "Den ann ban eve 1");
    let eve = user(&s, "eve");
    eve.send(Request::Join { title: "Den" });
    eve.expect_error("you are banned from Den");
    std::thread::sleep(Duration::from_millis(1100));
    eve.join("Den");
    ann.expect(code::USER_JOINS, "Den eve");
    for (seconds, mask) in [("x", "a"), ("99999999999", "a"), ("5", "a\u{7}"), ("5", "")] {
        ann.send(req::ban("Den", seconds, mask, ""));
        let e = ann.recv_code(code::ERROR);
        assert!(e.starts_with("invalid ban"), "{e}");
    }
}

#[test]
fn invite_only_channels_take_the_invited_once() {
    let s = server();
    let ann = ann_in_her_den(&s);
    let bob = part5(&s, "bob");
    ann.send(req::mode("Den", "+i", ""));
    ann.expect(code::CHAN_NOTICE, "Den ann mode +i");
    bob.send(Request::Join { title: "Den" });
    bob.expect_error("Den is invite-only");
    ann.send(req::invite("Den", "BOB"));
    bob.expect(code::INVITED, "Den ann");
    ann.expect(code::CHAN_NOTICE, "Den ann invite BOB");
    bob.join("Den");
    ann.expect(code::USER_JOINS, "Den bob");
    bob.send(Request::Part { title: "Den" });
    bob.expect(code::PART_ACK, "Den 1 ");
    ann.expect(code::USER_PARTS, "Den bob");
    // The invitation was used up.
    bob.send(Request::Join { title: "Den" });
    bob.expect_error("Den is invite-only");
    ann.send(req::invite("Den", "no body"));
    ann.expect_error("invalid nickname");
}

#[test]
fn a_full_channel_takes_nobody_more() {
    let s = server();
    let ann = ann_in_her_den(&s);
    ann.send(req::mode("Den", "+l", "2"));
    ann.expect(code::CHAN_NOTICE, "Den ann mode +l 2");
    user(&s, "bob").join("Den");
    let cid = user(&s, "cid");
    cid.send(Request::Join { title: "Den" });
    cid.expect_error("Den is full");
    ann.expect(code::USER_JOINS, "Den bob");
    for arg in ["0", "x", ""] {
        ann.send(req::mode("Den", "+l", arg));
        ann.expect_error("give a member limit from 1 to 1000000");
    }
    ann.send(req::mode("Den", "-l", ""));
    ann.expect(code::CHAN_NOTICE, "Den ann mode -l");
    cid.join("Den");
}

#[test]
fn in_a_moderated_channel_only_voices_and_operators_speak() {
    let s = server();
    let (ann, bob, cid, dan) = den(&s);
    ann.send(req::mode("Den", "+m", ""));
    ann.expect(code::CHAN_NOTICE, "Den ann mode +m");
    cid.expect(code::CHAN_NOTICE, "Den ann mode +m");
    bob.send(req::public("hello?"));
    bob.expect_error("Den is moderated; you need a voice to speak");
    ann.send(req::mode("Den", "+v", "bob"));
    ann.expect(code::CHAN_NOTICE, "Den ann mode +v bob");
    cid.expect(code::CHAN_NOTICE, "Den ann mode +v bob");
    bob.send(req::public("hello!"));
    for p in [&ann, &bob, &cid, &dan] {
        p.expect(code::PUBLIC_MSG, "Den bob hello!");
    }
    ann.send(req::public("op here"));
    for p in [&ann, &bob, &cid, &dan] {
        p.expect(code::PUBLIC_MSG, "Den ann op here");
    }
    dan.send(req::public("me too"));
    dan.expect_error("Den is moderated; you need a voice to speak");
    classic(&dan, 0);
    ann.send(req::mode("Den", "+x", ""));
    ann.expect_error(
        "unknown mode +x; use +i -i +m -m +t -t +l COUNT -l +o NICK -o NICK +v NICK -v NICK",
    );
    ann.send(req::mode("Den", "+v", "zed"));
    ann.expect_error("zed is not in Den");
}

#[test]
fn operators_set_the_topic_and_can_make_more_operators() {
    let s = server();
    let (ann, bob, cid, _dan) = den(&s);
    ann.send(req::topic("Den", "cozy corner"));
    ann.expect(code::CHAN_NOTICE, "Den ann topic cozy corner");
    cid.expect(code::CHAN_NOTICE, "Den ann topic cozy corner");
    bob.send(Request::ListChannels);
    let items = classic(&bob, 6);
    assert_eq!(items[5].1, "Den 4 cozy corner");
    ann.send(req::topic("Den", "tab\there"));
    ann.expect_error("invalid topic");
    // An operator made by ann moderates too.
    ann.send(req::mode("Den", "+o", "cid"));
    ann.expect(code::CHAN_NOTICE, "Den ann mode +o cid");
    cid.expect(code::CHAN_NOTICE, "Den ann mode +o cid");
    cid.send(req::mode("Den", "-t", ""));
    cid.expect(code::CHAN_NOTICE, "Den cid mode -t");
    ann.expect(code::CHAN_NOTICE, "Den cid mode -t");
    // With the topic unlocked, any member sets it.
    let eve = part5(&s, "eve");
    eve.join("Den");
    eve.send(req::topic("Den", "mine"));
    eve.expect(code::CHAN_NOTICE, "Den eve topic mine");
    cid.send(req::mode("Den", "", ""));
    // The notices travel with the channel's messages, the answer straight back: either may
    // come first (docs/PROTOCOL.md, part 4 notes), each in its own order.
    let (notices, answer): (Vec<_>, Vec<_>) = cid
        .recv_n(5)
        .into_iter()
        .partition(|(c, _)| [code::USER_JOINS, code::CHAN_NOTICE].contains(c));
    assert_eq!(
        notices,
        [
            (code::USER_JOINS, "Den eve".to_string()),
            (code::CHAN_NOTICE, "Den eve topic mine".to_string()),
        ]
    );
    assert_eq!(answer[0], (code::CHAN_MODES, "Den + 0 ann".to_string()));
    let mut entries: Vec<&str> = answer[1..].iter().map(|(_, e)| e.as_str()).collect();
    entries.sort();
    assert_eq!(entries, ["Den op ann", "Den op cid"]);
    ann.send(req::mode("Den", "-o", "cid"));
    ann.expect(code::USER_JOINS, "Den eve");
    ann.expect(code::CHAN_NOTICE, "Den eve topic mine");
    ann.expect(code::CHAN_NOTICE, "Den ann mode -o cid");
    cid.expect(code::CHAN_NOTICE, "Den ann mode -o cid");
    cid.send(req::mode("Den", "+t", ""));
    cid.expect_error("you are not an operator of Den");
}

/// Sends `n` messages from `p` to its current channel, each seen back.
fn say(p: &Peer, title: &str, nick: &str, n: usize) {
    for i in 0..n {
        let text = format!("message {i}");
        p.send(req::public(&text));
        p.expect(code::PUBLIC_MSG, &format!("{title} {nick} {text}"));
    }
}

/// The ids and texts of the next HISTORY_MSGs up to HISTORY_END, and that end.
fn history(p: &Peer) -> (Vec<(u64, String)>, String) {
    history_from(|| p.recv())
}

/// As [`history`], reading with `recv`.
fn history_from(mut recv: impl FnMut() -> (u16, String)) -> (Vec<(u64, String)>, String) {
    let mut got = Vec::new();
    loop {
        let (c, text) = recv();
        match c {
            code::HISTORY_MSG => {
                let mut f = text.splitn(5, ' ');
                let _title = f.next();
                let id: u64 = f.next().unwrap().parse().unwrap();
                let ms: u64 = f.next().unwrap().parse().unwrap();
                assert!(ms > 1_600_000_000_000, "a time: {ms}");
                let _sender = f.next();
                got.push((id, f.next().unwrap().to_string()));
            }
            code::HISTORY_END => return (got, text),
            other => panic!("unexpected {other} {text}"),
        }
    }
}

#[test]
fn history_comes_in_batches_oldest_first_by_count_or_since_a_message() {
    let s = server_with(|c| c.live.history = 70);
    let ann = part5(&s, "ann");
    ann.join("Pets");
    say(&ann, "Pets", "ann", 80);
    ann.send(req::history("Pets", "last", "60"));
    let (first, end) = history(&ann);
    assert_eq!(first.len(), 50);
    assert_eq!(first[0].1, "message 20");
    let last = first[49].0;
    assert_eq!(end, format!("Pets {last} 10"));
    assert!(first.windows(2).all(|w| w[0].0 < w[1].0), "ids grow");
    let since = last.to_string();
    ann.send(req::history("Pets", "since", &since));
    let (rest, end) = history(&ann);
    assert_eq!(rest.len(), 10);
    assert_eq!(rest[9].1, "message 79");
    assert_eq!(end, format!("Pets {} 0", rest[9].0));
    // Only 70 are kept.
    ann.send(req::history("Pets", "last", "1000"));
    let (kept, _) = history(&ann);
    assert_eq!(kept[0].1, "message 10");
    // Refusals.
    let bob = part5(&s, "bob");
    bob.send(req::history("Pets", "last", "5"));
    bob.expect_error("you are not in Pets");
    for (how, number) in [("first", "5"), ("last", "-1"), ("since", "x")] {
        ann.send(req::history("Pets", how, number));
        ann.expect_error("give since MESSAGE-ID or last COUNT");
    }
}

#[test]
fn after_a_reconnect_a_client_gets_what_it_missed() {
    let s = server();
    let ann = part5(&s, "ann");
    ann.join("Pets");
    let bob = joined(&s, "bob", "Pets");
    ann.expect(code::USER_JOINS, "Pets bob");
    say(&bob, "Pets", "bob", 2);
    ann.recv_n(2);
    ann.send(req::history("Pets", "last", "1"));
    let (seen, _) = history(&ann);
    let last_seen = seen[0].0.to_string();
    // The client goes away; meanwhile the talk goes on.
    ann.send(Request::Logoff);
    bob.expect(code::USER_PARTS, "Pets ann");
    bob.send(req::public("you missed this"));
    bob.expect(code::PUBLIC_MSG, "Pets bob you missed this");
    bob.send(req::public("and this"));
    bob.expect(code::PUBLIC_MSG, "Pets bob and this");
    // It comes back from another address, joins again and asks since what it saw.
    let again = Peer::new(&s);
    again.login("ann");
    again.join("Pets");
    again.send(req::history("Pets", "since", &last_seen));
    let (missed, end) = history(&again);
    let texts: Vec<&str> = missed.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(texts, ["you missed this", "and this"]);
    assert!(end.ends_with(" 0"), "{end}");
}

#[test]
fn private_messages_for_a_user_away_are_kept_and_delivered_once() {
    // Room for 4, of which guests (bob and cid) may fill half.
    let s = server_with(|c| c.live.mailbox = 4);
    register(&s, "ann", "pw");
    // (Only senders that proved their address may leave messages: tests/mailbox.rs.)
    let bob = part5(&s, "bob");
    bob.prove();
    bob.send(req::private("ANN", "call me"));
    bob.expect(code::PRIVATE_STORED, "ANN");
    let cid = user(&s, "cid");
    cid.prove();
    cid.send(req::private("ann", "hi from a classic client"));
    classic(&cid, 0);
    bob.send(req::private("ann", "one too many"));
    bob.expect_error("ann is away and can't be sent more messages");
    // Nobody by that name at all: as before.
    bob.send(req::private("nobody", "x"));
    bob.expect_error("nobody: not logged in");

    let ann = protected(&s, "ann", "pw");
    let kept = ann.recv_n(2);
    assert_eq!(kept[0].0, code::STORED_PRIVATE);
    assert!(kept[0].1.ends_with(" bob call me"), "{kept:?}");
    assert!(
        kept[1].1.ends_with(" cid hi from a classic client"),
        "{kept:?}"
    );
    let ms: u64 = kept[0].1.split(' ').next().unwrap().parse().unwrap();
    assert!(ms > 1_600_000_000_000);
    ann.expect_nothing();
    // Delivered once: not again at the next login.
    ann.send(Request::Logoff);
    common::wait_until(|| s.state().address_of("ann").is_none());
    let ann = protected(&s, "ann", "pw");
    ann.expect_nothing();
    // While ann is on, messages go to her as ever.
    bob.send(req::private("ann", "live"));
    ann.expect(code::PRIVATE_MSG, "bob live");
}

#[test]
fn server_operators_kill_ban_addresses_notify_and_see_status() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.log");
    let s = server_with(|c| {
        c.live.operators = vec!["root".into()];
        c.limits.amplification_guard = false;
        c.audit_log = Some(audit.clone());
    });
    register(&s, "root", "secret");
    let root = protected(&s, "root", "secret");
    root.hello();
    let bob = part5(&s, "bob");
    for r in [
        req::kill("root", ""),
        req::oper_ban("0", "127.0.0.1", ""),
        Request::OperUnban { net: "127.0.0.1" },
        Request::OperNotice { text: "hi" },
        Request::OperStatus,
    ] {
        bob.send(r);
        bob.expect_error("you are not a server operator");
    }
    // A notice reaches everyone: part-5 clients as SERVER_NOTICE, classic ones as a
    // private message from the operator.
    let cid = user(&s, "cid");
    root.send(Request::OperNotice {
        text: "restart at noon",
    });
    // The notice goes out through the sender pool, the answer from the worker: in either
    // order.
    root.expect_in_any_order(&[
        (code::SERVER_NOTICE, "root restart at noon"),
        (code::OPER_ACK, "notice -"),
    ]);
    bob.expect(code::SERVER_NOTICE, "root restart at noon");
    assert_eq!(
        classic(&cid, 1),
        [(code::PRIVATE_MSG, "root restart at noon".into())]
    );
    // Kill.
    cid.join("Pets");
    bob.join("Pets");
    cid.expect(code::USER_JOINS, "Pets bob");
    root.send(req::kill("CID", "spam"));
    root.expect(code::OPER_ACK, "kill CID spam");
    cid.expect_error("you were disconnected by root: spam");
    bob.expect(code::USER_PARTS, "Pets cid");
    common::wait_until(|| s.state().address_of("cid").is_none());
    root.send(req::kill("cid", ""));
    root.expect_error("cid: not logged in");
    // An address ban disconnects who is there and refuses logins.
    let dan = Peer::at(&s, [127, 0, 0, 2]);
    dan.login("dan");
    root.send(req::oper_ban("3600", "127.0.0.2/32", "abuse"));
    root.expect(code::OPER_ACK, "ban 127.0.0.2/32 3600 abuse");
    dan.expect_error("you were disconnected by root: banned from this server: abuse");
    let dan2 = Peer::at(&s, [127, 0, 0, 2]);
    dan2.send(Request::Login { nick: "dan" });
    dan2.expect_error("you are banned from this server: abuse");
    root.send(Request::OperStatus);
    let status = root.recv_n(9);
    assert!(status.iter().all(|(c, _)| *c == code::STATUS_ITEM));
    assert_eq!(status[0].1, "users 2");
    assert_eq!(status[5].1, "address-bans 1");
    root.send(Request::OperUnban { net: "127.0.0.2" });
    root.expect(code::OPER_ACK, "unban 127.0.0.2/32");
    dan2.login("dan");
    root.send(Request::OperUnban { net: "127.0.0.2" });
    root.expect_error("no ban on 127.0.0.2/32");
    root.send(req::oper_ban("1", "not-an-address", ""));
    root.expect_error("invalid address; give ADDRESS or ADDRESS/BITS");
    // A server operator moderates any channel, configured ones too.
    root.send(req::kick("Pets", "bob", "rules"));
    root.expect(code::CHAN_NOTICE, "Pets root kick bob rules");
    bob.expect(code::PART_ACK, "Pets 0 For our furry and feathered friends");
    bob.expect(code::CHAN_NOTICE, "Pets root kick bob rules");
    // Every action is in the audit log, one line each.
    let log = || std::fs::read_to_string(&audit).unwrap_or_default();
    common::wait_until(|| log().contains("root kick Pets bob rules"));
    let text = log();
    for line in [
        "root oper-notice - restart at noon",
        "root oper-kill CID spam",
        "root oper-ban 127.0.0.2/32 3600 abuse",
        "root oper-unban 127.0.0.2/32",
    ] {
        assert!(text.contains(line), "{line:?} not in {text}");
    }
    assert!(text.lines().all(|l| l.contains(" UTC root ")), "{text}");
}

#[test]
fn part5_requests_from_strangers_and_malformed_ones_get_errors_not_crashes() {
    let s = server_with(|c| c.limits.amplification_guard = false);
    let stranger = Peer::new(&s);
    stranger.send(req::create("Den", ""));
    stranger.expect_error("please log in");
    let ann = part5(&s, "ann");
    let long = "x".repeat(900);
    let hostile: Vec<Vec<u8>> = vec![
        req::create(&long, "").to_bytes(),
        req::topic("Pets", &long).to_bytes(),
        req::mode("Pets", "+++", "").to_bytes(),
        req::history("Pets", "last", "99999999999999999999999").to_bytes(),
        vec![0x02, 0xc6, 0xff, 0xfe],
        vec![0x03, 0x20],
        vec![0x03, 0xf2],
    ];
    for d in hostile {
        ann.send_raw(&d);
        ann.recv_code(code::ERROR);
    }
    // Still serving.
    ann.join("Pets");
    s.state().check_invariants().unwrap();
}

#[test]
fn registered_channels_bans_operators_and_history_survive_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let config = |c: &mut udpchat::server::ServerConfig| {
        c.store = StoreKind::Sqlite(data.path().join("data"));
        c.live.persist_history = true;
        c.live.operators = vec!["ann".into()];
    };
    {
        let s = server_with(config);
        register(&s, "ann", "pw");
        register(&s, "bob", "pw");
        let ann = protected(&s, "ann", "pw");
        ann.hello();
        ann.send(req::create("Club", "members only"));
        ann.expect(code::CHAN_NOTICE, "Club ann create registered members only");
        ann.expect(code::JOIN_ACK, "Club 1 members only");
        let bob = protected(&s, "bob", "pw");
        bob.send(Request::Join { title: "Club" });
        bob.expect(code::JOIN_ACK, "Club 2 members only");
        ann.expect(code::USER_JOINS, "Club bob");
        for r in [
            req::mode("Club", "+o", "bob"),
            req::mode("Club", "+m", ""),
            req::ban("Club", "0", "spam*", "ads"),
            req::public("remember me"),
            req::oper_ban("0", "192.0.2.0/24", ""),
        ] {
            ann.send(r);
            ann.recv();
        }
        bob.expect(code::PUBLIC_MSG, "Club ann remember me");
        // A clean stop writes the history still waiting for its batch.
        s.shutdown().unwrap();
    }
    let s = server_with(config);
    let guest = user(&s, "cid");
    guest.send(Request::ListChannels);
    let items = guest.recv_n(6);
    assert_eq!(items[5], (code::CHANNEL_ITEM, "Club 0 members only".into()));
    let bob = protected(&s, "bob", "pw");
    bob.hello();
    bob.send(Request::Join { title: "Club" });
    bob.expect(code::JOIN_ACK, "Club 1 members only");
    // bob is still an operator: the account's status lasts.
    bob.send(req::mode("Club", "", ""));
    bob.expect(code::CHAN_MODES, "Club +rmt 0 ann");
    let entries: Vec<String> = bob.recv_n(4).into_iter().map(|(_, e)| e).collect();
    assert!(
        entries.contains(&"Club op account:bob".to_string()),
        "{entries:?}"
    );
    assert!(entries.contains(&"Club op bob".to_string()), "{entries:?}");
    assert!(
        entries
            .iter()
            .any(|e| e.starts_with("Club ban spam* 0 ann ads")),
        "{entries:?}"
    );
    bob.send(req::history("Club", "last", "10"));
    let (h, _) = history_from(|| bob.recv());
    assert_eq!(
        h.iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>(),
        ["remember me"]
    );
    let spammer = user(&s, "spammer");
    spammer.send(Request::Join { title: "Club" });
    spammer.expect_error("you are banned from Club: ads");
    assert_eq!(s.state().addr_bans().list().len(), 1);
    // The founder drops it: it is no longer stored, and goes once empty.
    let ann = protected(&s, "ann", "pw");
    ann.send(Request::ChanDrop { title: "Club" });
    ann.expect(code::CHAN_NOTICE, "Club ann drop");
    bob.expect(code::CHAN_NOTICE, "Club ann drop");
    bob.send(Request::Part { title: "Club" });
    bob.expect(code::PART_ACK, "Club 0 members only");
    common::wait_until(|| s.state().channel_by_title("Club").is_none());
    ann.send(Request::ChanDrop { title: "Pets" });
    ann.expect_error("Pets is configured by the server's operator");
}

#[test]
fn the_metrics_page_counts_audited_actions_and_the_community_queue() {
    let s = server_with(|c| c.metrics = Some("127.0.0.1:0".parse().unwrap()));
    let ann = ann_in_her_den(&s);
    ann.send(req::topic("Den", "t"));
    ann.expect(code::CHAN_NOTICE, "Den ann topic t");
    let page = || common::metrics_page(&s);
    common::wait_until(|| page().contains("udpchat_audit_records_total 2"));
    let p = page();
    assert!(
        p.contains("udpchat_queue_depth{queue=\"community-store\"}"),
        "{p}"
    );
    assert!(p.contains("udpchat_community_refused_total 0"), "{p}");
    assert!(p.contains("udpchat_channels 6"), "{p}");
}
