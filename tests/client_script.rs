//! Drives the real `chat-client` from pipes, as a script would: commands line by line,
//! plain output, exit after end of input; login retries against a silent port, a
//! nickname in use, `/login`, SIGTERM, and escape sequences arriving defused.

mod common;

use std::io::Write;
use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::req;
use common::script::{run_script, Scripted, TIMEOUT};
use common::wait_no_users as expect_no_users;
use proto::{Request, DEFAULT_MAX_DATAGRAM};
use udpchat::server::RunningServer;
use udpchat_client::command::HELP;

/// `ann`'s client on `server`, once it says she is logged in.
fn ann_on(server: &RunningServer) -> Scripted {
    let mut ann = Scripted::start(server.addr().port(), &["--nick", "ann"]);
    ann.expect_line("\tLog in successful. Welcome ann.");
    ann
}

/// `ann`'s client on `server`, once she is in Pets, alone.
fn ann_in_pets(server: &RunningServer) -> Scripted {
    let mut ann = ann_on(server);
    ann.send("/join Pets\n");
    ann.expect_line("\tWelcome to the Pets Channel (1 users)");
    ann
}

/// Asserts that the lines of `lines` starting with `prefix` (a history line's, a kept
/// message's) are as many as `ends`, in order, each ending with its own.
#[track_caller]
fn shown_as(lines: &[String], prefix: &str, ends: &[&str]) {
    let shown: Vec<&String> = lines.iter().filter(|l| l.starts_with(prefix)).collect();
    assert_eq!(shown.len(), ends.len(), "{lines:#?}");
    for (line, end) in shown.iter().zip(ends) {
        assert!(line.ends_with(end), "{line:?} does not end with {end:?}");
    }
}

/// Asserts that no line of `lines` holds `text`.
#[track_caller]
fn never_shown(lines: &[String], text: &str) {
    assert!(
        lines.iter().all(|l| !l.contains(text)),
        "{text:?} was shown: {lines:#?}"
    );
}

#[test]
fn scripted_session_shows_answers_and_logs_off_at_end_of_input() {
    let server = common::server();
    let script = "ann\n/channels\n/join Pets\nhello  there\n/users\n/frob\n/join\n\
                  /private ann note to self\n/whois ann\n/who an\n/watch ann\n/unwatch ann\n\
                  /part\n/help\n";
    let (status, lines) = run_script(server.addr().port(), &[], script);
    assert!(status.success(), "{status:?} {lines:#?}");
    assert_eq!(lines[0], "trying to log in (1)...");
    assert_eq!(lines[1], "\tLog in successful. Welcome ann.");
    let mut expected: Vec<String> = common::CHANNEL_LINES.map(String::from).into();
    expected.extend(
        [
            "\tWelcome to the Pets Channel (1 users)",
            "\tann [Pets]: hello  there",
            "\t/frob: unknown command",
            "\tUsage: /join TITLE",
            "\t-> ann: note to self",
            "\tann [**private**]: note to self",
            "\t<ann is online>",
            "\tYou have left the Pets Channel",
        ]
        .map(String::from),
    );
    expected.extend(HELP.iter().map(|l| format!("\t{l}")));
    let mut rest: Vec<&str> = lines[2..].iter().map(String::as_str).collect();
    // Time online is whole seconds and may tick over on a slow machine.
    let user_items: Vec<&str> = rest
        .iter()
        .copied()
        .filter(|l| l.starts_with("\tann             (on 00:00:0"))
        .collect();
    assert_eq!(user_items.len(), 3, "/users, /whois and /who: {lines:#?}");
    for item in user_items {
        assert!(item.ends_with(") Channels: Pets"), "{item:?}");
    }
    rest.retain(|l| !l.starts_with("\tann             (on"));
    // Answers normally come in the order of the commands; don't rely on it under load.
    rest.sort_unstable();
    expected.sort_unstable();
    assert_eq!(rest, expected, "all output: {lines:#?}");
    expect_no_users(&server);
    server.shutdown().unwrap();
}

