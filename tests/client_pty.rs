//! Drives the real `chat-client` in pseudo-terminals against an in-process server: two
//! people log in, list channels, join, talk, list users, whisper, watch, part and quit,
//! and each sees exactly the classic lines; a line being typed survives incoming lines;
//! escape sequences from the network arrive defused; pastes go line by line; a password
//! session asks its password again after the server restarts; a password inside a message
//! is not sent, and the files the client writes are the user's alone.

mod common;

use std::process::Command;

use common::{req, PW};
use proto::code;
use rexpect::process::WaitStatus;
use rexpect::session::{spawn_command, PtySession};
use udpchat::server::RunningServer;

/// Every wait for output gives up after this, so a missing line fails instead of hanging.
const TIMEOUT_MS: u64 = 20_000;

fn client(server: &RunningServer, nick: Option<&str>) -> PtySession {
    let mut cmd = Command::new(common::bin("chat-client"));
    // Each client pins server keys in a file of its own (servers here come and go on
    // recycled ports, with new keys).
    let pins = std::env::temp_dir().join(format!(
        "udpchat-pty-known-{}-{}",
        std::process::id(),
        server.addr().port()
    ));
    cmd.arg("127.0.0.1")
        .arg(server.addr().port().to_string())
        .arg("--line")
        .arg("--known-servers")
        .arg(pins)
        .env("TERM", "xterm");
    if let Some(nick) = nick {
        cmd.args(["--nick", nick]);
    }
    spawn_command(cmd, Some(TIMEOUT_MS)).expect("spawn chat-client in a pty")
}

/// Removes the terminal control sequences (CSI) that end `s`.
fn strip_trailing_csi(mut s: &str) -> &str {
    loop {
        let Some(esc) = s.rfind('\u{1b}') else {
            return s;
        };
        let seq = &s[esc..];
        let is_csi = seq.len() >= 3
            && seq.as_bytes()[1] == b'['
            && seq[2..seq.len() - 1]
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b';' || b == b'?')
            && matches!(seq.as_bytes()[seq.len() - 1], b'@'..=b'~');
        if !is_csi {
            return s;
        }
        s = &s[..esc];
    }
}

/// Waits for `line` shown as a whole line: it ends the line and nothing printable stands
/// before it on the screen line (the editor may clear the prompt line first).
#[track_caller]
fn expect_line(p: &mut PtySession, line: &str) {
    let before = p
        .exp_string(&format!("{line}\r\n"))
        .unwrap_or_else(|e| panic!("waiting for {line:?}: {e}"));
    let rest = strip_trailing_csi(&before);
    assert!(
        rest.is_empty() || rest.ends_with('\n') || rest.ends_with('\r'),
        "{line:?} does not start a line; output before it: {before:?}"
    );
}

#[track_caller]
fn expect_exit(p: &mut PtySession, status: i32) {
    p.exp_eof().expect("client exits");
    match p.process().wait().expect("wait for client") {
        WaitStatus::Exited(_, got) => assert_eq!(got, status),
        other => panic!("client ended with {other:?}"),
    }
}

/// `ann`'s client on `server`, once it says she is logged in.
fn ann_logged_in(server: &RunningServer) -> PtySession {
    let mut ann = client(server, Some("ann"));
    expect_line(&mut ann, "\tLog in successful. Welcome ann.");
    ann
}

/// Types `line` in `p` and waits until it shows `shown` as a whole line.
#[track_caller]
fn types(p: &mut PtySession, line: &str, shown: &str) {
    p.send_line(line).unwrap();
    expect_line(p, shown);
}

fn login_as(p: &mut PtySession, nick: &str) {
    p.exp_string("Your nickname: ").unwrap();
    p.send_line(nick).unwrap();
    expect_line(p, &format!("\tLog in successful. Welcome {nick}."));
}

