//! The full-screen client in a pseudo-terminal, its screen rendered by a terminal emulator
//! (`vt100`): what a person sees of buffers, activity, the status line and the nick list;
//! a reconnect after the server is restarted; pastes; a long line split and wrapped; a
//! password that never shows, nor leaves inside any command or sentence, nor stays in the
//! history file (which is the user's alone); the part-5 commands, with history shown apart.

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use common::pty::Pty;
use common::Peer;
use common::{req, PW};
use proto::{code, Request};
use udpchat::server::RunningServer;

const ROWS: u16 = 24;
const COLS: u16 = 100;

/// The full-screen client as `nick`, with its settings and history in a folder of its own,
/// once its status line says it is connected.
fn tui(port: u16, nick: &str, home: &tempfile::TempDir, extra: &[&str]) -> Pty {
    let mut cmd = Command::new(common::bin("chat-client"));
    cmd.args(["127.0.0.1", &port.to_string(), "--nick", nick])
        .args(extra)
        .env("TERM", "xterm-256color")
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .env("XDG_STATE_HOME", home.path().join("state"));
    let p = Pty::spawn(cmd, ROWS, COLS);
    wait_status(&p, "[connected]");
    p
}

/// A server, and `ann`'s full-screen client connected to it with `extra` arguments and a
/// home folder of its own.
fn ann_connected(extra: &[&str]) -> (RunningServer, tempfile::TempDir, Pty) {
    let server = common::server();
    let home = tempfile::tempdir().unwrap();
    let ann = tui(server.addr().port(), "ann", &home, extra);
    (server, home, ann)
}

/// As [`ann_connected`], with ann in Pets (her buffer 2) and `bob`, a peer of raw
/// datagrams, in Pets too.
fn ann_and_bob_in_pets() -> (RunningServer, tempfile::TempDir, Pty, Peer) {
    let (server, home, mut ann) = ann_connected(&[]);
    ann.line("/join Pets");
    wait_status(&ann, "[2:Pets]");
    let bob = common::joined(&server, "bob", "Pets");
    ann.wait_screen("<bob has entered Pets>");
    (server, home, ann, bob)
}

/// The status line (the row above the input line).
fn status(p: &Pty) -> String {
    p.row(ROWS - 2)
}

#[track_caller]
fn wait_status(p: &Pty, text: &str) {
    p.wait(&format!("status line with {text:?}"), |_, screen| {
        screen
            .lines()
            .nth(usize::from(ROWS - 2))
            .is_some_and(|l| l.contains(text))
    });
}

/// Waits for a datagram `code payload` at `peer`, skipping others.
#[track_caller]
fn expect_at(peer: &Peer, code: u16, payload: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        if let Some((c, p)) = peer.recv_within(Duration::from_millis(200)) {
            if c == code && p == payload {
                return;
            }
            seen.push((c, p));
        }
    }
    panic!("no {code} {payload:?}; got {seen:#?}");
}

/// Every PUBLIC_MSG text from `sender` at `peer` until `quiet` passes without one.
fn public_texts(peer: &Peer, sender: &str, want: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut texts = Vec::new();
    while texts.len() < want && Instant::now() < deadline {
        if let Some((c, p)) = peer.recv_within(Duration::from_millis(200)) {
            if c == code::PUBLIC_MSG {
                let mut parts = p.splitn(3, ' ');
                let (_, from, text) = (parts.next(), parts.next(), parts.next());
                if from == Some(sender) {
                    texts.push(text.unwrap_or("").to_string());
                }
            }
        }
    }
    texts
}