#[test]
fn login_gives_up_after_five_unanswered_tries() {
    // Bound but never read: no answer, and no ICMP error either.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let started = Instant::now();
    let (status, lines) = run_script(port, &["--nick", "ann", "--login-timeout-ms", "300"], "");
    assert_eq!(status.code(), Some(1), "{lines:#?}");
    assert_eq!(
        lines,
        [
            "trying to log in (1)...",
            "trying to log in (2)...",
            "trying to log in (3)...",
            "trying to log in (4)...",
            "trying to log in (5)...",
            "Can't log in.",
        ]
    );
    assert!(started.elapsed() >= Duration::from_millis(1500));

    silent
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let mut buf = [0u8; DEFAULT_MAX_DATAGRAM];
    let login = Request::Login { nick: "ann" }.to_bytes();
    for n in 1..=5 {
        let len = silent
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("try {n}: {e}"));
        assert_eq!(&buf[..len], &login[..]);
    }
}

#[test]
fn refused_nicknames_are_asked_again() {
    // The server's amplification guard would hold the 25-byte ERROR back until five 5-byte
    // tries had paid for it; that is server policy, tested with the server. Here: what the
    // client does with the answer.
    let server = common::server_with(|c| c.limits.amplification_guard = false);
    let _bob = common::user(&server, "bob");
    let (status, lines) = run_script(
        server.addr().port(),
        &[],
        "bob smith\nbob\nbobby\n/login carl\n/whois bobby\n",
    );
    assert!(status.success(), "{status:?} {lines:#?}");
    assert_eq!(
        lines,
        [
            "Invalid nickname. Must contain no spaces.",
            "trying to log in (1)...",
            "\t** ERROR: nickname already in use **",
            "trying to log in (1)...",
            "\tLog in successful. Welcome bobby.",
            "trying to log in (1)...",
            "\tLog in successful. Welcome carl.",
            // bobby logged off before carl logged in.
            "\t** ERROR: bobby: not logged in **",
        ],
        "{lines:#?}"
    );
    server.shutdown().unwrap();
}

#[test]
fn escape_sequences_arrive_defused_in_scripted_output() {
    let server = common::server();
    let mut ann = ann_in_pets(&server);
    let mallory = common::joined(&server, "mallory", "Pets");
    mallory.send(req::public("\u{1b}[31mred\u{1b}[0m \u{1b}]0;title\u{7}"));
    ann.expect_line("\tmallory [Pets]: ^[[31mred^[[0m ^[]0;title^G");
    let lines = ann.finish_ok();
    never_shown(&lines, "\u{1b}");
    server.shutdown().unwrap();
}

#[test]
fn sigterm_logs_off() {
    let server = common::server();
    let ann = ann_on(&server);
    assert_eq!(server.state().user_count(), 1);
    common::signal(ann.pid(), common::Signal::SIGTERM);
    expect_no_users(&server);
    let (status, _) = ann.finish();
    assert_eq!(status.code(), Some(128 + common::Signal::SIGTERM as i32));
    server.shutdown().unwrap();
}

/// Client `ann` on `port`, logged in as a guest, that registers its nickname with
/// `password` (asked twice, from the script here) and then logs in with it at once, so its
/// session is protected.
fn registering(port: u16, password: &str) -> Scripted {
    let mut ann = Scripted::start(port, &["--nick", "ann"]);
    ann.expect_line("\tLog in successful. Welcome ann.");
    ann.send(&format!("/register\n{password}\n{password}\n"));
    ann.expect_line("\tNickname ann is registered.");
    ann.expect_line("\tLog in successful. Welcome ann.");
    ann
}

#[test]
fn register_then_log_in_with_the_password_and_stay_protected() {
    let server = common::server();
    let port = server.addr().port();
    let mut ann = registering(port, "secret words");
    ann.send("/join Pets\nprotected hello\n");
    ann.expect_line("\tann [Pets]: protected hello");
    ann.finish_ok();
    expect_no_users(&server);

    // Later the nickname asks for the password; a wrong one is refused, the right one works.
    let mut again = Scripted::start(port, &["--nick", "ann"]);
    again.expect_line("\t** ERROR: nickname is registered; log in with a password **");
    again.send("not it\n");
    again.expect_line("\t** ERROR: wrong password **");
    again.send("secret words\n");
    again.expect_line("\tLog in successful. Welcome ann.");
    // The current password first, then the new one twice.
    again.send("/passwd\nsecret words\nnew words\nnew words\n");
    again.expect_line("\tPassword changed for ann.");
    // Deleting the account asks for the nickname.
    again.send("/unregister\nnot me\n");
    again.expect_line("\tNot deleted: that is not your nickname.");
    again.send("/unregister\nann\n");
    again.expect_line("\tNickname ann is no longer registered.");
    again.finish_ok();
    assert!(
        server.state().auth_rejected() == 0,
        "the client sealed every datagram of its session"
    );
}

