//! Unit tests of the session, with time injected and no socket: what it sends and says
//! when caps go unanswered, when PINGs go unanswered, when a line comes for a prompt that
//! changed, when many lines are pasted, on multicast channels and after a reconnect. The
//! fixture plays the shell: it drains the session's queues after every input and carries
//! out its effects, and it moves time on from timer to timer as the session asks.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::io::{
    Ask, AskKind, Effect, Input, Options, Out, Place, Shown, Target, Transmit, UiKind,
};
use super::machine::{Session, CAPS_WAIT, WANTED_CAPS, WANTED_CAPS_MULTICAST};
use super::paths::{Drops, Pairing, Path, PAIR_FOR};
use super::state::{Caps, Proof};
use crate::net::NetEvent;
use crate::secure::Pin;
use proto::{code, encode_raw, errors};

/// What the client says in HELLO.
const HELLO: &str = concat!("chat-client/", env!("CARGO_PKG_VERSION"));

struct Fixture {
    session: Session,
    t: Instant,
    /// Datagrams the session sent, as (code, payload), not looked at yet.
    sent: VecDeque<(u16, String)>,
    /// What it told the interface, not looked at yet.
    outs: VecDeque<Out>,
    /// The groups it listens to.
    listening: BTreeSet<SocketAddr>,
    /// The pinned keys, by server.
    pins: HashMap<String, String>,
}

fn fixture(ui: UiKind) -> Fixture {
    fixture_with(ui, |_| {})
}

/// A session as `ann`, set up by `options` too, started (its first LOGIN_REQ is sent).
fn fixture_with(ui: UiKind, options: impl FnOnce(&mut Options)) -> Fixture {
    let mut opts = Options {
        nick: Some("ann".into()),
        ..Options::default()
    };
    options(&mut opts);
    let t = Instant::now();
    let server = "127.0.0.1:2027".parse().unwrap();
    let mut f = Fixture {
        session: Session::new(opts, ui, server, t),
        t,
        sent: VecDeque::new(),
        outs: VecDeque::new(),
        listening: BTreeSet::new(),
        pins: HashMap::new(),
    };
    f.pump();
    f
}

/// A session as `ann`, logged in; the caps request is left unanswered.
fn chatting(ui: UiKind) -> Fixture {
    let mut f = fixture(ui);
    f.logged_in();
    f
}

impl Fixture {
    /// Carries out what the session asked for, as the shell does.
    fn pump(&mut self) {
        loop {
            let mut answers = Vec::new();
            while let Some(t) = self.session.poll_transmit() {
                let datagram = match t {
                    Transmit::Datagram(d) => d,
                    Transmit::Seal { finish, .. } => finish,
                    Transmit::Unseal => continue,
                };
                self.sent.push_back((
                    u16::from_be_bytes([datagram[0], datagram[1]]),
                    String::from_utf8_lossy(&datagram[2..]).into_owned(),
                ));
            }
            while let Some(effect) = self.session.poll_effect() {
                match effect {
                    Effect::Listen(group) => {
                        self.listening.insert(group);
                    }
                    Effect::Unlisten(group) => {
                        self.listening.remove(&group);
                    }
                    Effect::CheckPin { server, key } => {
                        let shown = key.to_base64();
                        let pin = match self.pins.get(&server) {
                            Some(pinned) if *pinned == shown => Pin::Same,
                            Some(pinned) => Pin::Changed(pinned.clone()),
                            None => {
                                self.pins.insert(server, shown);
                                Pin::New
                            }
                        };
                        answers.push(Input::Pinned { key, pin: Ok(pin) });
                    }
                }
            }
            self.outs
                .extend(std::iter::from_fn(|| self.session.poll_output()));
            if answers.is_empty() {
                return;
            }
            for answer in answers {
                self.session.handle(answer, self.t);
            }
        }
    }

    fn handle(&mut self, input: Input) {
        self.session.handle(input, self.t);
        self.pump();
    }

    /// The next datagram the client sent, as (code, payload).
    fn sent(&mut self) -> Option<(u16, String)> {
        self.sent.pop_front()
    }

    #[track_caller]
    fn expect_sent(&mut self, code: u16, payload: &str) {
        assert_eq!(self.sent(), Some((code, payload.to_string())));
    }

    fn server_says(&mut self, code: u16, payload: &str) {
        let mut d = Vec::new();
        encode_raw(code, payload, &mut d);
        self.handle(Input::Net(NetEvent::Datagram(d)));
    }

    /// Moves time on by `by`, from timer to timer as the session asks; each timer that
    /// comes due must do something (or the shell would spin).
    #[track_caller]
    fn later(&mut self, by: Duration) {
        let until = self.t + by;
        while let Some(at) = self.session.poll_timeout().filter(|at| *at <= until) {
            self.t = self.t.max(at);
            self.handle(Input::Timeout);
            let next = self.session.poll_timeout();
            assert!(
                next.is_none_or(|n| n > self.t),
                "a timer came due and did nothing"
            );
        }
        self.t = until;
    }

