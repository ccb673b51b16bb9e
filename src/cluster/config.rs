//! How a server joins a cluster: the Redis URL, its server id, the lease TTL, the
//! cluster's shared secret and how old an event may be, and why a configuration is
//! refused.

use std::sync::Arc;
use std::time::Duration;

use super::event::MIN_SECRET;
use super::track::Freshness;

/// How to join a cluster. Its `Debug` shows the Redis URL without its password.
#[derive(Clone)]
pub struct ClusterConfig {
    /// `redis://HOST:PORT`.
    pub redis_url: String,
    /// This server's name in the cluster (letters, digits, `-`, `_`, `.`; unique).
    pub server_id: String,
    /// How long leases and the server's alive key last without renewal; renewed every
    /// third of it. A dead server's users vanish from the others within about this long.
    pub lease_ttl: Duration,
    /// The secret every server of the cluster shares (`--cluster-secret-file`): what they
    /// write to Redis is authenticated with it (`event::Signer`).
    pub secret: ClusterSecret,
    /// How old an event may be, and how far the servers' clocks may differ: older events
    /// are refused, however they got back into Redis (`docs/CLUSTER.md`). 30 s and 2 s.
    pub freshness: Freshness,
}

impl std::fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterConfig")
            .field("redis_url", &crate::redact::url(&self.redis_url))
            .field("server_id", &self.server_id)
            .field("lease_ttl", &self.lease_ttl)
            .field("secret", &self.secret)
            .finish()
    }
}

/// The cluster's shared secret; never shown in logs or `Debug` output.
#[derive(Clone)]
pub struct ClusterSecret(pub Arc<[u8]>);

impl std::fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterSecret(..)")
    }
}

impl ClusterSecret {
    /// The secret in `path`: its bytes, without surrounding white space.
    ///
    /// # Errors
    /// When the file can't be read or holds fewer than 16 bytes.
    pub fn from_file(path: &std::path::Path) -> Result<Self, ClusterError> {
        let raw = std::fs::read(path)
            .map_err(|e| ClusterError::Secret(format!("{}: {e}", path.display())))?;
        let text = raw.trim_ascii();
        if text.len() < MIN_SECRET {
            return Err(ClusterError::Secret(format!(
                "{}: the secret must be at least {} bytes (e.g. `openssl rand -hex 32`)",
                path.display(),
                MIN_SECRET
            )));
        }
        Ok(ClusterSecret(text.into()))
    }
}

impl ClusterConfig {
    /// A configuration with the default lease TTL (15 s) and `secret`.
    pub fn new(redis_url: impl Into<String>, server_id: impl Into<String>, secret: &[u8]) -> Self {
        ClusterConfig {
            redis_url: redis_url.into(),
            server_id: server_id.into(),
            lease_ttl: Duration::from_secs(15),
            secret: ClusterSecret(secret.into()),
            freshness: Freshness::default(),
        }
    }
}

/// Why a cluster configuration is refused.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The server id has characters outside the allowed set, or is empty or too long.
    #[error("invalid server id {0:?}: use 1 to 64 letters, digits, '-', '_' or '.'")]
    ServerId(String),
    /// The Redis URL does not parse.
    #[error("invalid Redis URL: {0}")]
    Url(#[from] ::redis::RedisError),
    /// The cluster secret is missing, unreadable or too short.
    #[error("cluster secret: {0}")]
    Secret(String),
}
