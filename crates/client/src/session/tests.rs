//! Unit tests of the session against a fake server socket, with time injected: what it
//! sends and says when caps go unanswered, when PINGs go unanswered, when a line comes
//! for a prompt that changed, when many lines are pasted.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use super::*;
use proto::{code, encode_raw};

struct Fixture {
    server: UdpSocket,
    session: Session,
    outs: Receiver<Out>,
    t: Instant,
}

fn fixture(ui: UiKind) -> Fixture {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    server
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.connect(server.local_addr().unwrap()).unwrap();
    let net = Arc::new(Net::with_socket(socket, server.local_addr().unwrap()));
    let (tx, outs) = crossbeam_channel::unbounded();
    let opts = Options {
        nick: Some("ann".into()),
        ui,
        ..Options::default()
    };
    Fixture {
        server,
        session: Session::new(net, tx, opts),
        outs,
        t: Instant::now(),
    }
}

impl Fixture {
    /// The next datagram the client sent, as (code, payload).
    fn sent(&self) -> Option<(u16, String)> {
        let mut buf = [0u8; 2048];
        let n = self.server.recv(&mut buf).ok()?;
        Some((
            u16::from_be_bytes([buf[0], buf[1]]),
            String::from_utf8_lossy(&buf[2..n]).into_owned(),
        ))
    }

    #[track_caller]
    fn expect_sent(&self, code: u16, payload: &str) {
        assert_eq!(self.sent(), Some((code, payload.to_string())));
    }

    fn server_says(&mut self, code: u16, payload: &str) {
        let mut d = Vec::new();
        encode_raw(code, payload, &mut d);
        self.session
            .handle(Input::Net(NetEvent::Datagram(d)), self.t);
    }

    fn later(&mut self, by: Duration) {
        self.t += by;
        self.session.tick(self.t);
    }

    fn lines(&self) -> Vec<String> {
        self.take().0
    }

    /// The lines said since the last look, and the last ask among them.
    fn take(&self) -> (Vec<String>, Option<Ask>) {
        let mut lines = Vec::new();
        let mut ask = None;
        for out in self.outs.try_iter() {
            match out {
                Out::Line(s) => lines.push(s.text),
                Out::Ask(a) => ask = Some(a),
                _ => {}
            }
        }
        (lines, ask)
    }

    fn last_ask(&self) -> Option<Ask> {
        self.outs
            .try_iter()
            .filter_map(|o| match o {
                Out::Ask(a) => Some(a),
                _ => None,
            })
            .last()
    }

    fn type_line(&mut self, serial: u64, kind: AskKind, text: &str) {
        self.session.handle(
            Input::Answer {
                serial,
                kind,
                text: text.into(),
                to: Target::Current,
            },
            self.t,
        );
    }

    /// Logs in as ann; the caps request is left unanswered.
    fn logged_in(&mut self) {
        self.session.start(self.t);
        self.expect_sent(code::LOGIN_REQ, "ann");
        self.server_says(code::LOGIN_ACK, "ann");
        self.expect_sent(code::CAPS_REQ, WANTED_CAPS_MULTICAST);
        self.expect_sent(
            code::HELLO,
            concat!("chat-client/", env!("CARGO_PKG_VERSION")),
        );
    }
}

#[test]
fn no_answer_to_caps_means_no_caps_and_classic_keepalives() {
    let mut f = fixture(UiKind::Editor);
    f.logged_in();
    f.later(CAPS_WAIT);
    assert_eq!(f.session.caps, Caps::None);
    f.later(Duration::from_secs(30));
    f.expect_sent(code::STILL_HERE, "");
}

#[test]
fn a_classic_servers_unimplemented_error_for_caps_is_not_shown() {
    let mut f = fixture(UiKind::Editor);
    f.logged_in();
    f.server_says(code::ERROR, errors::UNIMPLEMENTED);
    assert_eq!(f.session.caps, Caps::None);
    assert!(
        !f.lines().iter().any(|l| l.contains("unimplemented")),
        "the error was shown"
    );
}