#[test]
fn two_people_chat() {
    let server = common::server();
    let mut ann = client(&server, None);
    p_refuses_spaces(&mut ann);
    login_as(&mut ann, "ann");
    let mut bob = client(&server, Some("bob"));
    expect_line(&mut bob, "\tLog in successful. Welcome bob.");

    ann.send_line("/channels").unwrap();
    for line in common::CHANNEL_LINES {
        expect_line(&mut ann, line);
    }

    types(
        &mut ann,
        "/join Pets",
        "\tWelcome to the Pets Channel (1 users)",
    );
    types(
        &mut bob,
        "/join pets",
        "\tWelcome to the Pets Channel (2 users)",
    );
    expect_line(&mut ann, "\t<bob has entered Pets>");

    types(&mut bob, "hi ann", "\tbob [Pets]: hi ann");
    expect_line(&mut ann, "\tbob [Pets]: hi ann");

    // A message arriving while ann types shows above her line, which survives intact.
    ann.send("half typed").unwrap();
    ann.flush().unwrap();
    ann.exp_string("half typed").unwrap();
    bob.send_line("are you there?").unwrap();
    expect_line(&mut ann, "\tbob [Pets]: are you there?");
    ann.exp_string("half typed").unwrap();
    ann.send_line(" line").unwrap();
    expect_line(&mut bob, "\tann [Pets]: half typed line");

    ann.send_line("/users").unwrap();
    for nick in ["ann", "bob"] {
        ann.exp_regex(&format!(
            r"\t{nick}             \(on \d\d:\d\d:\d\d\) Channels: Pets\r\n"
        ))
        .unwrap_or_else(|e| panic!("USER_ITEM for {nick}: {e}"));
    }

    ann.send_line("/private bob psst, only you").unwrap();
    expect_line(&mut bob, "\tann [**private**]: psst, only you");

    types(&mut ann, "/watch bob", "\t<bob is online>");

    types(&mut bob, "/frob x", "\t/frob: unknown command");
    types(
        &mut bob,
        "/join Atlantis",
        "\t** ERROR: no channel named Atlantis **",
    );

    types(&mut bob, "/part", "\tYou have left the Pets Channel");
    expect_line(&mut ann, "\t<bob has left Pets>");

    bob.send_line("/quit").unwrap();
    expect_exit(&mut bob, 0);
    expect_line(&mut ann, "\t<bob is offline>");

    // Ctrl-D on an empty line leaves too.
    ann.send_control('d').unwrap();
    expect_exit(&mut ann, 0);
    // The server handles LOGOFF on its own threads: give it a moment.
    common::wait_no_users(&server);
    server.shutdown().unwrap();
}

fn p_refuses_spaces(p: &mut PtySession) {
    p.exp_string("Your nickname: ").unwrap();
    p.send_line("ann smith").unwrap();
    expect_line(p, "Invalid nickname. Must contain no spaces.");
}

