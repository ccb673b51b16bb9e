//! TLS to PostgreSQL and Redis against servers started here with certificates made here
//! (`common::services::TestCa`): accounts over `sslmode=require`, a cluster over
//! `rediss://` with a Redis ACL user and password, and the failures that show the
//! certificate and the password are checked.

mod common;

use std::time::{Duration, Instant};

use common::services::{Postgres, TestCa, TlsRedis};
use common::{password_login, register, user, Peer};
use proto::{code, Request};
use udpchat::accounts::StoreKind;
use udpchat::cluster::ClusterConfig;
use udpchat::server::{Server, ServerConfig};

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
    let ann = user(&s, "ann");
    assert_eq!(register(&ann, "over tls"), "registered ann");
    ann.send(Request::Logoff);
    common::wait_until(|| s.state().address_of("ann").is_none());
    let p = Peer::new(&s);
    password_login(&p, "ann", "over tls");
}

fn node(url: &str, id: &str, ca: &TestCa) -> udpchat::server::RunningServer {
    let url = url.to_string();
    let ca = ca.ca();
    common::server_with(move |c| {
        c.cluster = Some(ClusterConfig {
            lease_ttl: Duration::from_secs(3),
            ..ClusterConfig::new(url, id, b"tls test cluster secret 32 bytes")
        });
        c.tls_ca = Some(ca);
        c.accounts = false;
        c.limits.amplification_guard = false;
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
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(s1.cluster().unwrap().is_connected() && s2.cluster().unwrap().is_connected()) {
        assert!(
            Instant::now() < deadline,
            "the cluster did not connect over TLS"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let ann = user(&s1, "ann");
    ann.join("Pets");
    let bob = user(&s2, "bob");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        bob.send(Request::SendPrivate {
            recipient: "ann",
            text: "over rediss",
        });
        if ann.recv_within(Duration::from_millis(200))
            == Some((code::PRIVATE_MSG, "bob over rediss".into()))
        {
            break;
        }
        assert!(Instant::now() < deadline, "no message across the cluster");
    }
    assert!(!wrong.cluster().unwrap().is_connected());
}
