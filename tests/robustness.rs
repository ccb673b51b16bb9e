//! Floods, hostile peers and faults: the server keeps serving its well-behaved users, stays
//! bounded, and says what it dropped in its metrics.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use common::{joined, metric, metrics_page, req, server_with, user, Peer};
use proto::{code, Request};
use udpchat::server::Limits;

#[test]
fn a_flooding_address_is_rate_limited_and_others_are_still_served() {
    let s = server_with(|c| {
        c.limits = Limits {
            rate: 100.0,
            burst: 100.0,
            amplification_guard: true,
        }
    });
    let good = joined(&s, "good", "Pets");
    let flooder = joined(&s, "flood", "Pets");
    good.expect(code::USER_JOINS, "Pets flood");
    let keepalive = Request::StillHere.to_bytes();
    for _ in 0..5000 {
        flooder.send_raw(&keepalive);
    }
    good.send(req::public("am I heard?"));
    good.expect(code::PUBLIC_MSG, "Pets good am I heard?");
    let stats = s.stats();
    assert!(
        stats.dropped_rate_limited >= 4000,
        "only {} dropped",
        stats.dropped_rate_limited
    );
}

#[test]
fn a_stranger_never_gets_more_than_three_times_the_bytes_it_sent() {
    let s = server_with(|_| {});
    let stranger = Peer::new(&s);
    let probe = Request::ListChannels.to_bytes(); // 2 bytes (6 of credit); the answer is 15
    let mut sent = 0;
    for _ in 0..40 {
        stranger.send_raw(&probe);
        sent += probe.len();
        std::thread::sleep(Duration::from_millis(2));
    }
    let mut received = 0;
    while let Some((c, text)) = stranger.recv_within(Duration::from_millis(500)) {
        assert_eq!((c, text.as_str()), (code::ERROR, "please log in"));
        received += 2 + text.len();
    }
    assert!(received > 0, "retries must earn an answer");
    assert!(
        received <= 3 * sent,
        "sent {sent} bytes, got {received} back"
    );
}

#[test]
fn a_login_flood_from_many_addresses_is_capped_by_max_users() {
    let s = server_with(|c| c.max_users = 500);
    let member = joined(&s, "member", "Pets");
    // 20,000 distinct source addresses (ip, port) across 127.0.1.0/24, one datagram each.
    let target = s.addr();
    for i in 0..20_000u32 {
        let ip = [127, 0, 1, (i % 250 + 1) as u8];
        let sock = UdpSocket::bind(SocketAddr::from((ip, 0))).unwrap();
        let nick = format!("flood{i}");
        sock.send_to(&Request::Login { nick: &nick }.to_bytes(), target)
            .unwrap();
    }
    // Let the server work through what the kernel queued.
    let deadline = Instant::now() + Duration::from_secs(10);
    // A tenth of the places is kept for password logins (`--account-reserve`): guests
    // stop at 450 (and the member is one of them).
    while s.state().user_count() < 450 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(s.state().user_count(), 450);
    member.send(req::public("still here"));
    member.expect(code::PUBLIC_MSG, "Pets member still here");
    s.state().check_invariants().unwrap();
}

#[test]
fn a_vanished_client_does_not_disturb_the_others_and_is_swept() {
    let s = server_with(|c| {
        c.idle_timeout = Duration::from_millis(1500);
        c.check_interval = Duration::from_millis(100);
    });
    let [a, b, gone] = common::in_channel(&s, "Pets", ["a", "b", "gone"]);
    // The socket closes here: datagrams to it now draw ICMP port-unreachable.
    drop(gone);
    for i in 0..50 {
        a.send(req::public(&format!("m{i}")));
    }
    for i in 0..50 {
        b.expect(code::PUBLIC_MSG, &format!("Pets a m{i}"));
    }
    // Keep a and b alive while the sweep removes the vanished one.
    let start = Instant::now();
    let mut seen = Vec::new();
    while start.elapsed() < Duration::from_secs(6) && seen.is_empty() {
        a.send(Request::StillHere);
        b.send(Request::StillHere);
        while let Some(d) = b.recv_within(Duration::from_millis(100)) {
            if d.0 != code::PUBLIC_MSG {
                seen.push(d);
            }
        }
    }
    assert_eq!(seen, vec![(code::USER_PARTS, "Pets gone".to_string())]);
    assert_eq!(s.state().user_count(), 2);
}