#[test]
fn buffers_activity_status_line_and_nick_list() {
    let (server, _home, mut ann) = ann_connected(&[]);
    wait_status(&ann, "[ann]");
    assert!(status(&ann).contains("[1:status]"), "{}", ann.screen());

    ann.line("/join Pets");
    ann.wait_screen("Welcome to the Pets Channel (1 users)");
    wait_status(&ann, "[2:Pets]");
    let bob = common::joined(&server, "bob", "Pets");
    ann.wait_screen("<bob has entered Pets>");
    // The nick list beside the channel.
    ann.wait("bob in the nick list", |_, s| {
        s.contains("2 users") && s.lines().any(|l| l.trim_end().ends_with("│bob"))
    });

    ann.line("/join Weather");
    wait_status(&ann, "[3:Weather]");
    bob.send(req::public("hi ann, still there?"));
    // Activity: buffer 2 has a new line that mentions ann.
    wait_status(&ann, "[Act: 2!]");
    bob.send(req::private("ann", "psst"));
    wait_status(&ann, "[Act: 2!,4!]");

    // Alt-2 shows the channel; its activity is seen.
    ann.send("\u{1b}2");
    wait_status(&ann, "[2:Pets]");
    ann.wait_screen("bob [Pets]: hi ann, still there?");
    assert!(status(&ann).contains("[Act: 4!]"), "{}", status(&ann));

    // Typing in Pets while Weather is current speaks in Pets (joined first, quietly).
    ann.line("back in pets");
    expect_at(&bob, code::PUBLIC_MSG, "Pets ann back in pets");
    ann.wait_screen("ann [Pets]: back in pets");

    // The private conversation has its buffer; what ann sends there shows in it.
    ann.line("/window 4");
    wait_status(&ann, "[4:bob]");
    ann.wait_screen("bob [**private**]: psst");
    ann.line("hello bob");
    expect_at(&bob, code::PRIVATE_MSG, "ann hello bob");
    ann.wait_screen("-> bob: hello bob");

    // Ctrl-N wraps around to the status buffer; Ctrl-P goes back.
    for (key, buffer) in [("\u{e}", "[1:status]"), ("\u{10}", "[4:bob]")] {
        ann.send(key);
        wait_status(&ann, buffer);
    }

    ann.quit();
    // The terminal is left as it was found: the alternate screen is gone.
    assert!(ann.raw().contains("\u{1b}[?1049l"), "{:?}", ann.raw());
    server.shutdown().unwrap();
}

/// A server on a given address (to start one again where the last one was).
fn server_at(addr: SocketAddr) -> RunningServer {
    common::server_with(|c| c.bind = addr)
}

#[test]
fn reconnects_after_the_server_restarts_and_keeps_the_current_channel() {
    let (server, _home, mut ann) =
        ann_connected(&["--keepalive-ms", "300", "--pong-wait-ms", "300"]);
    let addr = server.addr();
    ann.line("/join Pets");
    wait_status(&ann, "[2:Pets]");
    ann.line("/join Weather");
    wait_status(&ann, "[3:Weather]");
    ann.line("/window 1");
    wait_status(&ann, "[in Weather]");

    server.shutdown().unwrap();
    ann.wait_screen("** connection to server lost; reconnecting **");
    let server = server_at(addr);
    ann.wait_screen("** connection to server restored **");
    wait_status(&ann, "[connected]");
    wait_status(&ann, "[in Weather]");

    // The new server has ann in both channels, Weather (current) first.
    let bob = common::joined(&server, "bob", "Weather");
    bob.send(Request::Whois { nick: "ann" });
    bob.expect_user_item("ann", "Weather Pets");

    // What ann types goes where it went before.
    ann.line("/window 3");
    ann.line("made it");
    expect_at(&bob, code::PUBLIC_MSG, "Weather ann made it");
    ann.quit();
    server.shutdown().unwrap();
}

