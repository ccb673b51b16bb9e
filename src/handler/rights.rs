//! Who may do what (part 5): the account a user is logged in to, server operators,
//! channel ranks, and the checks a join, a public message or a moderation request passes
//! first. A check that fails sends its refusal and says so, like a request would.
//!
//! # Ranks
//! Everyone stands somewhere in a channel ([`Rank`]): server operators above all, then the
//! founder, the lasting operators (accounts, for their password sessions), operators (for
//! as long as they are members), voices, everyone else. Nobody acts on someone of its own
//! rank or above: kick, ban by name, `-o`, `-v` ([`outranks`]); and nobody raises anyone
//! above its own rank, so only a lasting operator or higher makes lasting operators.
//! Those ranked lasting operator or above join past bans, invitations and the member
//! limit, as operators: a founder can always come back and take its channel back, and
//! a ban can't keep it out. Rank is worked out from what this server holds; for a user
//! on another server of a cluster only its account counts ([`rank_of_nick`]).

use std::net::SocketAddr;
use std::sync::Arc;

use super::ctx::{unix_ms, Ctx, Req, Shared};
use super::refusal::Refusal;
use crate::outbox::Order;
use crate::settings::Live;
use crate::state::community::Mask;
use crate::state::{nick_key, role, Channel, Kind, Meta};

/// Where a user stands in a channel, lowest first (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Rank {
    /// No role: a member, or not one.
    Member,
    /// A voiced member.
    Voice,
    /// An operator member, for as long as it is a member.
    Operator,
    /// Logged in with its password to an account that is a lasting operator.
    Lasting,
    /// The founder ([`Meta::is_founder`]).
    Founder,
    /// A server operator.
    ServerOperator,
}

impl Rank {
    /// How a refusal names someone of this rank in `title`: `the founder of Den`.
    pub(crate) fn describe(self, title: &str) -> String {
        match self {
            Rank::ServerOperator => "a server operator".to_owned(),
            Rank::Founder => format!("the founder of {title}"),
            Rank::Lasting => format!("a lasting operator of {title}"),
            Rank::Operator => format!("an operator of {title}"),
            Rank::Voice => format!("a voice in {title}"),
            Rank::Member => format!("a member of {title}"),
        }
    }

    /// The rank the member roles `roles` give.
    fn of_roles(roles: u8) -> Rank {
        if roles & role::OP != 0 {
            Rank::Operator
        } else if roles & role::VOICE != 0 {
            Rank::Voice
        } else {
            Rank::Member
        }
    }
}

/// The account the user at `addr` is logged in to with its password, as a key.
pub(crate) fn account_of(sh: &Shared, addr: SocketAddr) -> Option<String> {
    let u = sh.state.user(addr)?;
    u.session.map(|_| nick_key(&u.nick))
}

/// Whether the user at `addr` is a server operator: logged in with its password to an
/// account that the configuration names (`operators`) *and* that is marked as an
/// operator's in the store. The mark is set only by `chat-server accounts` on the
/// server's own database, never over the network, so the right belongs to credentials
/// the server's operator made, not to whoever registered a listed nickname first. Asked
/// at every request: a reload that drops the name, or a delete or demotion in the store,
/// ends the rights of a session already logged in at its next request.
pub(crate) fn is_server_op(sh: &Shared, live: &Live, addr: SocketAddr) -> bool {
    account_of(sh, addr)
        .is_some_and(|a| live.is_operator(&a) && sh.accounts.is_operator_account(&a))
}

/// Whether `nick` is reserved for a server operator: the configuration names it, or a
/// look-alike of it (`proto::nick` skeletons). Only the account made for it with
/// `chat-server accounts add` may hold it; a guest login or a registration over the
/// network of it is refused, so that nobody can take a listed name before its operator
/// does (or after its account was deleted), nor pass for the operator under `r\u{43e}ot`.
pub(crate) fn reserved(sh: &Shared, live: &Live, nick: &str) -> bool {
    live.is_operator(&nick_key(nick)) || sh.accounts.is_reserved(nick)
}

/// A password login to the operator's account of `nick` found the nickname held by a
/// guest elsewhere: one that logged in before a reload listed the name (a guest can't
/// take it since). The guest is disconnected, by an order to the worker that owns it, so
/// that the operator's next login gets the name; the login itself is refused as the
/// nickname is in use. Nothing happens for any other holder.
pub(crate) fn evict_squatter(cx: &mut Ctx<'_>, nick: &str) {
    let (sh, key) = (cx.sh, nick_key(nick));
    if !cx.live().is_operator(&key) || !sh.accounts.is_operator_account(&key) {
        return;
    }
    let Some(addr) = sh.state.address_of(nick) else {
        return;
    };
    let Some(held) = sh.state.user(addr).filter(|u| u.session.is_none()) else {
        return;
    };
    tracing::info!(%addr, nick = %held.nick, "guest holding an operator's nickname disconnected for its password login");
    let order = Order::Disconnect {
        nick: held.nick.to_string(),
        by: "the server".into(),
        reason: "nickname is reserved for a server operator".into(),
    };
    cx.relay(addr, order);
}

