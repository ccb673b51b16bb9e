//! Tests of [`State`] as a whole: what crosses its parts (users, nicknames, channels,
//! watchers, sessions).

use std::net::SocketAddr;
use std::time::Instant;

use super::*;

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Hot lists as long as a proved user's for everyone.
const LONG: WatchLimits = WatchLimits {
    max: 100,
    unproved: 100,
    per_network: 1000,
    total: 1000,
};

/// State for 10 users with `users` (port, nickname) logged in.
fn with_users(users: &[(u16, &str)]) -> State {
    let state = State::new(&crate::config::classic_channels(), 10);
    for &(port, nick) in users {
        state.claim(addr(port), nick, Instant::now()).unwrap();
    }
    state
}

#[test]
fn claims_are_unique_ignoring_case_and_capped() {
    let state = State::new(&crate::config::classic_channels(), 2);
    let now = Instant::now();
    assert_eq!(state.claim(addr(1), "Bob", now), Ok(()));
    assert_eq!(state.claim(addr(2), "bob", now), Err(ClaimError::InUse));
    assert_eq!(state.claim(addr(2), "ann", now), Ok(()));
    assert_eq!(state.claim(addr(3), "cid", now), Err(ClaimError::Full));
    state.depart(addr(1)).unwrap();
    assert_eq!(state.claim(addr(3), "BOB", now), Ok(()));
    assert_eq!(state.address_of("bOb"), Some(addr(3)));
    state.check_invariants().unwrap();
}

#[test]
fn a_reservation_holds_the_name_until_admitted_or_given_up() {
    let state = State::new(&crate::config::classic_channels(), 5);
    let now = Instant::now();
    state.reserve(addr(1), "Zed").unwrap();
    assert_eq!(state.claim(addr(2), "zed", now), Err(ClaimError::InUse));
    assert_eq!(state.presence(addr(1)), Presence::Stranger);
    state.check_invariants().unwrap();
    state.unreserve(addr(1), "Zed");
    assert_eq!(state.user_count(), 0);
    state.reserve(addr(2), "zed").unwrap();
    state.admit(addr(2), "zed", now, None);
    assert_eq!(state.presence(addr(2)), Presence::Guest);
    state.check_invariants().unwrap();
}

#[test]
fn channel_lookup_ignores_case() {
    let state = State::new(&crate::config::classic_channels(), 2);
    assert_eq!(state.channel_id("weather"), Some(1));
    assert_eq!(state.channel_id("WEATHER"), Some(1));
    assert_eq!(state.channel_id("nowhere"), None);
}

#[test]
fn who_reads_a_sorted_prefix() {
    let state = State::new(&crate::config::classic_channels(), 100);
    let now = Instant::now();
    for (i, n) in ["bob", "Al", "alice", "Carl", "ALF"].iter().enumerate() {
        state.claim(addr(i as u16 + 1), n, now).unwrap();
    }
    let names: Vec<String> = state
        .who("al", 10)
        .into_iter()
        .map(|u| u.nick.to_string())
        .collect();
    assert_eq!(names, ["Al", "ALF", "alice"]);
    assert_eq!(state.who("", 2).len(), 2);
    assert!(state.who("z", 10).is_empty());
}

#[test]
fn departure_leaves_channels_watchers_and_session() {
    let state = with_users(&[(1, "ann"), (2, "bob")]);
    state.join(addr(1), 0, 64, 0).unwrap();
    state.join(addr(2), 0, 64, 0).unwrap();
    state.watch(addr(1), ["bob"].into_iter(), LONG);
    let keys = SessionKeys::derive(&[3u8; 64]);
    let id = keys.id;
    assert!(state.open_session(addr(1), keys));
    state.check_invariants().unwrap();
    let gone = state.depart(addr(1)).unwrap();
    assert_eq!(gone.parts.len(), 1);
    assert_eq!(gone.parts[0].1[0].addr, addr(2));
    assert!(state.watchers_of("bob").is_empty());
    assert!(!state.has_session(id));
    state.check_invariants().unwrap();
}

#[test]
fn caps_reach_the_member_lists_of_every_channel() {
    let state = with_users(&[(1, "ann")]);
    state.join(addr(1), 0, 64, 0).unwrap();
    state.join(addr(1), 3, 64, 0).unwrap();
    let caps = Caps {
        batch: Some(4000),
        multicast: false,
    };
    state.set_caps(addr(1), caps);
    assert_eq!(state.channel(0).unwrap().snapshot()[0].batch, 4000);
    assert_eq!(state.channel(3).unwrap().snapshot()[0].batch, 4000);
    // A channel joined later takes the size at once.
    state.join(addr(1), 2, 64, 0).unwrap();
    assert_eq!(state.channel(2).unwrap().snapshot()[0].batch, 4000);
    state.set_caps(addr(1), Caps::default());
    assert_eq!(state.channel(2).unwrap().snapshot()[0].batch, 0);
    state.check_invariants().unwrap();
}

