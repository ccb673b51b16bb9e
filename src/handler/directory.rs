//! The directory of logged-in users: `WHO_REQ` (by nickname prefix, over the whole
//! cluster) and `WHOIS_REQ`.
//!
//! WHO reads the sorted nickname index of the state (and the sorted view of remote users),
//! so it costs what it returns, not what the server holds.

use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

use super::{unix_ms, Handler, Outbox, MAX_WHO};
use crate::state::{nick_key, RemoteUser, User};
use proto::{errors, Event};

/// A user found by WHO, here or on another server.
enum Found {
    Local(User),
    Remote(RemoteUser),
}

impl Handler {
    /// Appends USER_ITEM for the remote `user` to `out`; `now_ms` is the wall clock.
    pub(super) fn remote_item(
        &self,
        now_ms: u64,
        to: SocketAddr,
        user: &RemoteUser,
        out: &mut Outbox,
    ) {
        let titles = self.titles(&user.channels).join(" ");
        out.send(
            to,
            &Event::UserItem {
                nick: &user.nick,
                seconds: user.seconds_online(now_ms),
                channels: &titles,
            },
        );
    }

    pub(super) fn who(
        &self,
        now: Instant,
        wall: SystemTime,
        from: SocketAddr,
        prefix: &str,
        out: &mut Outbox,
    ) {
        let prefix = nick_key(prefix);
        let mut found: Vec<(String, Found)> = self
            .state
            .who(&prefix, MAX_WHO + 1)
            .into_iter()
            .map(|u| (nick_key(&u.nick), Found::Local(u)))
            .collect();
        if self.config.cluster {
            for r in self.state.remote().matching(&prefix, MAX_WHO + 1) {
                let key = nick_key(&r.nick);
                if !found.iter().any(|(k, _)| *k == key) {
                    found.push((key, Found::Remote(r)));
                }
            }
            found.sort_by(|a, b| a.0.cmp(&b.0));
        }
        let too_many = found.len() > MAX_WHO;
        found.truncate(MAX_WHO);
        let now_ms = unix_ms(wall);
        for (_, user) in &found {
            match user {
                Found::Local(u) => self.user_item(now, from, u, out),
                Found::Remote(r) => self.remote_item(now_ms, from, r, out),
            }
        }
        if too_many {
            out.error(from, errors::WHO_TOO_MANY);
        }
    }

    pub(super) fn whois(
        &self,
        now: Instant,
        wall: SystemTime,
        from: SocketAddr,
        nick: &str,
        out: &mut Outbox,
    ) {
        let user = self.state.address_of(nick).and_then(|a| self.state.user(a));
        match user {
            Some(user) => self.user_item(now, from, &user, out),
            None => match self.state.remote().get(nick) {
                Some(r) => self.remote_item(unix_ms(wall), from, &r, out),
                None => out.error(from, &format!("{nick}: not logged in")),
            },
        }
    }
}
