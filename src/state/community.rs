//! What a community server keeps beside users and members: each channel's settings and
//! moderation lists ([`Meta`]: description, kind, modes, operators, bans, invites), its
//! recent messages ([`History`]), and the server-wide bans of addresses ([`AddrBans`]).
//!
//! Every list here is bounded by a setting the caller passes in, so no request can grow
//! one without limit.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use parking_lot::RwLock;

use super::nicks::nick_key;
use crate::accounts::limits::Prefix;
use crate::accounts::StoredBan;

/// Where a channel comes from, which decides how long it lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// From the operator's configuration: lives as long as it is configured.
    Configured,
    /// Created by a registered user: stored, survives restarts until dropped.
    Registered,
    /// Created by a guest (or left over from the configuration): gone when its last
    /// member leaves.
    Temporary,
}

impl Kind {
    /// The word the protocol uses for it.
    pub fn word(self) -> &'static str {
        match self {
            Kind::Configured => "configured",
            Kind::Registered => "registered",
            Kind::Temporary => "temporary",
        }
    }
}

/// Who a ban applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mask {
    /// Users whose nickname (any case) matches a pattern of `*` (any run) and `?` (any one
    /// character), or whose nickname's confusable skeleton matches the pattern's: a ban on
    /// `spammer` also covers `spаmmer` with a Cyrillic а, and `spamrner`.
    Nick {
        /// The pattern, as a nickname key (lower-cased).
        pattern: Box<str>,
        /// Its confusable skeleton, wildcards kept (`proto::nick::skeleton`).
        skeleton: Box<str>,
    },
    /// The holder of a registered account (logged in with its password), by key.
    Account(Box<str>),
}

/// The longest ban mask, in bytes.
pub(crate) const MAX_MASK_LEN: usize = 64;

/// Who a ban is checked against: a user's nickname as key and skeleton, computed once for
/// all the bans of a channel, and the account it is logged in to.
#[derive(Debug, Clone)]
pub struct Subject<'a> {
    key: String,
    skeleton: String,
    account: Option<&'a str>,
}

impl<'a> Subject<'a> {
    /// `nick`, logged in to `account` (its key) if any.
    pub fn new(nick: &str, account: Option<&'a str>) -> Self {
        let key = nick_key(nick);
        Subject {
            skeleton: literal_skeleton(&key),
            key,
            account,
        }
    }
}

impl Mask {
    /// Parses `account:NAME` or a nickname pattern; `None` if it can't be one.
    pub fn parse(text: &str) -> Option<Mask> {
        if text.is_empty()
            || text.len() > MAX_MASK_LEN
            || text.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return None;
        }
        match text.strip_prefix("account:") {
            Some("") => None,
            Some(name) => Some(Mask::Account(nick_key(name).into())),
            None => {
                let pattern = nick_key(text);
                Some(Mask::Nick {
                    skeleton: pattern_skeleton(&pattern).into(),
                    pattern: pattern.into(),
                })
            }
        }
    }

    /// Whether it applies to `nick`, logged in to `account` (its key) if any.
    pub fn matches(&self, nick: &str, account: Option<&str>) -> bool {
        self.covers(&Subject::new(nick, account))
    }

    /// Whether it applies to `who`.
    pub fn covers(&self, who: &Subject<'_>) -> bool {
        match self {
            Mask::Nick { pattern, skeleton } => {
                glob(pattern, &who.key) || glob(skeleton, &who.skeleton)
            }
            Mask::Account(key) => who.account == Some(&**key),
        }
    }

    /// The one user it names, if it names one: an account's key, or a nickname pattern
    /// without wildcards.
    pub fn named(&self) -> Option<&str> {
        match self {
            Mask::Nick { pattern, .. } if !pattern.contains(['*', '?']) => Some(pattern),
            Mask::Nick { .. } => None,
            Mask::Account(key) => Some(key),
        }
    }
}

/// The confusable skeleton of `text` (`proto::nick::skeleton`) with `*` and `?` made
/// literal: a look-alike such as `∗` (U+2217) has `*` as its skeleton, which must not turn
/// a ban on a name into a wildcard ban. The same on both sides (nickname and pattern), so
/// such characters still match themselves.
fn literal_skeleton(text: &str) -> String {
    proto::nick::skeleton(text)
        .chars()
        .map(|c| match c {
            '*' => LITERAL_STAR,
            '?' => LITERAL_QUESTION,
            c => c,
        })
        .collect()
}

/// What `*` and `?` become in a skeleton: private-use characters, which no skeleton holds.
const LITERAL_STAR: char = '\u{E000}';
/// See [`LITERAL_STAR`].
const LITERAL_QUESTION: char = '\u{E001}';

