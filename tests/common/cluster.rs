//! Cluster nodes for the tests: in-process servers sharing one chat space through a
//! `redis-server` of the test's own ([`super::services::Redis`]), and the waits for the
//! cluster to converge.

use std::time::Duration;

use proto::{code, Request};
use udpchat::cluster::ClusterConfig;
use udpchat::server::{RunningServer, ServerConfig};

use super::services::Redis;
use super::Peer;

/// Lease TTL in these tests: short, so a dead server's users vanish quickly, yet long
/// enough that a server stalled by a loaded machine (tests run in parallel on 2 cores)
/// does not look dead.
pub const TTL: Duration = Duration::from_millis(3000);

/// How long a test waits for the cluster to converge.
pub const CONVERGE: Duration = Duration::from_secs(30);

/// The cluster secret the test servers share.
pub const SECRET: &[u8] = b"test cluster secret, 32 bytes...";

/// A server of the cluster on `redis_url` as `id` (lease TTL [`TTL`], secret [`SECRET`],
/// answers to strangers sent at once), configured further by `f`; not waited for.
pub fn start_node(redis_url: &str, id: &str, f: impl FnOnce(&mut ServerConfig)) -> RunningServer {
    let cluster = ClusterConfig {
        lease_ttl: TTL,
        ..ClusterConfig::new(redis_url, id, SECRET)
    };
    super::server_with(move |c| {
        c.cluster = Some(cluster);
        // Answers to strangers (nickname in use) are checked directly, not retried.
        c.limits.amplification_guard = false;
        f(c);
    })
}

/// As [`start_node`], once connected to Redis.
pub fn node(redis_url: &str, id: &str, f: impl FnOnce(&mut ServerConfig)) -> RunningServer {
    let s = start_node(redis_url, id, f);
    wait_connected(&s, true);
    s
}

/// A server of the cluster on `redis` with its metrics page on, once connected.
pub fn metered_node(redis: &Redis, id: &str) -> RunningServer {
    node(&redis.url(), id, |c| {
        c.metrics = Some("127.0.0.1:0".parse().unwrap());
    })
}

/// Waits until `s` is connected to Redis (`up`) or knows it is not.
#[track_caller]
pub fn wait_connected(s: &RunningServer, up: bool) {
    let c = s.cluster().unwrap().clone();
    converge(|| c.is_connected() == up);
}

/// Waits up to [`CONVERGE`] for `cond`.
#[track_caller]
pub fn converge(cond: impl FnMut() -> bool) {
    super::wait_for("cluster did not converge", CONVERGE, cond);
}

/// Waits until `n` servers subscribe to the topic of channel `title` (lower case): a
/// server subscribes just after its first local member joins (within milliseconds, but
/// not at once).
#[track_caller]
pub fn subscribed(redis: &Redis, title: &str, n: i64) {
    let mut con = redis.connection();
    let topic = format!("udpchat:chan:{title}");
    converge(|| {
        let got: Vec<(String, i64)> = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(&topic)
            .query(&mut con)
            .unwrap();
        got[0].1 == n
    });
}

/// How many users of other servers `s` knows.
pub fn remote_users(s: &RunningServer) -> usize {
    s.state().remote().len()
}

/// How many users of other servers `s` knows in `title` (0 if it knows no such channel).
pub fn remote_in(s: &RunningServer, title: &str) -> usize {
    s.state()
        .channel_id(title)
        .map_or(0, |id| s.state().remote().count(id))
}

/// Whether `s` knows a channel `title`.
pub fn knows(s: &RunningServer, title: &str) -> bool {
    s.state().channel_id(title).is_some()
}

/// Logs `p` in as `nick` as soon as the cluster lets it (once another server's lease on the
/// name is gone).
#[track_caller]
pub fn login_when_free(p: &Peer, nick: &str) {
    converge(|| {
        p.send(Request::Login { nick });
        p.recv_within(Duration::from_millis(200)) == Some((code::LOGIN_ACK, nick.to_string()))
    });
}
