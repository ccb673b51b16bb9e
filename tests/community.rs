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
    expect_all, joined, part5, protected, proved, registered as register, req, server, server_with,
    user, Peer,
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

/// Part-5 `ann` (a guest, proved), in a temporary channel `Den` of her own (without a
/// description).
fn ann_in_her_den(s: &RunningServer) -> Peer {
    let ann = proved(s, "ann");
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
    let ann = proved(&s, "ann");
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
    let ann = proved(&s, "ann");
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
    create(&proved(&s, "bob"), "Two", "", "temporary");
    let cid = proved(&s, "cid");
    cid.send(req::create("Three", ""));
    cid.expect_error("too many channels on this server; try again later");
}

/// A channel `Den` made by part-5 `ann` (its founder and operator, a proved guest) with
/// classic `bob` and `dan` and part-5 `cid` in it.
fn den(s: &RunningServer) -> (Peer, Peer, Peer, Peer) {
    let ann = proved(s, "ann");
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
    cid.expect(code::CHAN_ENTRY, "Den founder ann");
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
        .recv_n(6)
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
    assert_eq!(entries, ["Den founder ann", "Den op ann", "Den op cid"]);
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
    let data = dir.path().join("data");
    common::operator_account(&data, "root", "secret");
    let s = server_with(|c| {
        c.store = StoreKind::Sqlite(data.clone());
        c.live.operators = vec!["root".into()];
        c.limits.amplification_guard = false;
        c.audit_log = Some(audit.clone());
    });
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
    // ann is a server operator: her account is made as `chat-server accounts add ann
    // --operator` makes it.
    common::operator_account(&data.path().join("data"), "ann", "pw");
    {
        let s = server_with(config);
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

// ---- issue 20: ranks, look-alikes, and who may create ----

/// `ann`, logged in with her password (registered just now) and a part-5 client, in a
/// registered channel `Club` of her own described as `ours`.
fn ann_in_her_club(s: &RunningServer) -> Peer {
    register(s, "ann", "pw");
    let ann = protected(s, "ann", "pw");
    ann.hello();
    create(&ann, "Club", "ours", "registered");
    ann
}

/// `p`, known as `nick`, joins `title` (answered `joined`), and `other`, in it already,
/// sees it come.
fn joins_before(p: &Peer, nick: &str, other: &Peer, title: &str, joined: &str) {
    assert_eq!(p.join(title), joined);
    other.expect(code::USER_JOINS, &format!("{title} {nick}"));
}

/// `ann` makes the mode `change` (`+o`, `-o`) on `eve` in `title`, and both see the notice.
fn ann_modes_eve(ann: &Peer, eve: &Peer, title: &str, change: &str) {
    ann.send(req::mode(title, change, "eve"));
    expect_all(
        &[ann, eve],
        code::CHAN_NOTICE,
        &format!("{title} ann mode {change} eve"),
    );
}

/// `eve`, a part-5 guest, joins `title` (answered `joined`) where `ann` is, and `ann`
/// makes her an operator of it.
fn eve_made_operator(s: &RunningServer, ann: &Peer, title: &str, joined: &str) -> Peer {
    let eve = part5(s, "eve");
    joins_before(&eve, "eve", ann, title, joined);
    ann_modes_eve(ann, &eve, title, "+o");
    eve
}

/// `ann` leaves `title` (answered `left`), and `eve` sees her go.
fn ann_leaves(ann: &Peer, eve: &Peer, title: &str, left: &str) {
    ann.send(Request::Part { title });
    ann.expect(code::PART_ACK, left);
    eve.expect(code::USER_PARTS, &format!("{title} ann"));
}

/// `ann` comes back into `title` (answered `joined`), as an operator: `eve` sees her come
/// and loses her operator status to her.
fn ann_takes_it_back(ann: &Peer, eve: &Peer, title: &str, joined: &str) {
    joins_before(ann, "ann", eve, title, joined);
    ann_modes_eve(ann, eve, title, "-o");
}

/// `p` sends each request and is refused it for acting on the founder of `title`, who
/// each names as given beside it.
#[track_caller]
fn refused_as_the_founder<const N: usize>(
    p: &Peer,
    title: &str,
    attempts: [(Request<'_>, &str); N],
) {
    for (r, target) in attempts {
        p.send(r);
        p.expect_error(&format!(
            "you may not act on {target}, the founder of {title}"
        ));
    }
}

/// `p` sends each request, and everyone in `all` gets the channel notice beside it.
#[track_caller]
fn announced<const N: usize>(p: &Peer, all: &[&Peer], steps: [(Request<'_>, &str); N]) {
    for (r, notice) in steps {
        p.send(r);
        expect_all(all, code::CHAN_NOTICE, notice);
    }
}

#[test]
fn an_operator_the_founder_made_can_not_strip_ban_or_kick_her_and_she_takes_it_back() {
    let s = server();
    let ann = ann_in_her_club(&s);
    // ann makes eve, a guest, an operator.
    let eve = eve_made_operator(&s, &ann, "Club", "Club 2 ours");
    // The attack: eve takes the founder's operator status (and with it her lasting
    // status), bans her account and her nickname, and kicks her.
    refused_as_the_founder(
        &eve,
        "Club",
        [
            (req::mode("Club", "-o", "ann"), "ann"),
            (req::mode("Club", "-v", "ANN"), "ANN"),
            (
                req::ban("Club", "0", "account:ann", "mine now"),
                "account:ann",
            ),
            (req::ban("Club", "0", "Ann", ""), "Ann"),
            (req::ban("Club", "0", "\u{430}nn", ""), "\u{430}nn"),
            (req::kick("Club", "ann", "mine now"), "ann"),
        ],
    );
    ann.expect_nothing();
    // Nothing changed: ann is the founder, an operator, and her account a lasting one.
    ann.send(req::mode("Club", "", ""));
    ann.expect(code::CHAN_MODES, "Club +rt 0 ann");
    let entries: Vec<String> = ann.recv_n(4).into_iter().map(|(_, e)| e).collect();
    assert_eq!(
        entries,
        [
            "Club founder ann",
            "Club op account:ann",
            "Club op ann",
            "Club op eve"
        ]
    );
    // What an operator may still do: lock everyone out. A ban by pattern names nobody,
    // and removes no operator.
    announced(
        &eve,
        &[&eve, &ann],
        [
            (req::ban("Club", "0", "*", "out"), "Club eve ban * 0 out"),
            (req::mode("Club", "+i", ""), "Club eve mode +i"),
            (req::mode("Club", "+l", "1"), "Club eve mode +l 1"),
        ],
    );
    ann_leaves(&ann, &eve, "Club", "Club 1 ours");
    let bob = user(&s, "bob");
    bob.send(Request::Join { title: "Club" });
    bob.expect_error("you are banned from Club: out");
    // The founder gets back in past the ban, the invitation and the limit, as an operator,
    // and takes the channel back.
    ann_takes_it_back(&ann, &eve, "Club", "Club 2 ours");
    ann.send(req::kick("Club", "eve", "no coups"));
    eve.expect(code::PART_ACK, "Club 1 ours");
    expect_all(
        &[&eve, &ann],
        code::CHAN_NOTICE,
        "Club ann kick eve no coups",
    );
    eve.send(Request::Join { title: "Club" });
    eve.expect_error("you are banned from Club: out");
    s.state().check_invariants().unwrap();
}

#[test]
fn a_guest_founder_of_a_temporary_channel_is_outranked_by_nobody_it_made_and_gets_back_in() {
    let s = server();
    let ann = ann_in_her_den(&s);
    let eve = eve_made_operator(&s, &ann, "Den", "Den 2 ");
    // The attack, on a guest founder: known by her nickname at the address she proved.
    refused_as_the_founder(
        &eve,
        "Den",
        [
            (req::mode("Den", "-o", "ann"), "ann"),
            (req::ban("Den", "0", "ann", "mine"), "ann"),
            (req::kick("Den", "Ann", "mine"), "Ann"),
        ],
    );
    // A look-alike of her name is a ban on her name, and refused as such.
    eve.send(req::ban("Den", "0", "\u{430}nn", "mine"));
    eve.expect_error("you may not act on \u{430}nn, the founder of Den");
    // Locked out by a wildcard ban and +i, she leaves; eve keeps the channel alive.
    announced(
        &eve,
        &[&eve, &ann],
        [
            (req::ban("Den", "0", "a*", "out"), "Den eve ban a* 0 out"),
            (req::mode("Den", "+i", ""), "Den eve mode +i"),
        ],
    );
    ann_leaves(&ann, &eve, "Den", "Den 1 ");
    // She comes back, as an operator, and takes it back.
    ann_takes_it_back(&ann, &eve, "Den", "Den 2 ");
    s.state().check_invariants().unwrap();
}

#[test]
fn nobody_acts_on_an_equal_or_higher_rank_nor_raises_anyone_above_its_own() {
    let s = server();
    let ann = ann_in_her_club(&s);
    register(&s, "bob", "pw");
    register(&s, "cid", "pw");
    let bob = protected(&s, "bob", "pw");
    let cid = protected(&s, "cid", "pw");
    let eve = part5(&s, "eve");
    let mut inside = vec![&ann];
    for (p, nick) in [(&bob, "bob"), (&eve, "eve"), (&cid, "cid")] {
        if nick != "eve" {
            p.hello();
        }
        p.join("Club");
        expect_all(&inside, code::USER_JOINS, &format!("Club {nick}"));
        inside.push(p);
    }
    let all = [&ann, &bob, &eve, &cid];
    // The founder makes bob a lasting operator, bob makes eve an operator; eve, only an
    // operator, makes cid one for as long as he is in, not a lasting one.
    for (p, r, notice) in [
        (&ann, req::mode("Club", "+o", "bob"), "Club ann mode +o bob"),
        (&bob, req::mode("Club", "+o", "eve"), "Club bob mode +o eve"),
        (&eve, req::mode("Club", "+o", "cid"), "Club eve mode +o cid"),
        (&ann, req::mode("Club", "+v", "cid"), "Club ann mode +v cid"),
    ] {
        p.send(r);
        expect_all(&all, code::CHAN_NOTICE, notice);
    }
    cid.send(req::mode("Club", "", ""));
    cid.recv_code(code::CHAN_MODES);
    let entries: Vec<String> = cid.recv_n(8).into_iter().map(|(_, e)| e).collect();
    assert!(
        entries.contains(&"Club op account:bob".to_string()),
        "{entries:?}"
    );
    assert!(
        !entries.contains(&"Club op account:cid".to_string()),
        "{entries:?}"
    );
    // Upward and sideways, refused: an operator on a lasting operator and on another
    // operator, a lasting operator on the founder.
    for (p, r, refusal) in [
        (
            &eve,
            req::mode("Club", "-o", "bob"),
            "bob, a lasting operator of Club",
        ),
        (
            &eve,
            req::kick("Club", "BOB", ""),
            "BOB, a lasting operator of Club",
        ),
        (
            &eve,
            req::ban("Club", "0", "account:bob", ""),
            "account:bob, a lasting operator of Club",
        ),
        (
            &eve,
            req::mode("Club", "-v", "cid"),
            "cid, an operator of Club",
        ),
        (
            &cid,
            req::kick("Club", "eve", ""),
            "eve, an operator of Club",
        ),
        (
            &bob,
            req::mode("Club", "-o", "ann"),
            "ann, the founder of Club",
        ),
        (
            &bob,
            req::ban("Club", "0", "account:ann", ""),
            "account:ann, the founder of Club",
        ),
    ] {
        p.send(r);
        p.expect_error(&format!("you may not act on {refusal}"));
    }
    // Downward, done: a lasting operator on an operator, the founder on a lasting one
    // (whose account no longer lasts).
    bob.send(req::mode("Club", "-o", "cid"));
    expect_all(&all, code::CHAN_NOTICE, "Club bob mode -o cid");
    ann.send(req::mode("Club", "-o", "bob"));
    expect_all(&all, code::CHAN_NOTICE, "Club ann mode -o bob");
    ann.send(req::mode("Club", "", ""));
    ann.recv_code(code::CHAN_MODES);
    let entries: Vec<String> = ann.recv_n(5).into_iter().map(|(_, e)| e).collect();
    assert!(!entries.iter().any(|e| e.contains("bob")), "{entries:?}");
    ann.expect_nothing();
}

#[test]
fn a_title_that_looks_like_an_existing_channels_is_refused() {
    let s = server();
    let ann = proved(&s, "ann");
    // A Cyrillic Р and е: in a channel list it would pass for the configured Pets.
    ann.send(req::create("\u{420}\u{435}ts", "fake pets"));
    ann.expect_error("\u{420}\u{435}ts looks like the channel Pets; choose another title");
    create(&ann, "Den", "", "temporary");
    let eve = proved(&s, "eve");
    eve.send(req::create("D\u{435}n", ""));
    eve.expect_error("D\u{435}n looks like the channel Den; choose another title");
    eve.send(req::create("DEN", ""));
    eve.expect_error("a channel named DEN exists");
    assert_eq!(s.state().channels().len(), 6);
    // Once Den is gone, its look-alike title is free.
    ann.send(Request::Part { title: "Den" });
    ann.expect(code::PART_ACK, "Den 0 ");
    create(&eve, "D\u{435}n", "", "temporary");
}

#[test]
fn a_ban_on_a_nickname_covers_its_look_alikes() {
    let s = server();
    let ann = ann_in_her_den(&s);
    // A look-alike of spammer (a Cyrillic А) in the channel is removed by the ban...
    let early = joined(&s, "SP\u{410}MMER", "Den");
    ann.expect(code::USER_JOINS, "Den SP\u{410}MMER");
    ann.send(req::ban("Den", "0", "spammer", "ads"));
    ann.expect_in_any_order(&[
        (code::CHAN_NOTICE, "Den ann ban spammer 0 ads"),
        (code::CHAN_NOTICE, "Den ann kick SP\u{410}MMER banned: ads"),
    ]);
    early.expect(code::PART_ACK, "Den 1 ");
    early.expect_error("you were removed from Den by ann: banned: ads");
    // ...and another that comes later is refused, as is spammer himself.
    for nick in ["spamm\u{435}r", "spammer"] {
        let p = user(&s, nick);
        p.send(Request::Join { title: "Den" });
        p.expect_error("you are banned from Den: ads");
    }
    // A nickname that only looks different is not covered.
    assert_eq!(user(&s, "spanner").join("Den"), "Den 2 ");
    ann.expect(code::USER_JOINS, "Den spanner");
}

#[test]
fn forged_guests_create_no_channels_and_an_unproved_guest_is_told_to_prove() {
    // The default limits: 1,000 created channels, 5 per nickname, 50 per network.
    let s = server();
    let eve = part5(&s, "eve");
    eve.send(req::create("Den", ""));
    eve.expect_error("address not proved");
    // The attack as measured: 201 forged guest logins, each from a network of its own (so
    // that no per-network limit is what stops them), each followed by five CHAN_CREATEs;
    // 1,206 datagrams filled max-created-channels before.
    let forgers = 201u16;
    for i in 0..forgers {
        let from =
            std::net::SocketAddr::from(([127, 1 + (i / 200) as u8, (i % 200) as u8, 7], 4000));
        let nick = format!("forged{i}");
        assert!(
            common::spoof(from, s.addr(), &Request::Login { nick: &nick }.to_bytes()),
            "raw sockets need root"
        );
        for k in 0..5 {
            let title = format!("f{i}x{k}");
            assert!(common::spoof(
                from,
                s.addr(),
                &req::create(&title, "").to_bytes()
            ));
        }
    }
    common::wait_until(|| s.state().user_count() == 1 + forgers as usize);
    std::thread::sleep(common::QUIET);
    assert_eq!(s.state().channels().len(), 5, "no channel was created");
    // Someone who proved its address creates as ever, a guest and a password session.
    create(&proved(&s, "ann"), "Den", "", "temporary");
    let (cid, mut session) = common::registered_session(&s, "cid", "pw");
    session.send(&cid, req::create("Club", ""));
    let notice = session.recv_code(&cid, code::CHAN_NOTICE);
    assert_eq!(notice, "Club cid create registered ");
}

#[test]
fn creators_in_one_network_stop_at_its_limit_while_another_network_still_creates() {
    let s = server_with(|c| c.live.max_channels_per_prefix = 3);
    let mut creators = Vec::new();
    for (i, nick) in ["ann", "bob", "cid"].into_iter().enumerate() {
        register(&s, nick, "pw");
        let p = protected(&s, nick, "pw");
        p.hello();
        create(&p, &format!("Club{i}"), "", "registered");
        creators.push(p);
    }
    // Three channels from 127.0.0.0/24 exist: nobody there creates another, whoever it
    // is (ann might make two more of her own), logged in with a password or not.
    let dan = proved(&s, "dan");
    for p in [&creators[0], &dan] {
        p.send(req::create("More", ""));
        p.expect_error("too many channels were created from your network; try again later");
    }
    // Another network still creates.
    register(&s, "zed", "pw");
    let zed = Peer::at(&s, [127, 0, 1, 5]).with_password("zed", "pw");
    zed.hello();
    create(&zed, "Elsewhere", "", "registered");
    // The count is of channels that exist: once one goes, the network may create again.
    let ann = &creators[0];
    ann.send(Request::ChanDrop { title: "Club0" });
    ann.expect(code::CHAN_NOTICE, "Club0 ann drop");
    ann.send(Request::Part { title: "Club0" });
    ann.expect(code::PART_ACK, "Club0 0 ");
    create(&dan, "More", "", "temporary");
}
