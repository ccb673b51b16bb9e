//! The load tester's multicast mode against an in-process server with multicast groups on
//! loopback: every member confirms its group, every delivery arrives (from the group for
//! multicast members, by unicast for the classic ones beside them), and both raw blasters
//! run. No timing is asserted.

mod common;

use std::time::Duration;

use common::load::{self, assert_everyone_served};
use udpchat::multicast::MulticastConfig;
use udpchat::server::RunningServer;

/// A server with `channels` load-test channels, each with its multicast group.
fn server(channels: usize) -> RunningServer {
    load::server(|cfg| {
        cfg.channels = load::channels(channels);
        cfg.multicast = Some(MulticastConfig::new("239.77.0.0/24".parse().unwrap()));
    })
}

#[test]
fn multicast_members_confirm_and_every_delivery_arrives() {
    let (s, r) = load::run(
        server(1),
        "--clients 40 --publishers 1 --rate 30 --duration 1.5 --multicast --raw --raw-duration 0.5",
    );
    let m = r.multicast.as_ref().expect("multicast figures");
    load::assert_groups_confirmed(m, 40);
    assert!(r.messages_sent >= 30, "sent only {}", r.messages_sent);
    assert_everyone_served(&r, 40, 40);
    // Each message went to the group once, heard by all 40 (probes aside).
    assert!(m.heard.group_datagrams >= r.messages_sent * 40);
    let raw = r.raw_multicast.expect("raw multicast figures");
    assert!(raw.sent > 0 && raw.received > 0);
    assert!(r.raw.expect("raw unicast figures").received > 0);
    // The load tester logged everyone off as it ended; the server may still be at it.
    let g = s.groups().get(0).unwrap();
    load::eventually(Duration::from_secs(10), || g.counts().confirmed == 0);
    assert_eq!(g.counts().confirmed, 0, "everyone logged off at the end");
    s.shutdown().unwrap();
}

#[test]
fn half_classic_half_multicast_channels_reach_everyone() {
    let (s, r) = load::run(
        server(2),
        "--clients 40 --channels 2 --publishers 2 --rate 20 --duration 1.5 \
         --multicast --multicast-share 0.5",
    );
    let m = r.multicast.as_ref().expect("multicast figures");
    load::assert_groups_confirmed(m, 20);
    assert_everyone_served(&r, 40, 20);
    assert_eq!(m.heard.unicast_after_confirm, 0);
    s.shutdown().unwrap();
}

#[test]
fn multicast_members_that_ask_for_batches_too_get_every_event() {
    let (s, r) = load::run(
        server(1),
        "--clients 40 --publishers 1 --rate 30 --duration 1.5 --multicast --batch --mixed \
         --raw --raw-duration 0.5",
    );
    assert!((r.batch, r.mixed) == (Some(1200), true));
    let m = r.multicast.as_ref().expect("multicast figures");
    // One CAPS_REQ asked for both: the batch word did not cost anyone multicast.
    load::assert_groups_confirmed(m, 40);
    assert!(r.messages_sent >= 30, "sent only {}", r.messages_sent);
    assert_everyone_served(&r, 40, 40);
    load::assert_batched(&r);
    load::mixed_latencies(&r);
    assert!(r.raw_multicast.expect("raw multicast figures").received > 0);
    s.shutdown().unwrap();
}
