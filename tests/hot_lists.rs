//! What forged guests' hot lists may cost (issue 20, finding 4), attacked: guests logged
//! in under forged source addresses (`common::spoof`; the tests run as root) in one
//! network and in several fill their hot lists with names nobody else watches, each
//! costing the server memory without a round trip. The entries they hold stay within the
//! limits for one guest, for one network and in all, are given back when they leave, and
//! a guest that proved its address or a password user, even in the attacked network,
//! keeps a full hot list.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{metric, metrics_page, protected, registered, server_with, spoof, user, Peer};
use proto::{code, Request};
use udpchat::server::RunningServer;

/// The limits of this test, smaller than the defaults so that a few hundred datagrams
/// reach them.
const PER_GUEST: usize = 20;
const PER_NETWORK: usize = 100;
const TOTAL: usize = 300;

fn server() -> RunningServer {
    server_with(|c| {
        c.metrics = Some("127.0.0.1:0".parse().unwrap());
        c.live.unproved_hot_list = PER_GUEST;
        c.live.unproved_hot_lists_per_network = PER_NETWORK;
        c.live.unproved_hot_lists_total = TOTAL;
    })
}

/// Sends `req` with `from` forged as its source.
fn forge(s: &RunningServer, from: SocketAddr, req: Request<'_>) {
    assert!(
        spoof(from, s.addr(), &req.to_bytes()),
        "raw sockets need root"
    );
}

/// A forged guest at `ip` logs in as `nick` and watches 100 names of its own, in four
/// WATCH_REQs (what one costs the attacker: five datagrams, no answer read).
fn forged_guest(s: &RunningServer, ip: [u8; 4], nick: &str) -> SocketAddr {
    let from = SocketAddr::from((ip, 4000));
    forge(s, from, Request::Login { nick });
    for part in 0..4 {
        let names: Vec<String> = (0..25).map(|j| format!("{nick}_{part}_{j}")).collect();
        forge(
            s,
            from,
            Request::Watch {
                nicks: &names.join(" "),
            },
        );
    }
    from
}

/// How many names the hot list of the user at `addr` holds.
fn held(s: &RunningServer, addr: SocketAddr) -> usize {
    s.state().user(addr).map_or(0, |u| u.watching.len())
}

/// 100 names, `online` first.
fn hundred(online: &str) -> String {
    let mut names = vec![online.to_owned()];
    names.extend((1..100).map(|i| format!("friend{i}")));
    names.join(" ")
}

#[test]
fn forged_guests_hot_lists_stay_within_the_limits_per_guest_network_and_total() {
    let s = server();
    let state = s.state();
    // One guest: at most PER_GUEST of its 100.
    let one = forged_guest(&s, [127, 0, 10, 1], "f1");
    common::wait_until(|| state.unproved_watch_entries() == PER_GUEST);
    assert_eq!(held(&s, one), PER_GUEST);
    // Twenty in one /24: the network's share, no more.
    let mut forged = vec![one];
    for i in 2..=20u8 {
        forged.push(forged_guest(&s, [127, 0, 10, i], &format!("f{i}")));
    }
    common::wait_until(|| state.user_count() == 20);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(state.unproved_watch_entries_of(one), PER_NETWORK);
    // Many networks: the total, no more.
    for net in 11..=30u8 {
        for i in 1..=5u8 {
            forged.push(forged_guest(&s, [127, 0, net, i], &format!("g{net}_{i}")));
        }
    }
    common::wait_until(|| state.user_count() == 120);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(state.unproved_watch_entries(), TOTAL);
    let all: usize = forged.iter().map(|&a| held(&s, a)).sum();
    assert_eq!(all, TOTAL);
    assert!(forged.iter().all(|&a| held(&s, a) <= PER_GUEST));
    state.check_invariants().unwrap();
    assert!(metric(&metrics_page(&s), "udpchat_unproved_hot_list_refused_total") > 0);
    assert_eq!(
        metric(&metrics_page(&s), "udpchat_unproved_hot_list_entries"),
        TOTAL as u64
    );

    // Users are not harmed, even in the attacked network: a guest that proved its
    // address, and a password user, each keep 100 and hear who is online.
    let _zoe = user(&s, "zoe");
    let guest = Peer::at(&s, [127, 0, 10, 200]);
    guest.login("watcher");
    guest.prove();
    guest.send(Request::Watch {
        nicks: &hundred("zoe"),
    });
    guest.expect(code::USER_ONLINE, "zoe");
    guest.expect_nothing();
    assert_eq!(held(&s, guest.addr()), 100);
    registered(&s, "ann", "pw");
    let ann = protected(&s, "ann", "pw");
    ann.send(Request::Watch {
        nicks: &hundred("zoe"),
    });
    ann.expect(code::USER_ONLINE, "zoe");
    ann.expect_nothing();
    // An unproved classic guest elsewhere is told why its list stops short.
    let classic = Peer::at(&s, [127, 0, 40, 1]);
    classic.login("classic");
    classic.send(Request::Watch {
        nicks: &hundred("zoe"),
    });
    classic.expect_error("address not proved");
    assert_eq!(state.unproved_watch_entries(), TOTAL, "the total is spent");

    // The forged guests leave (as the idle sweep would log them off): every entry is
    // given back, and the next guest gets its share again.
    for &from in &forged {
        forge(&s, from, Request::Logoff);
    }
    common::wait_until(|| state.unproved_watch_entries() == 0);
    classic.send(Request::Watch {
        nicks: &hundred("zoe"),
    });
    classic.expect(code::USER_ONLINE, "zoe");
    classic.expect_error("address not proved");
    assert_eq!(state.unproved_watch_entries(), PER_GUEST);
    state.check_invariants().unwrap();
}