    /// What was shown since the last look.
    fn shown(&mut self) -> Vec<Shown> {
        self.outs
            .drain(..)
            .filter_map(|o| match o {
                Out::Line(s) => Some(s),
                _ => None,
            })
            .collect()
    }

    fn lines(&mut self) -> Vec<String> {
        self.take().0
    }

    /// Whether a line said since the last look holds `text`.
    fn said(&mut self, text: &str) -> bool {
        self.lines().iter().any(|l| l.contains(text))
    }

    /// The lines said since the last look, and the last ask among them.
    fn take(&mut self) -> (Vec<String>, Option<Ask>) {
        let mut lines = Vec::new();
        let mut ask = None;
        for out in self.outs.drain(..) {
            match out {
                Out::Line(s) => lines.push(s.text),
                Out::Ask(a) => ask = Some(a),
                _ => {}
            }
        }
        (lines, ask)
    }

    fn last_ask(&mut self) -> Option<Ask> {
        self.take().1
    }

    fn type_line(&mut self, serial: u64, kind: AskKind, text: &str) {
        self.handle(Input::Answer {
            serial,
            kind,
            text: text.into(),
            to: Target::Current,
        });
    }

    /// Types a chat line at the latest chat prompt.
    fn chat(&mut self, text: &str) {
        self.type_line(self.session.asking.serial, AskKind::Chat, text);
    }

    /// The server says `LOGIN_ACK` to ann; she asks for `caps`, says HELLO and asks to
    /// prove her address.
    #[track_caller]
    fn login_acked(&mut self, caps: &str) {
        self.server_says(code::LOGIN_ACK, "ann");
        self.expect_sent(code::CAPS_REQ, caps);
        self.expect_sent(code::HELLO, HELLO);
        self.expect_sent(code::PROVE_REQ, "");
    }

    /// The server takes the LOGIN_REQ of ann; she asks for `caps`, says HELLO and proves
    /// her address.
    #[track_caller]
    fn accepted(&mut self, caps: &str) {
        self.expect_sent(code::LOGIN_REQ, "ann");
        self.login_acked(caps);
        self.server_says(code::PROVE_TOKEN, "t0ken");
        // The echo goes after whatever the login sent meanwhile (rejoins).
        let echo = (code::PROVE, "t0ken".to_string());
        let at = self.sent.iter().position(|d| *d == echo);
        assert!(at.is_some(), "the token was not echoed: {:?}", self.sent);
        self.sent.retain(|d| *d != echo);
        self.server_says(code::PROVED, "");
        assert_eq!(self.session.link.proof, Proof::Proved);
    }

    /// Logs in as ann; the caps request is left unanswered.
    #[track_caller]
    fn logged_in(&mut self) {
        self.accepted(WANTED_CAPS_MULTICAST);
    }

    /// ann joins `title` (`count` members) at the chat prompt.
    #[track_caller]
    fn joins(&mut self, title: &str, count: u32) {
        self.chat(&format!("/join {title}"));
        self.expect_sent(code::JOIN_REQ, title);
        self.server_says(code::JOIN_ACK, &format!("{title} {count} about {title}"));
    }

    /// The server forgets ann, who logs in again and asks to join `rejoin` again.
    #[track_caller]
    fn forgotten_and_back(&mut self, rejoin: &str) {
        self.server_says(code::ERROR, errors::PLEASE_LOG_IN);
        self.accepted(WANTED_CAPS_MULTICAST);
        self.expect_sent(code::JOIN_REQ, rejoin);
    }
}

#[test]
fn a_guest_proves_its_address_and_nothing_of_it_is_shown() {
    let mut f = fixture(UiKind::Editor);
    f.logged_in();
    assert!(f.lines().iter().all(|l| !l.contains("t0ken")));
    assert!(f.sent().is_none(), "nothing more goes out");
}

#[test]
fn an_unanswered_proof_is_asked_for_three_times_then_given_up() {
    let mut f = fixture(UiKind::Editor);
    f.expect_sent(code::LOGIN_REQ, "ann");
    f.login_acked(WANTED_CAPS_MULTICAST);
    f.later(CAPS_WAIT);
    f.expect_sent(code::PROVE_REQ, "");
    f.later(CAPS_WAIT);
    f.expect_sent(code::PROVE_REQ, "");
    f.later(CAPS_WAIT);
    assert_eq!(f.session.link.proof, Proof::Unsupported);
    // A token that comes late is not echoed.
    f.server_says(code::PROVE_TOKEN, "late");
    assert_ne!(f.sent(), Some((code::PROVE, "late".into())));
}