#[test]
fn a_move_takes_the_whole_user_along() {
    let state = with_users(&[(1, "ann"), (3, "cid")]);
    state.join(addr(1), 2, 64, 0).unwrap();
    state.watch(addr(3), ["ann"].into_iter(), LONG);
    state.watch(addr(1), ["cid"].into_iter(), LONG);
    let keys = SessionKeys::derive(&[4u8; 64]);
    let id = keys.id;
    state.open_session(addr(1), keys);
    // Nobody may be pushed out of the new address.
    assert!(!state.move_user(id, addr(1), addr(3)));
    assert!(state.move_user(id, addr(1), addr(2)));
    assert_eq!(state.address_of("ANN"), Some(addr(2)));
    assert_eq!(state.channel(2).unwrap().snapshot()[0].addr, addr(2));
    assert_eq!(state.watchers_of("cid"), vec![addr(2)]);
    assert_eq!(state.presence(addr(2)), Presence::Protected(id));
    state.check_invariants().unwrap();
}

#[test]
fn created_channels_get_new_ids_and_vanish_when_empty() {
    let state = State::new(&crate::config::classic_channels(), 10);
    assert_eq!(state.channel_count(), 5);
    let meta = || Meta::created("mine", "ann", None);
    let ch = state.create_channel("Den", meta()).unwrap();
    assert_eq!(state.create_channel("DEN", meta()).unwrap_err(), Exists);
    assert_eq!(state.channel_id("den"), Some(ch.id));
    state.claim(addr(1), "ann", Instant::now()).unwrap();
    assert!(matches!(
        state.join(addr(1), ch.id, 8, 0),
        Ok(Joined::New(_))
    ));
    assert!(state.destroy_if_empty(ch.id).is_none(), "it has a member");
    state.part(addr(1), ch.id).unwrap();
    assert!(state.destroy_if_empty(ch.id).is_some());
    assert!(state.channel(ch.id).is_none() && state.channel_id("den").is_none());
    // A new channel of the same title is another channel.
    let again = state.create_channel("Den", meta()).unwrap();
    assert_ne!(again.id, ch.id);
    // Configured channels never vanish on their own.
    let pets = state.channel_id("pets").unwrap();
    assert!(state.destroy_if_empty(pets).is_none());
    let titles: Vec<String> = state
        .channels()
        .iter()
        .map(|c| c.title.to_string())
        .collect();
    assert_eq!(titles.last().map(String::as_str), Some("Den"));
    state.check_invariants().unwrap();
}

#[test]
fn a_created_title_may_not_look_like_an_existing_one() {
    let state = State::new(&crate::config::classic_channels(), 10);
    let meta = || Meta::created("", "ann", None);
    // A Cyrillic Р and е beside the configured Pets; a zero for an O.
    assert_eq!(
        state.create_unlike("\u{420}\u{435}ts", meta()).unwrap_err(),
        TitleTaken::LooksLike("Pets".into())
    );
    let dog = state.create_unlike("DOg", meta()).unwrap();
    assert_eq!(
        state.create_unlike("D0g", meta()).unwrap_err(),
        TitleTaken::LooksLike("DOg".into())
    );
    assert_eq!(
        state.create_unlike("dog", meta()).unwrap_err(),
        TitleTaken::Exists
    );
    assert!(state.create_unlike("Dig", meta()).is_ok());
    // Once the channel is gone, so is its skeleton.
    assert!(state.destroy_now(dog.id));
    assert!(state.create_unlike("D0g", meta()).is_ok());
}

#[test]
fn unproved_hot_lists_share_a_bounded_quota_that_proving_and_leaving_give_back() {
    let state = with_users(&[(1, "ann"), (2, "bob"), (3, "cid")]);
    let limits = WatchLimits {
        max: 100,
        unproved: 3,
        per_network: 5,
        total: 5,
    };
    let names = ["n1", "n2", "n3", "n4"];
    let (listed, stop) = state.watch(addr(1), names.into_iter(), limits);
    assert_eq!((listed.len(), stop), (3, Some(WatchStop::Unproved)));
    // The same names again take nothing more.
    let (listed, stop) = state.watch(addr(1), names[..3].iter().copied(), limits);
    assert_eq!((listed.len(), stop), (3, None));
    // Another guest of the network (127.0.0.0/24) gets what is left of its five.
    let (listed, stop) = state.watch(addr(2), names.into_iter(), limits);
    assert_eq!((listed.len(), stop), (2, Some(WatchStop::Unproved)));
    assert_eq!(state.unproved_watch_entries(), 5);
    state.check_invariants().unwrap();
    // Proving lifts the limits and gives the entries back.
    assert!(state.prove(addr(1)));
    assert_eq!(state.unproved_watch_entries(), 2);
    let (listed, stop) = state.watch(addr(1), ["n5", "n6"].into_iter(), limits);
    assert_eq!((listed.len(), stop), (2, None));
    assert_eq!(state.watching(addr(1)).len(), 5);
    // Unwatching and leaving give back too.
    state.unwatch(addr(2), ["n1"].into_iter());
    assert_eq!(state.unproved_watch_entries(), 1);
    state.watch(addr(3), ["x"].into_iter(), limits);
    assert_eq!(state.unproved_watch_entries_of(addr(3)), 2);
    state.depart(addr(2));
    state.check_invariants().unwrap();
    // A guest that becomes protected counts as proved.
    assert!(state.open_session(addr(3), SessionKeys::derive(&[5u8; 64])));
    assert_eq!(state.unproved_watch_entries(), 0);
    state.check_invariants().unwrap();
    // A proved user stops at the list's own length.
    let many: Vec<String> = (0..150).map(|i| format!("m{i}")).collect();
    let (_, stop) = state.watch(addr(1), many.iter().map(String::as_str), limits);
    assert_eq!(stop, Some(WatchStop::Full));
    assert_eq!(state.watching(addr(1)).len(), 100);
}
