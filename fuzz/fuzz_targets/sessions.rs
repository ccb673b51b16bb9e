//! Fuzz target for the state machine: sequences of datagrams from up to eight addresses,
//! some of them logged in to start with, with an injected clock that jumps forward and
//! idle sweeps in between. After every step the state's invariants hold, everything the
//! handler queued is a valid event that fits in one UDP datagram and goes to one of the
//! eight clients, and its fan-outs, planned as a sender would (batches for members granted
//! `batch`), reach each member as the same events in the same order.
#![no_main]

use std::collections::HashMap;
use std::net::{Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use udpchat::config::classic_channels;
use udpchat::datagram::Incoming;
use udpchat::delivery::{Job, Planner};
use udpchat::handler::{Handler, Outbox};
use proto::{batch, code, Event, MAX_UDP_PAYLOAD};
use udpchat::state::State;

const IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// Request codes (the community's of part 5 too), plus a few a server must refuse (its
/// own events, unknown, extremes).
const CODES: [u16; 33] = [
    code::LOGIN_REQ,
    code::LOGOFF,
    code::JOIN_REQ,
    code::PART_REQ,
    code::SEND_PUBLIC,
    code::SEND_PRIVATE,
    code::LIST_CHANNELS,
    code::LIST_USERS,
    code::STILL_HERE,
    code::WHO_REQ,
    code::WHOIS_REQ,
    code::WATCH_REQ,
    code::UNWATCH_REQ,
    code::CAPS_REQ,
    code::PING,
    code::LOGIN_REQ,
    code::JOIN_REQ,
    code::ERROR,
    code::LOGIN_ACK,
    code::USER_ITEM,
    code::HELLO,
    code::CHAN_CREATE,
    code::CHAN_TOPIC,
    code::CHAN_KICK,
    code::CHAN_BAN,
    code::CHAN_UNBAN,
    code::CHAN_MODE,
    code::CHAN_INVITE,
    code::CHAN_DROP,
    code::HISTORY_REQ,
    code::OPER_STATUS,
    0,
    u16::MAX,
];

/// Words that make payloads reach deep states: nicknames that collide ignoring case,
/// the classic titles in several cases, an unknown title, nicknames at and over the
/// 32-byte limit, characters whose lower case differs in length, white space and control
/// characters that make a nickname invalid, the empty word, and what part-5 requests
/// take (a title to create, modes, counts, masks, history forms).
const WORDS: [&str; 43] = [
    "ann",
    "Ann",
    "bob",
    "BOB",
    "cid",
    "dee",
    "x",
    "CurrentEvents",
    "Weather",
    "Gardening",
    "Hobbies",
    "Pets",
    "pets",
    "WEATHER",
    "nowhere",
    "abcdefghijklmnopqrstuvwxyz012345",
    "abcdefghijklmnopqrstuvwxyz0123456",
    "\u{130}stanbul",
    "\u{1e9e}",
    "stra\u{df}e",
    "\t",
    "a\u{7}",
    "\u{a0}",
    "",
    "hello",
    "how are you",
    "Ann bob cid dee",
    "\u{1f600}",
    "batch",
    "batch=512",
    "multicast",
    "Den",
    "den",
    "+m",
    "+i",
    "+l",
    "+o",
    "-o",
    "0",
    "5",
    "spam*",
    "account:ann",
    "last",
];

/// Eight clients, IPv4 and IPv6. Half of the `who` values name one of the first two,
/// so that one client's requests often follow each other and two clients often meet.
fn address(who: u8) -> SocketAddr {
    let i = if who < 128 { who % 2 } else { who % 8 };
    if i < 5 {
        SocketAddr::from(([127, 0, 0, 1], 40_000 + u16::from(i)))
    } else {
        SocketAddr::from((Ipv6Addr::LOCALHOST, 40_000 + u16::from(i)))
    }
}

#[derive(Arbitrary, Debug)]
enum Payload {
    /// Any bytes at all, code included.
    Raw(Vec<u8>),
    /// A known code and words from [`WORDS`] joined by one space.
    Known { code: u8, words: Vec<u8> },
}

impl Payload {
    fn datagram(&self) -> Vec<u8> {
        match self {
            Payload::Raw(bytes) => bytes.clone(),
            Payload::Known { code, words } => {
                let mut d = CODES[usize::from(*code) % CODES.len()]
                    .to_be_bytes()
                    .to_vec();
                for (i, w) in words.iter().take(8).enumerate() {
                    if i > 0 {
                        d.push(b' ');
                    }
                    d.extend_from_slice(WORDS[usize::from(*w) % WORDS.len()].as_bytes());
                }
                d
            }
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Step {
    who: u8,
    /// How far the clock moves before this step; see [`Step::advance`].
    wait: u8,
    /// Whether an idle sweep runs after the datagram.
    sweep: bool,
    payload: Payload,
}

impl Step {
    /// Mostly a few seconds, so users stay on for many steps; sometimes minutes, so the
    /// idle timeout fires between and during conversations.
    fn advance(&self) -> Duration {
        match self.wait {
            0..=223 => Duration::from_secs(u64::from(self.wait % 4)),
            w => Duration::from_secs(u64::from(w - 223) * 8),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Session {
    /// Picks the size limit, so `datagram too long` is reachable with short inputs.
    limit: u8,
    /// Picks the user cap, so `server full` is reachable.
    cap: u8,
    /// How many addresses start logged in (as `u0`, `u1`, ...; the low four bits, up to
    /// eight) and whether they start in `Pets` (bit 4): without a head start most short
    /// inputs never get past `please log in` to the channel rules.
    head_start: u8,
    steps: Vec<Step>,
}

fn check(out: &Outbox, state: &State, what: &str) {
    if let Err(broken) = state.check_invariants() {
        panic!("after {what}: {broken}");
    }
    check_batches(out, what);
    for (to, d) in out.datagrams() {
        assert!(
            (128..136).any(|i| address(i) == to),
            "after {what}: datagram to a stranger {to}"
        );
        assert!(
            d.len() <= MAX_UDP_PAYLOAD,
            "after {what}: {} bytes",
            d.len()
        );
        if let Err(e) = Event::decode(&d) {
            panic!("after {what}: {d:?} does not decode: {e}");
        }
    }
}

/// The outbox's fan-outs as one sender round: every member gets its events in order, in
/// datagrams within its batch size.
fn check_batches(out: &Outbox, what: &str) {
    let jobs: Vec<Job> = out
        .fanouts
        .iter()
        .map(|f| Job {
            payload: f.payload.clone(),
            members: f.members.clone(),
        })
        .collect();
    let mut want: HashMap<SocketAddr, Vec<Vec<u8>>> = HashMap::new();
    let mut limit: HashMap<SocketAddr, u16> = HashMap::new();
    for j in &jobs {
        for m in j.members.iter() {
            want.entry(m.addr).or_default().push(j.payload.to_vec());
            let l = limit.entry(m.addr).or_insert(m.batch);
            *l = (*l).min(m.batch);
        }
    }
    let mut planner = Planner::new();
    planner.plan(&jobs, |_| true);
    let mut got: HashMap<SocketAddr, Vec<Vec<u8>>> = HashMap::new();
    for (bytes, to, _) in planner.datagrams(&jobs) {
        let events: Vec<Vec<u8>> = match batch::events(bytes) {
            Ok(inner) => {
                let l = usize::from(limit[&to]);
                assert!(bytes.len() <= l, "after {what}: a batch of {} for {l}", bytes.len());
                inner.map(<[u8]>::to_vec).collect()
            }
            Err(_) => vec![bytes.to_vec()],
        };
        got.entry(to).or_default().extend(events);
    }
    assert_eq!(got, want, "after {what}: batched delivery differs");
}

fuzz_target!(|session: Session| {
    let limit = [16, 64, 1024, MAX_UDP_PAYLOAD][usize::from(session.limit % 4)];
    let cap = 1 + usize::from(session.cap % 8);
    let state = Arc::new(State::new(&classic_channels(), cap));
    let handler = Handler::new(state.clone(), limit, IDLE_TIMEOUT);
    let mut now = Instant::now();
    let wall = SystemTime::now();
    let mut out = Outbox::new();
    let join = [&code::JOIN_REQ.to_be_bytes()[..], b"Pets"].concat();
    for i in 0..(session.head_start & 0xf) % 9 {
        let from = address(128 + i);
        let login = [&code::LOGIN_REQ.to_be_bytes()[..], b"u", &[b'0' + i]].concat();
        out.clear();
        handler.handle(now, wall, Incoming::new(from, &login), &mut out);
        check(&out, &state, &format!("login of u{i}"));
        if session.head_start & 0x10 != 0 {
            out.clear();
            handler.handle(now, wall, Incoming::new(from, &join), &mut out);
            check(&out, &state, &format!("join of u{i}"));
        }
    }
    for (n, step) in session.steps.iter().enumerate() {
        now += step.advance();
        let from = address(step.who);
        out.clear();
        let bytes = step.payload.datagram();
        handler.handle(now, wall, Incoming::new(from, &bytes), &mut out);
        check(&out, &state, &format!("step {n} from {from}"));
        if step.sweep {
            out.clear();
            for (idle, _) in handler.idle_users(now) {
                handler.expire(now, idle, &mut out);
            }
            check(&out, &state, &format!("sweep after step {n}"));
            assert!(handler.idle_users(now).is_empty(), "sweep left idle users");
        }
    }
});