#[test]
fn a_classic_servers_unimplemented_errors_for_caps_hello_and_proof_are_not_shown() {
    let mut f = fixture(UiKind::Editor);
    f.expect_sent(code::LOGIN_REQ, "ann");
    f.server_says(code::LOGIN_ACK, "ann");
    for _ in 0..3 {
        f.server_says(code::ERROR, errors::UNIMPLEMENTED);
    }
    assert_eq!(f.session.link.caps, Caps::None);
    assert_eq!(f.session.link.proof, Proof::Unsupported);
    assert!(!f.said("unimplemented"), "an error was shown");
}

#[test]
fn no_answer_to_caps_means_no_caps_and_classic_keepalives() {
    let mut f = chatting(UiKind::Editor);
    f.later(CAPS_WAIT);
    assert_eq!(f.session.link.caps, Caps::None);
    f.later(Duration::from_secs(30));
    f.expect_sent(code::STILL_HERE, "");
}

#[test]
fn a_classic_servers_unimplemented_error_for_caps_is_not_shown() {
    let mut f = chatting(UiKind::Editor);
    f.server_says(code::ERROR, errors::UNIMPLEMENTED);
    assert_eq!(f.session.link.caps, Caps::None);
    assert!(!f.said("unimplemented"), "the error was shown");
}

#[test]
fn unanswered_pings_lose_the_connection_and_the_channels_come_back_in_order() {
    let mut f = chatting(UiKind::Editor);
    f.server_says(code::CAPS_ACK, "batch=1200");
    for title in ["Pets", "Weather"] {
        f.joins(title, 1);
    }
    f.lines();
    f.later(Duration::from_secs(30));
    f.expect_sent(code::PING, "alive");
    for _ in 0..2 {
        f.later(Duration::from_secs(3));
        f.expect_sent(code::PING, "alive");
    }
    f.later(Duration::from_secs(3));
    assert!(f
        .lines()
        .contains(&"** connection to server lost; reconnecting **".to_string()));
    f.accepted(WANTED_CAPS_MULTICAST);
    // Oldest first, so the current channel is current again.
    f.expect_sent(code::JOIN_REQ, "Pets");
    f.server_says(code::JOIN_ACK, "Pets 1 about Pets");
    f.expect_sent(code::JOIN_REQ, "Weather");
    f.server_says(code::JOIN_ACK, "Weather 1 about Weather");
    let lines = f.lines();
    assert_eq!(
        lines,
        ["** connection to server restored **"],
        "rejoins are quiet"
    );
    assert_eq!(f.session.channels.joined, ["Weather", "Pets"]);
}

#[test]
fn please_log_in_alone_starts_a_reconnect() {
    let mut f = chatting(UiKind::Script);
    f.server_says(code::ERROR, errors::PLEASE_LOG_IN);
    assert!(f
        .lines()
        .contains(&"** connection to server lost; reconnecting **".to_string()));
    f.expect_sent(code::LOGIN_REQ, "ann");
}

#[test]
fn a_line_typed_at_a_prompt_that_changed_is_never_sent() {
    let mut f = chatting(UiKind::Editor);
    let chat = f.last_ask().unwrap();
    assert_eq!(chat.kind, AskKind::Chat);
    f.type_line(chat.serial, AskKind::Chat, "/register");
    let secret = f.last_ask().unwrap();
    assert_eq!(secret.kind, AskKind::Secret);
    // Typed at the chat prompt the user still saw: dropped, said so, nothing sent.
    f.type_line(chat.serial, AskKind::Chat, "hunter2");
    assert_eq!(f.lines(), ["\t** that line was not sent **"]);
    assert_eq!(f.sent(), None);
    // The password goes where it was asked for.
    f.type_line(secret.serial, AskKind::Secret, "hunter2");
    assert_eq!(f.last_ask().unwrap().prompt, "Repeat it: ");
    f.type_line(secret.serial + 1, AskKind::Secret, "other");
    let (lines, chat) = f.take();
    assert_eq!(lines, ["\tThe passwords do not match."]);
    // And a password typed later at the chat prompt is held back.
    let chat = chat.unwrap();
    f.type_line(chat.serial, AskKind::Chat, " hunter2 ");
    assert_eq!(f.lines(), ["\t** not sent: that is a password **"]);
    assert_eq!(f.sent(), None);
}

/// ann, logged in, typed `tulip42` at a password prompt (then a different one to repeat
/// it, so nothing was registered): the session knows it as a password.
fn knows_tulip42() -> Fixture {
    let mut f = chatting(UiKind::Editor);
    f.chat("/register");
    let secret = f.last_ask().unwrap();
    f.type_line(secret.serial, AskKind::Secret, "tulip42");
    f.type_line(secret.serial + 1, AskKind::Secret, "other");
    assert_eq!(f.lines(), ["\tThe passwords do not match."]);
    assert_eq!(f.sent(), None);
    f
}

