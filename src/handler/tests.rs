//! Unit tests of the state machine: requests in, datagrams and effects out, the clock
//! injected, no sockets and no threads.

use std::sync::Arc;
use std::time::Duration;

use super::limits::{MAX_WATCH, MAX_WHO, WAIT_TIMEOUT};
use super::rig::{addr, claim, decode_all, sent, Rig, Sent};
use super::*;
use crate::cluster::{ClusterEvent, ClusterInput, UserInfo};
use crate::outbox::{LeaseAnswer, Ticket};
use crate::settings::{Live, LiveSettings};
use crate::state::Presence;
use proto::{code, errors, Request};

/// What the answer to the lease claim of `ticket` brings.
fn lease(r: &Rig, ticket: Ticket, answer: LeaseAnswer) -> Outbox {
    r.complete(Done::Lease { ticket, answer })
}

/// A server of a cluster where the login of `nick` from port 1 waits for its lease: the
/// rig and the claim's ticket.
fn waiting_login(nick: &str) -> (Rig, Ticket) {
    let r = Rig::cluster();
    let ticket = claim(&r.raw(0, 1, Request::Login { nick }));
    (r, ticket)
}

/// What went out for the result `done`, in order.
fn completed(r: &Rig, done: Done) -> Vec<Sent> {
    decode_all(&r.complete(done))
}

/// Logs the user at port `from` in as `nick` and joins it to Pets, at the rig's start.
fn in_pets(r: &Rig, from: u16, nick: &str) {
    r.at(0, from, Request::Login { nick });
    r.at(0, from, Request::Join { title: "Pets" });
}

#[test]
fn public_message_is_one_fanout_sharing_the_member_snapshot() {
    let r = Rig::new();
    for p in 1..=3 {
        in_pets(&r, p, &format!("u{p}"));
    }
    let out = r.raw(0, 2, Request::SendPublic { text: "hi" });
    assert_eq!(out.unicast_len(), 0);
    assert_eq!(out.fanouts.len(), 1);
    assert!(
        out.effects.is_empty(),
        "a server standing alone has no effects"
    );
    let f = &out.fanouts[0];
    assert_eq!(&f.payload[2..], b"Pets u2 hi");
    let mut ports: Vec<u16> = f.members.iter().map(|m| m.addr.port()).collect();
    ports.sort();
    assert_eq!(ports, [1, 2, 3]);
    // A second message reuses the same snapshot: no copy of the member list.
    let again = r.raw(0, 1, Request::SendPublic { text: "yo" });
    assert!(Arc::ptr_eq(&f.members, &again.fanouts[0].members));
}

#[test]
fn seconds_online_come_from_the_injected_clock() {
    let r = Rig::new();
    r.at(0, 1, Request::Login { nick: "ann" });
    r.at(5, 1, Request::Join { title: "Pets" });
    let out = r.at(3723, 1, Request::ListUsers);
    assert_eq!(out, vec![(1, code::USER_ITEM, "ann 3723 Pets".into())]);
}

#[test]
fn idle_sweep_finds_only_users_silent_past_the_timeout() {
    let r = Rig::new();
    in_pets(&r, 1, "quiet");
    in_pets(&r, 2, "chatty");
    r.at(100, 2, Request::StillHere);
    let now = r.t0 + Duration::from_secs(121);
    assert_eq!(r.h.idle_users(now), vec![(addr(1), Route::Addr(addr(1)))]);
    let mut out = Outbox::new();
    assert!(r.h.expire(now, addr(1), &mut out));
    assert_eq!(
        decode_all(&out),
        vec![(2, code::USER_PARTS, "Pets quiet".into())]
    );
    // The chatty user is not expired even if a stale sweep names it.
    assert!(!r.h.expire(now, addr(2), &mut Outbox::new()));
    r.h.state().check_invariants().unwrap();
}

#[test]
fn a_user_that_spoke_after_the_sweep_listed_it_stays() {
    let r = Rig::new();
    r.at(0, 1, Request::Login { nick: "late" });
    let sweep_time = r.t0 + Duration::from_secs(130);
    assert_eq!(r.h.idle_users(sweep_time).len(), 1);
    r.at(130, 1, Request::StillHere);
    assert!(!r.h.expire(sweep_time, addr(1), &mut Outbox::new()));
    assert_eq!(r.h.state().user_count(), 1);
}