#[test]
fn pastes_go_line_by_line_and_long_lines_are_split_and_wrapped() {
    let (server, _home, mut ann, bob) = ann_and_bob_in_pets();

    // A bracketed paste of three lines: three messages.
    ann.paste(&["one", "two", "three"]);
    assert_eq!(public_texts(&bob, "ann", 3), ["one", "two", "three"]);

    // Three lines arriving at once without paste marks: three messages too.
    ann.send("four\rfive\rsix\r");
    assert_eq!(public_texts(&bob, "ann", 3), ["four", "five", "six"]);

    // Seven lines: asked first.
    let seven: Vec<String> = (1..=7).map(|i| format!("line {i}")).collect();
    ann.paste(&seven.iter().map(String::as_str).collect::<Vec<_>>());
    ann.wait_screen("Send these 7 lines? [y/N]");
    ann.line("y");
    assert_eq!(public_texts(&bob, "ann", 7), seven);

    // A line longer than a datagram: split at spaces into messages that fit.
    let words: Vec<String> = (0..400).map(|i| format!("w{i:03}")).collect();
    let long = words.join(" ");
    // Typed in pieces, each seen on the input line before the next: a terminal's input
    // queue holds about a kilobyte at a time.
    for chunk in words.chunks(100) {
        let piece = format!("{} ", chunk.join(" "));
        ann.send(&piece);
        let last = chunk.last().unwrap().clone();
        ann.wait(&format!("{last} typed"), move |_, s| {
            s.lines().last().is_some_and(|l| l.contains(&last))
        });
    }
    ann.send("\r");
    let pieces = public_texts(&bob, "ann", 2);
    assert!(pieces.len() >= 2, "{pieces:?}\n{}", ann.screen());
    assert!(pieces.iter().all(|p| p.len() <= 1022), "{pieces:?}");
    assert_eq!(pieces.join(" ").trim_end(), long);
    // On screen the long message wraps with an indent, words whole.
    ann.wait("an indented continuation row", |_, s| {
        s.lines().any(|l| l.starts_with("        w"))
    });
    ann.quit();
    server.shutdown().unwrap();
}

#[test]
fn passwords_show_as_stars_and_never_go_out_as_text() {
    let (server, home, mut ann, bob) = ann_and_bob_in_pets();

    ann.line("/register");
    ann.wait_screen("New password: ");
    ann.send("hunter2hunter2");
    ann.wait_screen("New password: **************");
    ann.send("\r");
    ann.wait_screen("Repeat it: ");
    ann.line("hunter2hunter2");
    ann.wait_screen("Nickname ann is registered.");
    // Then the session logs in with the new password, to be protected.
    ann.wait_screen("Log in successful. Welcome ann.");
    ann.wait_screen("[Pets] ");
    // Typed again at the chat prompt, the password is held back.
    ann.line("hunter2hunter2");
    ann.wait_screen("not sent: that is a password");
    ann.line("done");
    let texts = public_texts(&bob, "ann", 1);
    assert_eq!(texts, ["done"]);
    ann.quit();
    assert!(!ann.raw().contains("hunter2"), "the password was shown");
    // Nor did it reach the history file.
    let history = std::fs::read_to_string(common::history_file(home.path())).unwrap();
    assert!(!history.contains("hunter2"), "{history}");
    server.shutdown().unwrap();
}