#[test]
fn no_command_sends_a_password_in_any_argument() {
    let mut f = knows_tulip42();
    for name in crate::command::complete("/") {
        if name == "/quit" {
            // Leaves at once; its arguments are never read, let alone sent.
            continue;
        }
        for args in [
            "tulip42",
            "Den tulip42",
            "Den bob tulip42",
            "Den bob 60 a tulip42 b",
        ] {
            let line = format!("{name} {args}");
            f.chat(&line);
            assert_eq!(
                f.lines(),
                [format!("\t** {name} not sent: it holds a password **")],
                "{line}"
            );
            assert_eq!(f.sent(), None, "{line}");
        }
    }
    // Inside a word, in another case, and the commands that ask for a password.
    f.chat("/msg bob xtulip42x");
    assert_eq!(f.lines(), ["\t** /msg not sent: it holds a password **"]);
    f.chat("/MSG bob Tulip42");
    f.expect_sent(code::SEND_PRIVATE, "bob Tulip42");
    f.chat("/passwd");
    assert_eq!(f.last_ask().unwrap().prompt, "New password: ");
    assert_eq!(f.sent(), None);
}

#[test]
fn no_message_holding_a_password_is_sent_wherever_it_is_typed() {
    let mut f = knows_tulip42();
    f.joins("Pets", 2);
    f.lines();
    for (line, to) in [
        ("my password is tulip42, see?", Target::Current),
        ("//tulip42", Target::Current),
        ("tulip42 hi", Target::Channel("Pets".into())),
        ("psst tulip42", Target::Private("bob".into())),
    ] {
        f.handle(Input::Answer {
            serial: f.session.asking.serial,
            kind: AskKind::Chat,
            text: line.into(),
            to,
        });
        assert_eq!(
            f.lines(),
            ["\t** not sent: that line holds a password **"],
            "{line}"
        );
        assert_eq!(f.sent(), None, "{line}");
    }
    // The line that is the password says so, as before; other lines go out.
    f.chat("tulip42");
    assert_eq!(f.lines(), ["\t** not sent: that is a password **"]);
    f.chat("hello\nabout tulip42\nbye");
    assert_eq!(f.lines(), ["\t** not sent: that line holds a password **"]);
    f.expect_sent(code::SEND_PUBLIC, "hello");
    f.expect_sent(code::SEND_PUBLIC, "bye");
    assert_eq!(f.sent(), None);
}

#[test]
fn a_line_holding_a_password_is_not_queued_while_the_connection_is_down() {
    let mut f = knows_tulip42();
    f.server_says(code::ERROR, errors::PLEASE_LOG_IN);
    f.expect_sent(code::LOGIN_REQ, "ann");
    f.lines();
    f.chat("/nick tulip42");
    assert_eq!(f.lines(), ["\t** /nick not sent: it holds a password **"]);
    f.chat("later");
    f.lines();
    f.login_acked(WANTED_CAPS_MULTICAST);
    f.expect_sent(code::SEND_PUBLIC, "later");
    assert_eq!(f.sent(), None);
}

#[test]
fn a_nickname_holding_a_password_is_not_sent_at_the_nickname_prompt() {
    let mut f = knows_tulip42();
    f.chat("/login");
    f.expect_sent(code::LOGOFF, "ann");
    let ask = f.last_ask().unwrap();
    assert_eq!(ask.kind, AskKind::Nick);
    f.type_line(ask.serial, AskKind::Nick, "tulip42x");
    let (lines, ask) = f.take();
    assert_eq!(lines, ["\t** not sent: that nickname holds a password **"]);
    assert_eq!(f.sent(), None);
    let ask = ask.unwrap();
    f.type_line(ask.serial, AskKind::Nick, "tulip42");
    let (lines, ask) = f.take();
    assert_eq!(
        lines,
        ["\t** not sent: that is a password, not a nickname **"]
    );
    assert_eq!(f.sent(), None);
    let ask = ask.unwrap();
    f.type_line(ask.serial, AskKind::Nick, "carl");
    f.expect_sent(code::LOGIN_REQ, "carl");
}

#[test]
fn a_paste_of_many_lines_is_sent_only_after_a_yes() {
    let mut f = chatting(UiKind::Editor);
    let chat = f.last_ask().unwrap();
    f.type_line(chat.serial, AskKind::Chat, "1\n2\n3\n4\n5\n6\n");
    let confirm = f.last_ask().unwrap();
    assert_eq!(confirm.prompt, "Send these 6 lines? [y/N] ");
    assert_eq!(f.sent(), None);
    f.type_line(confirm.serial, AskKind::Confirm, "y");
    for n in 1..=6 {
        f.expect_sent(code::SEND_PUBLIC, &n.to_string());
    }
    // Up to five go at once.
    let chat = f.last_ask().unwrap();
    f.type_line(chat.serial, AskKind::Chat, "a\r\nb");
    f.expect_sent(code::SEND_PUBLIC, "a");
    f.expect_sent(code::SEND_PUBLIC, "b");
}

