//! The classic line mode as a person on a plain terminal (`TERM=dumb`) meets it, against
//! our server and against a minimal server that speaks only part 1 of the protocol
//! (written here: it answers nothing beyond part 1). Also: no server at all (the ICMP
//! error), passwords that are never echoed and never sent as text, and the feedback lines.

mod common;

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::pty::Pty;
use common::script::Scripted;
use proto::{code, encode_raw, Request};

/// The client, with its settings, history and pinned server keys in a folder of its own
/// (servers here come and go on recycled ports, with new keys).
fn client_command(port: u16) -> Command {
    let home = tempfile::tempdir().unwrap().keep();
    let mut cmd = Command::new(common::bin("chat-client"));
    cmd.args(["127.0.0.1", &port.to_string()])
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_STATE_HOME", home.join("state"));
    cmd
}

/// The client as `ann` from pipes, fed `script` to its end (it must exit with success);
/// everything it printed.
fn script_output(port: u16, script: &str) -> String {
    let mut cmd = client_command(port);
    cmd.args(["--nick", "ann"]);
    let mut client = Scripted::spawn(cmd);
    client.send(script);
    client
        .finish_ok()
        .iter()
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The client in line mode on a dumb terminal.
fn dumb(port: u16, extra: &[&str]) -> Pty {
    let mut cmd = client_command(port);
    cmd.args(extra).env("TERM", "dumb");
    Pty::spawn(cmd, 24, 100)
}

/// Waits for `line` as a whole line of output (`\r\n` after it, a line start before it).
#[track_caller]
fn expect_line(p: &Pty, line: &str) {
    let want = format!("{line}\r\n");
    p.wait(&format!("line {line:?}"), |raw, _| {
        raw.match_indices(&want).any(|(i, _)| {
            i == 0 || raw[..i].ends_with('\n') || raw[..i].ends_with("Your nickname: ")
        })
    });
}

/// The classic session, typed by a person: the nickname prompt, channels, a message,
/// users, a private message, leaving.
fn classic_session(p: &mut Pty, server_has_bob: &dyn Fn()) {
    p.wait_raw("Your nickname: ");
    p.line("ann");
    expect_line(p, "trying to log in (1)...");
    expect_line(p, "\tLog in successful. Welcome ann.");
    p.line("/channels");
    for line in common::CHANNEL_LINES {
        expect_line(p, line);
    }
    p.line("/join Pets");
    expect_line(p, "\tWelcome to the Pets Channel (1 users)");
    p.line("hello  there");
    expect_line(p, "\tann [Pets]: hello  there");
    p.line("/users");
    p.wait("USER_ITEM", |raw, _| {
        raw.contains("\tann             (on 00:00:0") && raw.contains(") Channels: Pets\r\n")
    });
    server_has_bob();
    p.line("/private bob psst");
    expect_line(p, "\t-> bob: psst");
    p.line("/part");
    expect_line(p, "\tYou have left the Pets Channel");
    p.quit();
    // A dumb terminal gets no escape sequences at all.
    assert!(!p.raw().contains('\u{1b}'), "{:?}", p.raw());
    // The part-4 request the client makes after login never shows as an error.
    assert!(!p.raw().contains("unimplemented"), "{:?}", p.raw());
}

#[test]
fn classic_session_on_a_dumb_terminal_against_our_server() {
    let server = common::server();
    let mut p = dumb(server.addr().port(), &[]);
    let bob = common::user(&server, "bob");
    classic_session(&mut p, &|| {});
    let (c, payload) = bob.recv();
    assert_eq!((c, payload.as_str()), (code::PRIVATE_MSG, "ann psst"));
    server.shutdown().unwrap();
}

#[test]
fn classic_session_on_a_dumb_terminal_against_a_part_1_server() {
    let classic = Classic::start(true);
    let bob = classic.peer();
    let mut p = dumb(classic.addr.port(), &[]);
    classic_session(&mut p, &|| {
        bob.login("bob");
    });
    assert_eq!(bob.next(), Some((code::PRIVATE_MSG, "ann psst".into())));
}

#[test]
fn reconnects_to_a_part_1_server_from_please_log_in_alone() {
    // This server does not even answer unknown codes: CAPS_REQ goes unanswered.
    let classic = Classic::start(false);
    let mut p = dumb(
        classic.addr.port(),
        &["--nick", "ann", "--keepalive-ms", "300"],
    );
    expect_line(&p, "\tLog in successful. Welcome ann.");
    p.line("/join Pets");
    expect_line(&p, "\tWelcome to the Pets Channel (1 users)");
    p.line("/join Weather");
    expect_line(&p, "\tWelcome to the Weather Channel (1 users)");
    // The server restarts: it forgets everyone, and answers the next keepalive with
    // `please log in`.
    classic.forget_everyone();
    expect_line(&p, "** connection to server lost; reconnecting **");
    expect_line(&p, "** connection to server restored **");
    assert_eq!(
        classic.channels_of("ann"),
        Some(vec!["Weather".to_string(), "Pets".to_string()]),
        "rejoined in the same order, Weather still current"
    );
    p.line("still here");
    expect_line(&p, "\tann [Weather]: still here");
    // Nothing of the reconnect showed as an error.
    assert!(!p.raw().contains("ERROR"), "{:?}", p.raw());
    p.quit();
}

#[test]
fn no_server_is_reported_within_a_second() {
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let mut p = dumb(port, &["--nick", "ann"]);
    expect_line(&p, &format!("no chat server at 127.0.0.1:{port}"));
    assert!(
        started.elapsed() < Duration::from_secs(1) + Duration::from_millis(500),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(p.exit_code(), Some(1));
}

#[test]
fn passwords_are_never_echoed_and_three_wrong_ones_say_so() {
    let server = common::server();
    let port = server.addr().port();
    // ann registers from a script.
    let text = script_output(port, "/register\nright horse\nright horse\n");
    assert!(text.contains("\tNickname ann is registered."), "{text}");

    // On a terminal (which echoes), the password prompt does not.
    let mut p = dumb(port, &[]);
    p.wait_raw("Your nickname: ");
    p.line("ann");
    expect_line(
        &p,
        "\t** ERROR: nickname is registered; log in with a password **",
    );
    for n in 1..=3 {
        p.wait(&format!("password prompt {n}"), |raw, _| {
            raw.matches("Password: ").count() == n
        });
        p.line(&format!("wrong battery {n}"));
        p.wait(&format!("wrong password {n}"), |raw, _| {
            raw.matches("\t** ERROR: wrong password **").count() == n
        });
    }
    expect_line(&p, "Too many wrong passwords.");
    assert!(
        !p.raw().contains("battery"),
        "a password was echoed: {:?}",
        p.raw()
    );
    expect_line(
        &p,
        "Log in again: type a nickname (not a password) at the prompt.",
    );
    p.wait("the nickname prompt again", |raw, _| {
        raw.matches("Your nickname: ").count() == 2
    });
    // A password typed at the nickname prompt is not sent as a nickname.
    p.line("wrong battery 2");
    expect_line(&p, "\t** not sent: that is a password, not a nickname **");
    p.line("ann");
    p.wait("password prompt", |raw, _| {
        raw.matches("Password: ").count() == 4
    });
    p.line("right horse");
    p.wait("logged in", |raw, _| {
        raw.contains("\tLog in successful. Welcome ann.\r\n")
    });
    let raw = p.raw();
    assert!(!raw.contains("horse"), "a password was echoed: {raw:?}");
    p.quit();
    server.shutdown().unwrap();
}

#[test]
fn no_password_line_is_ever_sent_as_a_message() {
    let server = common::server();
    let port = server.addr().port();
    let bob = common::joined(&server, "bob", "Pets");
    // A script registers, then changes the password the way people got it wrong with the
    // old client: the new one only, as if it asked for no current password; then the old
    // and the new password come once more, at the chat prompt.
    let script = "/join Pets\n/register\nold secret\nold secret\n\
                  /passwd\nnew secret\nnew secret\nnew secret\n\
                  old secret\nnew secret\nvisible line\n";
    let text = script_output(port, script);
    assert!(text.contains("\tNickname ann is registered."), "{text}");
    assert!(text.contains("Too many wrong passwords."), "{text}");
    assert!(
        text.contains("\t** not sent: that is a password **"),
        "{text}"
    );
    assert!(!text.contains("secret"), "{text}");
    // bob heard only the visible line.
    let mut heard = Vec::new();
    while let Some((c, payload)) = bob.recv_within(Duration::from_millis(500)) {
        if c == code::PUBLIC_MSG {
            heard.push(payload);
        }
    }
    assert_eq!(heard, ["Pets ann visible line"], "{text}");
    server.shutdown().unwrap();
}

#[test]
fn feedback_for_part_and_a_first_message_without_a_channel() {
    let server = common::server();
    let text = script_output(
        server.addr().port(),
        "hello?\n/part Weather\n/join Pets\n/part weather\n",
    );
    assert!(text.contains("\t** ERROR: no current channel **\n\tJoin a channel first: /channels lists them, /join TITLE joins one.\n"), "{text}");
    assert_eq!(
        text.matches("\tYou are not in Weather.\n").count(),
        1,
        "{text}"
    );
    assert!(text.contains("\tYou are not in weather.\n"), "{text}");
    server.shutdown().unwrap();
}

// ---- a server that speaks part 1 only ----

/// The five classic channels.
const CHANNELS: [(&str, &str); 5] = [
    ("CurrentEvents", "Discussion of current events"),
    ("Weather", "Talk about the weather"),
    ("Gardening", "For those with the green thumb"),
    ("Hobbies", "For hobbyists of all types"),
    ("Pets", "For our furry and feathered friends"),
];

struct User {
    nick: String,
    /// Most recent first.
    channels: Vec<String>,
    since: Instant,
}

/// A minimal part-1 server on a thread: what PROTOCOL.md's part 1 says, nothing more.
struct Classic {
    addr: SocketAddr,
    users: Arc<Mutex<HashMap<SocketAddr, User>>>,
    stop: Arc<AtomicBool>,
}

impl Classic {
    /// `unknown_answered`: whether unknown codes get `ERROR unimplemented event code`
    /// (part 1 says so) or nothing at all.
    fn start(unknown_answered: bool) -> Classic {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let addr = socket.local_addr().unwrap();
        let users = Arc::new(Mutex::new(HashMap::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (u, s) = (Arc::clone(&users), Arc::clone(&stop));
        thread::spawn(move || serve(&socket, &u, &s, unknown_answered));
        Classic { addr, users, stop }
    }

    fn peer(&self) -> ClassicPeer {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.connect(self.addr).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        ClassicPeer(sock)
    }

    /// As after a restart: nobody is logged in.
    fn forget_everyone(&self) {
        self.users.lock().unwrap().clear();
    }

    fn channels_of(&self, nick: &str) -> Option<Vec<String>> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let found = self
                .users
                .lock()
                .unwrap()
                .values()
                .find(|u| u.nick == nick)
                .map(|u| u.channels.clone());
            if found.as_ref().is_some_and(|c| c.len() >= 2) || Instant::now() > deadline {
                return found;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Classic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

struct ClassicPeer(UdpSocket);

impl ClassicPeer {
    fn login(&self, nick: &str) {
        self.0.send(&Request::Login { nick }.to_bytes()).unwrap();
        assert_eq!(self.next(), Some((code::LOGIN_ACK, nick.to_string())));
    }

    fn next(&self) -> Option<(u16, String)> {
        let mut buf = [0u8; 2048];
        let n = self.0.recv(&mut buf).ok()?;
        let code = u16::from_be_bytes([buf[0], buf[1]]);
        Some((code, String::from_utf8_lossy(&buf[2..n]).into_owned()))
    }
}

fn send(socket: &UdpSocket, to: SocketAddr, code: u16, payload: &str) {
    let mut d = Vec::new();
    encode_raw(code, payload, &mut d);
    let _ = socket.send_to(&d, to);
}

fn serve(
    socket: &UdpSocket,
    users: &Mutex<HashMap<SocketAddr, User>>,
    stop: &AtomicBool,
    unknown_answered: bool,
) {
    let mut buf = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        let Ok((n, from)) = socket.recv_from(&mut buf) else {
            continue;
        };
        if n < 2 {
            continue;
        }
        let code = u16::from_be_bytes([buf[0], buf[1]]);
        let payload = String::from_utf8_lossy(&buf[2..n]).into_owned();
        let mut users = users.lock().unwrap();
        handle(socket, &mut users, from, code, &payload, unknown_answered);
    }
}

fn members(users: &HashMap<SocketAddr, User>, title: &str) -> Vec<SocketAddr> {
    users
        .iter()
        .filter(|(_, u)| u.channels.iter().any(|c| c == title))
        .map(|(a, _)| *a)
        .collect()
}

fn handle(
    socket: &UdpSocket,
    users: &mut HashMap<SocketAddr, User>,
    from: SocketAddr,
    code: u16,
    payload: &str,
    unknown_answered: bool,
) {
    let err = |m: &str| send(socket, from, code::ERROR, m);
    if code == code::LOGIN_REQ {
        if users.get(&from).is_some_and(|u| u.nick == payload) {
            return send(socket, from, code::LOGIN_ACK, payload);
        }
        users.remove(&from);
        if payload.is_empty() || payload.contains(char::is_whitespace) {
            return err("invalid nickname");
        }
        if users.values().any(|u| u.nick.eq_ignore_ascii_case(payload)) {
            return err("nickname already in use");
        }
        users.insert(
            from,
            User {
                nick: payload.to_string(),
                channels: Vec::new(),
                since: Instant::now(),
            },
        );
        return send(socket, from, code::LOGIN_ACK, payload);
    }
    let Some(nick) = users.get(&from).map(|u| u.nick.clone()) else {
        return err("please log in");
    };
    let channel = |t: &str| {
        CHANNELS
            .iter()
            .find(|(title, _)| title.eq_ignore_ascii_case(t))
            .copied()
    };
    let info = |users: &HashMap<SocketAddr, User>, (title, desc): (&str, &str)| {
        format!("{title} {} {desc}", members(users, title).len())
    };
    match code {
        code::LOGOFF => {
            if let Some(u) = users.remove(&from) {
                for title in u.channels {
                    for m in members(users, &title) {
                        send(socket, m, code::USER_PARTS, &format!("{title} {}", u.nick));
                    }
                }
            }
        }
        code::JOIN_REQ => {
            let Some(ch) = channel(payload) else {
                return err(&format!("no channel named {payload}"));
            };
            let user = &users[&from];
            if !user.channels.iter().any(|c| c == ch.0) {
                for m in members(users, ch.0) {
                    send(socket, m, code::USER_JOINS, &format!("{} {nick}", ch.0));
                }
            }
            let user = users.get_mut(&from).unwrap();
            user.channels.retain(|c| c != ch.0);
            user.channels.insert(0, ch.0.to_string());
            send(socket, from, code::JOIN_ACK, &info(users, ch));
        }
        code::PART_REQ => {
            let title = if payload.is_empty() {
                users[&from].channels.first().cloned().unwrap_or_default()
            } else {
                payload.to_string()
            };
            let Some(ch) = channel(&title) else {
                return err(&format!("no channel named {title}"));
            };
            let user = users.get_mut(&from).unwrap();
            let Some(i) = user.channels.iter().position(|c| c == ch.0) else {
                return;
            };
            user.channels.remove(i);
            let new_current = (i == 0).then(|| user.channels.first().cloned()).flatten();
            for m in members(users, ch.0) {
                send(socket, m, code::USER_PARTS, &format!("{} {nick}", ch.0));
            }
            send(socket, from, code::PART_ACK, &info(users, ch));
            if let Some(current) = new_current.and_then(|c| channel(&c)) {
                send(socket, from, code::JOIN_ACK, &info(users, current));
            }
        }
        code::SEND_PUBLIC => {
            let Some(title) = users[&from].channels.first().cloned() else {
                return err("no current channel");
            };
            for m in members(users, &title) {
                send(
                    socket,
                    m,
                    code::PUBLIC_MSG,
                    &format!("{title} {nick} {payload}"),
                );
            }
        }
        code::SEND_PRIVATE => {
            let (to, text) = payload.split_once(' ').unwrap_or((payload, ""));
            match users.iter().find(|(_, u)| u.nick == to) {
                Some((addr, _)) => {
                    send(socket, *addr, code::PRIVATE_MSG, &format!("{nick} {text}"))
                }
                None => err(&format!("{to}: not logged in")),
            }
        }
        code::LIST_CHANNELS => {
            for ch in CHANNELS {
                send(socket, from, code::CHANNEL_ITEM, &info(users, ch));
            }
        }
        code::LIST_USERS => {
            let Some(title) = users[&from].channels.first().cloned() else {
                return err("no current channel");
            };
            for m in members(users, &title) {
                let u = &users[&m];
                let line = format!(
                    "{} {} {}",
                    u.nick,
                    u.since.elapsed().as_secs(),
                    u.channels.join(" ")
                );
                send(socket, from, code::USER_ITEM, &line);
            }
        }
        code::STILL_HERE => {}
        _ if unknown_answered => err("unimplemented event code"),
        _ => {}
    }
}
