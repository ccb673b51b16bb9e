//! The state machine: a datagram from an address, the shared [`State`] and the time go in;
//! the datagrams to send come out in an [`Outbox`]. No I/O happens here, so every rule of
//! the protocol is unit-tested without sockets, with the clock passed in.

use std::net::SocketAddr;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::protocol::{code, errors, ChannelInfo, DecodeError, Event, Request, MAX_NICK_LEN};
use crate::state::{ChannelId, ClaimError, Presence, State, User};

mod auth;

pub use auth::Accounts;

/// The most nicknames one user's hot list holds.
pub const MAX_WATCH: usize = 100;
/// The most USER_ITEMs one WHO_REQ answers with.
pub const MAX_WHO: usize = 100;

/// One encoded datagram for many addresses: a public message or a channel notice.
#[derive(Debug, Clone)]
pub struct Fanout {
    /// The datagram, encoded once.
    pub payload: Arc<[u8]>,
    /// Who gets it.
    pub dests: Arc<[SocketAddr]>,
    /// Routing key (the channel): fan-outs with one key go through one sender in order.
    pub key: u64,
}

/// What a request makes the server send.
///
/// Single-address replies are packed into one reusable buffer (no allocation per reply
/// once warm); fan-outs share their payload and member snapshot.
#[derive(Debug, Default)]
pub struct Outbox {
    bytes: Vec<u8>,
    /// Replies to one address each: destination and the range of `bytes` it gets.
    unicast: Vec<(SocketAddr, Range<usize>)>,
    /// Datagrams for many addresses.
    pub fanouts: Vec<Fanout>,
}

impl Outbox {
    /// An empty outbox.
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues `event` for `to`.
    pub fn send(&mut self, to: SocketAddr, event: &Event<'_>) {
        let start = self.bytes.len();
        event.encode(&mut self.bytes);
        self.unicast.push((to, start..self.bytes.len()));
    }

    /// Queues `ERROR message` for `to`.
    pub fn error(&mut self, to: SocketAddr, message: &str) {
        self.send(to, &Event::Error { message });
    }

    /// Queues `event` for every address in `dests` (nothing if there are none).
    pub fn fanout(&mut self, dests: Arc<[SocketAddr]>, event: &Event<'_>, key: u64) {
        if dests.is_empty() {
            return;
        }
        self.fanouts.push(Fanout {
            payload: event.to_bytes().into(),
            dests,
            key,
        });
    }

    /// The single-address replies, in order.
    pub fn unicast(&self) -> impl ExactSizeIterator<Item = (SocketAddr, &[u8])> + '_ {
        self.unicast
            .iter()
            .map(|(to, r)| (*to, &self.bytes[r.clone()]))
    }

    /// Number of single-address replies.
    pub fn unicast_len(&self) -> usize {
        self.unicast.len()
    }

    /// Bytes and ERROR datagrams among the single-address replies to `to` queued since
    /// reply number `mark` (a value of [`unicast_len`](Self::unicast_len) taken earlier).
    pub fn replies_to_since(&self, to: SocketAddr, mark: usize) -> (usize, usize) {
        let error = crate::protocol::code::ERROR.to_be_bytes();
        self.unicast[mark.min(self.unicast.len())..]
            .iter()
            .filter(|(a, _)| *a == to)
            .fold((0, 0), |(bytes, errors), (_, r)| {
                let is_error = self.bytes[r.clone()].starts_with(&error);
                (bytes + r.len(), errors + usize::from(is_error))
            })
    }

    /// Withdraws the single-address replies to `to` queued since reply number `mark`;
    /// returns how many were withdrawn.
    pub fn withdraw_to_since(&mut self, to: SocketAddr, mark: usize) -> usize {
        let before = self.unicast.len();
        let mut i = mark.min(before);
        while i < self.unicast.len() {
            if self.unicast[i].0 == to {
                self.unicast.remove(i);
            } else {
                i += 1;
            }
        }
        before - self.unicast.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.unicast.is_empty() && self.fanouts.is_empty()
    }

    /// Empties the outbox, keeping its buffers for reuse.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.unicast.clear();
        self.fanouts.clear();
    }

    /// Every datagram as (destination, bytes), fan-outs expanded: for tests.
    pub fn datagrams(&self) -> Vec<(SocketAddr, Vec<u8>)> {
        let mut out: Vec<_> = self.unicast().map(|(a, b)| (a, b.to_vec())).collect();
        for f in &self.fanouts {
            out.extend(f.dests.iter().map(|a| (*a, f.payload.to_vec())));
        }
        out
    }
}

