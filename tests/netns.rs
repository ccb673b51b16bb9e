//! Multicast beyond loopback: two network namespaces joined by a veth pair, the real
//! `chat-server` in one and real `chat-client`s in the other, so discovery and every
//! channel datagram cross an interface the way they cross a LAN. The test makes the
//! namespaces and the pair itself (it needs root and iproute2's `ip`, as CI has) and
//! removes them after, pass or fail.
//!
//! Nothing here is skipped quietly: a machine without `ip` fails the tests, with the way
//! out (`scripts/ci-services.sh` installs iproute2), and so does one whose kernel refuses
//! network namespaces (no privilege, a container without CLONE_NEWNET), unless
//! `UDPCHAT_ALLOW_NETNS_SKIP=1` is set: then, and only where the kernel really refuses
//! them, each test says `SKIPPED` and passes without running.

mod common;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::script::{self, Scripted};
use common::KillOnDrop;

const TIMEOUT: Duration = Duration::from_secs(30);
const SERVER_IP: &str = "10.77.0.1";
const CLIENT_IP: &str = "10.77.0.2";

/// The variable that lets the tests pass without running where the kernel refuses network
/// namespaces (set to `1`).
const ALLOW_SKIP: &str = "UDPCHAT_ALLOW_NETNS_SKIP";

fn ip(args: &[&str]) -> Output {
    match Command::new("ip").args(args).output() {
        Ok(o) => o,
        Err(e) => panic!(
            "cannot run `ip {}` ({e}): install iproute2 (scripts/ci-services.sh does)",
            args.join(" ")
        ),
    }
}

