//! Unit tests of part 5 in the state machine: requests in, datagrams, orders and effects
//! out, no sockets. What goes through the threads (an order to the worker owning a user, a
//! store write, a cluster event) is checked as the effect it is, then fed back by hand.

use super::*;
use crate::cluster::{ClusterInput, CommunityEvent};
use crate::config::classic_channels;
use crate::outbox::community::Order;
use crate::outbox::{CommunityDone, CommunityEffect};
use proto::code;

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

struct Rig {
    h: Handler,
    t0: Instant,
    w0: SystemTime,
}

impl Rig {
    fn new(cluster: bool) -> Rig {
        let state = Arc::new(State::new(&classic_channels(), 1000));
        let mut h = Handler::new(state, 1024, Duration::from_secs(120));
        if cluster {
            h = h.in_cluster();
        }
        Rig {
            h,
            t0: Instant::now(),
            w0: SystemTime::now(),
        }
    }

    fn send(&self, from: u16, req: Request<'_>) -> Outbox {
        let mut out = Outbox::new();
        let bytes = req.to_bytes();
        self.h.handle(
            self.t0,
            self.w0,
            Incoming::new(addr(from), &bytes),
            &mut out,
        );
        out
    }

    fn complete(&self, done: Done) -> Outbox {
        let mut out = Outbox::new();
        self.h.complete(self.t0, self.w0, done, &mut out);
        out
    }

    fn login(&self, port: u16, nick: &str, hello: bool) {
        self.send(port, Request::Login { nick });
        if hello {
            self.send(port, Request::Hello { client: "t" });
        }
    }
}

/// (destination port, code, payload) of every datagram.
fn sent(out: &Outbox) -> Vec<(u16, u16, String)> {
    let mut v: Vec<_> = out
        .datagrams()
        .into_iter()
        .map(|(to, d)| {
            Event::decode(&d).expect("handler output decodes");
            let code = u16::from_be_bytes([d[0], d[1]]);
            (to.port(), code, String::from_utf8(d[2..].to_vec()).unwrap())
        })
        .collect();
    v.sort();
    v
}