/// The confusable skeleton of a nickname pattern: of each run between wildcards, so that
/// `*` and `?` stay what they are whatever the confusables table maps them to.
fn pattern_skeleton(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    for piece in pattern.split_inclusive(['*', '?']) {
        match piece.char_indices().last() {
            Some((at, w @ ('*' | '?'))) => {
                out.push_str(&literal_skeleton(&piece[..at]));
                out.push(w);
            }
            _ => out.push_str(&literal_skeleton(piece)),
        }
    }
    out
}

impl std::fmt::Display for Mask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mask::Nick { pattern, .. } => f.write_str(pattern),
            Mask::Account(k) => write!(f, "account:{k}"),
        }
    }
}

/// Whether `text` matches `pattern` (`*` any run, `?` any one character). Linear in the
/// product of the lengths at worst, which masks and nicknames keep small.
pub(crate) fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// A ban from a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban {
    /// Who it applies to.
    pub mask: Mask,
    /// When it ends, in milliseconds since the Unix epoch; 0 for never.
    pub until_ms: u64,
    /// Who set it.
    pub by: Box<str>,
    /// Why.
    pub reason: Box<str>,
}

impl Ban {
    /// Whether it is in force at `now_ms`.
    pub fn active(&self, now_ms: u64) -> bool {
        self.until_ms == 0 || now_ms < self.until_ms
    }

    /// The ban as stored and sent between servers.
    pub fn to_stored(&self) -> StoredBan {
        StoredBan {
            mask: self.mask.to_string(),
            until_ms: self.until_ms,
            by: self.by.to_string(),
            reason: self.reason.to_string(),
        }
    }

    /// A ban read back from the store or another server; `None` if its mask does not
    /// parse.
    pub fn from_stored(s: &StoredBan) -> Option<Ban> {
        Some(Ban {
            mask: Mask::parse(&s.mask)?,
            until_ms: s.until_ms,
            by: s.by.as_str().into(),
            reason: s.reason.as_str().into(),
        })
    }
}

/// A channel's settings and moderation lists.
#[derive(Debug, Clone)]
pub struct Meta {
    /// The description (the topic), shown in JOIN_ACK and CHANNEL_ITEM.
    pub description: Arc<str>,
    /// Where the channel comes from.
    pub kind: Kind,
    /// Who created it, as shown (`None` for configured channels); for a registered
    /// channel, its founding account (compared as a key).
    pub founder: Option<Box<str>>,
    /// Where the founder of a temporary channel created it from: a guest is its address,
    /// so the founder's rank holds for the founder's nickname at that address, once proved
    /// ([`Meta::is_founder`]). `None` for other channels, and for those of other servers.
    pub founder_addr: Option<SocketAddr>,
    /// The network (IPv4 /24, IPv6 /64) the channel was created from on this server, counted
    /// against `max-channels-per-prefix` while it exists; `None` for configured channels,
    /// channels of other servers and channels read back from the store.
    pub origin: Option<Prefix>,
    /// `i`: only the invited (and operators) may join.
    pub invite_only: bool,
    /// `m`: only voiced members and operators may speak.
    pub moderated: bool,
    /// `t`: only operators may change the topic.
    pub topic_locked: bool,
    /// `l`: the most members it takes.
    pub limit: Option<u32>,
    /// Registered accounts (keys) that are operators whenever they are members.
    pub ops: Vec<Box<str>>,
    /// Bans in force (expired ones are dropped as they are met).
    pub bans: Vec<Ban>,
    /// Nickname keys invited in; an invitation is used up by the join it allows.
    pub invites: Vec<Box<str>>,
}

impl Meta {
    /// A channel of the operator's configuration.
    pub fn configured(description: &str) -> Meta {
        Meta {
            description: description.into(),
            kind: Kind::Configured,
            founder: None,
            founder_addr: None,
            origin: None,
            invite_only: false,
            moderated: false,
            topic_locked: true,
            limit: None,
            ops: Vec::new(),
            bans: Vec::new(),
            invites: Vec::new(),
        }
    }

    /// A channel created by `founder`: registered (`account` is its key) or temporary.
    pub fn created(description: &str, founder: &str, account: Option<&str>) -> Meta {
        Meta {
            kind: if account.is_some() {
                Kind::Registered
            } else {
                Kind::Temporary
            },
            founder: Some(founder.into()),
            ops: account.map(|a| vec![a.into()]).unwrap_or_default(),
            ..Meta::configured(description)
        }
    }