#[test]
fn logoff_tells_watchers_and_channel_members() {
    let r = Rig::new();
    in_pets(&r, 1, "w");
    in_pets(&r, 2, "x");
    r.at(0, 1, Request::Watch { nicks: "x" });
    let mut out = r.at(1, 2, Request::Logoff);
    out.sort();
    assert_eq!(
        out,
        vec![
            (1, code::USER_PARTS, "Pets x".into()),
            (1, code::USER_OFFLINE, "x".into())
        ]
    );
    r.h.state().check_invariants().unwrap();
}

#[test]
fn channels_per_user_are_capped_but_rejoining_is_fine() {
    // The cap is a live setting: read where a reload would change it.
    let state = Arc::new(State::new(&crate::config::classic_channels(), 10));
    let live = Live {
        max_channels_per_user: 2,
        ..Live::default()
    };
    let r = Rig::with(
        Handler::new(state, 1024, Duration::from_secs(120))
            .with_live(Arc::new(LiveSettings::new(live))),
    );
    r.at(0, 1, Request::Login { nick: "a" });
    r.at(0, 1, Request::Join { title: "Pets" });
    r.at(0, 1, Request::Join { title: "Weather" });
    let out = r.at(0, 1, Request::Join { title: "Hobbies" });
    assert_eq!(
        out,
        vec![(1, code::ERROR, errors::TOO_MANY_CHANNELS.into())]
    );
    let out = r.at(0, 1, Request::Join { title: "Pets" });
    assert_eq!(out[0].1, code::JOIN_ACK);
    r.h.state().check_invariants().unwrap();
}

#[test]
fn hot_list_is_capped() {
    let r = Rig::new();
    r.at(0, 1, Request::Login { nick: "w" });
    // (A guest that proved its address: an unproved one's list is shorter, below.)
    assert!(r.h.state().prove(addr(1)));
    let names: Vec<String> = (0..MAX_WATCH + 5).map(|i| format!("n{i}")).collect();
    let out = r.at(
        0,
        1,
        Request::Watch {
            nicks: &names.join(" "),
        },
    );
    assert_eq!(out, vec![(1, code::ERROR, errors::HOT_LIST_FULL.into())]);
    assert_eq!(r.h.state().watching(addr(1)).len(), MAX_WATCH);
}

#[test]
fn an_unproved_guests_hot_list_is_short_until_it_proves() {
    let r = Rig::new();
    r.at(0, 1, Request::Login { nick: "w" });
    let live = r.h.sh.live.get();
    let names: Vec<String> = (0..live.unproved_hot_list + 5)
        .map(|i| format!("n{i}"))
        .collect();
    let watch = Request::Watch {
        nicks: &names.join(" "),
    };
    let out = r.at(0, 1, watch);
    assert_eq!(out, vec![(1, code::ERROR, "address not proved".into())]);
    assert_eq!(r.h.state().watching(addr(1)).len(), live.unproved_hot_list);
    assert_eq!(r.h.state().unproved_watch_entries(), live.unproved_hot_list);
    // Proved, the rest fits, and the entries no longer count against the unproved.
    assert!(r.h.state().prove(addr(1)));
    assert!(r.at(0, 1, watch).is_empty());
    assert_eq!(r.h.state().watching(addr(1)).len(), names.len());
    assert_eq!(r.h.state().unproved_watch_entries(), 0);
    r.h.state().check_invariants().unwrap();
}

#[test]
fn who_lists_the_first_matches_in_order_and_says_when_there_are_more() {
    let r = Rig::new();
    for i in 0..(MAX_WHO + 3) as u16 {
        r.at(
            0,
            100 + i,
            Request::Login {
                nick: &format!("u{:03}", 200 - i),
            },
        );
    }
    let out = r.at(0, 100, Request::Who { prefix: "U" });
    assert_eq!(out.len(), MAX_WHO + 1);
    assert!(out[0].2.starts_with("u098 "), "{:?}", out[0]);
    assert!(out[MAX_WHO - 1].2.starts_with("u197 "));
    assert_eq!(out[MAX_WHO].2, errors::WHO_TOO_MANY);
}

// ---- cluster mode: effects and their results ----