/// Whether the user at `from` is a server operator; refuses it if not.
pub(crate) fn operator(cx: &mut Ctx<'_>, from: SocketAddr) -> bool {
    let ok = is_server_op(cx.sh, &cx.live(), from);
    if !ok {
        cx.refuse(from, Refusal::NotServerOperator);
    }
    ok
}

/// The rank of the user at `addr` in `ch` ([`Member`](Rank::Member) for nobody).
pub(crate) fn rank(sh: &Shared, addr: SocketAddr, ch: &Channel) -> Rank {
    if is_server_op(sh, &sh.live.get(), addr) {
        return Rank::ServerOperator;
    }
    let Some(u) = sh.state.user(addr) else {
        return Rank::Member;
    };
    let account = u.session.map(|_| nick_key(&u.nick));
    let roles = Rank::of_roles(ch.roles(addr));
    let standing = ch.with_meta(|m| {
        if m.is_founder(&u.nick, addr, account.as_deref(), u.proved) {
            Rank::Founder
        } else if account.as_deref().is_some_and(|a| m.is_op_account(a)) {
            Rank::Lasting
        } else {
            Rank::Member
        }
    });
    standing.max(roles)
}

/// The rank an account (a key) holds in a channel whatever its holder's roles: founder,
/// lasting operator, or none.
fn account_rank(m: &Meta, key: &str) -> Rank {
    if m.founder_account().as_deref() == Some(key) {
        Rank::Founder
    } else if m.is_op_account(key) {
        Rank::Lasting
    } else {
        Rank::Member
    }
}

/// The rank in `ch` of `actor`, a user of another server of a cluster, as far as this
/// server can tell: a configured server operator's nickname, or its account's rank.
pub(crate) fn remote_rank(sh: &Shared, ch: &Channel, actor: &str) -> Rank {
    let key = nick_key(actor);
    if sh.live.get().is_operator(&key) {
        return Rank::ServerOperator;
    }
    ch.with_meta(|m| account_rank(m, &key))
}

/// The rank in `ch` of whoever `nick` names: the user of this server holding it, or else
/// (a user of another server, or nobody logged in) the rank of the account of that name.
/// A registered nickname is used only by its account's holder, so this errs, if at all,
/// towards protecting someone.
pub(crate) fn rank_of_nick(sh: &Shared, ch: &Channel, nick: &str) -> Rank {
    if let Some(addr) = sh.state.address_of(nick) {
        if sh.state.user(addr).is_some() {
            return rank(sh, addr, ch);
        }
    }
    remote_rank(sh, ch, nick)
}

/// Whether `actor`, a user of another server, may act on the member at `addr` here, as
/// far as this server can tell. The actor's server checked ranks already, but it can't
/// see everything: a temporary channel's founder is a guest known here by its address,
/// so this server keeps the founder (and server operators) from those it can't see
/// outrank them.
pub(crate) fn remote_may_act(sh: &Shared, ch: &Channel, actor: &str, addr: SocketAddr) -> bool {
    let target = rank(sh, addr, ch);
    target < Rank::Founder || remote_rank(sh, ch, actor) > target
}

/// The highest rank in `ch` of the one user `mask` names, if it names one (`account:NAME`
/// or a nickname without wildcards): a ban by name is an act on that user. A nickname
/// mask covers look-alikes too ([`Mask::covers`]), so it names everyone it covers: the
/// holder of that exact nickname (here or, by account, elsewhere), the members here it
/// covers, and the founder and lasting operator accounts it covers. So `аnn` with a
/// Cyrillic а is as much a ban on the founder `ann` as `ann` is.
pub(crate) fn rank_of_mask(sh: &Shared, ch: &Channel, mask: &Mask) -> Rank {
    match (mask, mask.named()) {
        (Mask::Account(key), _) => {
            let holder = sh
                .state
                .address_of(key)
                .filter(|a| account_of(sh, *a).as_deref() == Some(&**key))
                .map_or(Rank::Member, |a| rank(sh, a, ch));
            holder.max(ch.with_meta(|m| account_rank(m, key)))
        }
        (Mask::Nick { .. }, Some(nick)) => {
            let members = ch
                .snapshot()
                .iter()
                .filter(|m| {
                    sh.state.user(m.addr).is_some_and(|u| {
                        let account = u.session.map(|_| nick_key(&u.nick));
                        mask.matches(&u.nick, account.as_deref())
                    })
                })
                .map(|m| rank(sh, m.addr, ch))
                .max()
                .unwrap_or(Rank::Member);
            let accounts = ch.with_meta(|m| {
                let founder = match (m.kind, &m.founder) {
                    // A guest founder, known by the nickname it created the channel under.
                    (Kind::Temporary, Some(f)) if m.founder_addr.is_some() => {
                        mask.matches(f, None).then_some(Rank::Founder)
                    }
                    _ => None,
                };
                let named = m
                    .founder_account()
                    .into_iter()
                    .chain(m.ops.iter().map(|o| o.to_string()))
                    .filter(|key| mask.matches(key, None))
                    .map(|key| account_rank(m, &key));
                named.chain(founder).max().unwrap_or(Rank::Member)
            });
            rank_of_nick(sh, ch, nick).max(members).max(accounts)
        }
        (Mask::Nick { .. }, None) => Rank::Member,
    }
}