/// Applies requests to the shared state.
#[derive(Debug, Clone)]
pub struct Handler {
    state: Arc<State>,
    accounts: Arc<Accounts>,
    max_datagram: usize,
    idle_timeout: Duration,
    max_channels_per_user: usize,
}

/// Channels one user may be in at once, unless set otherwise.
pub const DEFAULT_MAX_CHANNELS_PER_USER: usize = 64;

fn valid_nick(nick: &str) -> bool {
    !nick.is_empty()
        && nick.len() <= MAX_NICK_LEN
        && !nick.chars().any(|c| c.is_whitespace() || c.is_control())
}

impl Handler {
    /// A handler over `state` that accepts datagrams of up to `max_datagram` bytes and logs
    /// off users silent for longer than `idle_timeout`.
    /// Accounts live in memory until [`with_accounts`](Self::with_accounts) gives a store.
    pub fn new(state: Arc<State>, max_datagram: usize, idle_timeout: Duration) -> Self {
        Handler {
            state,
            accounts: Arc::new(Accounts::in_memory()),
            max_datagram,
            idle_timeout,
            max_channels_per_user: DEFAULT_MAX_CHANNELS_PER_USER,
        }
    }

    /// The same handler with another cap on the channels one user may be in at once.
    pub fn with_max_channels_per_user(mut self, cap: usize) -> Self {
        self.max_channels_per_user = cap.max(1);
        self
    }

    /// The same handler with accounts from `accounts`.
    pub fn with_accounts(mut self, accounts: Arc<Accounts>) -> Self {
        self.accounts = accounts;
        self
    }

    /// The shared state.
    pub fn state(&self) -> &Arc<State> {
        &self.state
    }

    /// Handles one datagram from `from` received at `now`. Returns whether `from` was
    /// logged in when the datagram arrived (replies to strangers are limited by the caller);
    /// a sealed datagram counts as logged in whether it verified or not, since it gets no
    /// answer either way unless it did.
    pub fn handle(
        &self,
        from: SocketAddr,
        datagram: &[u8],
        now: Instant,
        out: &mut Outbox,
    ) -> bool {
        if datagram.starts_with(&code::SEALED.to_be_bytes()) {
            if let Some((addr, inner, session)) = self.open_sealed(from, datagram, out) {
                self.handle_plain(addr, inner, now, out, Some(session));
            }
            return true;
        }
        self.handle_plain(from, datagram, now, out, None)
    }

