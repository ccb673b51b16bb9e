//! The real `chat-client` on multicast channels, from pipes: two clients that hear a
//! channel on its group and one classic client (`--no-multicast`) in the same channel see
//! exactly the lines unicast would show them, once each, and `/status` says which way the
//! channel's traffic arrives; after a server restart the client asks for multicast again
//! and hears the new server's group; a member banned from a channel, who keeps the key it
//! was told, gets nothing shown by the others' clients, and one datagram with a sequence
//! far ahead eats nothing (issue 20 #6). Also `--discover --list` against a loopback
//! server.

mod common;

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::process::Command;

use base64::Engine as _;
use common::script::Scripted;
use common::{joined, protected, req, user};
use proto::{channel_data, code, encode_raw, Request};
use udpchat::accounts::StoreKind;
use udpchat::multicast::MulticastConfig;
use udpchat::server::RunningServer;

/// `chat-client` for `s` as `nick`, with `extra` arguments.
fn client(s: &RunningServer, nick: &str, extra: &[&str]) -> Scripted {
    let mut args = vec!["--nick", nick];
    args.extend_from_slice(extra);
    Scripted::start(s.addr().port(), &args)
}

/// Waits until `n` members of `title` hear it on its group.
fn wait_confirmed(s: &RunningServer, title: &str, n: usize) {
    let id = s.state().channel_id(title).unwrap();
    let g = s.groups().get(id).unwrap();
    common::wait_until(|| g.counts().confirmed == n);
}

#[test]
fn multicast_and_classic_clients_see_the_same_lines_once() {
    let s = common::server_with(|c| {
        c.multicast = Some(MulticastConfig::new("239.77.0.0/24".parse().unwrap()));
    });
    let mut ann = client(&s, "ann", &[]);
    ann.line("/join Pets");
    ann.expect_line("\tWelcome to the Pets Channel (1 users)");
    wait_confirmed(&s, "Pets", 1);
    let mut bob = client(&s, "bob", &[]);
    bob.line("/join Pets");
    bob.expect_line("\tWelcome to the Pets Channel (2 users)");
    ann.expect_line("\t<bob has entered Pets>");
    wait_confirmed(&s, "Pets", 2);
    let mut old = client(&s, "old", &["--no-multicast"]);
    old.line("/join Pets");
    old.expect_line("\tWelcome to the Pets Channel (3 users)");
    ann.expect_line("\t<old has entered Pets>");
    bob.expect_line("\t<old has entered Pets>");
    bob.line("hello");
    for c in [&mut ann, &mut bob, &mut old] {
        c.expect_line("\tbob [Pets]: hello");
    }
    old.line("hi from the past");
    for c in [&mut ann, &mut bob, &mut old] {
        c.expect_line("\told [Pets]: hi from the past");
    }
    ann.line("/status");
    let line = ann.expect_prefix("\tPets: ");
    assert!(
        line.starts_with("\tPets: by multicast on group 239.77.0."),
        "{line}"
    );
    ann.expect_match("drops", |l| {
        l == "\tGroup datagrams dropped: 0 (bad tag 0, old sequence 0, too far ahead 0, malformed 0)"
    });
    old.line("/status");
    old.expect_line("\tMulticast: not asked for (--no-multicast)");
    old.expect_line("\tPets: by unicast");
    old.line("/part");
    ann.expect_line("\t<old has left Pets>");
    bob.line("/part");
    ann.expect_line("\t<bob has left Pets>");
    let ann_lines = ann.finish_ok();
    for line in [
        "\t<bob has entered Pets>",
        "\tbob [Pets]: hello",
        "\told [Pets]: hi from the past",
        "\t<old has left Pets>",
        "\t<bob has left Pets>",
    ] {
        let n = ann_lines.iter().filter(|l| *l == line).count();
        assert_eq!(n, 1, "{line:?} shown {n} times: {ann_lines:#?}");
    }
    let bob_lines = bob.finish_ok();
    assert!(
        !bob_lines.iter().any(|l| l.contains("bob has")),
        "nobody is told of their own coming and going: {bob_lines:#?}"
    );
    old.finish_ok();
}