/// Whether the user at `from` may act on `target` (as typed), of rank `target_rank`, in
/// `ch`: it ranks higher, or it is the target itself. Refuses it if not.
pub(crate) fn outranks(
    cx: &mut Ctx<'_>,
    from: SocketAddr,
    ch: &Channel,
    target: &str,
    target_rank: Rank,
) -> bool {
    let sh = cx.sh;
    let itself = sh.state.address_of(target) == Some(from);
    if itself || rank(sh, from, ch) > target_rank {
        return true;
    }
    let who = target_rank.describe(&ch.title);
    cx.refuse(from, Refusal::Outranked(target, &who));
    false
}

/// Whether the user at `addr` may moderate `ch`: it ranks operator or above.
pub(crate) fn may_moderate(sh: &Shared, addr: SocketAddr, ch: &Channel) -> bool {
    rank(sh, addr, ch) >= Rank::Operator
}

/// The channel `title` if the user at `from` may moderate it; otherwise it is refused
/// and `None` returned.
pub(crate) fn moderated_channel(
    cx: &mut Ctx<'_>,
    from: SocketAddr,
    title: &str,
) -> Option<Arc<Channel>> {
    let Some(ch) = cx.sh.state.channel_by_title(title) else {
        cx.refuse(from, Refusal::NoChannel(title));
        return None;
    };
    if !may_moderate(cx.sh, from, &ch) {
        cx.refuse(from, Refusal::NotOperatorOf(&ch.title));
        return None;
    }
    Some(ch)
}

/// How an allowed join goes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Admit {
    /// The roles it joins with (`role` bits).
    pub(crate) roles: u8,
    /// Whether the member limit is passed over.
    pub(crate) past_limit: bool,
}

/// Whether the user at `rq.from` (`nick`) may join `ch`, and how: those ranked lasting
/// operator or above (server operators, the founder, lasting operators) always may, as
/// operators, past the member limit; otherwise not while banned, nor without an
/// invitation into an invite-only channel. A member joining again only makes the channel
/// current. `None`: refused.
pub(crate) fn may_join(cx: &mut Ctx<'_>, rq: &Req, nick: &str, ch: &Channel) -> Option<Admit> {
    let from = rq.from;
    if ch.contains(from) {
        return Some(Admit {
            roles: 0,
            past_limit: false,
        });
    }
    if rank(cx.sh, from, ch) >= Rank::Lasting {
        return Some(Admit {
            roles: role::OP,
            past_limit: true,
        });
    }
    let account = account_of(cx.sh, from);
    let now_ms = unix_ms(rq.wall);
    // Decided under the channel's lock, refused after it.
    let verdict = ch.with_meta(|m| {
        if let Some(ban) = m.ban_on(nick, account.as_deref(), now_ms) {
            return Err(Some(ban.reason));
        }
        if m.invite_only && !m.take_invite(nick) {
            return Err(None);
        }
        Ok(())
    });
    let refusal = match &verdict {
        Ok(()) => {
            return Some(Admit {
                roles: 0,
                past_limit: false,
            })
        }
        Err(Some(reason)) => Refusal::Banned(&ch.title, reason),
        Err(None) => Refusal::InviteOnly(&ch.title),
    };
    cx.refuse(from, refusal);
    None
}

/// Whether the user at `from` may speak in `ch`: not in a moderated channel without a
/// voice or a rank above it (refused).
pub(crate) fn may_speak(cx: &mut Ctx<'_>, from: SocketAddr, ch: &Channel) -> bool {
    if !ch.with_meta(|m| m.moderated) || rank(cx.sh, from, ch) >= Rank::Voice {
        return true;
    }
    cx.refuse(from, Refusal::Moderated(&ch.title));
    false
}