    /// Handles a classic datagram; `session` is the protected session it arrived in.
    fn handle_plain(
        &self,
        from: SocketAddr,
        datagram: &[u8],
        now: Instant,
        out: &mut Outbox,
        session: Option<u64>,
    ) -> bool {
        let presence = self.state.touch(from, now);
        if let Presence::Protected(id) = presence {
            if session != Some(id) {
                // Only the session's sealed datagrams speak for a protected user: this one
                // is forged or stale. No answer, so a forger learns nothing.
                self.state
                    .auth_rejected
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return true;
            }
        }
        let logged_in = presence != Presence::Stranger;
        match Request::decode(datagram, self.max_datagram) {
            Err(DecodeError::TooShort) => {}
            Err(DecodeError::TooLong { .. }) => out.error(from, errors::DATAGRAM_TOO_LONG),
            Err(DecodeError::InvalidText(_)) => {
                if logged_in {
                    out.error(from, errors::INVALID_TEXT);
                }
            }
            Err(DecodeError::UnknownCode(_) | DecodeError::Malformed(_)) => out.error(
                from,
                if logged_in {
                    errors::UNIMPLEMENTED
                } else {
                    errors::PLEASE_LOG_IN
                },
            ),
            Ok(Request::Login { nick }) => self.login(from, nick, now, out),
            Ok(Request::Auth { nick, message }) => self.auth_start(from, nick, message, now, out),
            Ok(Request::AuthFinish { message }) => self.auth_finish(from, message, now, out),
            Ok(_) if !logged_in => out.error(from, errors::PLEASE_LOG_IN),
            Ok(Request::Logoff) => self.logoff(from, out),
            Ok(Request::Join { title }) => self.join(from, title, out),
            Ok(Request::Part { title }) => self.part(from, title, out),
            Ok(Request::SendPublic { text }) => self.public(from, text, out),
            Ok(Request::SendPrivate { recipient, text }) => {
                self.private(from, recipient, text, out)
            }
            Ok(Request::ListChannels) => self.list_channels(from, out),
            Ok(Request::ListUsers) => self.list_users(from, now, out),
            Ok(Request::StillHere) => {}
            Ok(Request::Who { prefix }) => self.who(from, prefix, now, out),
            Ok(Request::Whois { nick }) => self.whois(from, nick, now, out),
            Ok(Request::Watch { nicks }) => self.watch(from, nicks, out),
            Ok(Request::Unwatch { nicks }) => self.unwatch(from, nicks),
            Ok(Request::Register { message }) => self.register_start(from, message, session, out),
            Ok(Request::RegisterUpload { message }) => {
                self.register_finish(from, message, session, now, out)
            }
            Ok(Request::Unregister) => self.unregister(from, session, out),
        }
        logged_in
    }

    /// Periodic clean-up of state that expires on its own (password logins left half-way).
    pub fn housekeeping(&self, now: Instant) {
        self.accounts.housekeeping(now);
    }

    /// Addresses of users silent for longer than the idle timeout at `now`.
    pub fn idle_users(&self, now: Instant) -> Vec<SocketAddr> {
        match now.checked_sub(self.idle_timeout) {
            Some(deadline) => self.state.silent_since(deadline),
            None => Vec::new(),
        }
    }

    /// Logs off the user at `addr` if it is still silent past the idle timeout at `now`
    /// (it may have spoken since the sweep listed it). Returns whether it was logged off.
    pub fn expire(&self, addr: SocketAddr, now: Instant, out: &mut Outbox) -> bool {
        let still_idle = self
            .state
            .users
            .get(&addr)
            .is_some_and(|u| now.saturating_duration_since(u.last_heard) > self.idle_timeout);
        if still_idle {
            self.logoff(addr, out);
        }
        still_idle
    }

    fn login(&self, from: SocketAddr, nick: &str, now: Instant, out: &mut Outbox) {
        let held = self.state.users.get(&from).map(|u| u.nick.clone());
        if let Some(held) = held {
            if *held == *nick {
                // The first LOGIN_ACK may have been lost: answer again.
                out.send(from, &Event::LoginAck { nick });
                return;
            }
            self.logoff(from, out);
        }
        if !valid_nick(nick) {
            return out.error(from, errors::INVALID_NICK);
        }
        if self.accounts.is_registered(nick) {
            return out.error(from, errors::NICK_REGISTERED);
        }
        match self.state.claim(from, nick, now) {
            Ok(()) => {
                out.send(from, &Event::LoginAck { nick });
                for watcher in self.state.watchers_of(nick) {
                    out.send(watcher, &Event::UserOnline { nick });
                }
            }
            Err(ClaimError::InUse) => out.error(from, errors::NICK_IN_USE),
            Err(ClaimError::Full) => out.error(from, errors::SERVER_FULL),
        }
    }