#[test]
fn nick_changes_name_and_keeps_the_channels_and_ignore_hides_messages() {
    let server = common::server();
    let port = server.addr().port();
    let bob = common::joined(&server, "bob", "Weather");
    let mut ann = Scripted::start(port, &["--nick", "ann"]);
    ann.send("/join Pets\n/join Weather\n/nick annie\n");
    ann.expect_line("\tYou are now known as annie.");
    // bob saw ann leave and annie come back into Weather.
    let mut seen = Vec::new();
    while let Some(d) = bob.recv_within(Duration::from_millis(500)) {
        seen.push(d);
    }
    assert!(
        seen.contains(&(proto::code::USER_JOINS, "Weather annie".into())),
        "{seen:?}"
    );
    ann.send("/whois annie\n");
    ann.expect_prefix("\tannie           (on 00:00:0");
    assert!(ann
        .seen
        .last()
        .unwrap()
        .ends_with(") Channels: Weather Pets"));
    ann.send("/ignore bob\n");
    ann.expect_line("\tIgnoring bob.");
    bob.send(req::public("can you hear me?"));
    // Once bob has his own copy, ann's went out before anything ann asks for next.
    loop {
        let (c, p) = bob.recv();
        if c == proto::code::PUBLIC_MSG {
            assert_eq!(p, "Weather bob can you hear me?");
            break;
        }
    }
    ann.send("/whois bob\n");
    ann.expect_prefix("\tbob             (on ");
    ann.send("/unignore bob\n");
    ann.expect_line("\tNo longer ignoring bob.");
    bob.send(req::public("and now?"));
    ann.expect_line("\tbob [Weather]: and now?");
    never_shown(&ann.finish_ok(), "can you hear me");
    server.shutdown().unwrap();
}

#[test]
fn the_settings_file_names_the_server_the_nickname_and_the_channels() {
    let server = common::server();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("client.toml");
    std::fs::write(
        &file,
        format!(
            "server = \"127.0.0.1\"\nport = {}\nnick = \"ann\"\nchannels = [\"Pets\", \"Weather\"]\n",
            server.addr().port()
        ),
    )
    .unwrap();
    let mut child = Command::new(common::bin("chat-client"))
        .arg("--config")
        .arg(&file)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"/users\n").unwrap();
    let output = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("\tLog in successful. Welcome ann."), "{text}");
    assert!(
        text.contains("\tWelcome to the Pets Channel (1 users)"),
        "{text}"
    );
    assert!(
        text.contains("\tWelcome to the Weather Channel (1 users)"),
        "{text}"
    );
    // Joined in order: the last one is current.
    assert!(text.contains(") Channels: Weather Pets"), "{text}");

    // --help names the file's place.
    let help = Command::new(common::bin("chat-client"))
        .arg("--help")
        .env("XDG_CONFIG_HOME", dir.path())
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    let expected = format!(
        "Settings file: {}",
        dir.path().join("udpchat/client.toml").display()
    );
    assert!(help.contains(&expected), "{help}");
    // A file with a mistake is refused, with its name.
    std::fs::write(&file, "sever = \"x\"\n").unwrap();
    let bad = Command::new(common::bin("chat-client"))
        .arg("--config")
        .arg(&file)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("client.toml"),
        "{bad:?}"
    );
    server.shutdown().unwrap();
}

/// A UDP relay between one client and the server that drops the first sealed datagram the
/// server sends (a password login's LOGIN_ACK): a lossy network, on purpose.
fn lossy_relay(server: std::net::SocketAddr) -> u16 {
    let front = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = front.local_addr().unwrap().port();
    let back = UdpSocket::bind("127.0.0.1:0").unwrap();
    back.connect(server).unwrap();
    let (front2, back2) = (front.try_clone().unwrap(), back.try_clone().unwrap());
    let client = std::sync::Arc::new(parking_lot::Mutex::new(None));
    let client2 = client.clone();
    thread::spawn(move || {
        let mut buf = [0u8; 65536];
        while let Ok((n, from)) = front.recv_from(&mut buf) {
            *client.lock() = Some(from);
            let _ = back.send(&buf[..n]);
        }
    });
    thread::spawn(move || {
        let mut buf = [0u8; 65536];
        let mut dropped = false;
        while let Ok(n) = back2.recv(&mut buf) {
            if !dropped && buf[..2] == proto::code::SEALED.to_be_bytes() {
                dropped = true;
                continue;
            }
            if let Some(to) = *client2.lock() {
                let _ = front2.send_to(&buf[..n], to);
            }
        }
    });
    port
}