#[test]
fn names_from_the_network_are_defused_before_they_name_a_buffer() {
    let mut f = chatting(UiKind::FullScreen);
    f.server_says(code::PRIVATE_MSG, "m\u{1b}]0;x\u{7} hi");
    let places: Vec<Place> = f.shown().into_iter().map(|s| s.place).collect();
    assert_eq!(places.last(), Some(&Place::Private("m^[]0;x^G".into())));
}

// ---- multicast channels (part 4) ----

const KEY: [u8; proto::channel_data::KEY_LEN] = [7; proto::channel_data::KEY_LEN];

fn group() -> SocketAddr {
    "239.77.0.9:24028".parse().unwrap()
}

/// A CHANNEL_DATA with sequence `seq` holding the event `code payload`, tagged with `key`.
fn channel_data(seq: u64, code: u16, payload: &str, key: &[u8]) -> Vec<u8> {
    let mut inner = Vec::new();
    encode_raw(code, payload, &mut inner);
    proto::channel_data::encode(seq, &inner, |signed| proto::channel_data::tag(key, signed))
}

impl Fixture {
    fn group_says(&mut self, datagram: Vec<u8>) {
        self.handle(Input::Net(NetEvent::Group {
            group: group(),
            datagram,
        }));
    }

    /// The server names Pets' group and key.
    fn told_pets_group(&mut self) {
        use base64::Engine as _;
        let key = base64::engine::general_purpose::STANDARD.encode(KEY);
        self.server_says(code::MCAST_GROUP, &format!("Pets 239.77.0.9 24028 {key} 1"));
    }

    /// A probe heard on Pets' group, with sequence `seq`, confirms the group.
    #[track_caller]
    fn probe_confirms(&mut self, seq: u64) {
        self.group_says(channel_data(seq, code::MCAST_PROBE, "Pets", &KEY));
        self.expect_sent(code::MCAST_JOINED, "Pets");
    }

    /// Logged in with multicast granted, in Pets, told Pets' group.
    fn on_pets_group(&mut self) {
        self.logged_in();
        self.server_says(code::CAPS_ACK, "batch=1200 multicast");
        self.joins("Pets", 2);
        self.told_pets_group();
        assert!(self.listening.contains(&group()), "listens to the group");
        self.lines();
    }
}

/// A session as ann in Pets, told Pets' group.
fn on_pets_group() -> Fixture {
    let mut f = fixture(UiKind::Editor);
    f.on_pets_group();
    f
}

#[test]
fn group_events_are_checked_confirmed_and_shown_as_unicast_once() {
    let mut f = on_pets_group();
    // The server still unicasts while we are pending: shown.
    f.server_says(code::PUBLIC_MSG, "Pets bob hi");
    assert_eq!(f.lines(), ["\tbob [Pets]: hi"]);
    // Its twin on the group is not shown again, but confirms the group.
    f.group_says(channel_data(1, code::PUBLIC_MSG, "Pets bob hi", &KEY));
    assert_eq!(f.lines(), Vec::<String>::new());
    f.expect_sent(code::MCAST_JOINED, "Pets");
    // A replay, a forgery, and garbage are dropped and counted.
    f.group_says(channel_data(1, code::PUBLIC_MSG, "Pets bob again", &KEY));
    f.group_says(channel_data(2, code::PUBLIC_MSG, "Pets eve fake", &[9; 32]));
    f.group_says(b"\x02\x58short".to_vec());
    assert_eq!(
        f.session.mcast.drops,
        Drops {
            bad_tag: 1,
            old_sequence: 1,
            too_far: 0,
            malformed: 1
        }
    );
    // A new event on the group: the exact unicast line, in the channel's buffer.
    f.group_says(channel_data(2, code::PUBLIC_MSG, "Pets bob yo", &KEY));
    f.group_says(channel_data(3, code::USER_JOINS, "Pets carl", &KEY));
    // Our own join is never shown, as unicast never sends it.
    f.group_says(channel_data(4, code::USER_JOINS, "Pets ann", &KEY));
    let shown: Vec<(String, Place)> = f.shown().into_iter().map(|s| (s.text, s.place)).collect();
    assert_eq!(
        shown,
        [
            (
                "\tbob [Pets]: yo".to_string(),
                Place::Channel("Pets".into())
            ),
            (
                "\t<carl has entered Pets>".to_string(),
                Place::Channel("Pets".into())
            ),
        ]
    );
    assert_eq!(f.session.mcast.channels["pets"].path, Path::Confirmed);
    f.chat("/status");
    let lines = f.lines();
    assert!(
        lines[1] == "\tMulticast: granted by the server",
        "{lines:?}"
    );
    assert!(
        lines[2].starts_with(
            "\tPets: by multicast on group 239.77.0.9:24028; 2 events by multicast, 1 by unicast"
        ),
        "{lines:?}"
    );
    assert_eq!(
        lines[3],
        "\tGroup datagrams dropped: 3 (bad tag 1, old sequence 1, too far ahead 0, malformed 1)"
    );
}

