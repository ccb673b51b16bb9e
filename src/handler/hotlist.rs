//! The hot list: `WATCH_REQ` and `UNWATCH_REQ`, and keeping a registered user's hot list
//! with its account.

use std::net::SocketAddr;

use super::{Handler, Outbox, MAX_WATCH};
use crate::outbox::Effect;
use crate::state::nick_key;
use proto::{errors, valid_nick, words, Event};

impl Handler {
    pub(super) fn watch(&self, from: SocketAddr, nicks: &str, out: &mut Outbox) {
        let keys: Vec<String> = words(nicks)
            .filter(|n| valid_nick(n))
            .map(nick_key)
            .collect();
        let (listed, full) = self
            .state
            .watch(from, keys.iter().map(String::as_str), MAX_WATCH);
        self.save_hot_list(from, out);
        for key in listed {
            let held = self
                .state
                .address_of(&key)
                .and_then(|a| self.state.nick_of(a))
                .or_else(|| self.state.remote().get(&key).map(|r| r.nick));
            if let Some(nick) = held {
                out.send(from, &Event::UserOnline { nick: &nick });
            }
        }
        if full {
            out.error(from, errors::HOT_LIST_FULL);
        }
    }

    pub(super) fn unwatch(&self, from: SocketAddr, nicks: &str, out: &mut Outbox) {
        let keys: Vec<String> = words(nicks).map(nick_key).collect();
        self.state.unwatch(from, keys.iter().map(String::as_str));
        self.save_hot_list(from, out);
    }

    /// Asks for the hot list of a password-logged-in user to be stored with its account.
    pub(super) fn save_hot_list(&self, addr: SocketAddr, out: &mut Outbox) {
        let Some(user) = self.state.user(addr) else {
            return;
        };
        if user.session.is_some() && self.accounts.is_registered(&user.nick) {
            out.effect(Effect::SaveHotList {
                key: nick_key(&user.nick),
                watch: user.watching.iter().map(|w| w.to_string()).collect(),
            });
        }
    }
}