#[test]
fn a_lost_login_ack_does_not_strand_a_password_login() {
    let server = common::server();
    let port = server.addr().port();
    registering(port, "pw").finish_ok();
    expect_no_users(&server);
    // Through a relay that loses the LOGIN_ACK: the client asks again, sealed, and is in.
    let relay = lossy_relay(server.addr());
    let mut again = Scripted::start(relay, &["--nick", "ann", "--login-timeout-ms", "700"]);
    again.expect_line("\t** ERROR: nickname is registered; log in with a password **");
    again.send("pw\n");
    again.expect_line("\tLog in successful. Welcome ann.");
    again.send("/join Pets\nstill here\n");
    again.expect_line("\tann [Pets]: still here");
    again.finish_ok();
}

#[test]
fn the_client_shows_nothing_a_forger_sends_in_the_servers_name() {
    let server = common::server();
    let port = server.addr().port();
    let mut ann = registering(port, "pw");
    let addr = server.state().address_of("ann").unwrap();
    // Forged from the server's address: a private message and an error.
    let mut forged = proto::code::PRIVATE_MSG.to_be_bytes().to_vec();
    forged.extend_from_slice(b"bob FORGED private message");
    assert!(common::spoof(server.addr(), addr, &forged));
    let mut error = proto::code::ERROR.to_be_bytes().to_vec();
    error.extend_from_slice(b"FORGED error");
    assert!(common::spoof(server.addr(), addr, &error));
    // The genuine one, from bob, sealed by the server.
    let bob = common::user(&server, "bob");
    bob.send(req::private("ann", "genuine"));
    ann.expect_line("\tbob [**private**]: genuine");
    // No forgery was shown.
    never_shown(&ann.finish_ok(), "FORGED");
}

#[test]
fn community_commands_show_as_sentences() {
    let server = common::server();
    let mut ann = ann_on(&server);
    common::wait_proved(&server, "ann");
    ann.send("/create Den a cozy place\n");
    ann.expect_line("\t<ann created Den (temporary): a cozy place>");
    ann.expect_line("\tWelcome to the Den Channel (1 users)");
    let bob = common::joined(&server, "bob", "Den");
    ann.expect_line("\t<bob has entered Den>");
    ann.send("/topic Den warm and cozy\n/mode Den +m\n/voice Den bob\n/mode Den\n");
    ann.expect_line("\t<ann set the topic of Den: warm and cozy>");
    ann.expect_line("\t<ann set mode +m on Den>");
    ann.expect_line("\t<ann set mode +v bob on Den>");
    ann.expect_line("\t[Den] modes +mt, no member limit, founded by ann");
    bob.send(req::public("thanks"));
    ann.expect_line("\tbob [Den]: thanks");
    ann.send("/history Den 5\n/kick Den bob enough\n/kick Den\n");
    ann.expect_line("\t-- end of the history of Den --");
    ann.expect_line("\t<ann removed bob from Den: enough>");
    ann.expect_line("\tUsage: /kick TITLE NICK [REASON]");
    ann.send("/stats\n");
    ann.expect_line("\t** ERROR: you are not a server operator **");
    let lines = ann.finish_ok();
    shown_as(&lines, "\t[history ", &[" bob [Den]: thanks"]);
    server.shutdown().unwrap();
}

