//! TLS to PostgreSQL and Redis against servers started here with certificates made here
//! (`common::services::TestCa`): accounts over `sslmode=require`, a cluster over
//! `rediss://` with a Redis ACL user and password, and the failures that show the
//! certificate and the password are checked.

mod common;

use std::time::Duration;

use common::cluster::{converge, start_node, wait_connected};
use common::services::{Postgres, TestCa, TlsRedis};
use common::{joined, password_login, req, user, Peer};
use proto::code;
use udpchat::accounts::StoreKind;
use udpchat::server::{RunningServer, Server, ServerConfig};

#[test]
fn accounts_in_postgres_over_tls_and_only_with_a_trusted_certificate() {
    let ca = TestCa::new();
    let pg = Postgres::start_tls(&ca);
    // Without TLS the database refuses us (pg_hba allows only hostssl).
    let plain = ServerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        store: StoreKind::Postgres(pg.url_with("disable")),
        ..ServerConfig::default()
    };
    assert!(
        Server::bind(plain).is_err(),
        "a plain connection was accepted"
    );
    // With TLS but a CA we do not trust (the system's): the certificate is refused.
    let untrusted = ServerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        store: StoreKind::Postgres(pg.url_with("require")),
        ..ServerConfig::default()
    };
    let err = format!("{:?}", Server::bind(untrusted).unwrap_err());
    assert!(
        err.contains("certificate") || err.contains("Issuer"),
        "{err}"
    );
    // With our CA: accounts work.
    let s = common::server_with(|c| {
        c.store = StoreKind::Postgres(pg.url_with("require"));
        c.tls_ca = Some(ca.ca());
    });
    common::registered(&s, "ann", "over tls");
    password_login(&Peer::new(&s), "ann", "over tls");
}

/// A server of the cluster on `url` that trusts `ca`, without accounts; not waited for.
fn node(url: &str, id: &str, ca: &TestCa) -> RunningServer {
    let ca = ca.ca();
    start_node(url, id, move |c| {
        c.tls_ca = Some(ca);
        c.accounts = false;
    })
}

#[test]
fn a_cluster_over_rediss_with_an_acl_user() {
    let ca = TestCa::new();
    let redis = TlsRedis::start(&ca);
    let s1 = node(&redis.url("acl-password"), "t1", &ca);
    let s2 = node(&redis.url("acl-password"), "t2", &ca);
    // A server with the wrong password never gets in.
    let wrong = node(&redis.url("not-the-password"), "t3", &ca);
    wait_connected(&s1, true);
    wait_connected(&s2, true);
    let ann = joined(&s1, "ann", "Pets");
    let bob = user(&s2, "bob");
    converge(|| {
        bob.send(req::private("ann", "over rediss"));
        ann.recv_within(Duration::from_millis(200))
            == Some((code::PRIVATE_MSG, "bob over rediss".into()))
    });
    assert!(!wrong.cluster().unwrap().is_connected());
}
