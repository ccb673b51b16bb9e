//! Unit tests of part 5 in the state machine: requests in, datagrams, orders and effects
//! out, no sockets. What goes through the threads (an order to the worker owning a user, a
//! store write, a cluster event) is checked as the effect it is, then fed back by hand.

use super::rig::{addr, sent, Rig};
use super::*;
use crate::accounts::Kept;
use crate::cluster::{ClusterEvent, ClusterInput, CommunityEvent, PublicMessage};
use crate::outbox::community::Order;
use crate::outbox::Ticket;
use crate::outbox::{CommunityDone, CommunityEffect};
use crate::state::role;
use proto::{code, Request};
use std::sync::atomic::Ordering;

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

/// ann (a part-5 client at port 1) creates Den, bob (a classic one at port 2) joins it,
/// and ann kicks bob for `reason`: what the kick sends.
fn kick_bob(r: &Rig, reason: &str) -> Outbox {
    r.login(1, "ann", true);
    r.prove(1);
    let den = Request::ChanCreate {
        title: "Den",
        description: "",
    };
    r.send(1, den);
    r.login(2, "bob", false);
    r.send(2, Request::Join { title: "Den" });
    let kick = Request::ChanKick {
        title: "Den",
        nick: "bob",
        reason,
    };
    r.send(1, kick)
}

#[test]
fn a_kick_is_an_order_for_the_worker_owning_the_member_and_changes_nothing_before() {
    let r = Rig::new();
    let out = kick_bob(&r, "spam");
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
    let r = Rig::new();
    let out = kick_bob(&r, "");
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
    let r = Rig::cluster();
    // Cluster logins wait for a lease: admit directly.
    r.h.state().claim(addr(1), "ann", r.t0).unwrap();
    r.prove(1);
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
    // Another server asks to remove cid, a member here (ann, the founder, outranks the
    // remote actor: another_server_can_not_kick_or_deop_a_temporary_founder_...).
    r.h.state().claim(addr(3), "cid", r.t0).unwrap();
    r.send(3, Request::Join { title: "Den" });
    let out = r.cluster_input(ClusterInput::Community {
        server: "s2".into(),
        event: CommunityEvent::Evict {
            title: "den".into(),
            nick: "CID".into(),
            by: "bob".into(),
            reason: "x".into(),
        },
    });
    let o = orders(&out);
    assert_eq!(o.len(), 1);
    assert!(matches!(&o[0].1, Order::Evict { nick, .. } if nick == "cid"));
    // A public message from another server is kept in the history under its id.
    r.cluster_input(ClusterInput::Public(PublicMessage {
        title: "Den".into(),
        nick: "bob".into(),
        text: "hi".into(),
        id: 42,
        ms: 7,
    }));
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
    let r = Rig::new();
    r.h.sh.accounts.set_registered("ann", true);
    r.login(2, "bob", true);
    assert!(r.h.state().prove(addr(2)));
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
            Effect::Community(CommunityEffect::StoreMail {
                ticket,
                mail,
                limits,
                account,
            }) => {
                assert_eq!((limits.max, limits.per_sender, limits.guests), (50, 5, 25));
                assert_eq!(account, &None, "a guest");
                Some((*ticket, mail.clone()))
            }
            _ => None,
        })
        .expect("a StoreMail effect");
    assert_eq!((mail.to.as_str(), mail.from.as_str()), ("ann", "bob"));
    assert_eq!(
        mail.sender_id, "net:127.0.0.0/24",
        "a guest counts as its network"
    );
    assert!(sent(&out).is_empty());
    let out = r.complete(Done::Community(CommunityDone::Mailed {
        ticket,
        stored: Ok(Kept::Full),
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
        stored: Ok(Kept::Kept),
    }));
    assert!(sent(&out).is_empty());
}

#[test]
fn nothing_is_kept_from_a_guest_that_has_not_proved_its_address() {
    let r = Rig::new();
    r.h.sh.accounts.set_registered("ann", true);
    let private = Request::SendPrivate {
        recipient: "ann",
        text: "junk",
    };
    // A part-5 client is told why; a classic one what a classic server says.
    r.login(2, "bob", true);
    let out = r.send(2, private);
    assert!(out.effects.is_empty(), "{:?}", out.effects);
    assert_eq!(sent(&out), [(2, code::ERROR, "address not proved".into())]);
    r.login(3, "cid", false);
    let out = r.send(3, private);
    assert!(out.effects.is_empty());
    assert_eq!(sent(&out), [(3, code::ERROR, "ann: not logged in".into())]);
    assert_eq!(r.h.audit().mail_unproved.load(Ordering::Relaxed), 2);
}

#[test]
fn refusals_need_a_password_session_and_a_mask() {
    let r = Rig::new();
    r.login(1, "ann", true);
    let out = r.send(1, Request::MailRefuse { mask: "spam*" });
    assert!(out.effects.is_empty());
    assert_eq!(
        sent(&out),
        [(1, code::ERROR, "log in with your password first".into())]
    );
}

#[test]
fn the_last_member_leaving_destroys_a_temporary_channel_and_frees_its_title() {
    let r = Rig::new();
    r.login(1, "ann", false);
    r.prove(1);
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

#[test]
fn creating_a_channel_needs_a_proved_address() {
    let r = Rig::new();
    r.login(1, "eve", true);
    let den = || Request::ChanCreate {
        title: "Den",
        description: "",
    };
    assert_eq!(
        sent(&r.send(1, den())),
        [(1, code::ERROR, "address not proved".into())]
    );
    assert!(r.h.state().channel_id("Den").is_none());
    r.prove(1);
    r.send(1, den());
    assert!(r.h.state().channel_id("Den").is_some());
}

#[test]
fn another_server_can_not_kick_or_deop_a_temporary_founder_it_can_not_see_outranks() {
    let r = Rig::cluster();
    let mut live = (*r.h.sh.live.get()).clone();
    live.operators = vec!["root".into()];
    r.h.sh.live.set(live);
    r.h.state().claim(addr(1), "ann", r.t0).unwrap();
    r.prove(1);
    r.send(
        1,
        Request::ChanCreate {
            title: "Den",
            description: "",
        },
    );
    let den = r.h.state().channel_by_title("Den").unwrap();
    // eve, an operator on another server (a guest: nothing there says so here), tries.
    let evict = |by: &str| ClusterInput::Community {
        server: "s2".into(),
        event: CommunityEvent::Evict {
            title: "Den".into(),
            nick: "ann".into(),
            by: by.into(),
            reason: "coup".into(),
        },
    };
    assert!(orders(&r.cluster_input(evict("eve"))).is_empty());
    r.cluster_input(ClusterInput::Community {
        server: "s2".into(),
        event: CommunityEvent::Role {
            title: "Den".into(),
            nick: "ann".into(),
            role: 'o',
            on: false,
            account: None,
            actor: "eve".into(),
        },
    });
    assert_eq!(den.roles(addr(1)), role::OP, "ann is still an operator");
    // A server operator outranks her.
    assert_eq!(orders(&r.cluster_input(evict("root"))).len(), 1);
}
