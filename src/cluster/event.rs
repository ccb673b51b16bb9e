//! What servers of a cluster tell each other over Redis: the events the handler publishes
//! ([`ClusterEvent`]) and is fed ([`ClusterInput`]), their JSON encoding ([`Envelope`],
//! [`Body`], [`UserInfo`], [`PublicMessage`], [`PrivateMessage`], [`CommunityEvent`]) and
//! its authentication ([`Signer`]), and the Redis key and topic names. The per-origin
//! sequence tracking that drops duplicates, replays and old events is `track`'s.
//!
//! JSON rather than a binary encoding: events are small next to Redis's own per-message
//! cost, `redis-cli monitor` shows them readably when something goes wrong, and serde's
//! decoder already treats every byte as untrusted. What Redis hands us is checked again here
//! (lengths, nicknames, server ids): another server may run another version, or anyone
//! with access to Redis may publish on our topics.

use std::sync::Arc;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::accounts::{StoredAddrBan, StoredBan};
use proto::nick::key as nick_key;
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

/// A user as the other servers of a cluster see it (also its JSON form in Redis).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    /// The nickname as shown.
    pub nick: String,
    /// Login time, milliseconds since the Unix epoch.
    pub login_ms: u64,
    /// Channel titles, most recently joined first.
    pub channels: Vec<String>,
}

/// A public message as the servers of a cluster pass it on: published by the sender's
/// server on the channel's topic (this is its JSON form there), handed to the others'
/// handlers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicMessage {
    /// The channel's title.
    #[serde(rename = "chan")]
    pub title: String,
    /// The sender's nickname.
    pub nick: String,
    /// The text.
    pub text: String,
    /// Its id in the channel's history, given by the origin (0, or absent, from a server
    /// that gives none).
    #[serde(default)]
    pub id: u64,
    /// When it was sent, milliseconds since the Unix epoch (0 when unknown).
    #[serde(default)]
    pub ms: u64,
}

/// A private message for a user of another server, as the servers pass it on (on the
/// recipient's server's topic).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivateMessage {
    /// The recipient's nickname.
    pub to: String,
    /// The sender's nickname.
    pub from: String,
    /// The text.
    pub text: String,
}

/// What this server tells the other servers of its cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterEvent {
    /// A local user's whole record after a login, join or part.
    User(UserInfo),
    /// A local user logged off.
    UserGone {
        /// Its nickname.
        nick: String,
    },
    /// A public message of a local user.
    Public(PublicMessage),
    /// A private message for a user of another server.
    Private {
        /// That server.
        server: String,
        /// The message.
        message: PrivateMessage,
    },
    /// Channels, moderation and operators (part 5).
    Community(CommunityEvent),
}

/// What the other servers of a cluster report, fed into the handler by the cluster thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterInput {
    /// A user of `server` logged in, joined or parted (`info`), or logged off (`None`).
    User {
        /// Its server.
        server: String,
        /// Its nickname.
        nick: String,
        /// Its whole record, or `None` when it is gone.
        info: Option<UserInfo>,
    },
    /// Every user of `server` (a reload of its list; empty when it died).
    Server {
        /// The server.
        server: String,
        /// Its users.
        users: Vec<UserInfo>,
    },
    /// A public message of a remote user.
    Public(PublicMessage),
    /// A private message from a remote user to a local one.
    Private(PrivateMessage),
    /// Channels, moderation and operators (part 5), from `server`.
    Community {
        /// The server it comes from.
        server: String,
        /// What happened.
        event: CommunityEvent,
    },
}

/// What one server of a cluster tells the others about channels, moderation and
/// operators (on the presence topic, so that it stays in order with the users' joins and
/// parts). Titles and nicknames are checked again by the receiver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "snake_case")]
pub enum CommunityEvent {
    /// A channel was created (and its founder joined it).
    Created {
        /// The title.
        title: String,
        /// The description.
        description: String,
        /// Who created it.
        founder: String,
        /// Whether it is registered (stored) rather than temporary.
        registered: bool,
    },
    /// A channel's topic or modes changed: its settings now.
    Changed {
        /// The title.
        title: String,
        /// The description.
        description: String,
        /// Mode `i`.
        invite_only: bool,
        /// Mode `m`.
        moderated: bool,
        /// Mode `t`.
        topic_locked: bool,
        /// Mode `l`.
        limit: Option<u32>,
        /// The action to show members (`topic ...`, `mode +m`), with its actor.
        actor: String,
        /// The notice's action and arguments.
        notice: String,
    },
    /// A created channel was given up, or a temporary one lost its last member.
    Gone {
        /// The title.
        title: String,
    },
    /// A member's role changed (`o` or `v`), and with `account` an account's lasting
    /// operator status.
    Role {
        /// The channel.
        title: String,
        /// The member.
        nick: String,
        /// `o` or `v`.
        role: char,
        /// Given or taken.
        on: bool,
        /// The account whose lasting status changed with it, if any.
        account: Option<String>,
        /// Who did it.
        actor: String,
    },
    /// A ban was set.
    Ban {
        /// The channel.
        title: String,
        /// The ban.
        ban: StoredBan,
        /// Its length as given, in seconds (0: until lifted), for the notice.
        seconds: u64,
    },
    /// A ban was lifted.
    Unban {
        /// The channel.
        title: String,
        /// The mask.
        mask: String,
        /// Who lifted it.
        actor: String,
    },
    /// Someone was invited.
    Invite {
        /// The channel.
        title: String,
        /// Who.
        nick: String,
        /// By whom.
        by: String,
    },
    /// A member is removed from a channel (a kick, or a ban covering it): the server
    /// holding it carries it out.
    Evict {
        /// The channel.
        title: String,
        /// The member.
        nick: String,
        /// By whom.
        by: String,
        /// Why.
        reason: String,
    },
    /// A user is disconnected by an operator: the server holding it carries it out.
    Kill {
        /// The user.
        nick: String,
        /// The operator.
        by: String,
        /// Why.
        reason: String,
    },
    /// An address ban was set.
    AddrBan(StoredAddrBan),
    /// An address ban was lifted.
    AddrUnban {
        /// The network.
        net: String,
    },
    /// An operator's notice to everyone.
    Notice {
        /// The operator.
        from: String,
        /// The text.
        text: String,
    },
}

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

    /// The MAC over `label` and `parts`, each part length-prefixed so that no two lists
    /// of parts read the same.
    fn mac(&self, label: &str, parts: &[&[u8]]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(label.as_bytes());
        for p in parts {
            mac.update(&[0]);
            mac.update(&(p.len() as u64).to_be_bytes());
            mac.update(p);
        }
        mac
    }

    fn tag(&self, label: &str, parts: &[&[u8]]) -> String {
        use base64::Engine;
        let full = self.mac(label, parts).finalize().into_bytes();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&full[..TAG_LEN])
    }

    fn verify(&self, label: &str, parts: &[&[u8]], tag: &[u8]) -> bool {
        use base64::Engine;
        let Ok(tag) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(tag) else {
            return false;
        };
        tag.len() == TAG_LEN && self.mac(label, parts).verify_truncated_left(&tag).is_ok()
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

/// The hash of the users of `server`: nickname key → [`UserInfo`] as JSON.
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

/// Whether every field of `rec` is acceptable.
pub fn valid_user(rec: &UserInfo) -> bool {
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
        rec: Option<UserInfo>,
    },
    /// A public message, on the channel's topic.
    Public(PublicMessage),
    /// A private message, on the recipient's server's topic.
    Private(PrivateMessage),
    /// Channels, moderation and operators (part 5), on the presence topic.
    Community {
        /// What happened.
        ev: CommunityEvent,
    },
}

