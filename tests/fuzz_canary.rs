//! A short, seeded fuzz of every request code beyond the classic part 1 (every code of
//! `proto::REQUEST_CODES` above `STILL_HERE`: parts 2 to 5, the accounts, the proof of
//! address, the mailbox) against a running in-process server, while a canary user logged
//! in the ordinary way keeps asking for a round trip (issue 20: "a short fuzz of every
//! part-4/5 code with a canary user still answered stays in CI").
//!
//! The bodies are garbled on purpose: words that mean something to some request (titles,
//! nicknames, masks, numbers, modes, networks, `since`/`last`), look-alike and control
//! characters, empty and oversized payloads, and raw bytes that are not UTF-8. They come
//! from many addresses: guests logged in on their own sockets (some said HELLO, some proved
//! their address, some are in `Pets`), two users logged in with a password (sealed), and
//! strangers whose source addresses are forged through a raw socket (`common::spoof`; the
//! tests run as root). The seed fixes every datagram, so a failure replays; the server's
//! threads decide only the order in which they are handled.
//!
//! Passes when no thread of the server panicked (a panic hook counts them: the server runs
//! in this process), the canary got every answer it asked for during the run and after
//! it, and the state's invariants hold at the end. Runs in a few seconds in a debug build,
//! as part of `cargo test --workspace` (`scripts/test.sh`).

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{protected, registered, server_with, spoof, Peer};
use proto::{code, Request, REQUEST_CODES};
use udpchat::accounts::StoreKind;
use udpchat::server::RunningServer;

/// The seed of the run; keep it to replay. `FUZZ_CANARY_SEED=N` explores another.
const SEED: u64 = 0x2020_f022_ca4a_2d01;
/// Fuzz datagrams sent in all.
const DATAGRAMS: usize = 40_000;
/// The canary asks for a round trip after this many fuzz datagrams.
const PROBE_EVERY: usize = 500;
/// Guests that fuzz from sockets of their own.
const GUESTS: u8 = 24;

/// Panics seen in this process (the server's threads included).
static PANICS: AtomicUsize = AtomicUsize::new(0);

/// xorshift64*: small, fast and fixed, so the run depends on nothing but the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Words that mean something to some request, and words that should not. None names the
/// canary or its address: a fuzzer is a server operator, and may rightly kill or ban
/// whoever it names (a ban of `*` from `Pets` may rightly remove the canary from there).
const WORDS: &[&str] = &[
    "Pets",
    "pets",
    "PETS",
    "Weather",
    "Den",
    "den",
    "Реts",
    "#x",
    "fz0",
    "fz1",
    "fzp0",
    "nobody",
    "account:fzp0",
    "account:",
    "*",
    "spam*",
    "?",
    "a*b*c*d*e*f*g*h*",
    "+o",
    "-o",
    "+v",
    "+i",
    "-i",
    "+m",
    "+t",
    "+l",
    "-l",
    "+q",
    "0",
    "1",
    "-1",
    "50",
    "65535",
    "4294967296",
    "18446744073709551616",
    "315360001",
    "since",
    "last",
    "10.0.0.0/8",
    "127.0.20.1",
    "127.0.0.0/33",
    "::1",
    "::/0",
    "İ",
    "ẞ",
    "ß",
    "\u{202e}",
    "\u{1b}]0;x\u{7}",
    "\u{0}",
    "\t",
    "",
    "x",
];

/// A garbled payload.
fn payload(rng: &mut Rng) -> Vec<u8> {
    match rng.below(10) {
        // Words, the common case.
        0..=5 => {
            let n = rng.below(9);
            let words: Vec<&str> = (0..n).map(|_| *rng.pick(WORDS)).collect();
            words.join(" ").into_bytes()
        }
        // Raw bytes, often not UTF-8.
        6 | 7 => {
            let n = rng.below(64);
            (0..n).map(|_| rng.next() as u8).collect()
        }
        // Long: near, at and past the datagram limit (1024 with the 2-byte code).
        8 => {
            let len = *rng.pick(&[200usize, 1000, 1021, 1022, 1023, 1100]);
            let word = rng.pick(WORDS).as_bytes().to_vec();
            let mut out = Vec::with_capacity(len);
            while out.len() < len {
                out.extend_from_slice(if word.is_empty() { b"y" } else { &word });
                out.push(b' ');
            }
            out.truncate(len);
            out
        }
        // Empty.
        _ => Vec::new(),
    }
}

/// The codes fuzzed: every request code beyond the classic part 1, with now and then one
/// of the server's own event codes or a code nobody defined.
fn codes() -> Vec<u16> {
    REQUEST_CODES
        .iter()
        .copied()
        .filter(|&c| c > code::STILL_HERE)
        .collect()
}

/// The canary's round trip: PING with a fresh token, answered by its PONG (other datagrams,
/// from the fuzz, are skipped). Asks again a few times, as a client over a lossy link
/// would; fails the test if no PONG comes.
fn round_trip(canary: &Peer, n: usize) {
    let token = format!("canary{n}");
    for _ in 0..5 {
        canary.send(Request::Ping { token: &token });
        let deadline = Instant::now() + Duration::from_secs(2);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match canary.recv_within(left) {
                Some((code::PONG, t)) if t == token => return,
                Some(_) => {}
                None => break,
            }
        }
    }
    panic!("the canary got no answer to probe {n}");
}

