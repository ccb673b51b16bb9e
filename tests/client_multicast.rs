//! The real `chat-client` on multicast channels, from pipes: two clients that hear a
//! channel on its group and one classic client (`--no-multicast`) in the same channel see
//! exactly the lines unicast would show them, once each, and `/status` says which way the
//! channel's traffic arrives; after a server restart the client asks for multicast again
//! and hears the new server's group. Also `--discover --list` against a loopback server.

mod common;

use std::process::Command;

use common::req;
use common::script::Scripted;
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
        l == "\tGroup datagrams dropped: 0 (bad tag 0, old sequence 0, malformed 0)"
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
