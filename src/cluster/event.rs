//! What servers of a cluster tell each other over Redis: the event types, their JSON
//! encoding, the Redis key and topic names, and the per-origin sequence tracking that drops
//! duplicates and notices gaps.
//!
//! JSON rather than a binary encoding: events are small next to Redis's own per-message
//! cost, `redis-cli monitor` shows them readably when something goes wrong, and serde's
//! decoder already treats every byte as untrusted. What Redis hands us is checked again here
//! (lengths, nicknames, server ids): another server may run another version, or anyone
//! with access to Redis may publish on our topics.

use std::collections::HashMap;
use std::sync::Arc;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::outbox::CommunityEvent;
use crate::state::nick_key;
use proto::valid_nick;

/// The largest event accepted from Redis, in bytes; a public message is at most one
/// datagram (65507 bytes), JSON escaping may double it.
pub const MAX_EVENT: usize = 160 * 1024;
/// How far in the future an origin's epoch may be (clocks differ a little); an event from
/// further ahead is refused, so nobody can make later events look stale.
pub const MAX_EPOCH_AHEAD_MS: u64 = 5 * 60 * 1000;
/// The shortest cluster secret accepted, in bytes.
pub const MIN_SECRET: usize = 16;
/// Bytes of an HMAC tag on what the cluster writes to Redis (base64: 22 characters).
const TAG_LEN: usize = 16;

/// Authenticates what servers write to Redis with HMAC-SHA256 under the cluster's shared
/// secret (`--cluster-secret-file`): events as `TAG.JSON`, users hash values likewise, and
/// lease values as `SERVER.TAG`. Whoever can write to Redis but lacks the secret can no
/// longer speak as a user, invent users or hold a nickname's lease. Each kind of value has
/// its own label and covers where it is stored (topic, hash and field, lease key), so a
/// value can't be moved to another place.
#[derive(Clone)]
pub struct Signer {
    key: Arc<[u8]>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").finish_non_exhaustive()
    }
}

impl Signer {
    /// A signer with `secret`.
    pub fn new(secret: &[u8]) -> Self {
        Signer { key: secret.into() }
    }

    fn tag(&self, label: &str, parts: &[&[u8]]) -> String {
        use base64::Engine;
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(label.as_bytes());
        for p in parts {
            mac.update(&[0]);
            mac.update(&(p.len() as u64).to_be_bytes());
            mac.update(p);
        }
        let full = mac.finalize().into_bytes();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&full[..TAG_LEN])
    }

    fn verify(&self, label: &str, parts: &[&[u8]], tag: &[u8]) -> bool {
        use base64::Engine;
        let Ok(tag) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(tag) else {
            return false;
        };
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(label.as_bytes());
        for p in parts {
            mac.update(&[0]);
            mac.update(&(p.len() as u64).to_be_bytes());
            mac.update(p);
        }
        tag.len() == TAG_LEN && mac.verify_truncated_left(&tag).is_ok()
    }

    /// `body` (JSON) as published on `topic`: `TAG.JSON`.
    pub fn seal_event(&self, topic: &str, body: &[u8]) -> Vec<u8> {
        let mut out = self
            .tag("udpchat v2 event", &[topic.as_bytes(), body])
            .into_bytes();
        out.push(b'.');
        out.extend_from_slice(body);
        out
    }

    /// The JSON of an event received on `topic`, if its tag verifies.
    pub fn open_event<'a>(&self, topic: &str, bytes: &'a [u8]) -> Option<&'a [u8]> {
        let dot = bytes.iter().position(|&b| b == b'.')?;
        let (tag, body) = (&bytes[..dot], &bytes[dot + 1..]);
        self.verify("udpchat v2 event", &[topic.as_bytes(), body], tag)
            .then_some(body)
    }

    /// `json` as stored in field `field` of `server`'s users hash: `TAG.JSON`.
    pub fn seal_user(&self, server: &str, field: &str, json: &str) -> String {
        let tag = self.tag(
            "udpchat v2 user",
            &[server.as_bytes(), field.as_bytes(), json.as_bytes()],
        );
        format!("{tag}.{json}")
    }

    /// The JSON of a users hash value, if its tag verifies.
    pub fn open_user<'a>(&self, server: &str, field: &str, value: &'a [u8]) -> Option<&'a [u8]> {
        let dot = value.iter().position(|&b| b == b'.')?;
        let (tag, json) = (&value[..dot], &value[dot + 1..]);
        self.verify(
            "udpchat v2 user",
            &[server.as_bytes(), field.as_bytes(), json],
            tag,
        )
        .then_some(json)
    }

    /// The value of lease `key` held by `server`: `SERVER.TAG`.
    pub fn lease_value(&self, key: &str, server: &str) -> String {
        let tag = self.tag("udpchat v2 lease", &[key.as_bytes(), server.as_bytes()]);
        format!("{server}.{tag}")
    }

    /// Whether `value` of lease `key` was written by a server of the cluster.
    pub fn lease_genuine(&self, key: &str, value: &[u8]) -> bool {
        let Some(dot) = value.iter().rposition(|&b| b == b'.') else {
            return false;
        };
        let (server, tag) = (&value[..dot], &value[dot + 1..]);
        self.verify("udpchat v2 lease", &[key.as_bytes(), server], tag)
    }
}
/// The longest server id.
pub const MAX_SERVER_ID: usize = 64;