#[test]
fn a_tiny_send_buffer_slows_fanout_but_loses_no_member() {
    let s = server_with(|c| {
        c.sndbuf = 4096;
        c.senders = 1;
    });
    let members: Vec<Peer> = (0..40).map(|i| user(&s, &format!("m{i}"))).collect();
    for m in &members {
        m.join("Hobbies");
    }
    let speaker = &members[0];
    for i in 0..20 {
        speaker.send(req::public(&format!("n{i}")));
    }
    // Every member hears the last message (the earlier ones may be interleaved with
    // USER_JOINS from later joiners; loopback delivery is not dropped here).
    for m in &members {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (c, p) = m.recv();
            if c == code::PUBLIC_MSG && p == "Hobbies m0 n19" {
                break;
            }
            assert!(Instant::now() < deadline);
        }
    }
}

#[test]
fn metrics_are_served_in_prometheus_text_format() {
    let s = server_with(|c| c.metrics = Some("127.0.0.1:0".parse().unwrap()));
    let addr = s.metrics_addr().expect("metrics enabled");
    assert!(addr.ip().is_loopback());
    let [a, b] = common::in_channel(&s, "Pets", ["a", "b"]);
    b.send(req::public("hi"));
    a.expect(code::PUBLIC_MSG, "Pets b hi");
    b.expect(code::PUBLIC_MSG, "Pets b hi");
    let page = metrics_page(&s);
    assert!(page.contains("# TYPE udpchat_users gauge"));
    assert_eq!(metric(&page, "udpchat_users"), 2);
    assert_eq!(metric(&page, "udpchat_channels"), 5);
    assert_eq!(
        metric(&page, "udpchat_channel_members{channel=\"Pets\"}"),
        2
    );
    assert_eq!(
        metric(&page, "udpchat_channel_members{channel=\"Weather\"}"),
        0
    );
    assert_eq!(metric(&page, "udpchat_datagrams_received_total"), 5);
    // LOGIN_ACK x2, JOIN_ACK x2, USER_JOINS, PUBLIC_MSG x2. A sender counts a datagram
    // once the kernel has taken it, which may be a moment after it arrived.
    common::wait_until(|| metric(&metrics_page(&s), "udpchat_datagrams_sent_total") == 7);
    assert_eq!(
        metric(&page, "udpchat_dropped_total{reason=\"rate_limited\"}"),
        0
    );
    assert!(page.contains("udpchat_queue_depth{queue=\"worker-0\"}"));
    assert!(page.contains("udpchat_sweep_logoffs_total 0"));
}

#[test]
fn metrics_count_events_and_events_per_datagram() {
    let s = server_with(|c| {
        c.metrics = Some("127.0.0.1:0".parse().unwrap());
        c.senders = 1;
        c.batch_window = udpchat::server::BatchWindow::Always(Duration::from_millis(300));
    });
    let a = user(&s, "a");
    a.send(Request::Caps { caps: "batch" });
    a.expect(code::CAPS_ACK, "batch=1200");
    a.join("Pets");
    for i in 0..10 {
        a.send(req::public(&format!("m{i}")));
    }
    // The ten messages come back together, as BATCH datagrams.
    let mut events = 0;
    while events < 10 {
        let d = a.recv_raw_within(common::WAIT).expect("the messages");
        events += udpchat_client::net::unpack(&d).len();
    }
    // LOGIN_ACK, CAPS_ACK, JOIN_ACK and the ten messages: 13 events, fewer datagrams.
    let deadline = Instant::now() + Duration::from_secs(5);
    let page = loop {
        let page = metrics_page(&s);
        if metric(&page, "udpchat_events_sent_total") == 13 || Instant::now() > deadline {
            break page;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (events, datagrams) = (
        metric(&page, "udpchat_events_sent_total"),
        metric(&page, "udpchat_datagrams_sent_total"),
    );
    assert_eq!(events, 13);
    assert!(datagrams < 13, "{page}");
    assert!(page.contains("# TYPE udpchat_events_per_datagram histogram"));
    assert_eq!(
        metric(&page, "udpchat_events_per_datagram_count"),
        datagrams
    );
    assert_eq!(metric(&page, "udpchat_events_per_datagram_sum"), 13);
    assert_eq!(
        metric(&page, "udpchat_events_per_datagram_bucket{le=\"+Inf\"}"),
        datagrams
    );
    // The three replies went one per datagram; the messages mostly shared.
    let single = metric(&page, "udpchat_events_per_datagram_bucket{le=\"1\"}");
    assert!((3..datagrams).contains(&single), "{page}");
}
