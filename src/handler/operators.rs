//! Server operators (part 5): the registered nicknames the configuration names, logged in
//! with their passwords. `OPER_KILL` disconnects a user, `OPER_BAN`/`OPER_UNBAN` ban an
//! address or network (stored, with an expiry), `OPER_NOTICE` tells everyone,
//! `OPER_STATUS` shows the server's state. Each is answered with `OPER_ACK` (or the
//! status lines) and written to the audit log; anyone else gets
//! `ERROR you are not a server operator`.

use std::net::SocketAddr;
use std::time::SystemTime;

use super::{unix_ms, Handler, Outbox};
use crate::accounts::StoredAddrBan;
use crate::cluster::CommunityEvent;
use crate::outbox::community::Order;
use crate::outbox::CommunityEffect;
use crate::state::community::{AddrBan, Net};
use crate::state::Member;
use proto::{errors, Event};

use super::moderation::ban_seconds;

impl Handler {
    /// A login from a banned address is refused: returns whether it was.
    pub(super) fn refuse_banned_address(
        &self,
        wall: SystemTime,
        from: SocketAddr,
        out: &mut Outbox,
    ) -> bool {
        match self.state.addr_bans().on(from, unix_ms(wall)) {
            Some(ban) => {
                let text = if ban.reason.is_empty() {
                    "you are banned from this server".to_owned()
                } else {
                    format!("you are banned from this server: {}", ban.reason)
                };
                out.error(from, &text);
                true
            }
            None => false,
        }
    }

    /// Whether the user at `from` is a server operator; queues the refusal if not.
    fn operator(&self, from: SocketAddr, out: &mut Outbox) -> bool {
        let ok = self.is_server_op(&self.live(), from);
        if !ok {
            out.error(from, errors::NOT_SERVER_OPERATOR);
        }
        ok
    }