#[test]
fn unanswered_pings_lose_the_connection_and_the_channels_come_back_in_order() {
    let mut f = fixture(UiKind::Editor);
    f.logged_in();
    f.server_says(code::CAPS_ACK, "batch=1200");
    for title in ["Pets", "Weather"] {
        f.type_line(f.session.serial, AskKind::Chat, &format!("/join {title}"));
        f.expect_sent(code::JOIN_REQ, title);
        f.server_says(code::JOIN_ACK, &format!("{title} 1 about {title}"));
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
    f.expect_sent(code::LOGIN_REQ, "ann");
    f.server_says(code::LOGIN_ACK, "ann");
    f.expect_sent(code::CAPS_REQ, WANTED_CAPS_MULTICAST);
    f.expect_sent(
        code::HELLO,
        concat!("chat-client/", env!("CARGO_PKG_VERSION")),
    );
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
    assert_eq!(f.session.channels, ["Weather", "Pets"]);
}

#[test]
fn please_log_in_alone_starts_a_reconnect() {
    let mut f = fixture(UiKind::Script);
    f.logged_in();
    f.server_says(code::ERROR, errors::PLEASE_LOG_IN);
    assert!(f
        .lines()
        .contains(&"** connection to server lost; reconnecting **".to_string()));
    f.expect_sent(code::LOGIN_REQ, "ann");
}

#[test]
fn a_line_typed_at_a_prompt_that_changed_is_never_sent() {
    let mut f = fixture(UiKind::Editor);
    f.logged_in();
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

#[test]
fn a_paste_of_many_lines_is_sent_only_after_a_yes() {
    let mut f = fixture(UiKind::Editor);
    f.logged_in();
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
    let mut f = fixture(UiKind::FullScreen);
    f.logged_in();
    f.server_says(code::PRIVATE_MSG, "m\u{1b}]0;x\u{7} hi");
    let places: Vec<Place> = f
        .outs
        .try_iter()
        .filter_map(|o| match o {
            Out::Line(s) => Some(s.place),
            _ => None,
        })
        .collect();
    assert_eq!(places.last(), Some(&Place::Private("m^[]0;x^G".into())));
}

// ---- multicast channels (part 4) ----

const KEY: [u8; proto::channel_data::KEY_LEN] = [7; proto::channel_data::KEY_LEN];

fn group() -> std::net::SocketAddr {
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
        self.session.handle(
            Input::Net(NetEvent::Group {
                group: group(),
                datagram,
            }),
            self.t,
        );
    }

    /// Logged in with multicast granted, in Pets, told Pets' group.
    fn on_pets_group(&mut self) {
        self.logged_in();
        self.server_says(code::CAPS_ACK, "batch=1200 multicast");
        self.type_line(self.session.serial, AskKind::Chat, "/join Pets");
        self.expect_sent(code::JOIN_REQ, "Pets");
        self.server_says(code::JOIN_ACK, "Pets 2 about Pets");
        use base64::Engine as _;
        let key = base64::engine::general_purpose::STANDARD.encode(KEY);
        self.server_says(code::MCAST_GROUP, &format!("Pets 239.77.0.9 24028 {key}"));
        self.lines();
    }
}

#[test]
fn group_events_are_checked_confirmed_and_shown_as_unicast_once() {
    let mut f = fixture(UiKind::Editor);
    f.on_pets_group();
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
        mcast::Drops {
            bad_tag: 1,
            old_sequence: 1,
            malformed: 1
        }
    );
    // A new event on the group: the exact unicast line, in the channel's buffer.
    f.group_says(channel_data(2, code::PUBLIC_MSG, "Pets bob yo", &KEY));
    f.group_says(channel_data(3, code::USER_JOINS, "Pets carl", &KEY));
    // Our own join is never shown, as unicast never sends it.
    f.group_says(channel_data(4, code::USER_JOINS, "Pets ann", &KEY));
    let shown: Vec<(String, Place)> = f
        .outs
        .try_iter()
        .filter_map(|o| match o {
            Out::Line(s) => Some((s.text, s.place)),
            _ => None,
        })
        .collect();
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
    assert_eq!(
        f.session.mcast.channels["pets"].path,
        mcast::Path::Confirmed
    );
    f.type_line(f.session.serial, AskKind::Chat, "/status");
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
        "\tGroup datagrams dropped: 3 (bad tag 1, old sequence 1, malformed 1)"
    );
}

