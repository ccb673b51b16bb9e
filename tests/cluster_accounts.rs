//! Accounts in PostgreSQL, started with `initdb` in a temporary folder: the store behind
//! the same trait as SQLite, and two servers sharing accounts (registered on one, logged in
//! with the password on the other).

mod common;

use common::services::Postgres;
use common::{user, Peer};
use proto::auth;
use proto::{code, Request};
use udpchat::accounts::pg::PgStore;
use udpchat::accounts::AccountStore;

#[test]
fn postgres_store_keeps_accounts_for_every_server() {
    let pg = Postgres::start();

    // The store on its own, as the SQLite store is exercised.
    let store = PgStore::connect(&pg.url()).expect("connect to PostgreSQL");
    assert!(store.shared());
    assert_eq!(store.server_setup().unwrap(), None);
    store.save_server_setup(b"first").unwrap();
    store.save_server_setup(b"second").unwrap(); // the first one stays
    assert_eq!(
        store.server_setup().unwrap().as_deref(),
        Some(&b"first"[..])
    );
    udpchat::accounts::exercise_account_records(&store);
    // The community's tables, in the same database.
    let community = udpchat::accounts::StoreKind::Postgres(pg.url())
        .open_community_with(&udpchat::tls::Trust::default())
        .expect("open the community store");
    udpchat::accounts::exercise_community(&*community);
    drop(community);
    // Servers must make their own OPAQUE setup: clear the test one.
    let mut raw = postgres::Client::connect(&pg.url(), postgres::NoTls).unwrap();
    raw.execute("DELETE FROM udpchat_meta", &[]).unwrap();
    drop(store);

    // Two servers on the same database share accounts.
    let on = |url: String| {
        common::server_with(move |c| {
            c.store = udpchat::accounts::StoreKind::Postgres(url);
            c.live.operators = vec!["root".into()];
        })
    };
    let s1 = on(pg.url());
    let s2 = on(pg.url());
    let ann = user(&s1, "Ann");
    let start = auth::register_start("tea for two");
    ann.send_raw(&start.datagram);
    let (c, response) = ann.recv();
    assert_eq!(c, code::REGISTER_RESP, "{response}");
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

    // An operator's account made on the command line (`chat-server accounts add root
    // --operator --database ...` runs this) while both servers run: each hears of it
    // from the database, as of its demotion, at once.
    let admin = PgStore::connect(&pg.url()).unwrap();
    udpchat::accounts::add_account(&admin, "root", "op pass", true, 0).unwrap();
    let registered = |s: &udpchat::server::RunningServer| {
        common::wait_until(|| {
            let p = Peer::new(s);
            let (answer, _) = p.retry_until_answered(&Request::Login { nick: "root" }.to_bytes());
            answer.0 == code::ERROR && answer.1.starts_with("nickname is registered")
        })
    };
    registered(&s2);
    let root = common::protected(&s2, "root", "op pass");
    root.hello();
    let rights = |p: &Peer| {
        p.send(Request::OperStatus);
        let (c, _) = p.recv();
        while p
            .recv_within(std::time::Duration::from_millis(150))
            .is_some()
        {}
        c == code::STATUS_ITEM
    };
    assert!(rights(&root));
    udpchat::accounts::set_operator(&admin, "root", false).unwrap();
    common::wait_until(|| !rights(&root));
    udpchat::accounts::set_operator(&admin, "root", true).unwrap();
    common::wait_until(|| rights(&root));
    udpchat::accounts::delete_account(&admin, "root").unwrap();
    common::wait_until(|| !rights(&root));
}