#[test]
fn after_a_restart_the_client_asks_for_multicast_again_and_hears_the_new_group() {
    let mcast = |c: &mut udpchat::server::ServerConfig| {
        c.multicast = Some(MulticastConfig::new("239.77.0.0/24".parse().unwrap()));
    };
    let s = common::server_with(mcast);
    let addr = s.addr();
    let mut ann = client(
        &s,
        "ann",
        &["--keepalive-ms", "300", "--pong-wait-ms", "300"],
    );
    ann.line("/join Pets");
    ann.expect_line("\tWelcome to the Pets Channel (1 users)");
    wait_confirmed(&s, "Pets", 1);
    s.shutdown().unwrap();
    ann.expect_line("** connection to server lost; reconnecting **");
    // A new server on the same port, with new keys.
    let s = common::server_with(|c| {
        mcast(c);
        c.bind = addr;
    });
    ann.expect_line("** connection to server restored **");
    wait_confirmed(&s, "Pets", 1);
    let bob = common::joined(&s, "bob", "Pets");
    ann.expect_line("\t<bob has entered Pets>");
    bob.send(req::public("welcome back"));
    ann.expect_line("\tbob [Pets]: welcome back");
    ann.line("/status");
    let line = ann.expect_prefix("\tPets: ");
    assert!(line.starts_with("\tPets: by multicast on group "), "{line}");
    let lines = ann.finish_ok();
    let n = lines
        .iter()
        .filter(|l| *l == "\tbob [Pets]: welcome back")
        .count();
    assert_eq!(n, 1, "{lines:#?}");
}