    fn logoff(&self, from: SocketAddr, out: &mut Outbox) {
        let Some(user) = self.state.release(from) else {
            return;
        };
        if let Some(id) = user.session {
            self.state.sessions.remove(&id);
        }
        for &id in &user.channels {
            let ch = self.state.channel(id);
            if let Some(rest) = ch.remove(from) {
                let event = Event::UserParts {
                    title: &ch.title,
                    nick: &user.nick,
                };
                out.fanout(rest, &event, u64::from(id));
            }
        }
        for key in &user.watching {
            self.state.remove_watcher(key, from);
        }
        for watcher in self.state.watchers_of(&user.nick) {
            out.send(watcher, &Event::UserOffline { nick: &user.nick });
        }
    }

    /// The user's nickname and channels, copied out so that no map guard is held after.
    fn user(&self, addr: SocketAddr) -> Option<(Box<str>, Vec<ChannelId>)> {
        self.state
            .users
            .get(&addr)
            .map(|u| (u.nick.clone(), u.channels.clone()))
    }

    fn current_channel(&self, addr: SocketAddr) -> Option<ChannelId> {
        self.state
            .users
            .get(&addr)
            .and_then(|u| u.channels.first().copied())
    }

    fn channel_info(&self, id: ChannelId) -> (ChannelInfo<'_>, usize) {
        let ch = self.state.channel(id);
        let count = ch.len();
        (
            ChannelInfo {
                title: &ch.title,
                count: count as u32,
                description: &ch.description,
            },
            count,
        )
    }

    fn join(&self, from: SocketAddr, title: &str, out: &mut Outbox) {
        let Some(id) = self.state.channel_id(title) else {
            return out.error(from, &format!("no channel named {title}"));
        };
        let Some((nick, channels)) = self.user(from) else {
            return;
        };
        if !channels.contains(&id) && channels.len() >= self.max_channels_per_user {
            return out.error(from, errors::TOO_MANY_CHANNELS);
        }
        let ch = self.state.channel(id);
        if let Some((before, _)) = ch.add(from) {
            let event = Event::UserJoins {
                title: &ch.title,
                nick: &nick,
            };
            out.fanout(before, &event, u64::from(id));
        }
        if let Some(mut u) = self.state.users.get_mut(&from) {
            u.channels.retain(|&c| c != id);
            u.channels.insert(0, id);
        }
        out.send(from, &Event::JoinAck(self.channel_info(id).0));
    }

    fn part(&self, from: SocketAddr, title: &str, out: &mut Outbox) {
        let Some((nick, channels)) = self.user(from) else {
            return;
        };
        let id = if title.is_empty() {
            match channels.first() {
                Some(&id) => id,
                None => return out.error(from, errors::NO_CURRENT_CHANNEL),
            }
        } else {
            match self.state.channel_id(title) {
                Some(id) => id,
                None => return out.error(from, &format!("no channel named {title}")),
            }
        };
        let ch = self.state.channel(id);
        let Some(rest) = ch.remove(from) else {
            return; // not a member: no answer
        };
        let was_current = channels.first() == Some(&id);
        let new_current = {
            let mut u = match self.state.users.get_mut(&from) {
                Some(u) => u,
                None => return,
            };
            u.channels.retain(|&c| c != id);
            u.channels.first().copied()
        };
        let event = Event::UserParts {
            title: &ch.title,
            nick: &nick,
        };
        out.fanout(rest, &event, u64::from(id));
        out.send(from, &Event::PartAck(self.channel_info(id).0));
        if let (true, Some(current)) = (was_current, new_current) {
            out.send(from, &Event::JoinAck(self.channel_info(current).0));
        }
    }

