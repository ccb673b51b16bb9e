//! Reflection through a forged guest (docs/SECURITY.md, "Addresses that have not proved
//! themselves"): an attacker logs in a classic guest with a victim's address as the source
//! (raw datagrams with forged sources) and asks for everything big; the victim receives no
//! more than the allowance, three times what was sent in its name and the address rate.
//! A guest that proves its address (PROVE) is sent everything; a classic guest on its own
//! has its ordinary session.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use proto::{code, Request};
use udpchat::budget::BudgetLimits;
use udpchat::server::RunningServer;

/// Everything `victim` receives until it has been quiet for `quiet`: (datagrams, bytes).
fn drain(victim: &Peer, quiet: Duration) -> (usize, usize) {
    let (mut n, mut bytes) = (0, 0);
    while let Some(d) = victim.recv_raw_within(quiet) {
        n += 1;
        bytes += d.len();
    }
    (n, bytes)
}

/// Sends `req` from `from` with a forged source; the payload's length.
fn forge(s: &RunningServer, from: SocketAddr, req: Request<'_>) -> usize {
    let d = req.to_bytes();
    assert!(
        spoof(from, s.addr(), &d),
        "raw sockets are needed (run as root)"
    );
    d.len()
}

/// Logs a guest `forged` in from `victim` with a forged source and joins it to Pets; the
/// bytes sent.
fn forge_joined(s: &RunningServer, victim: SocketAddr) -> usize {
    let sent = forge(s, victim, Request::Login { nick: "forged" });
    std::thread::sleep(Duration::from_millis(50));
    sent + forge(s, victim, Request::Join { title: "Pets" })
}

/// The big answer a guest asks for: Pets' last 50 lines.
const PETS_HISTORY: Request<'static> = Request::History {
    title: "Pets",
    how: "last",
    number: "50",
};

/// A long line, so that each delivery of it is big.
fn long_line(i: usize) -> String {
    format!("{i:04} {}", "x".repeat(400))
}

/// `pub_` says `n` long lines in its current channel, waiting for each to come back, so
/// that nothing is lost to queues; the bytes of what it sent.
fn say_many(pub_: &Peer, n: usize) {
    for i in 0..n {
        let text = long_line(i);
        pub_.send(Request::SendPublic { text: &text });
        // Joins and parts of others may come between.
        loop {
            let (c, got) = pub_.recv();
            if c == code::PUBLIC_MSG {
                assert!(got.ends_with(&text), "{got}");
                break;
            }
        }
    }
}

#[test]
fn a_forged_guest_reflects_no_more_than_its_allowance_and_three_times_what_was_sent() {
    let limits = BudgetLimits::default();
    let s = server_with(|c| {
        c.live.history = 50;
        c.metrics = Some("127.0.0.1:0".parse().unwrap());
    });
    // A busy channel with history, and a created-channel list.
    let talker = joined(&s, "talker", "Pets");
    say_many(&talker, 50);
    let start = Instant::now();
    let victim = Peer::new(&s);
    let v = victim.addr();
    // The attack: log in as the victim, join, then ask for everything big, many times.
    let mut sent = forge_joined(&s, v);
    for _ in 0..20 {
        sent += forge(&s, v, PETS_HISTORY);
        sent += forge(&s, v, Request::ListChannels);
        sent += forge(&s, v, Request::ListUsers);
        sent += forge(&s, v, Request::Who { prefix: "" });
        sent += forge(&s, v, Request::Hello { client: "x" });
        sent += forge(&s, v, Request::StillHere);
    }
    // And the channel's traffic goes on (50 lines of 400 bytes: 21 KB a member).
    say_many(&talker, 50);
    let (n, got) = drain(&victim, Duration::from_millis(500));
    let secs = start.elapsed().as_secs_f64().ceil();
    let bound = limits.allowance as f64 + 3.0 * sent as f64 + limits.rate as f64 * secs;
    eprintln!("forged guest: {sent} bytes sent in its name, {got} received in {n} datagrams, bound {bound:.0}");
    assert!(n > 0, "the forged guest was answered at all");
    assert!(
        (got as f64) <= bound,
        "sent {sent} in the victim's name, it received {got} in {n} datagrams (bound {bound:.0})"
    );
    // Without budgets the same attack reflects far more (the figure in docs/SECURITY.md).
    let history_alone = 50 * (long_line(0).len() + 16);
    assert!(history_alone * 20 > 10 * got);
    // What was held back is counted.
    let page = metrics_page(&s);
    let held = metric(
        &page,
        "udpchat_unproved_held_bytes_total{budget=\"address\"}",
    );
    assert!(held > 50_000, "held {held}\n{page}");
    // The forged guest and the talker, a classic guest too: the talker, whose own lines
    // earn three times their size, got every one of them back (say_many checked).
    assert_eq!(metric(&page, "udpchat_unproved_guests"), 2);
}