#[test]
fn a_cluster_login_waits_for_its_lease_and_nothing_blocks_meanwhile() {
    let r = Rig::cluster();
    let out = r.raw(0, 1, Request::Login { nick: "ann" });
    assert_eq!(out.unicast_len(), 0, "no answer before the lease");
    let ticket = claim(&out);
    // The name is held meanwhile, and a retry just waits.
    assert_eq!(
        r.at(0, 2, Request::Login { nick: "ANN" }),
        vec![(2, code::ERROR, errors::NICK_IN_USE.into())]
    );
    assert!(r.raw(0, 1, Request::Login { nick: "ann" }).is_empty());
    // Others are served while it waits.
    claim(&r.raw(0, 3, Request::Login { nick: "bob" }));
    assert_eq!(
        r.at(0, 3, Request::Login { nick: "ann" }),
        vec![(3, code::ERROR, errors::NICK_IN_USE.into())],
        "a new login from an address gives up its earlier one and is answered at once"
    );
    let out = decode_all(&lease(&r, ticket, LeaseAnswer::Granted));
    assert_eq!(out, vec![(1, code::LOGIN_ACK, "ann".into())]);
    // A second answer for the same ticket changes nothing.
    assert!(lease(&r, ticket, LeaseAnswer::Refused).is_empty());
    r.h.state().check_invariants().unwrap();
}

#[test]
fn a_refused_lease_frees_the_name_and_says_it_is_in_use() {
    let (r, ticket) = waiting_login("zed");
    let out = decode_all(&lease(&r, ticket, LeaseAnswer::Refused));
    assert_eq!(out, vec![(1, code::ERROR, errors::NICK_IN_USE.into())]);
    assert_eq!(r.h.state().user_count(), 0);
    assert_eq!(r.h.state().address_of("zed"), None);
    r.h.state().check_invariants().unwrap();
}

#[test]
fn a_login_given_up_by_housekeeping_frees_its_name() {
    let (r, ticket) = waiting_login("zed");
    r.h.housekeeping(r.t0 + WAIT_TIMEOUT + Duration::from_secs(1));
    assert_eq!(r.h.state().user_count(), 0);
    assert!(lease(&r, ticket, LeaseAnswer::Granted).is_empty());
    r.h.state().check_invariants().unwrap();
}

#[test]
fn cluster_changes_are_published_as_effects() {
    let (r, ticket) = waiting_login("ann");
    let out = lease(&r, ticket, LeaseAnswer::Granted);
    assert!(
        matches!(&out.effects[..], [Effect::Publish(ClusterEvent::User(u))] if u.nick == "ann")
    );
    let out = r.raw(0, 1, Request::Join { title: "Pets" });
    assert!(
        matches!(&out.effects[..], [Effect::Publish(ClusterEvent::User(u))] if u.channels == ["Pets"])
    );
    let out = r.raw(0, 1, Request::SendPublic { text: "hi" });
    assert!(
        matches!(&out.effects[..], [Effect::Publish(ClusterEvent::Public(m))] if m.text == "hi")
    );
    let out = r.raw(0, 1, Request::Logoff);
    assert_eq!(
        out.effects,
        vec![Effect::ReleaseLease { nick: "ann".into() }]
    );
}

/// A cluster member cut off from Redis: remote users of the last known view count in
/// JOIN_ACK, show in lists, keep their names, and answer WATCH; nothing blocks.
#[test]
fn remote_users_of_the_view_count_everywhere() {
    let r = Rig::cluster();
    r.cluster_input(ClusterInput::User {
        server: "there".into(),
        nick: "Zed".into(),
        info: Some(UserInfo {
            nick: "Zed".into(),
            login_ms: unix_ms(r.w0) - 5000,
            channels: vec!["Pets".into()],
        }),
    });
    // Redis unreachable: the view decides.
    let ticket = claim(&r.raw(0, 1, Request::Login { nick: "zed" }));
    assert_eq!(
        decode_all(&lease(&r, ticket, LeaseAnswer::Unavailable)),
        vec![(1, code::ERROR, errors::NICK_IN_USE.into())]
    );
    let ticket = claim(&r.raw(0, 1, Request::Login { nick: "ann" }));
    lease(&r, ticket, LeaseAnswer::Unavailable);
    let out = r.at(0, 1, Request::Join { title: "Pets" });
    assert_eq!(out[0].2, "Pets 2 For our furry and feathered friends");
    let mut out = r.at(0, 1, Request::ListUsers);
    out.sort();
    assert_eq!(out[0].2, "Zed 5 Pets");
    assert_eq!(out[1].2, "ann 0 Pets");
    assert_eq!(
        r.at(0, 1, Request::Whois { nick: "ZED" })[0].2,
        "Zed 5 Pets"
    );
    let who = r.at(0, 1, Request::Who { prefix: "" });
    let names: Vec<&str> = who.iter().map(|w| w.2.split(' ').next().unwrap()).collect();
    assert_eq!(names, ["ann", "Zed"]);
    assert_eq!(
        r.at(0, 1, Request::Watch { nicks: "zed" }),
        vec![(1, code::USER_ONLINE, "Zed".into())]
    );
    // A private message to a remote user is handed to the cluster, not answered.
    let out = r.raw(
        0,
        1,
        Request::SendPrivate {
            recipient: "zed",
            text: "hi",
        },
    );
    assert_eq!(out.unicast_len(), 0);
    assert!(
        matches!(&out.effects[..], [Effect::Publish(ClusterEvent::Private { server, .. })] if server == "there")
    );
    // The remote user leaves the channel: the local member is told.
    let out = r.cluster_input(ClusterInput::Server {
        server: "there".into(),
        users: vec![],
    });
    assert_eq!(
        sent(&out),
        vec![
            (1, code::USER_PARTS, "Pets Zed".into()),
            (1, code::USER_OFFLINE, "Zed".into())
        ]
    );
    r.h.state().check_invariants().unwrap();
}

