//! The checks every store must pass, shared by the stores' unit tests and the integration
//! tests that need a database server (`cargo test` turns the `test-support` feature on for
//! those; a build of the server leaves this out).

use super::community::{
    account_sender, guest_sender, CommunityStore, HistoryRow, Kept, MailLimits, MailRules,
    RefusalChange, Refusals, RefusedBy, StoredAddrBan, StoredBan, StoredChannel, StoredMail,
    StoredMessage,
};
use super::store::{Account, AccountStore};

/// Runs the checks every account store must pass, from an empty store (the memory and
/// SQLite stores' tests): its OPAQUE setup, then [`exercise_account_records`].
///
/// # Panics
/// When the store fails a check.
pub fn exercise_accounts(store: &dyn AccountStore) {
    assert_eq!(store.server_setup().unwrap(), None);
    store.save_server_setup(b"setup").unwrap();
    assert_eq!(
        store.server_setup().unwrap().as_deref(),
        Some(&b"setup"[..])
    );
    exercise_account_records(store);
}

/// Runs the checks of account records every store must pass, from a store without
/// accounts (a shared store saves its setup its own way: see the PostgreSQL test).
///
/// # Panics
/// When the store fails a check.
pub fn exercise_account_records(store: &dyn AccountStore) {
    let a = Account {
        nick: "Ann".into(),
        record: vec![1, 2, 3],
        watch: vec![],
        created: 100,
        operator: false,
    };
    store.put(&a).unwrap();
    store
        .set_watch("ann", &["bob".into(), "cid".into()])
        .unwrap();
    let got = store.get("ann").unwrap().unwrap();
    assert_eq!(got.watch, vec!["bob", "cid"]);
    // A new record (password change) keeps the hot list.
    store
        .put(&Account {
            record: vec![9],
            ..a.clone()
        })
        .unwrap();
    let got = store.get("ann").unwrap().unwrap();
    assert_eq!((got.record, got.watch.len()), (vec![9], 2));
    assert_eq!(store.list().unwrap().len(), 1);
    assert_eq!(store.keys().unwrap(), vec!["ann".to_string()]);
    // The operator flag: set and cleared only by `set_operator`, never by a new record
    // (a password change over the network), and made with a new account.
    assert!(!got.operator && store.operator_keys().unwrap().is_empty());
    assert!(store.set_operator("ann", true).unwrap());
    assert!(!store.set_operator("nobody", true).unwrap());
    store.put(&a).unwrap();
    assert!(
        store.get("ann").unwrap().unwrap().operator,
        "kept by a new record"
    );
    assert_eq!(store.operator_keys().unwrap(), vec!["ann".to_string()]);
    assert!(store.set_operator("ann", false).unwrap());
    store
        .put(&Account {
            operator: true,
            ..a.clone()
        })
        .unwrap();
    assert!(
        !store.get("ann").unwrap().unwrap().operator,
        "not made by a new record"
    );
    // `create` makes a new account as given, and never touches one that exists.
    let account = |nick: &str, record: u8, operator: bool| Account {
        nick: nick.into(),
        record: vec![record],
        operator,
        ..a.clone()
    };
    assert!(store.create(&account("Op", 7, true)).unwrap());
    assert!(
        store.get("op").unwrap().unwrap().operator,
        "a new operator's account"
    );
    let squatter = account("OP", 6, false);
    assert!(!store.create(&squatter).unwrap());
    let kept = store.get("op").unwrap().unwrap();
    assert_eq!((kept.record, kept.operator), (vec![7], true));
    assert!(store.delete("op").unwrap());
    assert!(store.delete("ann").unwrap());
    assert!(!store.delete("ann").unwrap());
    assert_eq!(store.get("ann").unwrap(), None);
}

/// Runs the checks every community store must pass, from an empty store (the memory and
/// SQLite stores' tests, and the PostgreSQL one, which needs a server).
///
/// # Panics
/// When the store fails a check.
pub fn exercise_community(store: &dyn CommunityStore) {
    let chan = StoredChannel {
        title: "Den".into(),
        description: "mine".into(),
        founder: "ann".into(),
        created_ms: 5,
        invite_only: false,
        moderated: true,
        topic_locked: true,
        limit: Some(9),
    };
    store.save_channel(&chan).unwrap();
    store
        .save_channel(&StoredChannel {
            description: "ours".into(),
            created_ms: 99,
            ..chan.clone()
        })
        .unwrap();
    store.set_op("den", "ann", true).unwrap();
    store.set_op("den", "bob", true).unwrap();
    store.set_op("den", "bob", false).unwrap();
    let ban = StoredBan {
        mask: "spam*".into(),
        until_ms: 0,
        by: "ann".into(),
        reason: "ads".into(),
    };
    store.save_ban("den", &ban).unwrap();
    store
        .save_ban(
            "den",
            &StoredBan {
                reason: "more ads".into(),
                ..ban.clone()
            },
        )
        .unwrap();
    let snap = store.snapshot().unwrap();
    assert_eq!(snap.channels.len(), 1);
    assert_eq!(
        (
            snap.channels[0].description.as_str(),
            snap.channels[0].created_ms
        ),
        ("ours", 5)
    );
    assert_eq!(snap.channels[0].limit, Some(9));
    assert_eq!(snap.ops, vec![("den".to_string(), "ann".to_string())]);
    assert_eq!(snap.bans.len(), 1);
    assert_eq!(snap.bans[0].1.reason, "more ads");
    let msg = |id: u64| StoredMessage {
        id,
        ms: id / 1000,
        nick: "ann".into(),
        text: format!("m{id}"),
    };
    let rows: Vec<HistoryRow> = (1..=5).map(|i| ("den".to_string(), msg(i))).collect();
    store.append_history(&rows, 3).unwrap();
    let h = store.history("den", 10).unwrap();
    assert_eq!(h.iter().map(|m| m.id).collect::<Vec<_>>(), vec![3, 4, 5]);
    assert_eq!(store.history("den", 2).unwrap()[0].id, 4);
    exercise_mail(store);
    let ab = StoredAddrBan {
        net: "10.0.0.0/8".into(),
        until_ms: 0,
        by: "op".into(),
        reason: "spam".into(),
    };
    store.save_addr_ban(&ab).unwrap();
    assert_eq!(store.snapshot().unwrap().addr_bans, vec![ab]);
    store.delete_addr_ban("10.0.0.0/8").unwrap();
    store.delete_ban("den", "spam*").unwrap();
    store.delete_channel("den").unwrap();
    let snap = store.snapshot().unwrap();
    assert!(snap.channels.is_empty() && snap.ops.is_empty() && snap.bans.is_empty());
    assert!(snap.addr_bans.is_empty());
    assert!(store.history("den", 10).unwrap().is_empty());
}

