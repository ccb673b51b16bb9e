//! Property tests: the codec round-trips every request and event and never panics on
//! arbitrary bytes; random sessions of several clients keep the state consistent and obey
//! the rules a user of the protocol can check from the datagrams it gets; and any
//! interleaving of fan-outs delivered through batches reaches each member exactly as one
//! event per datagram would.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use proptest::prelude::*;
use proto::{batch, code};
use proto::{ChannelInfo, DecodeError, Event, Request, DEFAULT_MAX_DATAGRAM, MAX_UDP_PAYLOAD};
use udpchat::config::classic_channels;
use udpchat::datagram::Incoming;
use udpchat::delivery::{Job, Planner};
use udpchat::handler::{Handler, Outbox};
use udpchat::server::send::sender_of;
use udpchat::state::{ChannelId, Member, State};

/// Any text, spaces included: fits a field that is the last of its datagram.
fn text() -> impl Strategy<Value = String> {
    any::<String>()
}

/// A field followed by another one: the decoder splits at the first space, so it has none.
fn word() -> impl Strategy<Value = String> {
    "[^ ]{0,24}"
}

fn request() -> impl Strategy<Value = Request<'static>> {
    // Requests borrow their text; the generated strings are leaked, which is a few
    // kilobytes per test run.
    fn leak(s: String) -> &'static str {
        Box::leak(s.into_boxed_str())
    }
    prop_oneof![
        text().prop_map(|s| Request::Login { nick: leak(s) }),
        Just(Request::Logoff),
        text().prop_map(|s| Request::Join { title: leak(s) }),
        text().prop_map(|s| Request::Part { title: leak(s) }),
        text().prop_map(|s| Request::SendPublic { text: leak(s) }),
        (word(), text()).prop_map(|(r, t)| Request::SendPrivate {
            recipient: leak(r),
            text: leak(t),
        }),
        Just(Request::ListChannels),
        Just(Request::ListUsers),
        Just(Request::StillHere),
        text().prop_map(|s| Request::Who { prefix: leak(s) }),
        text().prop_map(|s| Request::Whois { nick: leak(s) }),
        text().prop_map(|s| Request::Watch { nicks: leak(s) }),
        text().prop_map(|s| Request::Unwatch { nicks: leak(s) }),
    ]
}

/// An event as owned strings, so that the strategy does not have to borrow.
#[derive(Debug, Clone)]
enum OwnedEvent {
    Error(String),
    LoginAck(String),
    JoinAck(String, u32, String),
    PartAck(String, u32, String),
    ChannelItem(String, u32, String),
    PublicMsg(String, String, String),
    PrivateMsg(String, String),
    UserJoins(String, String),
    UserParts(String, String),
    UserItem(String, u64, String),
    UserOnline(String),
    UserOffline(String),
}

impl OwnedEvent {
    fn event(&self) -> Event<'_> {
        fn info<'a>(title: &'a str, count: u32, description: &'a str) -> ChannelInfo<'a> {
            ChannelInfo {
                title,
                count,
                description,
            }
        }
        match self {
            OwnedEvent::Error(m) => Event::Error { message: m },
            OwnedEvent::LoginAck(n) => Event::LoginAck { nick: n },
            OwnedEvent::JoinAck(t, c, d) => Event::JoinAck(info(t, *c, d)),
            OwnedEvent::PartAck(t, c, d) => Event::PartAck(info(t, *c, d)),
            OwnedEvent::ChannelItem(t, c, d) => Event::ChannelItem(info(t, *c, d)),
            OwnedEvent::PublicMsg(t, s, x) => Event::PublicMsg {
                title: t,
                sender: s,
                text: x,
            },
            OwnedEvent::PrivateMsg(s, x) => Event::PrivateMsg { sender: s, text: x },
            OwnedEvent::UserJoins(t, n) => Event::UserJoins { title: t, nick: n },
            OwnedEvent::UserParts(t, n) => Event::UserParts { title: t, nick: n },
            OwnedEvent::UserItem(n, s, c) => Event::UserItem {
                nick: n,
                seconds: *s,
                channels: c,
            },
            OwnedEvent::UserOnline(n) => Event::UserOnline { nick: n },
            OwnedEvent::UserOffline(n) => Event::UserOffline { nick: n },
        }
    }
}