/// Pets' group key after a member left.
const NEW_KEY: [u8; proto::channel_data::KEY_LEN] = [8; proto::channel_data::KEY_LEN];

impl Fixture {
    /// The server tells Pets' new key, sealing from sequence `from`.
    fn told_new_key(&mut self, from: u64) {
        use base64::Engine as _;
        let key = base64::engine::general_purpose::STANDARD.encode(NEW_KEY);
        self.server_says(
            code::MCAST_GROUP,
            &format!("Pets 239.77.0.9 24028 {key} {from}"),
        );
    }

    /// The texts of the lines shown since the last look that contain `word`.
    fn shown_with(&mut self, word: &str) -> Vec<String> {
        self.lines()
            .into_iter()
            .filter(|l| l.contains(word))
            .collect()
    }
}

/// The attack of issue 20 #6: a member banned (or gone) keeps the key it was told. Once
/// the server's new key is here, what that member tags with the old one is never shown,
/// while the server's own datagrams keep coming through, under either key.
#[test]
fn a_former_members_datagrams_under_the_old_key_are_not_shown_after_the_new_key() {
    let mut f = on_pets_group();
    f.probe_confirms(1);
    f.group_says(channel_data(2, code::PUBLIC_MSG, "Pets bob before", &KEY));
    assert_eq!(f.shown_with("before"), ["\tbob [Pets]: before"]);
    // eve is banned; the server re-keys from sequence 4 on.
    f.told_new_key(4);
    // eve, with the old key, as the operator: at the new key's sequences, far ahead.
    f.group_says(channel_data(4, code::PUBLIC_MSG, "Pets op forged", &KEY));
    f.group_says(channel_data(
        1 << 62,
        code::PUBLIC_MSG,
        "Pets op forged",
        &KEY,
    ));
    // The server's datagram 3, sealed under the old key just before the change, arrives
    // after the announcement: still shown (the overlap).
    f.group_says(channel_data(3, code::PUBLIC_MSG, "Pets bob last", &KEY));
    assert_eq!(f.shown_with("last"), ["\tbob [Pets]: last"]);
    f.group_says(channel_data(3, code::PUBLIC_MSG, "Pets op forged", &KEY));
    // The server's first datagram under the new key: shown, and it confirms again.
    f.group_says(channel_data(4, code::PUBLIC_MSG, "Pets bob new", &NEW_KEY));
    assert_eq!(f.shown_with("new"), ["\tbob [Pets]: new"]);
    f.expect_sent(code::MCAST_JOINED, "Pets");
    // Later the old key counts for nothing at all, not even below the new key's range.
    f.later(Duration::from_secs(4));
    f.group_says(channel_data(2, code::PUBLIC_MSG, "Pets op forged", &KEY));
    f.group_says(channel_data(6, code::PUBLIC_MSG, "Pets op forged", &KEY));
    // The honest go on under the new key.
    f.group_says(channel_data(
        5,
        code::PUBLIC_MSG,
        "Pets bob after",
        &NEW_KEY,
    ));
    let lines = f.lines();
    assert!(!lines.iter().any(|l| l.contains("forged")), "{lines:?}");
    assert!(
        lines.contains(&"\tbob [Pets]: after".to_string()),
        "{lines:?}"
    );
    assert_eq!(f.session.mcast.channels["pets"].path, Path::Confirmed);
    let d = f.session.mcast.drops;
    assert_eq!((d.bad_tag, d.old_sequence, d.too_far), (4, 1, 0), "{d:?}");
}

/// A CHANNEL_DATA under a new key may overtake the MCAST_GROUP that tells the key: held a
/// moment, then shown; what no key ever verifies is not.
#[test]
fn a_datagram_ahead_of_its_key_is_held_and_shown_when_the_key_comes() {
    let mut f = on_pets_group();
    f.probe_confirms(1);
    f.group_says(channel_data(
        2,
        code::PUBLIC_MSG,
        "Pets bob early",
        &NEW_KEY,
    ));
    f.group_says(channel_data(3, code::PUBLIC_MSG, "Pets eve junk", &[9; 32]));
    assert!(f.lines().is_empty());
    f.told_new_key(2);
    assert_eq!(f.lines(), ["\tbob [Pets]: early"]);
    f.expect_sent(code::MCAST_JOINED, "Pets");
    assert_eq!(f.session.mcast.drops.bad_tag, 1, "the junk");
}