    fn public(&self, from: SocketAddr, text: &str, out: &mut Outbox) {
        let Some((nick, channels)) = self
            .state
            .users
            .get(&from)
            .map(|u| (u.nick.clone(), u.channels.first().copied()))
        else {
            return;
        };
        let Some(id) = channels else {
            return out.error(from, errors::NO_CURRENT_CHANNEL);
        };
        let ch = self.state.channel(id);
        let event = Event::PublicMsg {
            title: &ch.title,
            sender: &nick,
            text,
        };
        out.fanout(ch.snapshot(), &event, u64::from(id));
    }

    fn private(&self, from: SocketAddr, recipient: &str, text: &str, out: &mut Outbox) {
        if recipient.is_empty() {
            return out.error(from, errors::NO_RECIPIENT);
        }
        let Some((sender, _)) = self.user(from) else {
            return;
        };
        match self.state.address_of(recipient) {
            Some(to) if self.state.users.contains_key(&to) => out.send(
                to,
                &Event::PrivateMsg {
                    sender: &sender,
                    text,
                },
            ),
            _ => out.error(from, &format!("{recipient}: not logged in")),
        }
    }

    fn list_channels(&self, from: SocketAddr, out: &mut Outbox) {
        for id in 0..self.state.channels.len() {
            out.send(
                from,
                &Event::ChannelItem(self.channel_info(id as ChannelId).0),
            );
        }
    }

    /// Appends USER_ITEM for `user` to `out`.
    fn user_item(&self, to: SocketAddr, user: &User, now: Instant, out: &mut Outbox) {
        let mut titles = String::new();
        for &id in &user.channels {
            if !titles.is_empty() {
                titles.push(' ');
            }
            titles.push_str(&self.state.channel(id).title);
        }
        out.send(
            to,
            &Event::UserItem {
                nick: &user.nick,
                seconds: now.saturating_duration_since(user.login).as_secs(),
                channels: &titles,
            },
        );
    }

    fn list_users(&self, from: SocketAddr, now: Instant, out: &mut Outbox) {
        let Some(id) = self.current_channel(from) else {
            return out.error(from, errors::NO_CURRENT_CHANNEL);
        };
        for member in self.state.channel(id).snapshot().iter() {
            let user = self.state.users.get(member).map(|u| u.clone());
            if let Some(user) = user {
                self.user_item(from, &user, now, out);
            }
        }
    }

    fn who(&self, from: SocketAddr, prefix: &str, now: Instant, out: &mut Outbox) {
        let prefix = prefix.to_lowercase();
        let mut found: Vec<User> = Vec::new();
        for u in self.state.users.iter() {
            if u.nick.to_lowercase().starts_with(&prefix) {
                found.push(u.clone());
                if found.len() > MAX_WHO {
                    break;
                }
            }
        }
        let too_many = found.len() > MAX_WHO;
        found.truncate(MAX_WHO);
        found.sort_by_key(|u| u.nick.to_lowercase());
        for user in &found {
            self.user_item(from, user, now, out);
        }
        if too_many {
            out.error(from, errors::WHO_TOO_MANY);
        }
    }

    fn whois(&self, from: SocketAddr, nick: &str, now: Instant, out: &mut Outbox) {
        let user = self
            .state
            .address_of(nick)
            .and_then(|a| self.state.users.get(&a).map(|u| u.clone()));
        match user {
            Some(user) => self.user_item(from, &user, now, out),
            None => out.error(from, &format!("{nick}: not logged in")),
        }
    }