fn event() -> impl Strategy<Value = OwnedEvent> {
    prop_oneof![
        text().prop_map(OwnedEvent::Error),
        text().prop_map(OwnedEvent::LoginAck),
        (word(), any::<u32>(), text()).prop_map(|(t, c, d)| OwnedEvent::JoinAck(t, c, d)),
        (word(), any::<u32>(), text()).prop_map(|(t, c, d)| OwnedEvent::PartAck(t, c, d)),
        (word(), any::<u32>(), text()).prop_map(|(t, c, d)| OwnedEvent::ChannelItem(t, c, d)),
        (word(), word(), text()).prop_map(|(t, s, x)| OwnedEvent::PublicMsg(t, s, x)),
        (word(), text()).prop_map(|(s, x)| OwnedEvent::PrivateMsg(s, x)),
        (word(), text()).prop_map(|(t, n)| OwnedEvent::UserJoins(t, n)),
        (word(), text()).prop_map(|(t, n)| OwnedEvent::UserParts(t, n)),
        (word(), any::<u64>(), text()).prop_map(|(n, s, c)| OwnedEvent::UserItem(n, s, c)),
        text().prop_map(OwnedEvent::UserOnline),
        text().prop_map(OwnedEvent::UserOffline),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_request_round_trips(req in request()) {
        let bytes = req.to_bytes();
        prop_assert_eq!(Request::decode(&bytes, MAX_UDP_PAYLOAD), Ok(req));
        // Exactly as long as it needs to be: the limit that admits it is its length.
        prop_assert_eq!(Request::decode(&bytes, bytes.len()), Ok(req));
    }

    #[test]
    fn every_event_round_trips(owned in event()) {
        let e = owned.event();
        let bytes = e.to_bytes();
        prop_assert_eq!(Event::decode(&bytes), Ok(e));
    }

    #[test]
    fn request_decode_never_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..64),
        max in 0usize..80,
    ) {
        match Request::decode(&bytes, max) {
            Ok(_) => prop_assert!(bytes.len() <= max),
            Err(DecodeError::TooShort) => prop_assert!(bytes.len() < 2),
            Err(DecodeError::TooLong { len, .. }) => prop_assert!(len > max),
            Err(_) => {}
        }
        let _ = Event::decode(&bytes);
    }

    #[test]
    fn request_decode_never_panics_on_known_codes(
        code in prop::sample::select(proto::REQUEST_CODES),
        payload in proptest::collection::vec(any::<u8>(), 0..40),
    ) {
        // Random bytes rarely start with a known code; these get past the code check.
        let mut bytes = code.to_be_bytes().to_vec();
        bytes.extend_from_slice(&payload);
        let utf8 = std::str::from_utf8(&payload).is_ok();
        match Request::decode(&bytes, DEFAULT_MAX_DATAGRAM) {
            Ok(r) => prop_assert!(utf8 && r.code() == code),
            // Only the parsers of the later parts look into the text: the classic
            // requests and part 2's take any.
            Err(DecodeError::Malformed(c)) => {
                prop_assert!(utf8 && c == code && code > proto::code::UNWATCH_REQ);
            }
            Err(e) => prop_assert_eq!(e, DecodeError::InvalidText(code)),
        }
    }
}

// ---- The state machine ----

const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
const CLIENTS: usize = 4;
const NICKS: [&str; 7] = ["ann", "Ann", "bob", "BOB", "cid", "dee", "bad nick"];
const TITLES: [&str; 9] = [
    "Pets",
    "pets",
    "Weather",
    "WEATHER",
    "Gardening",
    "Hobbies",
    "CurrentEvents",
    "nowhere",
    "",
];

/// CAPS_REQ payloads: batch sizes come and go, so the members' batch sizes in the channel
/// snapshots must follow (`check_invariants`).
const CAPS: &[&str] = &["", "batch", "batch=512", "batch=4000", "junk batch=1"];

fn address(i: usize) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 50_000 + i as u16))
}

#[derive(Debug, Clone)]
enum Op {
    Login(usize),
    Logoff,
    Join(usize),
    Part(usize),
    Public(String),
    Private(usize, String),
    ListUsers,
    ListChannels,
    StillHere,
    Whois(usize),
    Watch(usize),
    Unwatch(usize),
    /// CAPS_REQ with one of [`CAPS`].
    Caps(usize),
    /// The server's idle sweep, not a datagram.
    Sweep,
}

#[derive(Debug, Clone)]
struct Step {
    who: usize,
    /// Seconds the clock moves before the step.
    wait: u64,
    op: Op,
}