/// The attack of issue 20 #6: one datagram with sequence 2^62 under a key the attacker
/// holds must not make the client take the server's next datagrams as old.
#[test]
fn a_sequence_far_ahead_is_suspect_and_eats_nothing() {
    let mut f = on_pets_group();
    f.probe_confirms(1);
    f.group_says(channel_data(
        1 << 62,
        code::PUBLIC_MSG,
        "Pets op forged",
        &KEY,
    ));
    f.group_says(channel_data(
        70_000,
        code::PUBLIC_MSG,
        "Pets op forged",
        &KEY,
    ));
    f.group_says(channel_data(2, code::PUBLIC_MSG, "Pets bob hi", &KEY));
    f.group_says(channel_data(3, code::PUBLIC_MSG, "Pets bob yo", &KEY));
    let lines = f.lines();
    assert_eq!(lines, ["\tbob [Pets]: hi", "\tbob [Pets]: yo"]);
    assert_eq!(f.session.mcast.drops.too_far, 2);
    // A group heard again after a while (on unicast meanwhile) is taken although the
    // server went on: the bound grows with the time since the last datagram taken.
    f.later(Duration::from_secs(10));
    f.expect_sent(code::MCAST_LEFT, "Pets");
    f.group_says(channel_data(200_000, code::MCAST_PROBE, "Pets", &KEY));
    f.expect_sent(code::MCAST_JOINED, "Pets");
    assert_eq!(f.session.mcast.drops.too_far, 2);
}

#[test]
fn a_quiet_group_is_given_up_and_part_forgets_it() {
    let mut f = on_pets_group();
    f.probe_confirms(1);
    f.later(Duration::from_secs(5));
    assert_eq!(f.sent(), None);
    f.later(Duration::from_secs(3));
    f.expect_sent(code::MCAST_LEFT, "Pets");
    assert_eq!(f.session.mcast.channels["pets"].path, Path::Lost);
    // Heard again: confirmed again.
    f.probe_confirms(2);
    f.server_says(code::PART_ACK, "Pets 1 about Pets");
    assert!(f.session.mcast.channels.is_empty());
    assert!(f.listening.is_empty(), "the group is left");
    // A group left is not listened to: nothing it says counts.
    f.group_says(channel_data(3, code::PUBLIC_MSG, "Pets bob late", &KEY));
    assert!(!f.said("late"));
}

#[test]
fn a_reconnect_asks_for_multicast_again_and_hears_the_groups_anew() {
    let mut f = on_pets_group();
    f.probe_confirms(5);
    f.server_says(code::ERROR, errors::PLEASE_LOG_IN);
    assert!(f.session.mcast.channels.is_empty(), "groups forgotten");
    assert!(f.listening.is_empty(), "groups left");
    f.accepted(WANTED_CAPS_MULTICAST);
    f.expect_sent(code::JOIN_REQ, "Pets");
    f.server_says(code::CAPS_ACK, "batch=1200 multicast");
    f.server_says(code::JOIN_ACK, "Pets 1 about Pets");
    f.told_pets_group();
    // A restarted server counts from 1 again.
    f.probe_confirms(1);
}

#[test]
fn no_multicast_asks_for_batch_only_and_ignores_groups() {
    let mut f = fixture_with(UiKind::Script, |o| o.multicast = false);
    f.accepted(WANTED_CAPS);
    f.server_says(code::CAPS_ACK, "batch=1200 multicast");
    f.told_pets_group();
    assert!(f.session.mcast.channels.is_empty());
    assert!(f.listening.is_empty());
    assert_eq!(f.session.mcast.drops, Drops::default());
}

#[test]
fn twins_pair_up_one_for_one_and_expire() {
    let mut p = Pairing::default();
    let t = Instant::now();
    assert!(p.arrive(b"hi", false, t));
    assert!(p.arrive(b"hi", false, t), "said twice");
    assert!(!p.arrive(b"hi", true, t), "first twin");
    assert!(!p.arrive(b"hi", true, t), "second twin");
    assert!(p.arrive(b"hi", true, t), "a third hi, on the group only");
    assert!(p.arrive(b"yo", true, t));
    assert!(
        p.arrive(b"yo", false, t + PAIR_FOR * 2),
        "too late to be a twin"
    );
}

/// Logs in as ann on a server of part 5, in Pets, where bob said `seen live`.
fn in_pets_with_part5(f: &mut Fixture) {
    f.logged_in();
    f.server_says(code::CAPS_ACK, "batch=1200");
    f.server_says(code::HELLO_ACK, "200 1700000000000");
    f.joins("Pets", 2);
    f.server_says(code::PUBLIC_MSG, "Pets bob seen live");
    f.lines();
}

