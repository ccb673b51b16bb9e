//! Channels users create (part 5): `CHAN_CREATE` and `CHAN_DROP`, who may join a channel
//! (bans, invitations, lasting operators), and the end of a temporary channel.
//!
//! A channel created by a user logged in with its password is *registered*: stored with
//! the accounts, it survives restarts until its founder (or a server operator) drops it.
//! A guest's channel is *temporary*: it is gone when its last member leaves. The creator
//! joins at once as the channel's operator.

use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

use super::{unix_ms, Handler, Outbox};
use crate::accounts::StoredChannel;
use crate::cluster::CommunityEvent;
use crate::config::MAX_DESCRIPTION_LEN;
use crate::outbox::CommunityEffect;
use crate::state::{nick_key, role, Channel, ChannelId, JoinError, Kind, Meta};
use proto::{errors, Event};

/// Whether `title` may name a created channel: 1 to `max` bytes of letters, digits and
/// `-`, `_`, `.`, `#`.
pub(super) fn valid_title(title: &str, max: usize) -> bool {
    !title.is_empty()
        && title.len() <= max
        && title
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '#'))
}

/// Whether `text` may be a description (topic).
pub(super) fn valid_description(text: &str) -> bool {
    text.len() <= MAX_DESCRIPTION_LEN && !text.chars().any(char::is_control)
}