    fn watch(&self, from: SocketAddr, nicks: &str, out: &mut Outbox) {
        let mut full = false;
        let mut online = Vec::new();
        {
            let Some(mut user) = self.state.users.get_mut(&from) else {
                return;
            };
            for nick in crate::protocol::words(nicks).filter(|n| valid_nick(n)) {
                let key: Box<str> = nick.to_lowercase().into();
                if user.watching.contains(&key) {
                    online.push(key);
                    continue;
                }
                if user.watching.len() >= MAX_WATCH {
                    full = true;
                    break;
                }
                user.watching.push(key.clone());
                online.push(key);
            }
        }
        self.save_hot_list(from);
        for key in online {
            self.state.add_watcher(&key, from);
            let held = self
                .state
                .address_of(&key)
                .and_then(|a| self.state.users.get(&a).map(|u| u.nick.clone()));
            if let Some(nick) = held {
                out.send(from, &Event::UserOnline { nick: &nick });
            }
        }
        if full {
            out.error(from, errors::HOT_LIST_FULL);
        }
    }

    fn unwatch(&self, from: SocketAddr, nicks: &str) {
        let mut removed = Vec::new();
        if let Some(mut user) = self.state.users.get_mut(&from) {
            for nick in crate::protocol::words(nicks) {
                let key = nick.to_lowercase();
                let before = user.watching.len();
                user.watching.retain(|w| **w != *key);
                if user.watching.len() != before {
                    removed.push(key);
                }
            }
        }
        for key in removed {
            self.state.remove_watcher(&key, from);
        }
        self.save_hot_list(from);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::classic_channels;
    use crate::protocol::code;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    struct Rig {
        h: Handler,
        t0: Instant,
    }

    impl Rig {
        fn new() -> Rig {
            let state = Arc::new(State::new(&classic_channels(), 1000));
            Rig {
                h: Handler::new(state, 1024, Duration::from_secs(120)),
                t0: Instant::now(),
            }
        }

        /// Handles `req` from port `from` at `secs` after the start; returns what went out
        /// as (destination port, code, payload).
        fn at(&self, secs: u64, from: u16, req: Request<'_>) -> Vec<(u16, u16, String)> {
            let mut out = Outbox::new();
            let now = self.t0 + Duration::from_secs(secs);
            self.h.handle(addr(from), &req.to_bytes(), now, &mut out);
            decode_all(&out)
        }
    }

    fn decode_all(out: &Outbox) -> Vec<(u16, u16, String)> {
        out.datagrams()
            .into_iter()
            .map(|(to, d)| {
                Event::decode(&d).expect("handler output decodes");
                let code = u16::from_be_bytes([d[0], d[1]]);
                (to.port(), code, String::from_utf8(d[2..].to_vec()).unwrap())
            })
            .collect()
    }

    #[test]
    fn public_message_is_one_fanout_sharing_the_member_snapshot() {
        let r = Rig::new();
        for p in 1..=3 {
            r.at(
                0,
                p,
                Request::Login {
                    nick: &format!("u{p}"),
                },
            );
            r.at(0, p, Request::Join { title: "Pets" });
        }
        let mut out = Outbox::new();
        r.h.handle(
            addr(2),
            &Request::SendPublic { text: "hi" }.to_bytes(),
            r.t0,
            &mut out,
        );
        assert_eq!(out.unicast_len(), 0);
        assert_eq!(out.fanouts.len(), 1);
        let f = &out.fanouts[0];
        assert_eq!(&f.payload[2..], b"Pets u2 hi");
        let mut ports: Vec<u16> = f.dests.iter().map(|a| a.port()).collect();
        ports.sort();
        assert_eq!(ports, [1, 2, 3]);
        // A second message reuses the same snapshot: no copy of the member list.
        let mut again = Outbox::new();
        r.h.handle(
            addr(1),
            &Request::SendPublic { text: "yo" }.to_bytes(),
            r.t0,
            &mut again,
        );
        assert!(Arc::ptr_eq(&f.dests, &again.fanouts[0].dests));
    }

    #[test]
    fn seconds_online_come_from_the_injected_clock() {
        let r = Rig::new();
        r.at(0, 1, Request::Login { nick: "ann" });
        r.at(5, 1, Request::Join { title: "Pets" });
        let out = r.at(3723, 1, Request::ListUsers);
        assert_eq!(out, vec![(1, code::USER_ITEM, "ann 3723 Pets".into())]);
    }

    #[test]
    fn idle_sweep_finds_only_users_silent_past_the_timeout() {
        let r = Rig::new();
        r.at(0, 1, Request::Login { nick: "quiet" });
        r.at(0, 2, Request::Login { nick: "chatty" });
        r.at(0, 1, Request::Join { title: "Pets" });
        r.at(0, 2, Request::Join { title: "Pets" });
        r.at(100, 2, Request::StillHere);
        let now = r.t0 + Duration::from_secs(121);
        assert_eq!(r.h.idle_users(now), vec![addr(1)]);
        let mut out = Outbox::new();
        assert!(r.h.expire(addr(1), now, &mut out));
        assert_eq!(
            decode_all(&out),
            vec![(2, code::USER_PARTS, "Pets quiet".into())]
        );
        // The chatty user is not expired even if a stale sweep names it.
        assert!(!r.h.expire(addr(2), now, &mut Outbox::new()));
        r.h.state().check_invariants().unwrap();
    }

    #[test]
    fn a_user_that_spoke_after_the_sweep_listed_it_stays() {
        let r = Rig::new();
        r.at(0, 1, Request::Login { nick: "late" });
        let sweep_time = r.t0 + Duration::from_secs(130);
        assert_eq!(r.h.idle_users(sweep_time), vec![addr(1)]);
        r.at(130, 1, Request::StillHere);
        assert!(!r.h.expire(addr(1), sweep_time, &mut Outbox::new()));
        assert_eq!(r.h.state().user_count(), 1);
    }

    #[test]
    fn logoff_tells_watchers_and_channel_members() {
        let r = Rig::new();
        r.at(0, 1, Request::Login { nick: "w" });
        r.at(0, 2, Request::Login { nick: "x" });
        r.at(0, 1, Request::Watch { nicks: "x" });
        r.at(0, 1, Request::Join { title: "Pets" });
        r.at(0, 2, Request::Join { title: "Pets" });
        let mut out = r.at(1, 2, Request::Logoff);
        out.sort();
        assert_eq!(
            out,
            vec![
                (1, code::USER_PARTS, "Pets x".into()),
                (1, code::USER_OFFLINE, "x".into())
            ]
        );
        r.h.state().check_invariants().unwrap();
    }

    #[test]
    fn channels_per_user_are_capped_but_rejoining_is_fine() {
        let state = Arc::new(State::new(&classic_channels(), 10));
        let r = Rig {
            h: Handler::new(state, 1024, Duration::from_secs(120)).with_max_channels_per_user(2),
            t0: Instant::now(),
        };
        r.at(0, 1, Request::Login { nick: "a" });
        r.at(0, 1, Request::Join { title: "Pets" });
        r.at(0, 1, Request::Join { title: "Weather" });
        let out = r.at(0, 1, Request::Join { title: "Hobbies" });
        assert_eq!(
            out,
            vec![(1, code::ERROR, errors::TOO_MANY_CHANNELS.into())]
        );
        let out = r.at(0, 1, Request::Join { title: "Pets" });
        assert_eq!(out[0].1, code::JOIN_ACK);
        r.h.state().check_invariants().unwrap();
    }

    #[test]
    fn hot_list_is_capped() {
        let r = Rig::new();
        r.at(0, 1, Request::Login { nick: "w" });
        let names: Vec<String> = (0..MAX_WATCH + 5).map(|i| format!("n{i}")).collect();
        let out = r.at(
            0,
            1,
            Request::Watch {
                nicks: &names.join(" "),
            },
        );
        assert_eq!(out, vec![(1, code::ERROR, errors::HOT_LIST_FULL.into())]);
        assert_eq!(
            r.h.state().users.get(&addr(1)).unwrap().watching.len(),
            MAX_WATCH
        );
    }
}