/// The server forgets ann, who logs in again; `hello_first` says whether the answer to
/// HELLO comes before the rejoin's JOIN_ACK.
fn lose_and_rejoin(f: &mut Fixture, hello_first: bool) {
    f.forgotten_and_back("Pets");
    if hello_first {
        // The message of the day is not shown again after a reconnect.
        f.server_says(code::MOTD, "welcome to the server");
        f.server_says(code::HELLO_ACK, "200 1700000000000");
    }
    f.server_says(code::JOIN_ACK, "Pets 2 about Pets");
    if !hello_first {
        f.server_says(code::HELLO_ACK, "200 1700000000000");
    }
}

#[test]
fn after_a_reconnect_only_what_was_missed_is_shown_as_history() {
    for hello_first in [true, false] {
        let mut f = fixture(UiKind::Editor);
        in_pets_with_part5(&mut f);
        lose_and_rejoin(&mut f, hello_first);
        f.expect_sent(code::HISTORY_REQ, "Pets last 50");
        // Said live while the answer is on its way: shown now, not again below.
        f.server_says(code::PUBLIC_MSG, "Pets cid hello again");
        for (id, who, text) in [
            (1, "bob", "seen live"),
            (2, "bob", "while you were away"),
            (3, "cid", "hello again"),
        ] {
            f.server_says(code::HISTORY_MSG, &format!("Pets {id} 0 {who} {text}"));
        }
        f.server_says(code::HISTORY_END, "Pets 3 0");
        let lines = f.lines();
        assert_eq!(
            lines,
            [
                "** connection to server lost; reconnecting **",
                "** connection to server restored **",
                "\tcid [Pets]: hello again",
                "\t[history 1970-01-01 00:00:00] bob [Pets]: while you were away",
                "\t-- 1 missed in Pets --",
            ],
            "hello first: {hello_first}"
        );
        // The next time, by id.
        lose_and_rejoin(&mut f, true);
        f.expect_sent(code::HISTORY_REQ, "Pets since 3");
    }
}

#[test]
fn a_server_without_part_5_is_asked_for_no_history() {
    let mut f = chatting(UiKind::Editor);
    f.server_says(code::ERROR, errors::UNIMPLEMENTED);
    f.server_says(code::ERROR, errors::UNIMPLEMENTED);
    f.joins("Pets", 1);
    f.forgotten_and_back("Pets");
    f.server_says(code::ERROR, errors::UNIMPLEMENTED);
    f.server_says(code::ERROR, errors::UNIMPLEMENTED);
    f.server_says(code::JOIN_ACK, "Pets 1 about Pets");
    f.later(Duration::from_millis(10));
    assert_eq!(f.sent(), None, "nothing more goes out");
    let lines = f.lines();
    assert!(
        !lines.iter().any(|l| l.contains("unimplemented")),
        "{lines:?}"
    );
}

#[test]
fn kept_private_messages_and_history_go_to_their_buffers() {
    let mut f = chatting(UiKind::FullScreen);
    f.lines();
    f.server_says(code::STORED_PRIVATE, "0 bob are you there?");
    f.server_says(code::HISTORY_MSG, "Pets 5 0 cid old news");
    let shown = f.shown();
    assert_eq!(shown.len(), 2, "{shown:?}");
    assert_eq!(shown[0].place, Place::Private("bob".into()));
    assert!(shown[0].mention, "a kept message rings like a private one");
    assert_eq!(
        shown[0].text,
        "\t[kept 1970-01-01 00:00:00] bob [**private**]: are you there?"
    );
    assert_eq!(shown[1].place, Place::Channel("Pets".into()));
}

#[test]
fn a_member_a_moderator_removes_leaves_the_nick_list_and_a_created_channel_comes_to_the_front() {
    let mut f = chatting(UiKind::FullScreen);
    f.server_says(code::HELLO_ACK, "200 0");
    f.chat("/create Den a cozy place");
    f.expect_sent(code::CHAN_CREATE, "Den a cozy place");
    f.server_says(code::CHAN_NOTICE, "Den ann create temporary a cozy place");
    f.server_says(code::JOIN_ACK, "Den 1 a cozy place");
    f.server_says(code::USER_JOINS, "Den bob");
    f.server_says(code::CHAN_NOTICE, "Den ann kick bob too loud");
    let mut focused = false;
    let mut members = Vec::new();
    for out in f.outs.drain(..) {
        match out {
            Out::Line(s) if s.focus => focused = s.place == Place::Channel("Den".into()),
            Out::Members { title, nicks } if title == "Den" => members = nicks,
            _ => {}
        }
    }
    assert!(focused, "the created channel's buffer comes to the front");
    assert_eq!(members, ["ann"]);
}