#[test]
fn a_quiet_group_is_given_up_and_part_forgets_it() {
    let mut f = fixture(UiKind::Editor);
    f.on_pets_group();
    f.group_says(channel_data(1, code::MCAST_PROBE, "Pets", &KEY));
    f.expect_sent(code::MCAST_JOINED, "Pets");
    f.later(Duration::from_secs(5));
    assert_eq!(f.sent(), None);
    f.later(Duration::from_secs(3));
    f.expect_sent(code::MCAST_LEFT, "Pets");
    assert_eq!(f.session.mcast.channels["pets"].path, mcast::Path::Lost);
    // Heard again: confirmed again.
    f.group_says(channel_data(2, code::MCAST_PROBE, "Pets", &KEY));
    f.expect_sent(code::MCAST_JOINED, "Pets");
    f.server_says(code::PART_ACK, "Pets 1 about Pets");
    assert!(f.session.mcast.channels.is_empty());
    // A group left is not listened to: nothing it says counts.
    f.group_says(channel_data(3, code::PUBLIC_MSG, "Pets bob late", &KEY));
    assert!(!f.lines().iter().any(|l| l.contains("late")));
}

#[test]
fn a_reconnect_asks_for_multicast_again_and_hears_the_groups_anew() {
    let mut f = fixture(UiKind::Editor);
    f.on_pets_group();
    f.group_says(channel_data(5, code::MCAST_PROBE, "Pets", &KEY));
    f.expect_sent(code::MCAST_JOINED, "Pets");
    f.server_says(code::ERROR, errors::PLEASE_LOG_IN);
    assert!(f.session.mcast.channels.is_empty(), "groups forgotten");
    f.expect_sent(code::LOGIN_REQ, "ann");
    f.server_says(code::LOGIN_ACK, "ann");
    f.expect_sent(code::CAPS_REQ, WANTED_CAPS_MULTICAST);
    f.expect_sent(
        code::HELLO,
        concat!("chat-client/", env!("CARGO_PKG_VERSION")),
    );
    f.expect_sent(code::JOIN_REQ, "Pets");
    f.server_says(code::CAPS_ACK, "batch=1200 multicast");
    f.server_says(code::JOIN_ACK, "Pets 1 about Pets");
    use base64::Engine as _;
    let key = base64::engine::general_purpose::STANDARD.encode(KEY);
    f.server_says(code::MCAST_GROUP, &format!("Pets 239.77.0.9 24028 {key}"));
    // A restarted server counts from 1 again.
    f.group_says(channel_data(1, code::MCAST_PROBE, "Pets", &KEY));
    f.expect_sent(code::MCAST_JOINED, "Pets");
}

#[test]
fn no_multicast_asks_for_batch_only_and_ignores_groups() {
    let mut f = fixture(UiKind::Script);
    f.session.opts.multicast = false;
    f.session.start(f.t);
    f.expect_sent(code::LOGIN_REQ, "ann");
    f.server_says(code::LOGIN_ACK, "ann");
    f.expect_sent(code::CAPS_REQ, WANTED_CAPS);
    f.expect_sent(
        code::HELLO,
        concat!("chat-client/", env!("CARGO_PKG_VERSION")),
    );
    f.server_says(code::CAPS_ACK, "batch=1200 multicast");
    use base64::Engine as _;
    let key = base64::engine::general_purpose::STANDARD.encode(KEY);
    f.server_says(code::MCAST_GROUP, &format!("Pets 239.77.0.9 24028 {key}"));
    assert!(f.session.mcast.channels.is_empty());
    assert_eq!(f.session.mcast.drops, mcast::Drops::default());
}