#[test]
fn escape_sequences_from_the_network_arrive_defused() {
    let server = common::server();
    let mut ann = ann_logged_in(&server);
    ann.send_line("/join Pets").unwrap();
    expect_line(&mut ann, "\tWelcome to the Pets Channel (1 users)");

    let mallory = common::joined(&server, "mallory", "Pets");
    mallory.send(req::public(
        "\u{1b}[2J\u{1b}]0;owned\u{7}\u{9b}31mred\r\u{8}",
    ));
    // Everything ann's terminal got up to the message: no raw escape from mallory in it.
    let before = ann
        .exp_string("\tmallory [Pets]: ^[[2J^[]0;owned^G<U+009B>31mred^M^H\r\n")
        .expect("defused message");
    assert!(!before.contains("\u{1b}[2J"), "{before:?}");
    assert!(!before.contains("\u{1b}]0;"), "{before:?}");
    assert!(!before.contains('\u{9b}'), "{before:?}");

    // Ctrl-C leaves the way /quit does: mallory sees ann go.
    ann.send_control('c').unwrap();
    expect_exit(&mut ann, 0);
    let deadline = std::time::Instant::now() + common::WAIT;
    loop {
        let (c, payload) = mallory.recv();
        if c == code::USER_PARTS {
            assert_eq!(payload, "Pets ann");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no USER_PARTS");
    }
    server.shutdown().unwrap();
}

#[test]
fn passwords_are_asked_twice_without_echo_and_never_shown() {
    let server = common::server();
    let mut ann = ann_logged_in(&server);
    ann.exp_string("> ").unwrap();
    ann.send_line("/register").unwrap();
    ann.exp_string("New password: ").unwrap();
    ann.send_line("hunter2hunter2").unwrap();
    ann.exp_string("Repeat it: ").unwrap();
    ann.send_line("hunter2hunter2").unwrap();
    expect_line(&mut ann, "\tNickname ann is registered.");
    expect_line(&mut ann, "\tLog in successful. Welcome ann.");
    ann.send_line("/quit").unwrap();
    let rest = ann.exp_eof().expect("client exits");
    assert!(
        !rest.contains("hunter2"),
        "the password was echoed: {rest:?}"
    );

    let mut again = client(&server, Some("ann"));
    expect_line(
        &mut again,
        "\t** ERROR: nickname is registered; log in with a password **",
    );
    again.exp_string("Password: ").unwrap();
    again.send_line("hunter2hunter2").unwrap();
    let seen = again
        .exp_string("\tLog in successful. Welcome ann.")
        .unwrap();
    assert!(
        !seen.contains("hunter2"),
        "the password was echoed: {seen:?}"
    );
    again.send_line("/quit").unwrap();
    expect_exit(&mut again, 0);
}

/// The line mode in a terminal that echoes and has a size (see `common::pty`).
fn line_mode(port: u16, extra: &[&str]) -> common::pty::Pty {
    line_mode_in(&tempfile::tempdir().unwrap().keep(), port, extra)
}

/// As [`line_mode`], with its settings, pinned keys and history under `home`.
fn line_mode_in(home: &std::path::Path, port: u16, extra: &[&str]) -> common::pty::Pty {
    let mut cmd = Command::new(common::bin("chat-client"));
    cmd.args(["127.0.0.1", &port.to_string(), "--line"])
        .args(extra)
        .env("TERM", "xterm")
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_STATE_HOME", home.join("state"));
    common::pty::Pty::spawn(cmd, 24, 100)
}

/// Every PUBLIC_MSG payload at `peer` until `want` came (or 20 s passed).
fn publics(peer: &common::Peer, want: usize) -> Vec<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut got = Vec::new();
    while got.len() < want && std::time::Instant::now() < deadline {
        if let Some((c, p)) = peer.recv_within(std::time::Duration::from_millis(200)) {
            if c == code::PUBLIC_MSG {
                got.push(p);
            }
        }
    }
    got
}

#[test]
fn pastes_in_line_mode_go_line_by_line() {
    let server = common::server();
    let mut ann = line_mode(server.addr().port(), &["--nick", "ann"]);
    ann.wait_raw("Log in successful. Welcome ann.");
    ann.line("/join Pets");
    ann.wait_raw("Welcome to the Pets Channel (1 users)");
    let bob = common::joined(&server, "bob", "Pets");
    ann.wait_raw("<bob has entered Pets>");
    // Three lines at once, no paste marks: three messages, not one.
    ann.send("one\rtwo\rthree\r");
    assert_eq!(
        publics(&bob, 3),
        ["Pets ann one", "Pets ann two", "Pets ann three"]
    );
    // A bracketed paste of six lines asks first.
    ann.paste(&["1", "2", "3", "4", "5", "6"]);
    ann.wait_raw("Send these 6 lines? [y/N] ");
    ann.line("n");
    ann.wait_raw("\tNot sent.");
    ann.line("after");
    assert_eq!(publics(&bob, 1), ["Pets ann after"]);
    ann.quit();
    server.shutdown().unwrap();
}