#[test]
fn after_a_reconnect_the_client_shows_what_it_missed_as_history() {
    let server = common::server_with(|c| {
        c.idle_timeout = Duration::from_millis(800);
        c.check_interval = Duration::from_millis(100);
    });
    let mut ann = ann_in_pets(&server);
    let bob = common::joined(&server, "bob", "Pets");
    bob.send(req::public("seen live"));
    ann.expect_line("\tbob [Pets]: seen live");
    // The client drops off the server (its keepalive is 30 s; the server's timeout is
    // shorter here), while bob stays and talks on.
    while server.state().address_of("ann").is_some() {
        bob.send(Request::StillHere);
        thread::sleep(Duration::from_millis(100));
    }
    for text in ["while you were away", "and this too"] {
        bob.send(req::public(text));
    }
    // The next request tells the client the server forgot it: it logs in again by
    // itself, rejoins, and asks for what it missed.
    ann.send("/users\n");
    ann.expect_line("** connection to server lost; reconnecting **");
    ann.expect_line("** connection to server restored **");
    ann.expect_line("\t-- 2 missed in Pets --");
    // Asked by hand, with nothing said meanwhile: nothing missed.
    ann.send("/reconnect\n");
    ann.expect_line("** reconnecting **");
    ann.expect_line("\t-- nothing missed in Pets --");
    let lines = ann.finish_ok();
    // Only what was missed.
    shown_as(
        &lines,
        "\t[history ",
        &[
            " bob [Pets]: while you were away",
            " bob [Pets]: and this too",
        ],
    );
    server.shutdown().unwrap();
}

#[test]
fn a_private_message_kept_while_away_shows_as_kept_at_the_password_login() {
    let server = common::server();
    let port = server.addr().port();
    // ann's nickname is registered; ann is away.
    common::registered(&server, "ann", "secret words");
    // bob speaks part 5, so it is told the message is kept.
    let bob = common::part5(&server, "bob");
    bob.prove();
    bob.send(req::private("ann", "are you there?"));
    bob.recv_code(proto::code::PRIVATE_STORED);

    let mut client = Scripted::start(port, &["--nick", "ann"]);
    client.expect_line("\t** ERROR: nickname is registered; log in with a password **");
    client.send("secret words\n");
    client.expect_line("\tLog in successful. Welcome ann.");
    // The store hands it over with the login, before or after the welcome (they go out
    // through different sender threads).
    if !client.seen.iter().any(|l| l.starts_with("\t[kept ")) {
        client.expect_prefix("\t[kept ");
    }
    let lines = client.finish_ok();
    shown_as(&lines, "\t[kept ", &[" bob [**private**]: are you there?"]);
    // Delivered once: tests/community.rs checks that a later login gets nothing.
}

#[test]
fn against_a_classic_server_the_hello_goes_unremarked() {
    // A server of the classic protocol: it knows LOGIN_REQ and nothing of part 5.
    let classic = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = classic.local_addr().unwrap().port();
    thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = classic.recv_from(&mut buf) {
            let reply = match Request::decode(&buf[..n], 2048) {
                Ok(Request::Login { nick }) => proto::Event::LoginAck { nick }.to_bytes(),
                Ok(Request::Logoff | Request::StillHere) => continue,
                _ => proto::Event::Error {
                    message: "unimplemented event code",
                }
                .to_bytes(),
            };
            let _ = classic.send_to(&reply, from);
        }
    });
    let (status, lines) = run_script(port, &["--nick", "ann"], "/frob\n");
    assert!(status.success(), "{lines:#?}");
    assert_eq!(
        lines,
        [
            "trying to log in (1)...",
            "\tLog in successful. Welcome ann.",
            "\t/frob: unknown command"
        ]
    );
}

#[test]
fn the_client_asks_for_batches_and_shows_every_batched_event_in_order() {
    // A sender window makes the burst below arrive as batches on any machine.
    let server = common::server_with(|c| {
        c.senders = 1;
        c.batch_window = udpchat::server::BatchWindow::Always(Duration::from_millis(300));
    });
    let mut ann = ann_in_pets(&server);
    let granted = server
        .state()
        .users()
        .into_iter()
        .find(|(_, u)| &*u.nick == "ann")
        .map(|(_, u)| u.caps.batch);
    assert_eq!(granted, Some(Some(1200)), "the client asked for batch");
    let bob = common::joined(&server, "bob", "Pets");
    // Events beyond one per datagram: those that shared a datagram with another.
    let shared = || {
        let s = server.stats();
        s.events_out.saturating_sub(s.datagrams_out)
    };
    let sent_before = shared();
    for i in 0..12 {
        bob.send(req::public(&format!("line {i}")));
    }
    for i in 0..12 {
        ann.expect_line(&format!("\tbob [Pets]: line {i}"));
    }
    // The counters are added up just after the datagrams go out: wait for them.
    common::wait_for("events sharing a datagram", TIMEOUT, || {
        shared() > sent_before
    });
    never_shown(&ann.finish_ok(), "ERROR");
    server.shutdown().unwrap();
}