/// The orders among the effects.
fn orders(out: &Outbox) -> Vec<(Ticket, Order)> {
    out.effects
        .iter()
        .filter_map(|e| match e {
            Effect::Community(CommunityEffect::Relay { ticket, order }) => {
                Some((*ticket, order.clone()))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_kick_is_an_order_for_the_worker_owning_the_member_and_changes_nothing_before() {
    let r = Rig::new(false);
    r.login(1, "ann", true);
    r.send(
        1,
        Request::ChanCreate {
            title: "Den",
            description: "",
        },
    );
    r.login(2, "bob", false);
    r.send(2, Request::Join { title: "Den" });
    let out = r.send(
        1,
        Request::ChanKick {
            title: "Den",
            nick: "bob",
            reason: "spam",
        },
    );
    let o = orders(&out);
    assert_eq!(o.len(), 1);
    let (ticket, order) = o[0].clone();
    assert_eq!(ticket.route, Route::Addr(addr(2)));
    assert!(matches!(&order, Order::Evict { nick, by, reason, .. }
        if nick == "bob" && by == "ann" && reason == "spam"));
    // Nothing happened yet: bob is still a member.
    let den = r.h.state().channel_by_title("Den").unwrap();
    assert!(den.contains(addr(2)));
    assert!(sent(&out).is_empty(), "{:?}", sent(&out));
    // The owning worker carries it out.
    let out = r.complete(Done::Community(CommunityDone::Order { ticket, order }));
    assert_eq!(
        sent(&out),
        [
            (1, code::CHAN_NOTICE, "Den ann kick bob spam".into()),
            (
                2,
                code::ERROR,
                "you were removed from Den by ann: spam".into()
            ),
            (2, code::PART_ACK, "Den 1 ".into()),
        ]
    );
    assert!(!den.contains(addr(2)));
    r.h.state().check_invariants().unwrap();
}

#[test]
fn an_order_for_a_user_gone_or_replaced_does_nothing() {
    let r = Rig::new(false);
    r.login(1, "ann", true);
    r.send(
        1,
        Request::ChanCreate {
            title: "Den",
            description: "",
        },
    );
    r.login(2, "bob", false);
    r.send(2, Request::Join { title: "Den" });
    let out = r.send(
        1,
        Request::ChanKick {
            title: "Den",
            nick: "bob",
            reason: "",
        },
    );
    let (ticket, order) = orders(&out)[0].clone();
    // bob logs off, and someone else takes the name from another address.
    r.send(2, Request::Logoff);
    r.login(3, "bob", false);
    r.send(3, Request::Join { title: "Den" });
    let out = r.complete(Done::Community(CommunityDone::Order { ticket, order }));
    assert!(sent(&out).is_empty());
    assert!(r
        .h
        .state()
        .channel_by_title("Den")
        .unwrap()
        .contains(addr(3)));
}

#[test]
fn in_a_cluster_part5_changes_are_published_and_remote_orders_relayed() {
    let r = Rig::new(true);
    // Cluster logins wait for a lease: admit directly.
    r.h.state().claim(addr(1), "ann", r.t0).unwrap();
    r.send(1, Request::Hello { client: "t" });
    let out = r.send(
        1,
        Request::ChanCreate {
            title: "Den",
            description: "ours",
        },
    );
    assert!(out.effects.iter().any(|e| matches!(e,
        Effect::Publish(ClusterEvent::Community(CommunityEvent::Created { title, registered: false, .. }))
            if title == "Den")));
    // Another server asks to remove ann.
    let mut out = Outbox::new();
    r.h.cluster_input(
        ClusterInput::Community {
            server: "s2".into(),
            event: CommunityEvent::Evict {
                title: "den".into(),
                nick: "ANN".into(),
                by: "bob".into(),
                reason: "x".into(),
            },
        },
        &mut out,
    );
    let o = orders(&out);
    assert_eq!(o.len(), 1);
    assert!(matches!(&o[0].1, Order::Evict { nick, .. } if nick == "ann"));
    // A public message from another server is kept in the history under its id.
    let mut out = Outbox::new();
    r.h.cluster_input(
        ClusterInput::Public {
            title: "Den".into(),
            nick: "bob".into(),
            text: "hi".into(),
            id: 42,
            ms: 7,
        },
        &mut out,
    );
    let out = r.send(
        1,
        Request::History {
            title: "Den",
            how: "last",
            number: "5",
        },
    );
    assert_eq!(
        sent(&out),
        [
            (1, code::HISTORY_MSG, "Den 42 7 bob hi".into()),
            (1, code::HISTORY_END, "Den 42 0".into())
        ]
    );
}

#[test]
fn a_kept_private_message_waits_for_the_store_and_answers_the_sender() {
    let r = Rig::new(false);
    r.h.accounts().set_registered("ann", true);
    r.login(2, "bob", true);
    let out = r.send(
        2,
        Request::SendPrivate {
            recipient: "ann",
            text: "later",
        },
    );
    let (ticket, mail) = out
        .effects
        .iter()
        .find_map(|e| match e {
            Effect::Community(CommunityEffect::StoreMail { ticket, mail, max }) => {
                assert_eq!(*max, 50);
                Some((*ticket, mail.clone()))
            }
            _ => None,
        })
        .expect("a StoreMail effect");
    assert_eq!((mail.to.as_str(), mail.from.as_str()), ("ann", "bob"));
    assert!(sent(&out).is_empty());
    let out = r.complete(Done::Community(CommunityDone::Mailed {
        ticket,
        stored: Ok(false),
    }));
    assert_eq!(
        sent(&out),
        [(
            2,
            code::ERROR,
            "ann is away and can't be sent more messages".into()
        )]
    );
    // A late answer for a wait already used is ignored.
    let out = r.complete(Done::Community(CommunityDone::Mailed {
        ticket,
        stored: Ok(true),
    }));
    assert!(sent(&out).is_empty());
}

#[test]
fn the_last_member_leaving_destroys_a_temporary_channel_and_frees_its_title() {
    let r = Rig::new(false);
    r.login(1, "ann", false);
    r.send(
        1,
        Request::ChanCreate {
            title: "Den",
            description: "",
        },
    );
    let id = r.h.state().channel_id("Den").unwrap();
    r.send(1, Request::Logoff);
    assert!(r.h.state().channel(id).is_none());
    assert!(r.h.state().channel_id("den").is_none());
    r.h.state().check_invariants().unwrap();
}