#[test]
fn a_password_session_asks_the_password_again_after_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let store = udpchat::accounts::StoreKind::Sqlite(data.path().join("data"));
    let server = common::server_with(|c| c.store = store.clone());
    let addr = server.addr();
    let mut ann = line_mode(
        addr.port(),
        &[
            "--nick",
            "ann",
            "--keepalive-ms",
            "300",
            "--pong-wait-ms",
            "300",
        ],
    );
    ann.wait_raw("Log in successful. Welcome ann.");
    ann.line("/register");
    ann.wait_raw("New password: ");
    ann.line("tulip garden");
    ann.wait_raw("Repeat it: ");
    ann.line("tulip garden");
    ann.wait_raw("Nickname ann is registered.");
    ann.wait("the password login", |raw, _| {
        raw.matches("Log in successful. Welcome ann.").count() == 2
    });
    ann.line("/join Pets");
    ann.wait_raw("Welcome to the Pets Channel (1 users)");

    server.shutdown().unwrap();
    ann.wait_raw("** connection to server lost; reconnecting **");
    let server = common::server_with(|c| {
        c.bind = addr;
        c.store = store;
    });
    // The prompt changes at once; the password is typed without echo.
    ann.wait_raw("Password for ann: ");
    ann.line("tulip garden");
    ann.wait_raw("** connection to server restored **");
    let bob = common::joined(&server, "bob", "Pets");
    ann.line("hello again");
    assert_eq!(publics(&bob, 1), ["Pets ann hello again"]);
    assert!(!ann.raw().contains("tulip"), "the password was echoed");
    ann.quit();
    server.shutdown().unwrap();
}

#[test]
fn in_line_mode_a_password_in_a_message_never_leaves_and_the_files_are_the_users_alone() {
    let server = common::server();
    let home = tempfile::tempdir().unwrap();
    let mut ann = line_mode_in(home.path(), server.addr().port(), &["--nick", "ann"]);
    ann.wait_raw("Log in successful. Welcome ann.");
    ann.line("/join Pets");
    ann.wait_raw("Welcome to the Pets Channel (1 users)");
    let bob = common::joined(&server, "bob", "Pets");
    ann.wait_raw("<bob has entered Pets>");
    ann.line("/register");
    ann.wait_raw("New password: ");
    ann.line(PW);
    ann.wait_raw("Repeat it: ");
    ann.line(PW);
    ann.wait_raw("Nickname ann is registered.");
    ann.wait("the password login", |raw, _| {
        raw.matches("Log in successful. Welcome ann.").count() == 2
    });
    ann.line(&format!("/msg bob {PW}"));
    ann.wait_raw("\t** /msg not sent: it holds a password **");
    ann.line(&format!("/nick {PW}x"));
    ann.wait_raw("\t** /nick not sent: it holds a password **");
    ann.line(&format!("the password is {PW} ok"));
    ann.wait_raw("\t** not sent: that line holds a password **");
    ann.line("done");
    // bob hears "done" and nothing before it: no private message, no line with it.
    let mut heard = Vec::new();
    while !heard
        .iter()
        .any(|(c, p): &(u16, String)| *c == code::PUBLIC_MSG && p == "Pets ann done")
    {
        heard.push(
            bob.recv_within(std::time::Duration::from_secs(20))
                .expect("done"),
        );
    }
    assert!(heard
        .iter()
        .all(|(c, p)| *c != code::PRIVATE_MSG && !p.contains(PW)));
    assert!(server.state().address_of(&format!("{PW}x")).is_none());
    ann.quit();
    assert!(!ann.raw().contains(PW), "the password was shown");
    let history = common::history_file(home.path());
    let kept = std::fs::read_to_string(&history).unwrap();
    assert_eq!(kept, "/join Pets\n/register\ndone\n/quit\n");
    assert_eq!(common::file_mode(&history), 0o600);
    assert_eq!(common::file_mode(&home.path().join("state/udpchat")), 0o700);
    // The server's key pinned at registration: the user's alone too.
    let known = home.path().join("config/udpchat/known_servers");
    assert!(std::fs::read_to_string(&known)
        .unwrap()
        .starts_with("127.0.0.1:"));
    assert_eq!(common::file_mode(&known), 0o600);
    assert_eq!(
        common::file_mode(&home.path().join("config/udpchat")),
        0o700
    );
    assert_eq!(common::file_mode(&home.path().join("config")), 0o700);
    server.shutdown().unwrap();
}