    /// The modes as `+` and letters (`r` registered, `i`, `m`, `t`, `l`), e.g. `+imt`.
    pub fn mode_string(&self) -> String {
        let mut s = String::from("+");
        for (on, c) in [
            (self.kind == Kind::Registered, 'r'),
            (self.invite_only, 'i'),
            (self.moderated, 'm'),
            (self.topic_locked, 't'),
            (self.limit.is_some(), 'l'),
        ] {
            if on {
                s.push(c);
            }
        }
        s
    }

    /// Whether the account `key` is one of the lasting operators.
    pub fn is_op_account(&self, key: &str) -> bool {
        self.ops.iter().any(|o| **o == *key)
    }

    /// The founding account (a key) of a registered channel; `None` for the others (a
    /// configured channel belongs to the server's operators, a temporary one's founder is
    /// a guest, known by its address).
    pub fn founder_account(&self) -> Option<String> {
        match self.kind {
            Kind::Registered => self.founder.as_deref().map(nick_key),
            Kind::Configured | Kind::Temporary => None,
        }
    }

    /// Whether `nick` at `addr`, logged in to `account` (its key) if any, with its address
    /// `proved` or not, is the channel's founder: the founding account of a registered
    /// channel (a password session), or the creator of a temporary one, back under its
    /// nickname at the address it created the channel from and proved there (so a forged
    /// guest login from that address is not the founder).
    pub fn is_founder(
        &self,
        nick: &str,
        addr: SocketAddr,
        account: Option<&str>,
        proved: bool,
    ) -> bool {
        match self.kind {
            Kind::Registered => account.is_some() && self.founder_account().as_deref() == account,
            Kind::Temporary => {
                proved
                    && self.founder_addr == Some(addr)
                    && self.founder.as_deref().map(nick_key) == Some(nick_key(nick))
            }
            Kind::Configured => false,
        }
    }

    /// The ban in force at `now_ms` on `nick` (logged in to `account`), if any; drops
    /// expired bans on the way.
    pub fn ban_on(&mut self, nick: &str, account: Option<&str>, now_ms: u64) -> Option<Ban> {
        self.bans.retain(|b| b.active(now_ms));
        if self.bans.is_empty() {
            return None;
        }
        let who = Subject::new(nick, account);
        self.bans.iter().find(|b| b.mask.covers(&who)).cloned()
    }

    /// Takes the invitation of `nick`, if it has one.
    pub fn take_invite(&mut self, nick: &str) -> bool {
        let key = nick_key(nick);
        let before = self.invites.len();
        self.invites.retain(|k| **k != *key);
        self.invites.len() != before
    }
}

/// One remembered public message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its id: unique in the cluster, growing with time (see `State::next_message_id`).
    pub id: u64,
    /// When it was sent, in milliseconds since the Unix epoch.
    pub ms: u64,
    /// The sender.
    pub nick: Box<str>,
    /// The text.
    pub text: Box<str>,
}

/// A channel's recent messages, oldest first, at most the length the caller passes in.
#[derive(Debug, Default)]
pub struct History {
    entries: VecDeque<Entry>,
}

impl History {
    /// Appends `entry`, dropping the oldest beyond `cap` (0 keeps nothing).
    pub fn push(&mut self, entry: Entry, cap: usize) {
        self.entries.push_back(entry);
        while self.entries.len() > cap {
            self.entries.pop_front();
        }
    }

    /// Messages kept.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether none are kept.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The last `k` messages, oldest first: at most `batch` of them, and how many of the
    /// `k` come after those.
    pub fn last(&self, k: usize, batch: usize) -> (Vec<Entry>, usize) {
        let k = k.min(self.entries.len());
        let start = self.entries.len() - k;
        self.take(start, batch)
    }

    /// The messages after the one with id `id` (or, if it is no longer kept, those with a
    /// larger id), oldest first: at most `batch`, and how many more there are.
    pub fn since(&self, id: u64, batch: usize) -> (Vec<Entry>, usize) {
        let start = match self.entries.iter().rposition(|e| e.id == id) {
            Some(at) => at + 1,
            None => self
                .entries
                .iter()
                .position(|e| e.id > id)
                .unwrap_or(self.entries.len()),
        };
        self.take(start, batch)
    }

    fn take(&self, start: usize, batch: usize) -> (Vec<Entry>, usize) {
        let got: Vec<Entry> = self
            .entries
            .iter()
            .skip(start)
            .take(batch)
            .cloned()
            .collect();
        let more = self.entries.len() - start - got.len();
        (got, more)
    }