#[test]
fn discover_lists_a_server_on_loopback() {
    let s = common::server_with(|c| c.name = Some("loop".into()));
    let port = s.addr().port().to_string();
    let out = Command::new(common::bin("chat-client"))
        .args(["--discover", &port, "--list", "--discover-ms", "900"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.lines()
            .any(|l| l == format!("127.0.0.1:{port}\tloop\t0 users")),
        "{text}"
    );
    // Nobody on a port nobody serves.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let none = silent.local_addr().unwrap().port().to_string();
    let out = Command::new(common::bin("chat-client"))
        .args(["--discover", &none, "--list", "--discover-ms", "300"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no server answered"));
}

/// What a member is told of a channel's group: its address, key and first sequence.
struct Told {
    group: SocketAddr,
    key: Vec<u8>,
}

impl Told {
    /// Reads the MCAST_GROUP payload `text`.
    fn parse(text: &str) -> Told {
        let f: Vec<&str> = text.split(' ').collect();
        assert_eq!(f.len(), 5, "{text}");
        let ip: Ipv4Addr = f[1].parse().unwrap();
        Told {
            group: SocketAddr::from((ip, f[2].parse::<u16>().unwrap())),
            key: base64::engine::general_purpose::STANDARD
                .decode(f[3])
                .unwrap(),
        }
    }

    /// Sends the event `code payload` to the group in a CHANNEL_DATA with sequence `seq`,
    /// tagged with this key, from `sock` (as any host on the network can).
    fn inject(&self, sock: &UdpSocket, seq: u64, code: u16, payload: &str) {
        let mut inner = Vec::new();
        encode_raw(code, payload, &mut inner);
        let d = channel_data::encode(seq, &inner, |signed| channel_data::tag(&self.key, signed));
        sock.send_to(&d, self.group).unwrap();
    }
}

/// A socket that sends to multicast groups on loopback.
fn group_sender() -> UdpSocket {
    let s = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )
    .unwrap();
    s.set_multicast_if_v4(&Ipv4Addr::LOCALHOST).unwrap();
    s.set_multicast_loop_v4(true).unwrap();
    s.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    s.into()
}

/// Issue 20 #6, as an attacker would: eve, a member told Pets' key, first sends one
/// CHANNEL_DATA with sequence 2^62 under it (the real client must not then take the
/// server's next datagrams as old), then is banned and goes on tagging datagrams with
/// the key she was told, as the server operator, at the sequences the server uses next
/// and far ahead. bob's client shows none of it, and every genuine line once.
#[test]
fn a_banned_member_keeps_no_key_and_a_far_sequence_eats_nothing() {
    // The server operator's account is made with `chat-server accounts add --operator`.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    common::operator_account(&data, "root", "secret");
    let s = common::server_with(|c| {
        c.store = StoreKind::Sqlite(data.clone());
        c.multicast = Some(MulticastConfig::new("239.77.0.0/24".parse().unwrap()));
        c.live.operators = vec!["root".into()];
    });
    let root = protected(&s, "root", "secret");
    let mut bob = client(&s, "bob", &[]);
    bob.line("/join Pets");
    bob.expect_line("\tWelcome to the Pets Channel (1 users)");
    wait_confirmed(&s, "Pets", 1);
    // eve asks for multicast like our client, and is told the key.
    let eve = user(&s, "eve");
    eve.send(Request::Caps { caps: "multicast" });
    eve.expect(code::CAPS_ACK, "multicast");
    eve.join("Pets");
    let told = Told::parse(&eve.recv_code(code::MCAST_GROUP));
    bob.expect_line("\t<eve has entered Pets>");
    let carl = joined(&s, "carl", "Pets");
    bob.expect_line("\t<carl has entered Pets>");
    let wire = group_sender();
    let id = s.state().channel_id("Pets").unwrap();
    let g = s.groups().get(id).unwrap();

    // 1. While a member: one datagram far ahead under the key of the moment.
    told.inject(
        &wire,
        1 << 62,
        code::PUBLIC_MSG,
        "Pets root forged far ahead",
    );
    carl.send(req::public("after the far one"));
    bob.expect_line("\tcarl [Pets]: after the far one");

    // 2. Banned: the key changes at once; bob is told the new one, eve is not.
    let generation = g.generation();
    root.send(req::ban("Pets", "0", "eve", "spam"));
    bob.expect_line("\t<root removed eve from Pets: banned: spam>");
    assert_eq!(g.generation(), generation + 1, "a new key at once");
    while let Some((c, text)) = eve.recv_within(std::time::Duration::from_millis(300)) {
        assert_ne!(
            c,
            code::MCAST_GROUP,
            "the banned member is told the new key: {text}"
        );
    }
    // eve goes on with the key she knew: the server's next sequences, and beyond.
    let next = g.last_seq() + 1;
    for seq in [next, next + 1, next + 100, 1 << 62] {
        told.inject(
            &wire,
            seq,
            code::PUBLIC_MSG,
            "Pets root forged after the ban",
        );
    }
    carl.send(req::public("after the ban"));
    bob.expect_line("\tcarl [Pets]: after the ban");
    wait_confirmed(&s, "Pets", 1);
    carl.send(req::public("on the new key"));
    bob.expect_line("\tcarl [Pets]: on the new key");
    bob.line("/status");
    let drops = bob.expect_prefix("\tGroup datagrams dropped: ");
    let lines = bob.finish_ok();
    assert!(
        !lines.iter().any(|l| l.contains("forged")),
        "a forged line was shown: {lines:#?}"
    );
    for line in [
        "\tcarl [Pets]: after the far one",
        "\tcarl [Pets]: after the ban",
        "\tcarl [Pets]: on the new key",
    ] {
        let n = lines.iter().filter(|l| *l == line).count();
        assert_eq!(n, 1, "{line:?} shown {n} times: {lines:#?}");
    }
    // The far one as suspect, the four after the ban as bad tags.
    assert!(drops.contains("too far ahead 1"), "{drops}");
    assert!(drops.contains("bad tag 4"), "{drops}");
}