/// The record stored for a registered channel.
pub(super) fn stored(ch: &Channel, created_ms: u64) -> Option<StoredChannel> {
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

impl Handler {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn create(
        &self,
        now: Instant,
        wall: SystemTime,
        from: SocketAddr,
        nick: &str,
        title: &str,
        description: &str,
        out: &mut Outbox,
    ) {
        let live = self.live();
        if !valid_title(title, live.max_title_len) {
            return out.error(
                from,
                &format!(
                    "invalid channel title; use 1 to {} letters, digits, - _ . #",
                    live.max_title_len
                ),
            );
        }
        if !valid_description(description) {
            return out.error(from, "invalid description");
        }
        if self.state.channel_id(title).is_some() {
            return out.error(from, &format!("a channel named {title} exists"));
        }
        let (created, mine) = self.created_channels(Some(&nick_key(nick)));
        if created >= live.max_created_channels {
            return out.error(from, "too many channels on this server; try again later");
        }
        if mine >= live.max_channels_per_creator {
            return out.error(from, "you have created too many channels; drop one first");
        }
        let account = self.account_of(from);
        let meta = Meta::created(description, nick, account.as_deref());
        let Ok(ch) = self.state.create_channel(title, meta) else {
            return out.error(from, &format!("a channel named {title} exists"));
        };
        match self
            .state
            .join(from, ch.id, live.max_channels_per_user, role::OP)
        {
            Ok(_) => {}
            Err(e) => {
                self.state.destroy_now(ch.id);
                return match e {
                    JoinError::TooMany => out.error(from, errors::TOO_MANY_CHANNELS),
                    _ => out.error(from, &format!("no channel named {title}")),
                };
            }
        }
        let registered = account.is_some();
        if let Some(record) = stored(&ch, unix_ms(wall)) {
            self.community_effect(CommunityEffect::SaveChannel(record), out);
        }
        self.publish_community(
            CommunityEvent::Created {
                title: ch.title.to_string(),
                description: description.to_owned(),
                founder: nick.to_owned(),
                registered,
            },
            out,
        );
        self.publish_user(now, wall, from, out);
        let kind = if registered {
            "registered"
        } else {
            "temporary"
        };
        out.send(
            from,
            &Event::ChanNotice {
                title: &ch.title,
                actor: nick,
                action: "create",
                args: &format!("{kind} {description}"),
            },
        );
        out.send(from, &Event::JoinAck(self.view_of(ch.clone()).info()));
        self.log_action(wall, nick, "create", &ch.title, kind, out);
    }

    /// `CHAN_DROP`: a registered channel stops being registered (it is forgotten by the
    /// store, and goes when its last member leaves). Its founder or a server operator may.
    pub(super) fn drop_channel(
        &self,
        wall: SystemTime,
        from: SocketAddr,
        nick: &str,
        title: &str,
        out: &mut Outbox,
    ) {
        let Some(ch) = self.state.channel_by_title(title) else {
            return out.error(from, &format!("no channel named {title}"));
        };
        let (kind, founder) = ch.with_meta(|m| (m.kind, m.founder.as_deref().map(nick_key)));
        let is_founder = self
            .account_of(from)
            .is_some_and(|a| founder.as_deref() == Some(&*a));
        if !is_founder && !self.is_server_op(&self.live(), from) {
            return out.error(
                from,
                &format!("only the founder of {} may drop it", ch.title),
            );
        }
        match kind {
            Kind::Registered => {}
            Kind::Configured => {
                return out.error(
                    from,
                    &format!("{} is configured by the server's operator", ch.title),
                )
            }
            Kind::Temporary => return out.error(from, &format!("{} is not registered", ch.title)),
        }
        ch.with_meta(|m| m.kind = Kind::Temporary);
        self.community_effect(
            CommunityEffect::DeleteChannel {
                key: ch.title.to_lowercase(),
            },
            out,
        );
        self.notice(&ch, nick, "drop", "", Some(from), out);
        self.log_action(wall, nick, "drop", &ch.title, "", out);
        self.publish_community(
            CommunityEvent::Gone {
                title: ch.title.to_string(),
            },
            out,
        );
        let _ = self.state.destroy_if_empty(ch.id);
    }

    /// A temporary channel was destroyed here because nobody is in it any more.
    pub(super) fn channel_gone(&self, ch: &Channel, out: &mut Outbox) {
        self.publish_community(
            CommunityEvent::Gone {
                title: ch.title.to_string(),
            },
            out,
        );
    }

    /// Whether the user at `from` (`nick`) may join `ch`, and with what roles: a server
    /// operator or a lasting operator always may, as an operator; otherwise not while
    /// banned, nor without an invitation into an invite-only channel. A member joining
    /// again only makes the channel current.
    ///
    /// # Errors
    /// The ERROR text to answer with.
    pub(super) fn may_join(
        &self,
        wall: SystemTime,
        from: SocketAddr,
        nick: &str,
        ch: &Channel,
    ) -> Result<u8, String> {
        if ch.contains(from) {
            return Ok(0);
        }
        if self.is_server_op(&self.live(), from) {
            return Ok(role::OP);
        }
        let account = self.account_of(from);
        let now_ms = unix_ms(wall);
        ch.with_meta(|m| {
            if account.as_deref().is_some_and(|a| m.is_op_account(a)) {
                return Ok(role::OP);
            }
            if let Some(ban) = m.ban_on(nick, account.as_deref(), now_ms) {
                return Err(if ban.reason.is_empty() {
                    format!("you are banned from {}", ch.title)
                } else {
                    format!("you are banned from {}: {}", ch.title, ban.reason)
                });
            }
            if m.invite_only && !m.take_invite(nick) {
                return Err(format!("{} is invite-only", ch.title));
            }
            Ok(0)
        })
    }

    /// Whether the user at `from` may speak in `ch`; the refusal otherwise.
    pub(super) fn may_speak(&self, from: SocketAddr, ch: &Channel) -> Option<String> {
        if !ch.with_meta(|m| m.moderated) {
            return None;
        }
        if ch.roles(from) & (role::OP | role::VOICE) != 0 || self.may_moderate(from, ch) {
            return None;
        }
        Some(format!(
            "{} is moderated; you need a voice to speak",
            ch.title
        ))
    }

    /// How many created (not configured) channels exist, and how many of them `founder`
    /// (a nickname key) created.
    pub(super) fn created_channels(&self, founder: Option<&str>) -> (usize, usize) {
        let (mut created, mut mine) = (0, 0);
        for ch in self.state.channels() {
            ch.with_meta(|m| {
                if m.kind != Kind::Configured {
                    created += 1;
                    let by = m.founder.as_deref().map(nick_key);
                    if founder.is_some() && by.as_deref() == founder {
                        mine += 1;
                    }
                }
            });
        }
        (created, mine)
    }

    /// The channel titled `title`, made as a temporary one if this server does not know
    /// it (a channel created on another server of a cluster before this one heard of it),
    /// while the limit on created channels allows.
    pub(super) fn known_or_placeholder(&self, title: &str) -> Option<ChannelId> {
        if let Some(id) = self.state.channel_id(title) {
            return Some(id);
        }
        let live = self.live();
        if !valid_title(title, crate::config::MAX_TITLE_LEN)
            || self.created_channels(None).0 >= live.max_created_channels
        {
            return None;
        }
        self.state
            .create_channel(title, Meta::created("", "-", None))
            .ok()
            .map(|c| c.id)
    }
}