#[test]
fn twins_pair_up_one_for_one_and_expire() {
    let mut p = mcast::Pairing::default();
    let t = Instant::now();
    assert!(p.arrive(b"hi", false, t));
    assert!(p.arrive(b"hi", false, t), "said twice");
    assert!(!p.arrive(b"hi", true, t), "first twin");
    assert!(!p.arrive(b"hi", true, t), "second twin");
    assert!(p.arrive(b"hi", true, t), "a third hi, on the group only");
    assert!(p.arrive(b"yo", true, t));
    assert!(
        p.arrive(b"yo", false, t + mcast::PAIR_FOR * 2),
        "too late to be a twin"
    );
}

/// Logs in as ann on a server of part 5, in Pets, where bob said `seen live`.
fn in_pets_with_part5(f: &mut Fixture) {
    f.logged_in();
    f.server_says(code::CAPS_ACK, "batch=1200");
    f.server_says(code::HELLO_ACK, "200 1700000000000");
    f.type_line(f.session.serial, AskKind::Chat, "/join Pets");
    f.expect_sent(code::JOIN_REQ, "Pets");
    f.server_says(code::JOIN_ACK, "Pets 2 about Pets");
    f.server_says(code::PUBLIC_MSG, "Pets bob seen live");
    f.lines();
}

/// The server forgets ann, who logs in again; `hello_first` says whether the answer to
/// HELLO comes before the rejoin's JOIN_ACK.
fn lose_and_rejoin(f: &mut Fixture, hello_first: bool) {
    f.server_says(code::ERROR, errors::PLEASE_LOG_IN);
    f.expect_sent(code::LOGIN_REQ, "ann");
    f.server_says(code::LOGIN_ACK, "ann");
    f.expect_sent(code::CAPS_REQ, WANTED_CAPS_MULTICAST);
    f.expect_sent(
        code::HELLO,
        concat!("chat-client/", env!("CARGO_PKG_VERSION")),
    );
    f.expect_sent(code::JOIN_REQ, "Pets");
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
    let mut f = fixture(UiKind::Editor);
    f.logged_in();
    f.server_says(code::ERROR, errors::UNIMPLEMENTED);
    f.server_says(code::ERROR, errors::UNIMPLEMENTED);
    f.type_line(f.session.serial, AskKind::Chat, "/join Pets");
    f.expect_sent(code::JOIN_REQ, "Pets");
    f.server_says(code::JOIN_ACK, "Pets 1 about Pets");
    f.server_says(code::ERROR, errors::PLEASE_LOG_IN);
    f.expect_sent(code::LOGIN_REQ, "ann");
    f.server_says(code::LOGIN_ACK, "ann");
    f.expect_sent(code::CAPS_REQ, WANTED_CAPS_MULTICAST);
    f.expect_sent(
        code::HELLO,
        concat!("chat-client/", env!("CARGO_PKG_VERSION")),
    );
    f.expect_sent(code::JOIN_REQ, "Pets");
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
    let mut f = fixture(UiKind::FullScreen);
    f.logged_in();
    f.lines();
    f.server_says(code::STORED_PRIVATE, "0 bob are you there?");
    f.server_says(code::HISTORY_MSG, "Pets 5 0 cid old news");
    let shown: Vec<Shown> = f
        .outs
        .try_iter()
        .filter_map(|o| match o {
            Out::Line(s) => Some(s),
            _ => None,
        })
        .collect();
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
    let mut f = fixture(UiKind::FullScreen);
    f.logged_in();
    f.server_says(code::HELLO_ACK, "200 0");
    f.type_line(f.session.serial, AskKind::Chat, "/create Den a cozy place");
    f.expect_sent(code::CHAN_CREATE, "Den a cozy place");
    f.server_says(code::CHAN_NOTICE, "Den ann create temporary a cozy place");
    f.server_says(code::JOIN_ACK, "Den 1 a cozy place");
    f.server_says(code::USER_JOINS, "Den bob");
    f.server_says(code::CHAN_NOTICE, "Den ann kick bob too loud");
    let mut focused = false;
    let mut members = Vec::new();
    for out in f.outs.try_iter() {
        match out {
            Out::Line(s) if s.focus => focused = s.place == Place::Channel("Den".into()),
            Out::Members { title, nicks } if title == "Den" => members = nicks,
            _ => {}
        }
    }
    assert!(focused, "the created channel's buffer comes to the front");
    assert_eq!(members, ["ann"]);
}
