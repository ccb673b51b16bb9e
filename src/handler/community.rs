//! Part 5, the pieces the community modules share: `HELLO`, the dispatch of part-5
//! requests, who may do what (channel and server operators), notices to part-5 members,
//! the audit log, orders for the worker that owns a user, and the results of part-5
//! effects.
//!
//! A client becomes a part-5 client by saying `HELLO` after it logs in; from then on it
//! is sent part-5 notices (`CHAN_NOTICE`, `INVITED`, `SERVER_NOTICE`). Classic clients never
//! say it, so they see exactly part 1: a kick shows them `USER_PARTS`, a notice to everyone
//! a `PRIVATE_MSG`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use dashmap::DashMap;

use super::{unix_ms, Handler, Outbox, MAX_WAITING, WAIT_TIMEOUT};
use crate::cluster::{ClusterEvent, CommunityEvent};
use crate::outbox::community::{AuditRecord, Order};
use crate::outbox::{CommunityDone, CommunityEffect, Effect};
use crate::settings::{Live, LiveSettings};
use crate::state::{nick_key, role, Channel, Member, Route};
use proto::{Event, Request};

/// A request waiting for a part-5 effect.
#[derive(Debug)]
pub(super) enum Wait {
    /// A private message to a user away, being stored.
    Mail {
        addr: SocketAddr,
        recipient: String,
        since: Instant,
    },
    /// The messages kept for a user who just logged in, being read.
    Inbox {
        addr: SocketAddr,
        key: String,
        since: Instant,
    },
}

impl Wait {
    fn since(&self) -> Instant {
        match self {
            Wait::Mail { since, .. } | Wait::Inbox { since, .. } => *since,
        }
    }
}

/// What the part-5 modules share between workers.
#[derive(Debug, Default)]
pub(super) struct Community {
    /// The settings a reload changes.
    pub(super) live: Arc<LiveSettings>,
    /// Requests waiting for part-5 effects, by ticket serial; bounded by [`MAX_WAITING`].
    pub(super) waits: DashMap<u64, Wait>,
}

impl Community {
    pub(super) fn new(live: Arc<LiveSettings>) -> Self {
        Community {
            live,
            waits: DashMap::new(),
        }
    }

    /// Gives up waits whose effect never answered.
    pub(super) fn housekeeping(&self, now: Instant) {
        self.waits
            .retain(|_, w| now.saturating_duration_since(w.since()) <= WAIT_TIMEOUT);
    }
}

impl Handler {
    /// Handles a part-5 request of a logged-in user.
    pub(super) fn community_request(
        &self,
        now: Instant,
        wall: SystemTime,
        from: SocketAddr,
        request: Request<'_>,
        out: &mut Outbox,
    ) {
        let Some(nick) = self.state.nick_of(from) else {
            return;
        };
        match request {
            Request::Hello { .. } => self.hello(wall, from, out),
            Request::ChanCreate { title, description } => {
                self.create(now, wall, from, &nick, title, description, out)
            }
            Request::ChanTopic { title, text } => self.topic(wall, from, &nick, title, text, out),
            Request::ChanKick {
                title,
                nick: target,
                reason,
            } => self.kick(wall, from, &nick, title, target, reason, out),
            Request::ChanBan {
                title,
                seconds,
                mask,
                reason,
            } => self.ban(wall, from, &nick, title, seconds, mask, reason, out),
            Request::ChanUnban { title, mask } => self.unban(wall, from, &nick, title, mask, out),
            Request::ChanMode { title, change, arg } => {
                self.mode(wall, from, &nick, title, change, arg, out)
            }
            Request::ChanInvite { title, nick: who } => {
                self.invite(wall, from, &nick, title, who, out)
            }
            Request::ChanDrop { title } => self.drop_channel(wall, from, &nick, title, out),
            Request::History { title, how, number } => self.history(from, title, how, number, out),
            Request::OperKill { nick: who, reason } => {
                self.oper_kill(wall, from, &nick, who, reason, out)
            }
            Request::OperBan {
                seconds,
                net,
                reason,
            } => self.oper_ban(wall, from, &nick, seconds, net, reason, out),
            Request::OperUnban { net } => self.oper_unban(wall, from, &nick, net, out),
            Request::OperNotice { text } => self.oper_notice(wall, from, &nick, text, out),
            Request::OperStatus => self.oper_status(wall, from, out),
            _ => {}
        }
    }

