//! The senders a registered user refuses messages from while away: `MAIL_REFUSE mask` and
//! `MAIL_ACCEPT mask` (part 5), each answered with `MAIL_REFUSALS` (the list after the
//! change). Masks are those of channel bans: a nickname pattern (`*` any run, `?` any one
//! character, any case) or `account:NAME` (the holder of that account, logged in with
//! its password). The list is stored with the account's kept messages in the community
//! store, which asks it at every message to keep, so it holds wherever the recipient is
//! and whichever server of a cluster the sender uses. Only a password session changes
//! it: the list belongs to the account.

use super::ctx::{Actor, Ctx, MailWait};
use super::limits::MAX_REFUSALS;
use super::refusal::Refusal;
use crate::accounts::Refusals;
use crate::outbox::CommunityEffect;
use crate::state::community::Mask;
use crate::state::{nick_key, Presence, Route};
use proto::Event;

/// `MAIL_REFUSE mask` (`on`) or `MAIL_ACCEPT mask`: the mask joins or leaves the
/// refusals of the account logged in at the actor's address; an empty `MAIL_REFUSE`
/// only asks for the list.
pub(crate) fn refuse(cx: &mut Ctx<'_>, a: &Actor<'_>, mask: &str, on: bool) {
    let from = a.rq.from;
    let Presence::Protected(id) = cx.sh.state.presence(from) else {
        return cx.refuse(from, Refusal::NeedsPasswordLogin);
    };
    let change = match (mask, on) {
        ("", true) => None,
        _ => match Mask::parse(mask) {
            Some(m) => Some((m.to_string(), on)),
            None => return cx.refuse(from, Refusal::InvalidMailMask),
        },
    };
    let key = nick_key(a.nick);
    let ticket = cx.ticket(from, Route::Session(id));
    let wait = MailWait::Refusals {
        addr: from,
        key: key.clone(),
        since: a.rq.now,
    };
    if !cx.wait_for_mail(ticket.serial, wait) {
        return cx.refuse(from, Refusal::StorageFailed);
    }
    cx.community(CommunityEffect::SetRefusal {
        ticket,
        key,
        change,
        max: MAX_REFUSALS,
    });
}

/// The store's answer to [`refuse`], for the user of `serial`'s wait.
pub(crate) fn refused(cx: &mut Ctx<'_>, serial: u64, list: Result<Refusals, ()>) {
    let sh = cx.sh;
    let Some((_, MailWait::Refusals { addr, key, .. })) = sh.waits.mail.remove(&serial) else {
        return;
    };
    // The same account still logged in there.
    if sh.state.nick_of(addr).is_none_or(|n| nick_key(&n) != key) {
        return;
    }
    match list {
        Ok(Refusals::List(masks)) => cx.out.send(
            addr,
            &Event::MailRefusals {
                masks: &masks.join(" "),
            },
        ),
        Ok(Refusals::Full) => cx.refuse(addr, Refusal::TooManyRefusals(MAX_REFUSALS)),
        Err(()) => cx.refuse(addr, Refusal::StorageFailed),
    }
}
