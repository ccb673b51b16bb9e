//! Channels users create (part 5): `CHAN_CREATE` and `CHAN_DROP`, and the channels this
//! server learns of from the others of a cluster.
//!
//! A channel created by a user logged in with its password is *registered*: stored with
//! the accounts, it survives restarts until its founder (or a server operator) drops it.
//! A guest's channel is *temporary*: it is gone when its last member leaves. The creator
//! joins at once as the channel's operator, and is its founder (`rights::Rank`).
//!
//! Creating costs the server a place in a table every user shares, so it needs a proved
//! address (a password session, or a guest that proved it receives what is sent to it):
//! a forged guest login can't create. And created channels are counted three ways while
//! they exist: in all (`max-created-channels`), per founder's nickname
//! (`max-channels-per-creator`) and per network they were created from, an IPv4 /24 or an
//! IPv6 /64 (`max-channels-per-prefix`), since one party can hold many nicknames and
//! addresses in its network but few networks. A title that looks like an existing
//! channel's (the same confusable skeleton, as for nicknames) is refused.

use super::channels;
use super::ctx::{unix_ms, Actor, Ctx, Shared};
use super::refusal::Refusal;
use super::rights::{account_of, is_server_op};
use super::view::{self, ChannelView};
use crate::accounts::limits::Prefix;
use crate::accounts::StoredChannel;
use crate::cluster::CommunityEvent;
use crate::config::{MAX_DESCRIPTION_LEN, MAX_TITLE_LEN};
use crate::outbox::CommunityEffect;
use crate::state::{nick_key, role, Channel, ChannelId, JoinError, Kind, Meta, TitleTaken};
use proto::Event;

/// Whether `title` may name a created channel: 1 to `max` bytes of letters, digits and
/// `-`, `_`, `.`, `#`.
pub(crate) fn valid_title(title: &str, max: usize) -> bool {
    !title.is_empty()
        && title.len() <= max
        && title
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '#'))
}

/// Whether `text` may be a description (topic).
pub(crate) fn valid_description(text: &str) -> bool {
    text.len() <= MAX_DESCRIPTION_LEN && !text.chars().any(char::is_control)
}

/// The record stored for a registered channel.
pub(crate) fn stored(ch: &Channel, created_ms: u64) -> Option<StoredChannel> {
    ch.with_meta(|m| {
        (m.kind == Kind::Registered).then(|| StoredChannel {
            title: ch.title.to_string(),
            description: m.description.to_string(),
            founder: m.founder.as_deref().map(nick_key).unwrap_or_default(),
            created_ms,
            invite_only: m.invite_only,
            moderated: m.moderated,
            topic_locked: m.topic_locked,
            limit: m.limit,
        })
    })
}

/// `CHAN_CREATE title description`.
pub(crate) fn create(cx: &mut Ctx<'_>, a: &Actor<'_>, title: &str, description: &str) {
    let (sh, from, nick) = (cx.sh, a.rq.from, a.nick);
    // First, so that a forged request costs no more than this short refusal.
    if !sh.state.is_proved(from) {
        return cx.refuse(from, Refusal::NotProved);
    }
    let live = cx.live();
    if !valid_title(title, live.max_title_len) {
        let max = live.max_title_len;
        return cx.refuse(from, Refusal::InvalidTitle(max));
    }
    if !valid_description(description) {
        return cx.refuse(from, Refusal::InvalidDescription);
    }
    if sh.state.channel_id(title).is_some() {
        return cx.refuse(from, Refusal::ChannelExists(title));
    }
    let network = Prefix::of(from);
    let count = count_created(sh, Some(&nick_key(nick)), Some(network));
    if count.all >= live.max_created_channels {
        return cx.refuse(from, Refusal::TooManyCreated);
    }
    if count.by_founder >= live.max_channels_per_creator {
        return cx.refuse(from, Refusal::TooManyOfYours);
    }
    if count.from_network >= live.max_channels_per_prefix {
        return cx.refuse(from, Refusal::TooManyFromNetwork);
    }
    let account = account_of(sh, from);
    let mut meta = Meta::created(description, nick, account.as_deref());
    meta.origin = Some(network);
    if account.is_none() {
        meta.founder_addr = Some(from);
    }
    let ch = match sh.state.create_unlike(title, meta) {
        Ok(ch) => ch,
        Err(TitleTaken::Exists) => return cx.refuse(from, Refusal::ChannelExists(title)),
        Err(TitleTaken::LooksLike(other)) => {
            return cx.refuse(from, Refusal::TitleLooksLike(title, &other))
        }
    };
    if let Err(e) = sh
        .state
        .join(from, ch.id, live.max_channels_per_user, role::OP)
    {
        sh.state.destroy_now(ch.id);
        return cx.refuse(
            from,
            match e {
                JoinError::TooMany => Refusal::TooManyChannels,
                _ => Refusal::NoChannel(title),
            },
        );
    }
    let registered = account.is_some();
    if let Some(record) = stored(&ch, unix_ms(a.rq.wall)) {
        cx.community(CommunityEffect::SaveChannel(record));
    }
    cx.publish_community(CommunityEvent::Created {
        title: ch.title.to_string(),
        description: description.to_owned(),
        founder: nick.to_owned(),
        registered,
    });
    view::publish_user(cx, &a.rq);
    let kind = if registered {
        "registered"
    } else {
        "temporary"
    };
    cx.out.send(
        from,
        &Event::ChanNotice {
            title: &ch.title,
            actor: nick,
            action: "create",
            args: &format!("{kind} {description}"),
        },
    );
    cx.out.send(
        from,
        &Event::JoinAck(ChannelView::of(sh, ch.clone()).info()),
    );
    cx.log(a, "create", &ch.title, kind);
}