    /// Replaces the messages with `entries` (at start-up, from the store), oldest first.
    pub fn load(&mut self, entries: Vec<Entry>, cap: usize) {
        self.entries = entries.into();
        while self.entries.len() > cap {
            self.entries.pop_front();
        }
    }
}

/// An address or network prefix, as bans name them (`192.0.2.7`, `198.51.100.0/24`,
/// `2001:db8::/32`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Net {
    addr: IpAddr,
    bits: u8,
}

impl Net {
    /// Parses an address with an optional `/bits`; the address is cut to the prefix.
    pub fn parse(text: &str) -> Option<Net> {
        let (a, bits) = match text.split_once('/') {
            Some((a, b)) => (a, Some(b.parse::<u8>().ok()?)),
            None => (text, None),
        };
        let addr: IpAddr = a.parse().ok()?;
        let addr = canonical(addr);
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let bits = bits.unwrap_or(max);
        if bits > max {
            return None;
        }
        Some(Net {
            addr: mask(addr, bits),
            bits,
        })
    }

    /// Whether `ip` lies in it.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        ip.is_ipv4() == self.addr.is_ipv4() && mask(ip, self.bits) == self.addr
    }
}

impl std::fmt::Display for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.bits)
    }
}

/// IPv4-mapped IPv6 addresses (a dual-stack socket's view of IPv4 clients) as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

fn mask(ip: IpAddr, bits: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let m = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            IpAddr::V4((u32::from(v4) & m).into())
        }
        IpAddr::V6(v6) => {
            let m = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            IpAddr::V6((u128::from(v6) & m).into())
        }
    }
}

/// A ban of an address or network from the whole server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrBan {
    /// The network.
    pub net: Net,
    /// When it ends, in milliseconds since the Unix epoch; 0 for never.
    pub until_ms: u64,
    /// Which operator set it.
    pub by: Box<str>,
    /// Why.
    pub reason: Box<str>,
}

/// The server's bans of addresses: read at every login, written by operators (rarely), so
/// a read-write lock over a short list.
#[derive(Debug, Default)]
pub struct AddrBans {
    list: RwLock<Vec<AddrBan>>,
}

impl AddrBans {
    /// The ban in force on `addr` at `now_ms`, if any.
    pub fn on(&self, addr: SocketAddr, now_ms: u64) -> Option<AddrBan> {
        let list = self.list.read();
        if list.is_empty() {
            return None;
        }
        list.iter()
            .find(|b| (b.until_ms == 0 || now_ms < b.until_ms) && b.net.contains(addr.ip()))
            .cloned()
    }

    /// Adds (or replaces) the ban of `ban.net`; refuses a new one past `max` bans.
    pub fn set(&self, ban: AddrBan, max: usize, now_ms: u64) -> bool {
        let mut list = self.list.write();
        list.retain(|b| b.until_ms == 0 || now_ms < b.until_ms);
        if let Some(old) = list.iter_mut().find(|b| b.net == ban.net) {
            *old = ban;
            return true;
        }
        if list.len() >= max {
            return false;
        }
        list.push(ban);
        true
    }

    /// Removes the ban of `net`; returns whether there was one.
    pub fn remove(&self, net: Net) -> bool {
        let mut list = self.list.write();
        let before = list.len();
        list.retain(|b| b.net != net);
        list.len() != before
    }