/// Key prefix of everything the cluster keeps in Redis.
pub const PREFIX: &str = "udpchat";

/// The topic every server subscribes to: logins, logoffs, joins, parts, hello and bye.
pub fn presence_topic() -> String {
    format!("{PREFIX}:presence")
}

/// The topic of a channel's public messages (title in any case).
pub fn channel_topic(title: &str) -> String {
    format!("{PREFIX}:chan:{}", title.to_lowercase())
}

/// The topic of the private messages for users of `server`.
pub fn server_topic(server: &str) -> String {
    format!("{PREFIX}:srv:{server}")
}

/// The key that says `server` is alive (its value is the epoch, with a TTL).
pub fn server_key(server: &str) -> String {
    format!("{PREFIX}:server:{server}")
}

/// The hash of the users of `server`: lower-cased nickname → [`UserRec`] as JSON.
pub fn users_key(server: &str) -> String {
    format!("{PREFIX}:users:{server}")
}

/// The lease of a nickname (any case): its value is the holding server's id.
pub fn lease_key(nick: &str) -> String {
    format!("{PREFIX}:nick:{}", nick_key(nick))
}

/// Whether `id` may name a server: 1 to 64 of ASCII letters, digits, `-`, `_` and `.`, so
/// that it is safe inside key names and log lines.
pub fn valid_server_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_SERVER_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn valid_title(title: &str) -> bool {
    !title.is_empty()
        && title.len() <= 256
        && !title.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Whether the titles and nicknames of a part-5 event are acceptable (the handler checks
/// the rest).
fn valid_community(ev: &CommunityEvent) -> bool {
    use CommunityEvent as E;
    match ev {
        E::Created { title, founder, .. } => valid_title(title) && valid_nick(founder),
        E::Changed { title, actor, .. } => valid_title(title) && valid_nick(actor),
        E::Gone { title } => valid_title(title),
        E::Role {
            title, nick, actor, ..
        } => valid_title(title) && valid_nick(nick) && valid_nick(actor),
        E::Ban { title, ban, .. } => valid_title(title) && ban.mask.len() <= 256,
        E::Unban { title, actor, .. } => valid_title(title) && valid_nick(actor),
        E::Invite { title, nick, by } => valid_title(title) && valid_nick(nick) && valid_nick(by),
        E::Evict { title, nick, .. } => valid_title(title) && valid_nick(nick),
        E::Kill { nick, .. } => valid_nick(nick),
        E::AddrBan(b) => b.net.len() <= 64,
        E::AddrUnban { net } => net.len() <= 64,
        E::Notice { from, .. } => valid_nick(from),
    }
}

/// A user as other servers see it (a login, join or part publishes the whole record).
pub use crate::outbox::UserInfo as UserRec;

/// Whether every field of `rec` is acceptable.
pub fn valid_rec(rec: &UserRec) -> bool {
    valid_nick(&rec.nick)
        && rec.channels.len() <= 4096
        && rec.channels.iter().all(|t| valid_title(t))
}

/// What happened on the origin server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Body {
    /// The origin (re)connected and wrote its users hash: reload it.
    Hello,
    /// The origin stops cleanly: its users are gone.
    Bye,
    /// A user's whole record after a login, join or part; `rec` is `None` after a logoff.
    /// The whole record rather than the change, so that applying it twice is harmless and
    /// a receiver that missed one event is right again at the next.
    User {
        /// The nickname (any case).
        nick: String,
        /// The record, or `None` when the user is gone.
        rec: Option<UserRec>,
    },
    /// A public message, on the channel's topic.
    Public {
        /// The channel title.
        chan: String,
        /// The sender's nickname.
        nick: String,
        /// The text.
        text: String,
        /// Its id in the channel's history (absent from servers that give none).
        #[serde(default)]
        id: u64,
        /// When it was sent, milliseconds since the Unix epoch.
        #[serde(default)]
        ms: u64,
    },
    /// A private message, on the recipient's server's topic.
    Private {
        /// The recipient's nickname.
        to: String,
        /// The sender's nickname.
        from: String,
        /// The text.
        text: String,
    },
    /// Channels, moderation and operators (part 5), on the presence topic.
    Community {
        /// What happened.
        ev: CommunityEvent,
    },
}

/// An event with its origin: server id, epoch (the start time of that server process, in
/// milliseconds) and sequence number on its topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The origin server's id.
    pub s: String,
    /// The origin's epoch.
    pub e: u64,
    /// Sequence number, per origin and topic, from 1.
    pub q: u64,
    /// The event.
    pub b: Body,
}