#[test]
fn many_forged_guests_in_one_network_share_its_budget() {
    let limits = BudgetLimits {
        prefix_rate: 8 * 1024,
        ..BudgetLimits::default()
    };
    let s = server_with(|c| {
        c.budgets = limits;
        c.live.history = 50;
    });
    let talker = joined(&s, "talker", "Pets");
    say_many(&talker, 50);
    // Twenty victims in one /24, each logged in and joined by the forger.
    let victims: Vec<Peer> = (1..=20).map(|i| Peer::at(&s, [127, 0, 9, i])).collect();
    let start = Instant::now();
    let mut sent = 0;
    for (i, v) in victims.iter().enumerate() {
        let nick = format!("forged{i}");
        sent += forge(&s, v.addr(), Request::Login { nick: &nick });
    }
    std::thread::sleep(Duration::from_millis(50));
    for v in &victims {
        sent += forge(&s, v.addr(), Request::Join { title: "Pets" });
        for _ in 0..3 {
            sent += forge(&s, v.addr(), PETS_HISTORY);
        }
    }
    say_many(&talker, 20);
    let got: usize = victims
        .iter()
        .map(|v| drain(v, Duration::from_millis(300)).1)
        .sum();
    let secs = start.elapsed().as_secs_f64().ceil();
    // The network's bucket: four seconds of its rate, what was sent, and its refill.
    let bound = limits.prefix_rate as f64 * (4.0 + secs) + 3.0 * sent as f64;
    assert!(
        (got as f64) <= bound,
        "twenty victims in one network received {got} (bound {bound:.0}; each alone may get {})",
        limits.allowance
    );
    assert!(got as u64 > limits.allowance, "the guests were answered");
    // Another network is not held by this one's budget.
    let other = Peer::at(&s, [127, 0, 10, 1]);
    other.login("elsewhere");
    other.send(Request::ListChannels);
    other.recv_code(code::CHANNEL_ITEM);
}

#[test]
fn a_guest_that_proves_its_address_is_sent_everything() {
    let s = server_with(|c| c.live.history = 50);
    let talker = joined(&s, "talker", "Pets");
    say_many(&talker, 50);
    let guest = Peer::new(&s);
    guest.login("prover");
    guest.prove();
    assert!(s.state().is_proved(guest.addr()));
    guest.join("Pets");
    guest.send(PETS_HISTORY);
    say_many(&talker, 50);
    // 50 lines of history and 50 live ones, every one of them (over 40 KB: far past
    // what an unproved address may be sent).
    let (n, bytes) = drain(&guest, Duration::from_millis(500));
    assert!(n >= 100 && bytes > 40_000, "{n} datagrams, {bytes} bytes");
    // Asking again is answered at once.
    guest.send(Request::ProveReq);
    guest.expect(code::PROVED, "");
}

#[test]
fn a_classic_guest_on_its_own_has_its_ordinary_session() {
    let s = server();
    let friend = joined(&s, "friend", "Pets");
    let guest = Peer::new(&s);
    guest.login("classic");
    guest.send(Request::ListChannels);
    guest.recv_code(code::CHANNEL_ITEM);
    drain(&guest, Duration::from_millis(100));
    guest.join("Pets");
    guest.send(Request::ListUsers);
    guest.recv_code(code::USER_ITEM);
    drain(&guest, Duration::from_millis(100));
    // An ordinary chat: 30 lines from a friend, then its own, every one delivered.
    for i in 0..30 {
        let text = format!("line {i} of an ordinary conversation");
        friend.send(Request::SendPublic { text: &text });
        assert_eq!(
            guest.recv_code(code::PUBLIC_MSG),
            format!("Pets friend {text}")
        );
    }
    guest.send(Request::SendPublic { text: "and mine" });
    assert_eq!(guest.recv_code(code::PUBLIC_MSG), "Pets classic and mine");
    assert!(!s.state().is_proved(guest.addr()));
}

#[test]
fn a_forged_proof_proves_nothing() {
    let s = server();
    let victim = Peer::new(&s);
    let v = victim.addr();
    forge(&s, v, Request::Login { nick: "forged" });
    wait_for("the forged login", Duration::from_secs(5), || {
        s.state().user_count() == 1
    });
    // The token goes to the victim, whom the forger can't hear: guesses prove nothing.
    forge(&s, v, Request::ProveReq);
    for guess in [
        "",
        "0",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "../../x",
    ] {
        forge(&s, v, Request::Prove { token: guess });
    }
    // A token the server gave another address is no good for this one either.
    let other = Peer::new(&s);
    other.login("other");
    other.send(Request::ProveReq);
    let token = other.recv_code(code::PROVE_TOKEN);
    forge(&s, v, Request::Prove { token: &token });
    std::thread::sleep(Duration::from_millis(200));
    assert!(!s.state().is_proved(v), "a forged PROVE proved the victim");
    assert!(!s.state().is_proved(other.addr()));
    // The victim was told nothing it can't drop: a token and the login's answers.
    let (_, got) = drain(&victim, Duration::from_millis(200));
    assert!(got < 200, "{got}");
}

#[test]
fn with_allow_amplification_a_forged_guest_is_answered_in_full() {
    let s = server_with(|c| {
        c.budgets.on = false;
        c.live.history = 50;
    });
    let talker = joined(&s, "talker", "Pets");
    say_many(&talker, 50);
    let victim = Peer::new(&s);
    let v = victim.addr();
    let mut sent = forge_joined(&s, v);
    sent += forge(&s, v, PETS_HISTORY);
    let (_, got) = drain(&victim, Duration::from_millis(300));
    eprintln!("without budgets: {sent} bytes sent in its name, {got} received");
    // The figure the budgets remove: one request reflects its history in full.
    assert!(got > 100 * sent, "sent {sent}, reflected {got}");
}