#[test]
fn a_password_inside_any_command_or_sentence_never_leaves_nor_stays_in_the_history() {
    let server = common::server();
    let home = tempfile::tempdir().unwrap();
    // An earlier run kept a line with the password, in a history open to others.
    let history = common::history_file(home.path());
    std::fs::create_dir_all(history.parent().unwrap()).unwrap();
    common::write_with_mode(&history, &format!("an old line\n/msg carl {PW}\n"), 0o644);
    let mut ann = tui(server.addr().port(), "ann", &home, &[]);
    assert_eq!(common::file_mode(&history), 0o600, "tightened when opened");
    ann.line("/join Pets");
    wait_status(&ann, "[2:Pets]");
    let bob = common::joined(&server, "bob", "Pets");
    ann.wait_screen("<bob has entered Pets>");
    // Typed before the client knows it is a password: it goes out, and is kept, for now.
    ann.line(&format!("/whois {PW}"));
    ann.wait_screen("not logged in");

    ann.line("/register");
    ann.wait_screen("New password: ");
    ann.line(PW);
    ann.wait_screen("Repeat it: ");
    ann.line(PW);
    ann.wait_screen("Nickname ann is registered.");
    ann.wait_screen("Log in successful. Welcome ann.");
    ann.wait_screen("[Pets] ");
    let shown_before = ann.raw().len();

    // What the user tried: each is held back, and says which command and why.
    for (line, said) in [
        (
            format!("/msg bob {PW}"),
            "/msg not sent: it holds a password",
        ),
        (format!("/nick {PW}"), "/nick not sent: it holds a password"),
        (
            format!("/create {PW}"),
            "/create not sent: it holds a password",
        ),
        (
            format!("/create Den {PW}"),
            "/create not sent: it holds a password",
        ),
        (
            format!("/topic Pets it is {PW}"),
            "/topic not sent: it holds a password",
        ),
        (
            format!("my password is {PW}, ok?"),
            "not sent: that line holds a password",
        ),
    ] {
        let before = ann.screen().matches(said).count();
        ann.line(&line);
        ann.wait(said, |_, screen| screen.matches(said).count() > before);
    }
    ann.line("done");
    // Nothing of them reached bob: the next thing he hears from ann is "done".
    let mut heard = Vec::new();
    while !heard
        .iter()
        .any(|(c, p): &(u16, String)| *c == code::PUBLIC_MSG && p.ends_with(" done"))
    {
        let got = bob
            .recv_within(Duration::from_secs(20))
            .expect("ann's done");
        heard.push(got);
    }
    assert!(heard.iter().all(|(_, p)| !p.contains(PW)), "{heard:#?}");
    assert!(
        !heard.iter().any(|(c, _)| *c == code::PRIVATE_MSG),
        "{heard:#?}"
    );
    // Nor the server: no user, channel or topic with it; ann is still ann.
    let state = server.state();
    assert!(state.address_of(PW).is_none());
    assert!(state.address_of("ann").is_some());
    assert!(state.channel_id(PW).is_none());
    assert!(state.channel_id("Den").is_none());
    assert!(
        state
            .channels()
            .iter()
            .all(|c| !format!("{c:?}").contains(PW)),
        "a channel holds it"
    );
    ann.quit();
    let after = &ann.raw()[shown_before..];
    assert!(!after.contains(PW), "the password was shown");

    // The history file holds none of it, nor the lines kept before it was known.
    let kept = std::fs::read_to_string(&history).unwrap();
    assert_eq!(kept, "an old line\n/join Pets\n/register\ndone\n/quit\n");
    assert_eq!(common::file_mode(&history), 0o600);
    server.shutdown().unwrap();
}

#[test]
fn a_history_the_client_makes_is_the_users_alone() {
    let (server, home, mut ann) = ann_connected(&[]);
    ann.line("/join Pets");
    wait_status(&ann, "[2:Pets]");
    ann.quit();
    let history = common::history_file(home.path());
    assert_eq!(
        std::fs::read_to_string(&history).unwrap(),
        "/join Pets\n/quit\n"
    );
    assert_eq!(common::file_mode(&history), 0o600);
    assert_eq!(common::file_mode(&home.path().join("state/udpchat")), 0o700);
    assert_eq!(common::file_mode(&home.path().join("state")), 0o700);
    server.shutdown().unwrap();
}