/// Why an event from Redis was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// Longer than [`MAX_EVENT`].
    #[error("event too long")]
    TooLong,
    /// Not JSON of an [`Envelope`].
    #[error("event does not parse")]
    Parse,
    /// Parses, but a field is out of bounds.
    #[error("event has an invalid field")]
    Invalid,
    /// Its tag does not verify under the cluster secret.
    #[error("event is not signed with the cluster secret")]
    Forged,
}

impl Envelope {
    /// Encodes to JSON.
    pub fn encode(&self) -> Vec<u8> {
        // Serializing these plain structs to a Vec can't fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Encodes to JSON and seals it for `topic` ([`Signer::seal_event`]).
    pub fn seal(&self, signer: &Signer, topic: &str) -> Vec<u8> {
        signer.seal_event(topic, &self.encode())
    }

    /// Opens an event received on `topic` at `now_ms` (wall clock): its tag must verify,
    /// and its epoch must not be more than [`MAX_EPOCH_AHEAD_MS`] ahead; then as
    /// [`decode`](Self::decode).
    ///
    /// # Errors
    /// [`EventError::Forged`] for a bad tag, [`EventError::Invalid`] for an epoch from the
    /// future, and the errors of [`decode`](Self::decode).
    pub fn open(
        signer: &Signer,
        topic: &str,
        bytes: &[u8],
        now_ms: u64,
    ) -> Result<Envelope, EventError> {
        if bytes.len() > MAX_EVENT {
            return Err(EventError::TooLong);
        }
        let body = signer.open_event(topic, bytes).ok_or(EventError::Forged)?;
        let env = Self::decode(body)?;
        if env.e > now_ms.saturating_add(MAX_EPOCH_AHEAD_MS) {
            return Err(EventError::Invalid);
        }
        Ok(env)
    }

    /// Decodes and checks an event's JSON (already authenticated: see [`open`](Self::open)).
    ///
    /// # Errors
    /// When it is too long, does not parse, or has a field out of bounds.
    pub fn decode(bytes: &[u8]) -> Result<Envelope, EventError> {
        if bytes.len() > MAX_EVENT {
            return Err(EventError::TooLong);
        }
        let env: Envelope = serde_json::from_slice(bytes).map_err(|_| EventError::Parse)?;
        let ok = valid_server_id(&env.s)
            && match &env.b {
                Body::Hello | Body::Bye => true,
                Body::User { nick, rec } => {
                    valid_nick(nick)
                        && rec
                            .as_ref()
                            .is_none_or(|r| valid_rec(r) && nick_key(&r.nick) == nick_key(nick))
                }
                Body::Public { chan, nick, .. } => valid_title(chan) && valid_nick(nick),
                Body::Private { to, from, .. } => valid_nick(to) && valid_nick(from),
                Body::Community { ev } => valid_community(ev),
            };
        if ok {
            Ok(env)
        } else {
            Err(EventError::Invalid)
        }
    }
}

/// What the sequence check says of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// The next one expected (or the first from this origin on this topic).
    Next,
    /// Seen already (or older): drop it.
    Duplicate,
    /// Newer than expected: `missed` events were lost in between. Apply it.
    Gap {
        /// How many are missing.
        missed: u64,
    },
    /// From an epoch older than one already seen: a previous run of the origin. Drop it.
    Stale,
    /// The first from a new epoch of an origin seen before: it restarted.
    NewEpoch,
}

