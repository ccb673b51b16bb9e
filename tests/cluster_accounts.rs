//! Accounts in PostgreSQL, started with `initdb` in a temporary folder: the store behind
//! the same trait as SQLite, and two servers sharing accounts (registered on one, logged in
//! with the password on the other).

mod common;

use common::services::Postgres;
use common::{user, Peer};
use proto::auth;
use proto::{code, Request};
use udpchat::accounts::pg::PgStore;
use udpchat::accounts::{Account, AccountStore};

#[test]
fn postgres_store_keeps_accounts_for_every_server() {
    let pg = Postgres::start();

    // The store on its own, as the SQLite store is exercised.
    let store = PgStore::connect(&pg.url()).expect("connect to PostgreSQL");
    assert!(store.shared());
    assert_eq!(store.server_setup().unwrap(), None);
    store.save_server_setup(b"first").unwrap();
    store.save_server_setup(b"second").unwrap(); // the first one stays
    assert_eq!(store.server_setup().unwrap(), Some(b"first".to_vec()));
    // Zed's account with `record`, as a registration or a password change stores it.
    let zed = |record: Vec<u8>| Account {
        nick: "Zed".into(),
        record,
        watch: vec![],
        created: 7,
    };
    store.put(&zed(vec![1, 2, 3])).unwrap();
    store
        .set_watch("zed", &["ann".into(), "bob".into()])
        .unwrap();
    // A new record keeps the hot list.
    store.put(&zed(vec![9])).unwrap();
    let got = store.get("zed").unwrap().unwrap();
    assert_eq!(
        (got.record, got.watch),
        (vec![9], vec!["ann".into(), "bob".into()])
    );
    assert_eq!(store.list().unwrap().len(), 1);
    assert!(store.delete("zed").unwrap());
    assert!(!store.delete("zed").unwrap());
    assert_eq!(store.get("zed").unwrap(), None);
    // Servers must make their own OPAQUE setup: clear the test one.
    let mut raw = postgres::Client::connect(&pg.url(), postgres::NoTls).unwrap();
    raw.execute("DELETE FROM udpchat_meta", &[]).unwrap();
    drop(store);

    // Two servers on the same database share accounts.
    let on = |url: String| {
        common::server_with(move |c| c.store = udpchat::accounts::StoreKind::Postgres(url))
    };
    let s1 = on(pg.url());
    let s2 = on(pg.url());
    let ann = user(&s1, "Ann");
    let start = auth::register_start("tea for two");
    ann.send_raw(&start.datagram);
    let response = ann.recv_code(code::REGISTER_RESP);
    ann.send_raw(&start.finish("tea for two", &response).unwrap());
    ann.expect(code::ACCOUNT_ACK, "registered Ann");
    ann.send(Request::Logoff);

    // The other server learns that the name is registered, without a restart (the
    // database notifies it; a guest that slips in first is logged off and tries again)...
    let guest = Peer::new(&s2);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let answer = loop {
        let (answer, _) = guest.retry_until_answered(&Request::Login { nick: "ann" }.to_bytes());
        if answer.0 != code::LOGIN_ACK || std::time::Instant::now() > deadline {
            break answer;
        }
        guest.send(Request::Logoff);
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(
        answer,
        (
            code::ERROR,
            "nickname is registered; log in with a password".into()
        )
    );
    // ...and takes the password.
    let other = Peer::new(&s2);
    common::password_login(&other, "Ann", "tea for two");
}