fn op() -> impl Strategy<Value = Op> {
    let nick = 0..NICKS.len();
    // Mostly two channels, so that clients meet; the rest for case, unknown and empty.
    let title = prop_oneof![3 => 0..4usize, 1 => 0..TITLES.len()];
    prop_oneof![
        4 => nick.clone().prop_map(Op::Login),
        1 => Just(Op::Logoff),
        5 => title.clone().prop_map(Op::Join),
        2 => title.prop_map(Op::Part),
        3 => "[a-z ]{0,8}".prop_map(Op::Public),
        1 => (nick.clone(), "[a-z ]{0,8}").prop_map(|(n, t)| Op::Private(n, t)),
        3 => Just(Op::ListUsers),
        1 => Just(Op::ListChannels),
        1 => Just(Op::StillHere),
        1 => nick.clone().prop_map(Op::Whois),
        1 => nick.clone().prop_map(Op::Watch),
        1 => nick.prop_map(Op::Unwatch),
        1 => (0..CAPS.len()).prop_map(Op::Caps),
        1 => Just(Op::Sweep),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    // Mostly a few seconds, now and then long enough for the idle timeout to fire.
    let wait = prop_oneof![9 => 0u64..5, 1 => 60u64..200];
    (0..CLIENTS, wait, op()).prop_map(|(who, wait, op)| Step { who, wait, op })
}

fn datagram(op: &Op) -> Vec<u8> {
    match op {
        Op::Login(n) => Request::Login { nick: NICKS[*n] }.to_bytes(),
        Op::Logoff => Request::Logoff.to_bytes(),
        Op::Join(t) => Request::Join { title: TITLES[*t] }.to_bytes(),
        Op::Part(t) => Request::Part { title: TITLES[*t] }.to_bytes(),
        Op::Public(text) => Request::SendPublic { text }.to_bytes(),
        Op::Private(n, text) => Request::SendPrivate {
            recipient: NICKS[*n],
            text,
        }
        .to_bytes(),
        Op::ListUsers => Request::ListUsers.to_bytes(),
        Op::ListChannels => Request::ListChannels.to_bytes(),
        Op::StillHere => Request::StillHere.to_bytes(),
        Op::Whois(n) => Request::Whois { nick: NICKS[*n] }.to_bytes(),
        Op::Watch(n) => Request::Watch { nicks: NICKS[*n] }.to_bytes(),
        Op::Unwatch(n) => Request::Unwatch { nicks: NICKS[*n] }.to_bytes(),
        Op::Caps(c) => Request::Caps { caps: CAPS[*c] }.to_bytes(),
        Op::Sweep => Vec::new(),
    }
}

/// Users whose own channel list holds channel `id`: the membership as the user records
/// see it, independent of the channel's member list that fan-out reads.
fn members_by_user_records(state: &State, id: ChannelId) -> Vec<SocketAddr> {
    let mut v: Vec<SocketAddr> = state
        .users()
        .into_iter()
        .filter(|(_, u)| u.channels.contains(&id))
        .map(|(a, _)| a)
        .collect();
    v.sort();
    v
}

fn run_session(steps: &[Step]) -> Result<(), TestCaseError> {
    let state = Arc::new(State::new(&classic_channels(), 100));
    let handler = Handler::new(state.clone(), DEFAULT_MAX_DATAGRAM, IDLE_TIMEOUT);
    let mut now = Instant::now();
    let wall = SystemTime::now();
    let mut out = Outbox::new();
    // Per client: title and count of its last JOIN_ACK, dropped as soon as it hears of
    // any move (its own or another's) that could change that channel's membership.
    let mut last_join_ack: HashMap<SocketAddr, (String, u32)> = HashMap::new();

    // Everyone starts logged in, so that random steps are rarely refused with
    // `please log in`; the random logins then rename, clash and log off.
    for i in 0..CLIENTS {
        let nick = format!("u{i}");
        handler.handle(
            now,
            wall,
            Incoming::new(address(i), &Request::Login { nick: &nick }.to_bytes()),
            &mut out,
        );
    }
    prop_assert_eq!(state.user_count(), CLIENTS);

    for (n, step) in steps.iter().enumerate() {
        now += Duration::from_secs(step.wait);
        let from = address(step.who);
        let before = state
            .user(from)
            .map(|u| (u.nick.to_string(), u.channels.first().copied()));
        out.clear();
        if let Op::Sweep = step.op {
            for (idle, _) in handler.idle_users(now) {
                handler.expire(now, idle, &mut out);
            }
        } else {
            let bytes = datagram(&step.op);
            handler.handle(now, wall, Incoming::new(from, &bytes), &mut out);
        }

        let sent = out.datagrams();
        let mut events = Vec::with_capacity(sent.len());
        for (to, bytes) in &sent {
            match Event::decode(bytes) {
                Ok(e) => events.push((*to, e)),
                Err(e) => return Err(TestCaseError::fail(format!("step {n}: {e}"))),
            }
        }
        if let Err(broken) = state.check_invariants() {
            return Err(TestCaseError::fail(format!("step {n} {step:?}: {broken}")));
        }

        let mut lower: Vec<String> = state
            .users()
            .iter()
            .map(|(_, u)| u.nick.to_lowercase())
            .collect();
        let users = lower.len();
        lower.sort();
        lower.dedup();
        prop_assert_eq!(
            lower.len(),
            users,
            "step {}: nicknames clash ignoring case",
            n
        );

        match (&step.op, &before) {
            (Op::Public(text), Some((nick, Some(id)))) => {
                let ch = state.channel(*id).expect("the current channel exists");
                let title = &*ch.title;
                let mut got: Vec<SocketAddr> = Vec::new();
                for (to, e) in &events {
                    prop_assert_eq!(
                        *e,
                        Event::PublicMsg {
                            title,
                            sender: nick.as_str(),
                            text: text.as_str(),
                        }
                    );
                    got.push(*to);
                }
                got.sort();
                prop_assert!(got.contains(&from), "step {}: sender missed its message", n);
                prop_assert_eq!(got, members_by_user_records(&state, *id), "step {}", n);
            }
            (Op::Logoff, Some((nick, _))) => {
                prop_assert!(state.user(from).is_none());
                prop_assert_eq!(state.address_of(nick), None);
                for ch in state.channels().iter() {
                    prop_assert!(
                        !ch.snapshot().iter().any(|m| m.addr == from),
                        "step {}: {} still lists a logged-off address",
                        n,
                        ch.title
                    );
                }
            }
            (Op::ListUsers, Some((nick, _))) => {
                if let Some((title, count)) = last_join_ack.get(&from) {
                    let items: Vec<&str> = events
                        .iter()
                        .filter_map(|(to, e)| match e {
                            Event::UserItem { nick, .. } if *to == from => Some(*nick),
                            _ => None,
                        })
                        .collect();
                    prop_assert_eq!(
                        items.len(),
                        *count as usize,
                        "step {}: {} of {} after JOIN_ACK {} {}",
                        n,
                        items.len(),
                        nick,
                        title,
                        count
                    );
                    prop_assert!(items.contains(&nick.as_str()), "step {}", n);
                }
            }
            _ => {}
        }

        for (to, e) in &events {
            match e {
                Event::JoinAck(info) => {
                    last_join_ack.insert(*to, (info.title.to_string(), info.count));
                }
                Event::PartAck(_)
                | Event::UserJoins { .. }
                | Event::UserParts { .. }
                | Event::LoginAck { .. } => {
                    last_join_ack.remove(to);
                }
                _ => {}
            }
        }
        // Logged off or timed out: what it was told before no longer describes it.
        last_join_ack.retain(|a, _| state.user(*a).is_some());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn sessions_keep_state_consistent_and_obey_the_rules(
        steps in proptest::collection::vec(step(), 1..80),
    ) {
        run_session(&steps)?;
    }
}

// ---- batched delivery: the same events, in the same order, as one by one ----

/// What happens to the channels between fan-outs.
#[derive(Debug, Clone)]
enum Change {
    /// Member `m` joins channel `c` (nothing if it is in it).
    Join(usize, usize),
    /// Member `m` leaves channel `c` (nothing if it is not in it).
    Part(usize, usize),
    /// Member `m` asks for batches of this size (0: classic), in every channel it is in.
    Caps(usize, u16),
    /// A fan-out of an event of this many text bytes to channel `c`'s members now.
    Publish(usize, usize),
}

const MEMBERS: usize = 12;
const CHANNELS: usize = 3;

fn change() -> impl Strategy<Value = Change> {
    let size = prop_oneof![Just(0u16), Just(512), Just(600), Just(1200), Just(65000)];
    prop_oneof![
        3 => (0..MEMBERS, 0..CHANNELS).prop_map(|(m, c)| Change::Join(m, c)),
        1 => (0..MEMBERS, 0..CHANNELS).prop_map(|(m, c)| Change::Part(m, c)),
        1 => (0..MEMBERS, size).prop_map(|(m, b)| Change::Caps(m, b)),
        // Texts up to 700 bytes: some events fit no 512-byte batch with another.
        6 => (0..CHANNELS, 0..700usize).prop_map(|(c, n)| Change::Publish(c, n)),
    ]
}

/// Plays `changes`, returning the fan-outs in queue order.
fn fanouts(changes: &[Change]) -> Vec<Job> {
    let mut batch = [0u16; MEMBERS];
    let mut lists: Vec<Vec<usize>> = vec![Vec::new(); CHANNELS];
    let snap = |list: &[usize], batch: &[u16]| -> Arc<[Member]> {
        list.iter()
            .map(|&m| Member::new(address(m), batch[m]))
            .collect()
    };
    // Snapshots are shared between fan-outs until membership or caps change, as in a channel.
    let mut snaps: Vec<Arc<[Member]>> = (0..CHANNELS).map(|_| snap(&[], &batch)).collect();
    let mut jobs = Vec::new();
    for (i, ch) in changes.iter().enumerate() {
        match *ch {
            Change::Join(m, c) if !lists[c].contains(&m) => {
                lists[c].push(m);
                snaps[c] = snap(&lists[c], &batch);
            }
            Change::Part(m, c) => {
                lists[c].retain(|&x| x != m);
                snaps[c] = snap(&lists[c], &batch);
            }
            Change::Caps(m, b) => {
                batch[m] = b;
                for c in 0..CHANNELS {
                    snaps[c] = snap(&lists[c], &batch);
                }
            }
            Change::Publish(c, n) => jobs.push(Job {
                payload: Event::PublicMsg {
                    title: "ch",
                    sender: &c.to_string(),
                    text: &format!("{i} {}", "x".repeat(n)),
                }
                .to_bytes()
                .into(),
                members: snaps[c].clone(),
            }),
            Change::Join(..) => {}
        }
    }
    jobs
}

/// Delivers `jobs` in rounds of the given sizes through `senders` planners, as the
/// senders would; checks every datagram against its member's batch size; returns what
/// each address receives, batches unpacked.
fn deliver(
    jobs: &[Job],
    rounds: &[usize],
    senders: usize,
) -> Result<HashMap<SocketAddr, Vec<Vec<u8>>>, TestCaseError> {
    let mut got: HashMap<SocketAddr, Vec<Vec<u8>>> = HashMap::new();
    let mut planners: Vec<Planner> = (0..senders).map(|_| Planner::new()).collect();
    let mut at = 0;
    let mut sizes = rounds.iter().cycle();
    while at < jobs.len() {
        let n = (*sizes.next().unwrap_or(&1)).clamp(1, jobs.len() - at);
        let round = &jobs[at..at + n];
        at += n;
        // The smallest size each member had in this round's snapshots bounds its batches.
        let mut limit: HashMap<SocketAddr, u16> = HashMap::new();
        for m in round.iter().flat_map(|j| j.members.iter()) {
            let l = limit.entry(m.addr).or_insert(m.batch);
            *l = (*l).min(m.batch);
        }
        for (i, p) in planners.iter_mut().enumerate() {
            p.plan(round, |m| sender_of(m, senders) == i);
            for (bytes, to, count) in p.datagrams(round) {
                let entries: Vec<Vec<u8>> = if bytes[..2] == code::BATCH.to_be_bytes() {
                    let l = usize::from(limit[&to]);
                    prop_assert!(
                        l > 0 && bytes.len() <= l,
                        "{} bytes to a member of {}",
                        bytes.len(),
                        l
                    );
                    batch::events(bytes)
                        .map_err(|e| TestCaseError::fail(format!("{e}")))?
                        .map(<[u8]>::to_vec)
                        .collect()
                } else {
                    vec![bytes.to_vec()]
                };
                prop_assert_eq!(entries.len(), count as usize);
                got.entry(to).or_default().extend(entries);
            }
        }
    }
    Ok(got)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// However the fan-outs queue up (rounds of any size, any number of senders), and
    /// whatever the members' batch sizes and membership changes in between, each member
    /// gets the same events in the same order as with one datagram per event.
    #[test]
    fn batched_delivery_keeps_each_members_events_and_order(
        changes in proptest::collection::vec(change(), 1..120),
        rounds in proptest::collection::vec(1usize..70, 1..8),
        senders in 1usize..4,
    ) {
        let jobs = fanouts(&changes);
        let mut want: HashMap<SocketAddr, Vec<Vec<u8>>> = HashMap::new();
        for j in &jobs {
            for m in j.members.iter() {
                want.entry(m.addr).or_default().push(j.payload.to_vec());
            }
        }
        let got = deliver(&jobs, &rounds, senders)?;
        prop_assert_eq!(got, want);
    }
}