// ---- accounts: the store is an effect ----

/// Sends the AUTH_REQ of `login` from port `from`, then again with the token of the
/// AUTH_RETRY it gets; returns the outbox of the second.
fn auth_req(r: &Rig, from: u16, login: &proto::auth::LoginStart) -> Outbox {
    let got = decode_all(&r.bytes(from, &login.datagram));
    assert_eq!(got[0].1, code::AUTH_RETRY, "{got:?}");
    r.bytes(from, &login.with_token(&got[0].2))
}

/// Registers the guest at port 1 with `password`; returns the store effect's ticket
/// and account, before any answer.
fn register(r: &Rig, password: &str) -> (Ticket, crate::accounts::Account) {
    let start = proto::auth::register_start(password);
    let out = r.bytes(1, &start.datagram);
    let got = decode_all(&out);
    assert_eq!(got[0].1, code::REGISTER_RESP, "{got:?}");
    let upload = start.finish(password, &got[0].2).unwrap();
    let out = r.bytes(1, &upload);
    assert_eq!(out.unicast_len(), 0, "no ACCOUNT_ACK before the commit");
    match &out.effects[..] {
        [Effect::StoreAccount {
            ticket, account, ..
        }] => (*ticket, account.clone()),
        other => panic!("expected a store effect, got {other:?}"),
    }
}

/// A server on which Ann (port 1) has registered with the password `pw`, and her account
/// as stored.
fn ann_registered() -> (Rig, crate::accounts::Account) {
    let r = Rig::new();
    r.at(0, 1, Request::Login { nick: "Ann" });
    let (ticket, account) = register(&r, "pw");
    completed(&r, Done::Stored { ticket, ok: true });
    (r, account)
}

#[test]
fn account_ack_waits_for_the_commit_and_a_failed_write_says_so() {
    let r = Rig::new();
    r.at(0, 1, Request::Login { nick: "Ann" });
    r.at(0, 1, Request::Watch { nicks: "bob" });
    let (ticket, account) = register(&r, "pw");
    assert_eq!(
        (account.nick.as_str(), &account.watch[..]),
        ("Ann", &["bob".to_string()][..])
    );
    assert_eq!(
        completed(&r, Done::Stored { ticket, ok: false }),
        vec![(1, code::ERROR, errors::STORAGE_FAILED.into())]
    );
    assert!(!r.h.sh.accounts.is_registered("ann"));
    let (ticket, _) = register(&r, "pw");
    assert_eq!(
        completed(&r, Done::Stored { ticket, ok: true }),
        vec![(1, code::ACCOUNT_ACK, "registered Ann".into())]
    );
    assert!(r.h.sh.accounts.is_registered("ANN"));
    // From now on the name needs its password.
    r.at(0, 1, Request::Logoff);
    assert_eq!(
        r.at(0, 2, Request::Login { nick: "ann" }),
        vec![(2, code::ERROR, errors::NICK_REGISTERED.into())]
    );
}