/// An event with its origin: server id, epoch (the start time of that server process, in
/// milliseconds), sequence number on its topic, and when it was sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The origin server's id.
    pub s: String,
    /// The origin's epoch.
    pub e: u64,
    /// Sequence number, per origin and topic, from 1.
    pub q: u64,
    /// When the origin sealed it, milliseconds since the Unix epoch on its clock: a
    /// receiver refuses what is too old to be news (`track`), so a captured event
    /// published again later is not taken as new, however long after. Required: an event
    /// without it (from a server of an earlier version) does not parse.
    pub t: u64,
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
                            .is_none_or(|r| valid_user(r) && nick_key(&r.nick) == nick_key(nick))
                }
                Body::Public(m) => valid_title(&m.title) && valid_nick(&m.nick),
                Body::Private(m) => valid_nick(&m.to) && valid_nick(&m.from),
                Body::Community { ev } => valid_community(ev),
            };
        if ok {
            Ok(env)
        } else {
            Err(EventError::Invalid)
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A hello from origin `s`, epoch `e`, sequence number `q`.
    pub(crate) fn env(s: &str, e: u64, q: u64) -> Envelope {
        Envelope {
            s: s.into(),
            e,
            q,
            t: 0,
            b: Body::Hello,
        }
    }

    #[test]
    fn round_trips_and_rejects_bad_input() {
        let e = Envelope {
            s: "a-1".into(),
            e: 5,
            q: 9,
            t: 6,
            b: Body::User {
                nick: "Ann".into(),
                rec: Some(UserInfo {
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
        let bad_id = br#"{"s":"a b","e":1,"q":1,"t":1,"b":{"t":"hello"}}"#;
        assert_eq!(Envelope::decode(bad_id), Err(EventError::Invalid));
        let bad_nick = br#"{"s":"a","e":1,"q":1,"t":1,"b":{"t":"user","nick":"x y","rec":null}}"#;
        assert_eq!(Envelope::decode(bad_nick), Err(EventError::Invalid));
        // Without the time it was sealed (an earlier version's event): refused.
        let untimed = br#"{"s":"a","e":1,"q":1,"b":{"t":"hello"}}"#;
        assert_eq!(Envelope::decode(untimed), Err(EventError::Parse));
        let mismatch = br#"{"s":"a","e":1,"q":1,"t":1,"b":{"t":"user","nick":"x","rec":{"nick":"y","login_ms":0,"channels":[]}}}"#;
        assert_eq!(Envelope::decode(mismatch), Err(EventError::Invalid));
    }

    #[test]
    fn messages_keep_their_json() {
        let public = Envelope {
            s: "a".into(),
            e: 1,
            q: 2,
            t: 5,
            b: Body::Public(PublicMessage {
                title: "Pets".into(),
                nick: "ann".into(),
                text: "hi".into(),
                id: 3,
                ms: 4,
            }),
        };
        let json = br#"{"s":"a","e":1,"q":2,"t":5,"b":{"t":"public","chan":"Pets","nick":"ann","text":"hi","id":3,"ms":4}}"#;
        assert_eq!(public.encode(), json);
        // From a server that gives no id and time.
        let old = br#"{"s":"a","e":1,"q":2,"t":5,"b":{"t":"public","chan":"Pets","nick":"ann","text":"hi"}}"#;
        let Body::Public(m) = Envelope::decode(old).unwrap().b else {
            panic!("not a public message");
        };
        assert_eq!((m.id, m.ms), (0, 0));
        let private = Body::Private(PrivateMessage {
            to: "bob".into(),
            from: "ann".into(),
            text: "psst".into(),
        });
        assert_eq!(
            serde_json::to_string(&private).unwrap(),
            r#"{"t":"private","to":"bob","from":"ann","text":"psst"}"#
        );
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
}