    /// The bans, for status and tests.
    pub fn list(&self) -> Vec<AddrBan> {
        self.list.read().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_runs_and_single_characters() {
        assert!(glob("spam*", "spammer"));
        assert!(glob("*bot", "chatbot"));
        assert!(glob("a?c", "abc"));
        assert!(glob("*", ""));
        assert!(glob("a*b*c", "axxbyyc"));
        assert!(!glob("a*b*c", "axxbyy"));
        assert!(!glob("abc", "abcd"));
        assert!(!glob("?", ""));
    }

    #[test]
    fn masks_match_nicknames_ignoring_case_or_accounts() {
        let m = Mask::parse("Spam*").unwrap();
        assert!(m.matches("SPAMMER", None));
        assert!(!m.matches("ann", None));
        let a = Mask::parse("account:Ann").unwrap();
        assert_eq!(a.to_string(), "account:ann");
        assert!(a.matches("whoever", Some("ann")));
        assert!(
            !a.matches("ann", None),
            "a guest called ann is not the account"
        );
        assert!(Mask::parse("a b").is_none() && Mask::parse("account:").is_none());
    }

    #[test]
    fn nickname_bans_cover_look_alikes_wildcards_kept() {
        let m = Mask::parse("spammer").unwrap();
        assert_eq!(m.to_string(), "spammer");
        assert!(m.matches("sp\u{430}mmer", None), "a Cyrillic a");
        assert!(m.matches("SPAMRNER", None), "rn for m");
        assert!(!m.matches("spanner", None));
        let w = Mask::parse("spa?b*").unwrap();
        assert!(w.matches("sp\u{430}xbot", None));
        assert!(!w.matches("spxbot", None));
        // A look-alike of a wildcard is no wildcard: `ann∗` names a nickname, not a run.
        let star = Mask::parse("ann\u{2217}").unwrap();
        assert!(!star.matches("ann", None) && !star.matches("annie", None));
        assert!(star.matches("ann\u{2217}", None) && star.matches("ann*", None));
        assert_eq!(Mask::parse("Ann").unwrap().named(), Some("ann"));
        assert_eq!(Mask::parse("account:Ann").unwrap().named(), Some("ann"));
        assert_eq!(Mask::parse("an*").unwrap().named(), None);
    }

    #[test]
    fn the_founder_is_the_founding_account_or_the_proved_creator_at_its_address() {
        let (here, there): (SocketAddr, SocketAddr) = (
            "192.0.2.1:5".parse().unwrap(),
            "192.0.2.1:6".parse().unwrap(),
        );
        let registered = Meta::created("", "Ann", Some("ann"));
        assert!(registered.is_founder("ann", there, Some("ann"), true));
        assert!(
            !registered.is_founder("ann", here, None, true),
            "a guest is no account"
        );
        assert!(!registered.is_founder("bob", here, Some("bob"), true));
        let mut temporary = Meta::created("", "bob", None);
        temporary.founder_addr = Some(here);
        assert!(temporary.is_founder("BOB", here, None, true));
        assert!(
            !temporary.is_founder("bob", here, None, false),
            "a forged login from bob's address"
        );
        assert!(!temporary.is_founder("bob", there, None, true));
        assert!(!temporary.is_founder("eve", here, None, true));
        assert!(!Meta::configured("").is_founder("bob", here, Some("bob"), true));
    }

    #[test]
    fn history_answers_last_and_since_in_batches() {
        let mut h = History::default();
        for id in 1..=10 {
            let e = Entry {
                id: id * 10,
                ms: id,
                nick: "ann".into(),
                text: format!("m{id}").into(),
            };
            h.push(e, 8);
        }
        assert_eq!(h.len(), 8);
        let (got, more) = h.last(5, 3);
        assert_eq!((got[0].id, got.len(), more), (60, 3, 2));
        let (got, more) = h.since(80, 10);
        assert_eq!((got.len(), got[0].id, more), (2, 90, 0));
        // An id no longer kept: everything newer.
        let (got, more) = h.since(15, 4);
        assert_eq!((got[0].id, more), (30, 4));
        assert_eq!(h.since(100, 4).0.len(), 0);
    }

    #[test]
    fn nets_contain_their_addresses_v4_mapped_included() {
        let n = Net::parse("192.0.2.0/24").unwrap();
        assert_eq!(n.to_string(), "192.0.2.0/24");
        assert!(n.contains("192.0.2.77".parse().unwrap()));
        assert!(n.contains("::ffff:192.0.2.1".parse().unwrap()));
        assert!(!n.contains("192.0.3.1".parse().unwrap()));
        let one = Net::parse("2001:db8::1").unwrap();
        assert!(one.contains("2001:db8::1".parse().unwrap()));
        assert!(!one.contains("2001:db8::2".parse().unwrap()));
        assert!(Net::parse("10.0.0.0/33").is_none() && Net::parse("x").is_none());
        assert!(Net::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
    }

    #[test]
    fn address_bans_expire_and_are_bounded() {
        let bans = AddrBans::default();
        let ban = |net: &str, until_ms| AddrBan {
            net: Net::parse(net).unwrap(),
            until_ms,
            by: "op".into(),
            reason: "spam".into(),
        };
        assert!(bans.set(ban("10.0.0.0/8", 0), 2, 0));
        assert!(bans.set(ban("192.0.2.1", 1000), 2, 0));
        assert!(!bans.set(ban("198.51.100.1", 0), 2, 0), "full");
        let a: SocketAddr = "192.0.2.1:5".parse().unwrap();
        assert!(bans.on(a, 999).is_some());
        assert!(bans.on(a, 1000).is_none());
        assert!(bans.remove(Net::parse("10.0.0.0/8").unwrap()));
        assert!(bans.on("10.1.1.1:1".parse().unwrap(), 0).is_none());
    }
}