/// Origin and topic pairs tracked at most.
pub const MAX_TRACKED: usize = 65536;

/// The last (epoch, sequence) seen per origin and topic.
#[derive(Debug, Default)]
pub struct Tracker {
    last: HashMap<(String, String), (u64, u64)>,
}

impl Tracker {
    /// Checks `env` received on `topic` and records it unless it is to be dropped.
    pub fn check(&mut self, topic: &str, env: &Envelope) -> Seen {
        let key = (env.s.clone(), topic.to_owned());
        let Some(&(epoch, seq)) = self.last.get(&key) else {
            if self.last.len() >= MAX_TRACKED {
                // Whoever can publish on our topics could otherwise grow this without
                // bound with made-up server ids; forgetting costs at most a missed gap
                // or a duplicate applied twice (events are idempotent).
                self.last.clear();
            }
            self.last.insert(key, (env.e, env.q));
            return Seen::Next;
        };
        let seen = if env.e < epoch {
            return Seen::Stale;
        } else if env.e > epoch {
            Seen::NewEpoch
        } else if env.q <= seq {
            return Seen::Duplicate;
        } else if env.q == seq + 1 {
            Seen::Next
        } else {
            Seen::Gap {
                missed: env.q - seq - 1,
            }
        };
        self.last.insert(key, (env.e, env.q));
        seen
    }

    /// The epoch last seen from `origin` on `topic`.
    pub fn epoch(&self, origin: &str, topic: &str) -> Option<u64> {
        self.last
            .get(&(origin.to_owned(), topic.to_owned()))
            .map(|&(epoch, _)| epoch)
    }

    /// Forgets what was seen on `topic` (after subscribing to it again: what was published
    /// while unsubscribed is no gap).
    pub fn forget_topic(&mut self, topic: &str) {
        self.last.retain(|(_, t), _| t != topic);
    }