/// `CHAN_DROP`: a registered channel stops being registered (it is forgotten by the
/// store, and goes when its last member leaves). Its founder or a server operator may.
pub(crate) fn drop_channel(cx: &mut Ctx<'_>, a: &Actor<'_>, title: &str) {
    let (sh, from) = (cx.sh, a.rq.from);
    let Some(ch) = sh.state.channel_by_title(title) else {
        return cx.refuse(from, Refusal::NoChannel(title));
    };
    let (kind, founder) = ch.with_meta(|m| (m.kind, m.founder.as_deref().map(nick_key)));
    let is_founder = account_of(sh, from).is_some_and(|acc| founder.as_deref() == Some(&*acc));
    if !is_founder && !is_server_op(sh, &cx.live(), from) {
        return cx.refuse(from, Refusal::NotFounder(&ch.title));
    }
    match kind {
        Kind::Registered => {}
        Kind::Configured => return cx.refuse(from, Refusal::Configured(&ch.title)),
        Kind::Temporary => return cx.refuse(from, Refusal::NotRegistered(&ch.title)),
    }
    ch.with_meta(|m| m.kind = Kind::Temporary);
    cx.community(CommunityEffect::DeleteChannel {
        key: ch.title.to_lowercase(),
    });
    view::notice_of(cx, a, &ch, "drop", "");
    cx.log(a, "drop", &ch.title, "");
    channels::gone(cx, &ch);
    let _ = sh.state.destroy_if_empty(ch.id);
}

/// How many created (not configured) channels exist, and how many of them `founder`
/// (a nickname key) created.
pub(crate) fn created_channels(sh: &Shared, founder: Option<&str>) -> (usize, usize) {
    let count = count_created(sh, founder, None);
    (count.all, count.by_founder)
}

/// Created (not configured) channels that exist, counted for the limits.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CreatedCount {
    /// In all.
    pub(crate) all: usize,
    /// Founded by the nickname asked about.
    pub(crate) by_founder: usize,
    /// Created from the network asked about, on this server.
    pub(crate) from_network: usize,
}

/// Counts the created channels: in all, founded by `founder` (a nickname key), created
/// from `network`.
pub(crate) fn count_created(
    sh: &Shared,
    founder: Option<&str>,
    network: Option<Prefix>,
) -> CreatedCount {
    let mut count = CreatedCount::default();
    for ch in sh.state.channels() {
        ch.with_meta(|m| {
            if m.kind == Kind::Configured {
                return;
            }
            count.all += 1;
            let by = m.founder.as_deref().map(nick_key);
            if founder.is_some() && by.as_deref() == founder {
                count.by_founder += 1;
            }
            if network.is_some() && m.origin == network {
                count.from_network += 1;
            }
        });
    }
    count
}

/// The channel titled `title`, made as a temporary one if this server does not know
/// it (a channel created on another server of a cluster before this one heard of it),
/// while the limit on created channels allows.
pub(crate) fn known_or_placeholder(sh: &Shared, title: &str) -> Option<ChannelId> {
    if let Some(id) = sh.state.channel_id(title) {
        return Some(id);
    }
    if !valid_title(title, MAX_TITLE_LEN)
        || created_channels(sh, None).0 >= sh.live.get().max_created_channels
    {
        return None;
    }
    sh.state
        .create_channel(title, Meta::created("", "-", None))
        .ok()
        .map(|c| c.id)
}