/// Users that fuzz from their own sockets: guests in several states, and two password
/// sessions.
fn fuzzers(s: &RunningServer) -> Vec<Peer> {
    let mut peers = Vec::new();
    for i in 0..GUESTS {
        let p = Peer::at(s, [127, 0, 20, i + 1]);
        p.login(&format!("fz{i}"));
        if i % 2 == 0 {
            p.hello();
        }
        if i % 3 == 0 {
            p.prove();
        }
        if i % 4 == 0 {
            p.join("Pets");
        }
        peers.push(p);
    }
    // fzp0 registers over the network; fzp1, the server operator, was made with
    // `chat-server accounts add --operator` before the start.
    registered(s, "fzp0", "pw");
    for i in 0..2 {
        let nick = format!("fzp{i}");
        let p = protected(s, &nick, "pw");
        p.hello();
        peers.push(p);
    }
    peers
}

#[test]
fn every_part_2_to_5_code_garbled_from_many_addresses_leaves_the_canary_answered() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        default_hook(info);
    }));
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    common::operator_account(&data, "fzp1", "pw");
    let s = server_with(|c| {
        c.store = StoreKind::Sqlite(data.clone());
        c.live.operators = vec!["fzp1".into()];
        c.live.mailbox = 20;
        c.metrics = Some("127.0.0.1:0".parse().unwrap());
    });
    let canary = Peer::new(&s);
    canary.login("canary");
    canary.prove();
    canary.join("Pets");
    round_trip(&canary, 0);
    let peers = fuzzers(&s);
    let codes = codes();
    assert!(codes.contains(&code::MAIL_REFUSE) && codes.contains(&code::PROVE));
    let seed = std::env::var("FUZZ_CANARY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(SEED);
    let mut rng = Rng(seed | 1);
    let mut sent_per_code = vec![0usize; codes.len()];
    let started = Instant::now();
    for n in 0..DATAGRAMS {
        let k = rng.below(codes.len());
        let code = match rng.below(50) {
            0 => *rng.pick(&[code::ERROR, code::PONG, code::SEALED, 0, 65535]),
            // Some classic requests, to reach the states they make (channels joined,
            // messages kept for users away).
            1..=4 => *rng.pick(&[
                code::JOIN_REQ,
                code::PART_REQ,
                code::SEND_PUBLIC,
                code::SEND_PRIVATE,
                code::LIST_CHANNELS,
            ]),
            _ => {
                sent_per_code[k] += 1;
                codes[k]
            }
        };
        let body = payload(&mut rng);
        let mut datagram = code.to_be_bytes().to_vec();
        datagram.extend_from_slice(&body);
        match rng.below(10) {
            // A guest's own socket.
            0..=5 => peers[rng.below(GUESTS as usize)].send_raw(&datagram),
            // A password session: sealed, so only text reaches the handler.
            6 => {
                let p = &peers[GUESTS as usize + rng.below(2)];
                p.send_code(code, &String::from_utf8_lossy(&body));
            }
            // A stranger with a forged source address.
            _ => {
                let from = SocketAddr::from(([127, 0, 30, rng.below(256) as u8], 3000));
                assert!(spoof(from, s.addr(), &datagram), "raw sockets need root");
            }
        }
        if n % 50 == 49 {
            // Some room for the server's queues, so the run stays a fuzz, not a flood.
            std::thread::sleep(Duration::from_millis(1));
        }
        if n % PROBE_EVERY == PROBE_EVERY - 1 {
            round_trip(&canary, n / PROBE_EVERY + 1);
        }
    }
    assert!(
        sent_per_code.iter().all(|&n| n > 0),
        "every code fuzzed: {sent_per_code:?}"
    );
    // After the run: the canary is still logged in where it was, answered, and nothing
    // panicked.
    round_trip(&canary, usize::MAX);
    assert_eq!(s.state().address_of("canary"), Some(canary.addr()));
    canary.send(Request::ListChannels);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut listed = false;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match canary.recv_within(left) {
            Some((code::CHANNEL_ITEM, item)) if item.starts_with("Pets ") => {
                listed = true;
                break;
            }
            Some(_) => {}
            None => break,
        }
    }
    assert!(listed, "the canary's LIST_CHANNELS is answered");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "a server thread panicked");
    s.state().check_invariants().unwrap();
    let page = common::metrics_page(&s);
    let dropped: Vec<&str> = page
        .lines()
        .filter(|l| {
            l.starts_with("udpchat_dropped_total")
                || l.starts_with("udpchat_datagrams_received_total")
        })
        .collect();
    eprintln!(
        "fuzzed {} codes with {DATAGRAMS} datagrams in {:?}: {dropped:?}",
        codes.len(),
        started.elapsed()
    );
    s.shutdown().expect("the server ends cleanly");
    assert_eq!(PANICS.load(Ordering::SeqCst), 0);
}