    /// Forgets everything (after a reconnection, which reloads the whole view).
    pub fn clear(&mut self) {
        self.last.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(s: &str, e: u64, q: u64) -> Envelope {
        Envelope {
            s: s.into(),
            e,
            q,
            b: Body::Hello,
        }
    }

    #[test]
    fn round_trips_and_rejects_bad_input() {
        let e = Envelope {
            s: "a-1".into(),
            e: 5,
            q: 9,
            b: Body::User {
                nick: "Ann".into(),
                rec: Some(UserRec {
                    nick: "Ann".into(),
                    login_ms: 1,
                    channels: vec!["Pets".into()],
                }),
            },
        };
        assert_eq!(Envelope::decode(&e.encode()), Ok(e));
        assert_eq!(Envelope::decode(b"\xff\x00"), Err(EventError::Parse));
        assert_eq!(Envelope::decode(b"{}"), Err(EventError::Parse));
        assert_eq!(
            Envelope::decode(&vec![b' '; MAX_EVENT + 1]),
            Err(EventError::TooLong)
        );
        let bad_id = br#"{"s":"a b","e":1,"q":1,"b":{"t":"hello"}}"#;
        assert_eq!(Envelope::decode(bad_id), Err(EventError::Invalid));
        let bad_nick = br#"{"s":"a","e":1,"q":1,"b":{"t":"user","nick":"x y","rec":null}}"#;
        assert_eq!(Envelope::decode(bad_nick), Err(EventError::Invalid));
        let mismatch = br#"{"s":"a","e":1,"q":1,"b":{"t":"user","nick":"x","rec":{"nick":"y","login_ms":0,"channels":[]}}}"#;
        assert_eq!(Envelope::decode(mismatch), Err(EventError::Invalid));
    }

    #[test]
    fn events_users_and_leases_need_the_secret() {
        let signer = Signer::new(b"0123456789abcdef");
        let other = Signer::new(b"fedcba9876543210");
        let now = 1_000_000;
        let e = env("a", now, 1);
        let sealed = e.seal(&signer, "t");
        assert_eq!(Envelope::open(&signer, "t", &sealed, now), Ok(e.clone()));
        assert_eq!(
            Envelope::open(&other, "t", &sealed, now),
            Err(EventError::Forged)
        );
        assert_eq!(
            Envelope::open(&signer, "other-topic", &sealed, now),
            Err(EventError::Forged),
            "moved to another topic"
        );
        assert_eq!(
            Envelope::open(&signer, "t", &e.encode(), now),
            Err(EventError::Forged),
            "unsigned"
        );
        // Signed but from far in the future: refused, so it can't make later events stale.
        let future = env("a", u64::MAX, 1).seal(&signer, "t");
        assert_eq!(
            Envelope::open(&signer, "t", &future, now),
            Err(EventError::Invalid)
        );
        let v = signer.seal_user("s1", "ann", "{}");
        assert_eq!(
            signer.open_user("s1", "ann", v.as_bytes()),
            Some(&b"{}"[..])
        );
        assert_eq!(signer.open_user("s1", "bob", v.as_bytes()), None);
        assert_eq!(other.open_user("s1", "ann", v.as_bytes()), None);
        let lease = signer.lease_value("udpchat:nick:ann", "s1");
        assert!(signer.lease_genuine("udpchat:nick:ann", lease.as_bytes()));
        assert!(!signer.lease_genuine("udpchat:nick:bob", lease.as_bytes()));
        assert!(!signer.lease_genuine("udpchat:nick:ann", b"s1"));
        assert!(!other.lease_genuine("udpchat:nick:ann", lease.as_bytes()));
    }

    #[test]
    fn tracker_drops_duplicates_and_counts_gaps() {
        let mut t = Tracker::default();
        assert_eq!(t.check("p", &env("a", 1, 1)), Seen::Next);
        assert_eq!(t.check("p", &env("a", 1, 2)), Seen::Next);
        assert_eq!(t.check("p", &env("a", 1, 2)), Seen::Duplicate);
        assert_eq!(t.check("p", &env("a", 1, 5)), Seen::Gap { missed: 2 });
        assert_eq!(t.check("q", &env("a", 1, 7)), Seen::Next);
        assert_eq!(t.check("p", &env("a", 2, 1)), Seen::NewEpoch);
        assert_eq!(t.check("p", &env("a", 1, 9)), Seen::Stale);
        assert_eq!(t.epoch("a", "p"), Some(2));
        t.forget_topic("p");
        assert_eq!(t.epoch("a", "p"), None);
        assert_eq!(t.check("p", &env("a", 2, 40)), Seen::Next);
    }
}