    /// `HELLO`: the user becomes a part-5 client; it gets the message of the day, then
    /// `HELLO_ACK`.
    fn hello(&self, wall: SystemTime, from: SocketAddr, out: &mut Outbox) {
        self.state.set_community(from);
        let live = self.live();
        for line in &live.motd {
            out.send(from, &Event::Motd { text: line });
        }
        out.send(
            from,
            &Event::HelloAck {
                history: live.history as u64,
                now_ms: unix_ms(wall),
            },
        );
    }

    /// Feeds back the result of a part-5 effect.
    pub(super) fn community_done(
        &self,
        now: Instant,
        wall: SystemTime,
        done: CommunityDone,
        out: &mut Outbox,
    ) {
        match done {
            CommunityDone::Mailed { ticket, stored } => {
                let Some((
                    _,
                    Wait::Mail {
                        addr, recipient, ..
                    },
                )) = self.community.waits.remove(&ticket.serial)
                else {
                    return;
                };
                if self.state.nick_of(addr).is_none() {
                    return;
                }
                match stored {
                    Ok(true) if self.state.is_community(addr) => out.send(
                        addr,
                        &Event::PrivateStored {
                            recipient: &recipient,
                        },
                    ),
                    Ok(true) => {}
                    Ok(false) => out.error(
                        addr,
                        &format!("{recipient} is away and can't be sent more messages"),
                    ),
                    Err(()) => out.error(addr, &format!("{recipient}: not logged in")),
                }
            }
            CommunityDone::Mail { ticket, mail } => {
                let Some((_, Wait::Inbox { addr, key, .. })) =
                    self.community.waits.remove(&ticket.serial)
                else {
                    return;
                };
                let Ok(mail) = mail else {
                    return;
                };
                if self.state.nick_of(addr).is_none_or(|n| nick_key(&n) != key) {
                    return;
                }
                for m in &mail {
                    out.send(
                        addr,
                        &Event::StoredPrivate {
                            ms: m.ms,
                            sender: &m.from,
                            text: &m.text,
                        },
                    );
                }
            }
            CommunityDone::Order { ticket, order } => {
                self.carry_out(now, wall, ticket.route, order, out)
            }
        }
    }

    /// Carries out an order for a user of this worker (see [`Order`]).
    fn carry_out(
        &self,
        now: Instant,
        wall: SystemTime,
        route: Route,
        order: Order,
        out: &mut Outbox,
    ) {
        let nick = match &order {
            Order::Evict { nick, .. } | Order::Disconnect { nick, .. } => nick.clone(),
        };
        // The user may have logged off, or its nickname may have gone to someone else
        // whose record another worker owns: then there is nothing to do here.
        let Some(addr) = self.state.address_of(&nick) else {
            return;
        };
        if self.route_of_user(addr) != Some(route) {
            return;
        }
        match order {
            Order::Evict { id, by, reason, .. } => {
                self.evicted(now, wall, addr, id, &by, &reason, out)
            }
            Order::Disconnect { by, reason, .. } => {
                out.error(addr, &format!("you were disconnected by {by}: {reason}"));
                self.logoff(addr, out);
            }
        }
    }

    // ---- helpers shared by the part-5 modules ----

    /// The account the user at `addr` is logged in to with its password, as a key.
    pub(super) fn account_of(&self, addr: SocketAddr) -> Option<String> {
        let u = self.state.user(addr)?;
        u.session.map(|_| nick_key(&u.nick))
    }

    /// The route of the worker that owns the user at `addr`.
    pub(super) fn route_of_user(&self, addr: SocketAddr) -> Option<Route> {
        let u = self.state.user(addr)?;
        Some(match u.session {
            Some(id) => Route::Session(id),
            None => Route::Addr(addr),
        })
    }