#[test]
fn scrollback_search_completion_bell_settings_and_history() {
    let server = common::server();
    let port = server.addr().port();
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("config/udpchat");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("client.toml"),
        "timestamps = false\nchannels = [\"Pets\"]\n",
    )
    .unwrap();
    let mut ann = tui(port, "ann", &home, &[]);
    // The settings file: Pets joined at start, no timestamps.
    wait_status(&ann, "[2:Pets]");
    let bob = common::joined(&server, "bob", "Pets");
    ann.wait_screen("<bob has entered Pets>");
    for i in 0..40 {
        bob.send(req::public(&format!("msg-{i:02}")));
    }
    ann.wait("the last message, at the start of its row", |_, s| {
        s.lines().any(|l| l.starts_with("bob [Pets]: msg-39"))
    });
    assert!(!ann.screen().contains("msg-05"));

    // PageUp shows older lines; PageDown comes back.
    ann.send("\u{1b}[5~");
    wait_status(&ann, "-- more --");
    ann.wait_screen("msg-10");
    ann.send("\u{1b}[6~\u{1b}[6~");
    ann.wait("back at the bottom", |_, s| {
        s.contains("msg-39") && !s.contains("-- more --")
    });

    // Search brings an old line into view; Esc goes back.
    ann.line("/search MSG-05");
    ann.wait_screen("bob [Pets]: msg-05");
    ann.send("\u{1b}");
    ann.wait("back at the bottom", |_, s| !s.contains("msg-05"));

    // Tab completes commands and nicknames.
    ann.send("/wh\t");
    ann.wait_screen("[Pets] /who ");
    ann.send("\u{15}bo\t");
    ann.wait_screen("[Pets] bob: ");
    ann.line("are you done?");
    expect_at(&bob, code::PUBLIC_MSG, "Pets ann bob: are you done?");

    // A mention rings the bell.
    let bells = ann.raw().matches('\u{7}').count();
    bob.send(req::public("yes ann"));
    ann.wait("a bell", |raw, _| raw.matches('\u{7}').count() > bells);
    ann.quit();

    // The next run remembers what was typed.
    let mut again = tui(port, "ann", &home, &[]);
    again.send("\u{1b}[A");
    again.wait_screen("[Pets] /quit");
    again.send("\u{1b}[A");
    again.wait_screen("[Pets] bob: are you done?");
    again.send("\u{3}");
    assert_eq!(again.exit_code(), Some(0));
    server.shutdown().unwrap();
}

#[test]
fn sigterm_logs_off_and_gives_the_terminal_back() {
    let (server, _home, mut ann) = ann_connected(&[]);
    common::wait_until(|| server.state().user_count() == 1);
    common::signal(ann.pid(), common::Signal::SIGTERM);
    assert_eq!(ann.exit_code(), Some(128 + common::Signal::SIGTERM as i32));
    common::wait_until(|| server.state().user_count() == 0);
    assert!(
        ann.raw().contains("\u{1b}[?1049l"),
        "the alternate screen was left on"
    );
    server.shutdown().unwrap();
}

#[test]
fn part5_commands_in_the_full_screen_with_history_shown_apart() {
    let (server, _home, mut ann) = ann_connected(&[]);
    // A created channel comes to the front like a joined one. (Creating needs a proved
    // address.)
    common::wait_proved(&server, "ann");
    ann.line("/create Den a cozy place");
    ann.wait_screen("<ann created Den (temporary): a cozy place>");
    wait_status(&ann, "[2:Den]");
    let bob = common::joined(&server, "bob", "Den");
    ann.wait("bob in the nick list", |_, s| {
        s.lines().any(|l| l.trim_end().ends_with("│bob"))
    });
    bob.send(req::public("said live"));
    ann.wait_screen("bob [Den]: said live");
    ann.line("/history Den 5");
    ann.wait_screen("-- end of the history of Den --");
    ann.wait_screen("] bob [Den]: said live");
    // The history line is dimmed; the live one is not.
    assert_eq!(
        ann.color_of("[history "),
        Some(vt100::Color::Idx(8)),
        "{}",
        ann.screen()
    );
    assert_eq!(
        ann.color_of("bob [Den]: said live"),
        Some(vt100::Color::Default)
    );
    // A kicked member leaves the nick list.
    ann.line("/kick Den bob enough");
    ann.wait_screen("<ann removed bob from Den: enough>");
    ann.wait("bob gone from the nick list", |_, s| {
        !s.lines().any(|l| l.trim_end().ends_with("│bob"))
    });
    ann.quit();
    server.shutdown().unwrap();
}