    pub(super) fn oper_kill(
        &self,
        wall: SystemTime,
        from: SocketAddr,
        nick: &str,
        who: &str,
        reason: &str,
        out: &mut Outbox,
    ) {
        if !self.operator(from, out) {
            return;
        }
        let reason = if reason.is_empty() {
            "no reason given"
        } else {
            reason
        };
        if let Some(addr) = self.state.address_of(who) {
            let Some(held) = self.state.nick_of(addr) else {
                return out.error(from, &format!("{who}: not logged in"));
            };
            let order = Order::Disconnect {
                nick: held.to_string(),
                by: nick.to_owned(),
                reason: reason.to_owned(),
            };
            self.relay(addr, order, out);
        } else if let Some(r) = self.state.remote().get(who).filter(|_| self.config.cluster) {
            self.publish_community(
                CommunityEvent::Kill {
                    nick: r.nick.to_string(),
                    by: nick.to_owned(),
                    reason: reason.to_owned(),
                },
                out,
            );
        } else {
            return out.error(from, &format!("{who}: not logged in"));
        }
        self.ack(from, "kill", who, reason, out);
        self.log_action(wall, nick, "oper-kill", who, reason, out);
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn oper_ban(
        &self,
        wall: SystemTime,
        from: SocketAddr,
        nick: &str,
        seconds: &str,
        net: &str,
        reason: &str,
        out: &mut Outbox,
    ) {
        if !self.operator(from, out) {
            return;
        }
        let Some(secs) = ban_seconds(seconds, from, out) else {
            return;
        };
        let Some(parsed) = Net::parse(net) else {
            return out.error(from, "invalid address; give ADDRESS or ADDRESS/BITS");
        };
        let now_ms = unix_ms(wall);
        let record = StoredAddrBan {
            net: parsed.to_string(),
            until_ms: if secs == 0 { 0 } else { now_ms + secs * 1000 },
            by: nick.to_owned(),
            reason: reason.to_owned(),
        };
        let Some(ban) = self.apply_addr_ban(&record, now_ms, out) else {
            return out.error(from, "too many address bans");
        };
        self.community_effect(CommunityEffect::SaveAddrBan(record.clone()), out);
        self.publish_community(CommunityEvent::AddrBan(record), out);
        let detail = format!("{secs} {reason}");
        self.ack(from, "ban", &ban.net.to_string(), detail.trim_end(), out);
        self.log_action(
            wall,
            nick,
            "oper-ban",
            &ban.net.to_string(),
            detail.trim_end(),
            out,
        );
    }

    /// Puts an address ban in force here and disconnects the local users it covers
    /// (server operators excepted); `None` when the server holds as many as it may.
    pub(super) fn apply_addr_ban(
        &self,
        record: &StoredAddrBan,
        now_ms: u64,
        out: &mut Outbox,
    ) -> Option<AddrBan> {
        let ban = AddrBan {
            net: Net::parse(&record.net)?,
            until_ms: record.until_ms,
            by: record.by.as_str().into(),
            reason: record.reason.as_str().into(),
        };
        let live = self.live();
        if !self
            .state
            .addr_bans()
            .set(ban.clone(), live.max_server_bans, now_ms)
        {
            return None;
        }
        for (addr, user) in self.state.users() {
            if ban.net.contains(addr.ip()) && !self.is_server_op(&live, addr) {
                let reason = if ban.reason.is_empty() {
                    "banned from this server".to_owned()
                } else {
                    format!("banned from this server: {}", ban.reason)
                };
                let order = Order::Disconnect {
                    nick: user.nick.to_string(),
                    by: ban.by.to_string(),
                    reason,
                };
                self.relay(addr, order, out);
            }
        }
        Some(ban)
    }

    pub(super) fn oper_unban(
        &self,
        wall: SystemTime,
        from: SocketAddr,
        nick: &str,
        net: &str,
        out: &mut Outbox,
    ) {
        if !self.operator(from, out) {
            return;
        }
        let Some(parsed) = Net::parse(net) else {
            return out.error(from, "invalid address; give ADDRESS or ADDRESS/BITS");
        };
        if !self.state.addr_bans().remove(parsed) {
            return out.error(from, &format!("no ban on {parsed}"));
        }
        let text = parsed.to_string();
        self.community_effect(CommunityEffect::DeleteAddrBan { net: text.clone() }, out);
        self.publish_community(CommunityEvent::AddrUnban { net: text.clone() }, out);
        self.ack(from, "unban", &text, "", out);
        self.log_action(wall, nick, "oper-unban", &text, "", out);
    }

    pub(super) fn oper_notice(
        &self,
        wall: SystemTime,
        from: SocketAddr,
        nick: &str,
        text: &str,
        out: &mut Outbox,
    ) {
        if !self.operator(from, out) {
            return;
        }
        if text.is_empty() {
            return out.error(from, "no notice given");
        }
        self.notice_everyone(nick, text, out);
        self.publish_community(
            CommunityEvent::Notice {
                from: nick.to_owned(),
                text: text.to_owned(),
            },
            out,
        );
        self.ack(from, "notice", "-", "", out);
        self.log_action(wall, nick, "oper-notice", "-", text, out);
    }

    /// Tells every local user: part-5 clients as `SERVER_NOTICE`, classic ones as a
    /// `PRIVATE_MSG` from the operator (the only way part 1 has to show it).
    pub(super) fn notice_everyone(&self, from: &str, text: &str, out: &mut Outbox) {
        let users = self.state.users();
        let (part5, classic): (Vec<_>, Vec<_>) = users.iter().partition(|(_, u)| u.community);
        let addrs = |list: Vec<&(SocketAddr, crate::state::User)>| -> std::sync::Arc<[Member]> {
            list.into_iter()
                .map(|(a, u)| Member::new(*a, u.caps.batch.unwrap_or(0)))
                .collect()
        };
        out.fanout(addrs(part5), &Event::ServerNotice { from, text }, 0);
        out.fanout(addrs(classic), &Event::PrivateMsg { sender: from, text }, 0);
    }

    pub(super) fn oper_status(&self, wall: SystemTime, from: SocketAddr, out: &mut Outbox) {
        if !self.operator(from, out) {
            return;
        }
        let (created, _) = self.created_channels(None);
        let history: usize = self
            .state
            .channels()
            .iter()
            .map(|c| c.with_history(|h| h.len()))
            .sum();
        let items = [
            ("users", self.state.user_count().to_string()),
            ("remote-users", self.state.remote().len().to_string()),
            ("channels", self.state.channel_count().to_string()),
            ("created-channels", created.to_string()),
            ("accounts", self.accounts.registered_count().to_string()),
            (
                "address-bans",
                self.state.addr_bans().list().len().to_string(),
            ),
            ("history-messages", history.to_string()),
            ("cluster", self.config.cluster.to_string()),
            ("time-ms", unix_ms(wall).to_string()),
        ];
        for (key, value) in &items {
            out.send(from, &Event::StatusItem { key, value });
        }
    }

    fn ack(&self, to: SocketAddr, action: &str, target: &str, detail: &str, out: &mut Outbox) {
        out.send(
            to,
            &Event::OperAck {
                action,
                target,
                detail,
            },
        );
    }
}