    /// Whether the user at `addr` is a server operator: a configured nickname, logged in
    /// with its password.
    pub(super) fn is_server_op(&self, live: &Live, addr: SocketAddr) -> bool {
        self.account_of(addr).is_some_and(|a| live.is_operator(&a))
    }

    /// Whether the user at `addr` may moderate `ch`: a server operator, an operator
    /// member, or a lasting operator's account.
    pub(super) fn may_moderate(&self, addr: SocketAddr, ch: &Channel) -> bool {
        if ch.roles(addr) & role::OP != 0 || self.is_server_op(&self.live(), addr) {
            return true;
        }
        self.account_of(addr)
            .is_some_and(|a| ch.with_meta(|m| m.is_op_account(&a)))
    }

    /// The channel `title` if the user at `from` may moderate it; otherwise the ERROR
    /// is queued and `None` returned.
    pub(super) fn moderated_channel(
        &self,
        from: SocketAddr,
        title: &str,
        out: &mut Outbox,
    ) -> Option<Arc<Channel>> {
        let Some(ch) = self.state.channel_by_title(title) else {
            out.error(from, &format!("no channel named {title}"));
            return None;
        };
        if !self.may_moderate(from, &ch) {
            out.error(from, &format!("you are not an operator of {}", ch.title));
            return None;
        }
        Some(ch)
    }

    /// Of `addrs`, the part-5 clients (`true`) or the classic ones (`false`).
    pub(super) fn members_by_kind(&self, members: &[Member], part5: bool) -> Arc<[Member]> {
        members
            .iter()
            .copied()
            .filter(|m| self.state.is_community(m.addr) == part5)
            .collect()
    }

    /// Tells the part-5 members of `ch` (and `also`, if it is not one of them) that
    /// `actor` did `action` with `args`.
    pub(super) fn notice(
        &self,
        ch: &Channel,
        actor: &str,
        action: &str,
        args: &str,
        also: Option<SocketAddr>,
        out: &mut Outbox,
    ) {
        let members = ch.snapshot();
        let event = Event::ChanNotice {
            title: &ch.title,
            actor,
            action,
            args,
        };
        out.fanout(self.members_by_kind(&members, true), &event, ch.id);
        if let Some(a) = also.filter(|a| !members.iter().any(|m| m.addr == *a)) {
            out.send(a, &event);
        }
    }

    /// Writes a line to the audit log.
    pub(super) fn log_action(
        &self,
        wall: SystemTime,
        actor: &str,
        action: &str,
        target: &str,
        detail: &str,
        out: &mut Outbox,
    ) {
        out.effect(Effect::Community(CommunityEffect::Audit(AuditRecord {
            ms: unix_ms(wall),
            actor: actor.to_owned(),
            action: action.to_owned(),
            target: target.to_owned(),
            detail: detail.to_owned(),
        })));
    }

    /// Asks for `effect`.
    pub(super) fn community_effect(&self, effect: CommunityEffect, out: &mut Outbox) {
        out.effect(Effect::Community(effect));
    }

    /// Tells the other servers of a cluster.
    pub(super) fn publish_community(&self, event: CommunityEvent, out: &mut Outbox) {
        self.publish(ClusterEvent::Community(event), out);
    }

    /// Hands `order` for the local user at `target` to the worker that owns it.
    pub(super) fn relay(&self, target: SocketAddr, order: Order, out: &mut Outbox) {
        let Some(route) = self.route_of_user(target) else {
            return;
        };
        let ticket = self.ticket(target, route);
        self.community_effect(CommunityEffect::Relay { ticket, order }, out);
    }

    /// Records a wait for a part-5 effect; `false` (nothing recorded) when too many wait.
    pub(super) fn wait_for(&self, serial: u64, wait: Wait) -> bool {
        if self.community.waits.len() >= MAX_WAITING {
            return false;
        }
        self.community.waits.insert(serial, wait);
        true
    }
}