/// The mailbox part of [`exercise_community`]: limits in all, per sender and for guests,
/// and refusals.
fn exercise_mail(store: &dyn CommunityStore) {
    let mail = |from: &str, sender_id: &str, text: &str| StoredMail {
        to: "bob".into(),
        ms: 7,
        from: from.into(),
        sender_id: sender_id.into(),
        text: text.into(),
    };
    let ann = |text: &str| mail("ann", &account_sender("ann"), text);
    let guest = |nick: &str, text: &str| mail(nick, &guest_sender("192.0.2.0/24"), text);
    let limits = MailLimits {
        max: 4,
        per_sender: 2,
        guests: 1,
    };
    let none: RefusedBy<'_> = &|_| false;
    let keep = |m: &StoredMail| {
        store
            .store_mail(
                m,
                MailRules {
                    limits,
                    refused: none,
                },
            )
            .unwrap()
    };
    assert_eq!(keep(&ann("one")), Kept::Kept);
    assert_eq!(keep(&ann("two")), Kept::Kept);
    assert_eq!(keep(&ann("three")), Kept::SenderFull, "two per sender");
    assert_eq!(keep(&guest("g1", "four")), Kept::Kept);
    // Another guest nickname of the same network is the same sender, and guests together
    // have their share already.
    assert_eq!(keep(&guest("g2", "five")), Kept::Full, "the guests' share");
    let cid = mail("cid", &account_sender("cid"), "six");
    assert_eq!(keep(&cid), Kept::Kept);
    let dan = mail("dan", &account_sender("dan"), "seven");
    assert_eq!(keep(&dan), Kept::Full, "the box is full");
    let got = store.take_mail("bob").unwrap();
    assert_eq!(
        got.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(),
        ["one", "two", "four", "six"]
    );
    assert_eq!(got[2].sender_id, guest_sender("192.0.2.0/24"));
    assert!(store.take_mail("bob").unwrap().is_empty(), "delivered once");

    // Refusals: kept sorted, at most `max`, and asked of at every message.
    assert!(store.refusals("bob").unwrap().is_empty());
    let list = |v: &[&str]| Refusals::List(v.iter().map(|s| s.to_string()).collect());
    let set = |mask, on| {
        let change = RefusalChange { mask, on, max: 2 };
        store.set_refusal("bob", change).unwrap()
    };
    assert_eq!(set("spam*", true), list(&["spam*"]));
    assert_eq!(set("account:ann", true), list(&["account:ann", "spam*"]));
    assert_eq!(
        set("spam*", true),
        list(&["account:ann", "spam*"]),
        "the same mask again changes nothing"
    );
    assert_eq!(set("x", true), Refusals::Full);
    assert_eq!(store.refusals("bob").unwrap(), ["account:ann", "spam*"]);
    let masks = std::cell::RefCell::new(Vec::new());
    let refuse_all = |m: &[String]| {
        masks.borrow_mut().extend_from_slice(m);
        true
    };
    assert_eq!(
        store
            .store_mail(
                &ann("refused"),
                MailRules {
                    limits,
                    refused: &refuse_all,
                },
            )
            .unwrap(),
        Kept::Refused
    );
    assert_eq!(*masks.borrow(), ["account:ann", "spam*"]);
    assert!(
        store.take_mail("bob").unwrap().is_empty(),
        "nothing refused is kept"
    );
    assert_eq!(set("spam*", false), list(&["account:ann"]));
    assert_eq!(set("account:ann", false), list(&[]));
    assert!(store.refusals("bob").unwrap().is_empty());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::community::MemoryCommunity;
    use crate::accounts::store::MemoryStore;

    #[test]
    fn memory_store_keeps_accounts() {
        exercise_accounts(&MemoryStore::default());
    }

    #[test]
    fn memory_community_store_keeps_everything() {
        exercise_community(&MemoryCommunity::default());
    }
}