#[test]
fn a_password_login_reads_the_account_as_an_effect_and_shows_the_registered_spelling() {
    let (r, account) = ann_registered();
    // Ann logs off and comes back with her password, from another address.
    r.at(0, 1, Request::Logoff);
    let login = proto::auth::login_start("ann", "pw");
    let out = auth_req(&r, 3, &login);
    assert_eq!(
        out.unicast_len(),
        0,
        "no challenge before the account is read"
    );
    let ticket = match &out.effects[..] {
        [Effect::LoadAccount { ticket, key }] if key == "ann" => *ticket,
        other => panic!("expected an account read, got {other:?}"),
    };
    let got = completed(
        &r,
        Done::Loaded {
            ticket,
            account: Ok(Some(account)),
        },
    );
    assert_eq!(got[0].1, code::AUTH_CHALLENGE);
    let (finish, keys) = login.finish("pw", &got[0].2).unwrap();
    let got = decode_all(&r.bytes(3, &finish));
    assert_eq!(got, vec![(3, code::LOGIN_ACK, "Ann".into())]);
    assert_eq!(r.h.state().presence(addr(3)), Presence::Protected(keys.id));
    // A store failure while reading is an error the user sees, not silence.
    let login = proto::auth::login_start("ann", "pw");
    let out = auth_req(&r, 4, &login);
    let ticket = out.effects[0].ticket().unwrap();
    assert_eq!(
        completed(
            &r,
            Done::Loaded {
                ticket,
                account: Err(())
            }
        ),
        vec![(4, code::ERROR, errors::STORAGE_FAILED.into())]
    );
    r.h.state().check_invariants().unwrap();
}

#[test]
fn an_upgraded_guest_is_shown_as_registered() {
    let (r, account) = ann_registered();
    // The account is spelled "ANN" (registered through another server sharing the
    // store while this guest was on): the guest upgrades with the password, keeps its
    // channels and is shown as registered, as its LOGIN_ACK says.
    r.at(0, 1, Request::Join { title: "Pets" });
    let login = proto::auth::login_start("ann", "pw");
    let out = auth_req(&r, 1, &login);
    let ticket = out.effects[0].ticket().unwrap();
    let got = completed(
        &r,
        Done::Loaded {
            ticket,
            account: Ok(Some(crate::accounts::Account {
                nick: "ANN".into(),
                ..account
            })),
        },
    );
    let (finish, _) = login.finish("pw", &got[0].2).unwrap();
    let got = decode_all(&r.bytes(1, &finish));
    assert_eq!(got, vec![(1, code::LOGIN_ACK, "ANN".into())]);
    let user = r.h.state().user(addr(1)).unwrap();
    assert_eq!(
        (&*user.nick, user.channels.len()),
        ("ANN", 1),
        "same user, new spelling"
    );
}

#[test]
fn a_stranger_reaches_neither_the_store_nor_opaque_before_proving_its_address() {
    let (r, _) = ann_registered();
    r.at(0, 1, Request::Logoff);
    // A classic login of the registered name: answered from memory, no effect.
    let out = r.bytes(2, &Request::Login { nick: "ann" }.to_bytes());
    assert!(out.effects.is_empty());
    assert_eq!(decode_all(&out)[0].2, errors::NICK_REGISTERED);
    // An AUTH_REQ without a valid token: a token, no effect, no login under way.
    let login = proto::auth::login_start("ann", "pw");
    for datagram in [
        login.datagram.clone(),
        login.with_token("AAAAAAAAAAAAAAAAAAAAAA"),
    ] {
        let out = r.bytes(3, &datagram);
        assert!(out.effects.is_empty(), "{:?}", out.effects);
        let got = decode_all(&out);
        assert_eq!(got[0].1, code::AUTH_RETRY);
    }
    assert!(r.h.sh.accounts.pending_challenge(addr(3), &[]).is_none());
    // The token sent to port 3 is worth nothing from port 4.
    let token = decode_all(&r.bytes(3, &login.datagram))[0].2.clone();
    let out = r.bytes(4, &login.with_token(&token));
    assert!(out.effects.is_empty());
    // From port 3 it opens the login: now the account is read.
    let out = r.bytes(3, &login.with_token(&token));
    assert!(matches!(&out.effects[..], [Effect::LoadAccount { .. }]));
}

#[test]
fn a_ping_keeps_a_user_from_the_idle_sweep() {
    let r = Rig::new();
    r.at(0, 1, Request::Login { nick: "ann" });
    assert_eq!(
        r.at(100, 1, Request::Ping { token: "t" }),
        vec![(1, code::PONG, "t".into())]
    );
    assert!(r.h.idle_users(r.t0 + Duration::from_secs(121)).is_empty());
    assert_eq!(r.h.idle_users(r.t0 + Duration::from_secs(221)).len(), 1);
}
