//! Multicast beyond loopback: two network namespaces joined by a veth pair, the real
//! `chat-server` in one and real `chat-client`s in the other, so discovery and every
//! channel datagram cross an interface the way they cross a LAN. The test makes the
//! namespaces and the pair itself (it needs root and iproute2's `ip`, as CI has) and
//! removes them after, pass or fail.
//!
//! Where the kernel refuses network namespaces (no privilege, a container without
//! CLONE_NEWNET) the test says so and skips; a machine without `ip` fails it, with the way
//! out (`scripts/ci-services.sh` installs iproute2).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

const TIMEOUT: Duration = Duration::from_secs(30);
const SERVER_IP: &str = "10.77.0.1";
const CLIENT_IP: &str = "10.77.0.2";

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

/// Two namespaces and the veth pair between them; removed on drop.
struct Link {
    server_ns: String,
    client_ns: String,
    children: Vec<Child>,
}

impl Link {
    /// Makes them, or `None` (with the reason printed) where the kernel refuses.
    fn make(tag: &str) -> Option<Link> {
        let id = format!("{}{tag}", std::process::id() % 100_000);
        let (s, c) = (format!("udpchat-s{id}"), format!("udpchat-c{id}"));
        let made = ip(&["netns", "add", &s]);
        if !made.status.success() {
            let why = String::from_utf8_lossy(&made.stderr);
            println!(
                "SKIPPED: the kernel refuses network namespaces here: {}",
                why.trim()
            );
            eprintln!(
                "SKIPPED: the kernel refuses network namespaces here: {}",
                why.trim()
            );
            return None;
        }
        let link = Link {
            server_ns: s,
            client_ns: c,
            children: Vec::new(),
        };
        let (s, c) = (link.server_ns.as_str(), link.client_ns.as_str());
        ip_ok(&["netns", "add", c]);
        let (va, vb) = (format!("uc{id}a"), format!("uc{id}b"));
        ip_ok(&[
            "link", "add", &va, "netns", s, "type", "veth", "peer", "name", &vb, "netns", c,
        ]);
        ip_ok(&[
            "-n",
            s,
            "addr",
            "add",
            &format!("{SERVER_IP}/24"),
            "dev",
            &va,
        ]);
        ip_ok(&[
            "-n",
            c,
            "addr",
            "add",
            &format!("{CLIENT_IP}/24"),
            "dev",
            &vb,
        ]);
        for (ns, dev) in [(s, va.as_str()), (c, vb.as_str())] {
            ip_ok(&["-n", ns, "link", "set", "lo", "up"]);
            ip_ok(&["-n", ns, "link", "set", dev, "up"]);
        }
        Some(link)
    }

    /// `program args` inside namespace `ns`, with piped standard streams.
    fn spawn(
        &mut self,
        ns: &str,
        program: &str,
        args: &[&str],
    ) -> (ChildStdin, Receiver<String>, Receiver<String>) {
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns, program])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn through ip netns exec");
        let lines = |r: Box<dyn std::io::Read + Send>| {
            let (tx, rx) = crossbeam_channel::unbounded();
            thread::spawn(move || {
                for line in BufReader::new(r).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
            rx
        };
        let out = lines(Box::new(child.stdout.take().unwrap()));
        let err = lines(Box::new(child.stderr.take().unwrap()));
        let stdin = child.stdin.take().unwrap();
        self.children.push(child);
        (stdin, out, err)
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        // Deleting a namespace destroys its end of the veth pair, and so the pair.
        for ns in [&self.server_ns, &self.client_ns] {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

/// A chat-client in the client namespace, driven line by line.
struct Client {
    stdin: ChildStdin,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Client {
    fn send(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
    }

    #[track_caller]
    fn wait_for(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            match self.lines.recv_deadline(deadline) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if pred(&l) {
                        return l;
                    }
                }
                Err(_) => panic!("no line {what}; got {:#?}", self.seen),
            }
        }
    }

    /// Asks `/status` until `title` is heard by multicast.
    #[track_caller]
    fn wait_multicast(&mut self, title: &str) -> String {
        let want = format!("\t{title}: by multicast on group ");
        let deadline = Instant::now() + TIMEOUT;
        while Instant::now() < deadline {
            self.send("/status");
            let line = self.wait_for("status", |l| l.starts_with(&format!("\t{title}: ")));
            if line.starts_with(&want) {
                return line;
            }
            thread::sleep(Duration::from_millis(300));
        }
        panic!("{title} never came by multicast: {:#?}", self.seen);
    }
}

/// Starts a server with `multicast` in the server namespace and two clients that find it
/// with --discover in the client namespace; they chat in Pets.
fn chat_across(tag: &str, multicast: &str, group_prefix: &str) {
    let Some(mut link) = Link::make(tag) else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let (s_ns, c_ns) = (link.server_ns.clone(), link.client_ns.clone());
    let (_server_in, _server_out, server_err) = link.spawn(
        &s_ns,
        env!("CARGO_BIN_EXE_chat-server"),
        &[
            "--multicast",
            multicast,
            "--multicast-if",
            SERVER_IP,
            "--name",
            "across",
            "--data",
            // A folder the server makes itself (private, as it requires).
            data.path().join("data").to_str().unwrap(),
        ],
    );
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let line = server_err
            .recv_deadline(deadline)
            .expect("the server says it is listening");
        if line.contains("listening on") {
            break;
        }
    }
    let mut client = |nick: &str| {
        let (stdin, lines, _err) = link.spawn(
            &c_ns,
            common::bin("chat-client").to_str().unwrap(),
            &["--discover", "--nick", nick],
        );
        let mut c = Client {
            stdin,
            lines,
            seen: Vec::new(),
        };
        // Found by broadcast or on the discovery group, across the veth.
        c.wait_for("found", |l| {
            l == format!("Found across at {SERVER_IP}:2027 (0 users).")
                || l == format!("Found across at {SERVER_IP}:2027 (1 users).")
        });
        c.wait_for("login", |l| {
            l == format!("\tLog in successful. Welcome {nick}.")
        });
        c
    };
    let mut ann = client("ann");
    let mut bob = client("bob");
    ann.send("/join Pets");
    ann.wait_for("welcome", |l| {
        l.starts_with("\tWelcome to the Pets Channel")
    });
    let status = ann.wait_multicast("Pets");
    assert!(
        status.starts_with(&format!("\tPets: by multicast on group {group_prefix}")),
        "{status}"
    );
    bob.send("/join Pets");
    bob.wait_for("welcome", |l| {
        l.starts_with("\tWelcome to the Pets Channel")
    });
    ann.wait_for("bob enters", |l| l == "\t<bob has entered Pets>");
    bob.wait_multicast("Pets");
    bob.send("hello across the wire");
    for c in [&mut ann, &mut bob] {
        c.wait_for("message", |l| l == "\tbob [Pets]: hello across the wire");
    }
    ann.send("/status");
    let line = ann.wait_for("status", |l| l.starts_with("\tPets: "));
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
    ann.wait_for("no drops", |l| {
        l == "\tGroup datagrams dropped: 0 (bad tag 0, old sequence 0, malformed 0)"
    });
    for c in [&mut ann, &mut bob] {
        c.send("/quit");
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