#[track_caller]
fn ip_ok(args: &[&str]) {
    let o = ip(args);
    assert!(
        o.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Whether `ip netns add` failed because the kernel refuses a new network namespace (the
/// error of unshare(2) or of the mounts it makes), not for another reason.
fn kernel_refuses(stderr: &str) -> bool {
    [
        "Operation not permitted",
        "Permission denied",
        "Invalid argument",
        "No space left on device",
    ]
    .iter()
    .any(|e| stderr.contains(e))
}

/// Two namespaces and the veth pair between them; removed on drop.
struct Link {
    server_ns: String,
    client_ns: String,
}

impl Link {
    /// Makes them; `None` only where the kernel refuses them and [`ALLOW_SKIP`] allows it.
    fn make(tag: &str) -> Option<Link> {
        let id = format!("{}{tag}", std::process::id() % 100_000);
        let (s, c) = (format!("udpchat-s{id}"), format!("udpchat-c{id}"));
        let made = ip(&["netns", "add", &s]);
        if !made.status.success() {
            let why = String::from_utf8_lossy(&made.stderr);
            let why = why.trim();
            assert!(kernel_refuses(why), "ip netns add {s}: {why}");
            assert!(
                std::env::var(ALLOW_SKIP).is_ok_and(|v| v == "1"),
                "the kernel refuses network namespaces here ({why}): run the tests as root \
                 where namespaces can be made, or set {ALLOW_SKIP}=1 to skip this test"
            );
            eprintln!("SKIPPED ({ALLOW_SKIP}=1): the kernel refuses network namespaces: {why}");
            return None;
        }
        let link = Link {
            server_ns: s,
            client_ns: c,
        };
        let (s, c) = (link.server_ns.as_str(), link.client_ns.as_str());
        ip_ok(&["netns", "add", c]);
        let (va, vb) = (format!("uc{id}a"), format!("uc{id}b"));
        ip_ok(&[
            "link", "add", &va, "netns", s, "type", "veth", "peer", "name", &vb, "netns", c,
        ]);
        for (ns, dev, addr) in [(s, &va, SERVER_IP), (c, &vb, CLIENT_IP)] {
            ip_ok(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", dev]);
            ip_ok(&["-n", ns, "link", "set", "lo", "up"]);
            ip_ok(&["-n", ns, "link", "set", dev, "up"]);
        }
        Some(link)
    }

    /// `program` run inside namespace `ns`.
    fn exec(ns: &str, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns, program]);
        cmd
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        // Deleting a namespace destroys its end of the veth pair, and so the pair.
        for ns in [&self.server_ns, &self.client_ns] {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

/// Asks `/status` until `title` is heard by multicast.
#[track_caller]
fn wait_multicast(client: &mut Scripted, title: &str) -> String {
    let want = format!("\t{title}: by multicast on group ");
    let deadline = Instant::now() + TIMEOUT;
    while Instant::now() < deadline {
        client.line("/status");
        let line = client.expect_prefix(&format!("\t{title}: "));
        if line.starts_with(&want) {
            return line;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    panic!("{title} never came by multicast: {:#?}", client.seen);
}

/// Starts a server with `multicast` in the server namespace and two clients that find it
/// with --discover in the client namespace; they chat in Pets.
fn chat_across(tag: &str, multicast: &str, group_prefix: &str) {
    let Some(link) = Link::make(tag) else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let mut server = Link::exec(&link.server_ns, env!("CARGO_BIN_EXE_chat-server"));
    server
        .args(["--multicast", multicast, "--multicast-if", SERVER_IP])
        .args(["--name", "across", "--data"])
        // A folder the server makes itself (private, as it requires).
        .arg(data.path().join("data"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut server = KillOnDrop(server.spawn().expect("spawn through ip netns exec"));
    let log = script::lines(server.0.stderr.take().unwrap());
    let deadline = Instant::now() + TIMEOUT;
    while !log
        .recv_deadline(deadline)
        .expect("the server says it is listening")
        .contains("listening on")
    {}
    let client = |nick: &str| {
        let mut cmd = Link::exec(
            &link.client_ns,
            common::bin("chat-client").to_str().unwrap(),
        );
        cmd.args(["--discover", "--nick", nick]);
        let mut c = Scripted::spawn(cmd).with_timeout(TIMEOUT);
        // Found by broadcast or on the discovery group, across the veth.
        c.expect_match("found", |l| {
            l == format!("Found across at {SERVER_IP}:2027 (0 users).")
                || l == format!("Found across at {SERVER_IP}:2027 (1 users).")
        });
        c.expect_line(&format!("\tLog in successful. Welcome {nick}."));
        c
    };
    let mut ann = client("ann");
    let mut bob = client("bob");
    ann.line("/join Pets");
    ann.expect_prefix("\tWelcome to the Pets Channel");
    let status = wait_multicast(&mut ann, "Pets");
    assert!(
        status.starts_with(&format!("\tPets: by multicast on group {group_prefix}")),
        "{status}"
    );
    bob.line("/join Pets");
    bob.expect_prefix("\tWelcome to the Pets Channel");
    ann.expect_line("\t<bob has entered Pets>");
    wait_multicast(&mut bob, "Pets");
    bob.line("hello across the wire");
    for c in [&mut ann, &mut bob] {
        c.expect_line("\tbob [Pets]: hello across the wire");
    }
    ann.line("/status");
    let line = ann.expect_prefix("\tPets: ");
    let events: u64 = line
        .split("; ")
        .find_map(|part| part.strip_suffix(" by unicast"))
        .and_then(|p| p.split(" events by multicast, ").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(
        events >= 2,
        "the join and the message came by multicast: {line}"
    );
    ann.expect_line(
        "\tGroup datagrams dropped: 0 (bad tag 0, old sequence 0, too far ahead 0, malformed 0)",
    );
    for c in [&mut ann, &mut bob] {
        c.line("/quit");
    }
    let n = ann
        .seen
        .iter()
        .filter(|l| *l == "\tbob [Pets]: hello across the wire")
        .count();
    assert_eq!(n, 1, "shown once: {:#?}", ann.seen);
}

#[test]
fn ipv4_groups_cross_a_veth_pair_between_namespaces() {
    chat_across("a", "239.77.0.0/24", "239.77.0.");
}

#[test]
fn ipv6_groups_cross_a_veth_pair_between_namespaces() {
    chat_across("b", "ff15::77:0/112", "[ff15::77:");
}
