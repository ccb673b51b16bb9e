//! Channels: `JOIN_REQ`, `PART_REQ`, `LIST_CHANNELS` and `LIST_USERS`.

use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

use super::{unix_ms, Handler, Outbox};
use crate::state::{ChannelId, JoinError, Joined};
use proto::{errors, Event};

impl Handler {
    pub(super) fn join(
        &self,
        now: Instant,
        wall: SystemTime,
        from: SocketAddr,
        title: &str,
        out: &mut Outbox,
    ) {
        let Some(ch) = self.state.channel_by_title(title) else {
            return out.error(from, &format!("no channel named {title}"));
        };
        let id = ch.id;
        let Some(nick) = self.state.nick_of(from) else {
            return;
        };
        // Bans, invitations and lasting operators (part 5).
        let roles = match self.may_join(wall, from, &nick, &ch) {
            Ok(roles) => roles,
            Err(message) => return out.error(from, &message),
        };
        let max = self.live().max_channels_per_user;
        let joined = match self.state.join(from, id, max, roles) {
            Ok(joined) => joined,
            Err(JoinError::TooMany) => return out.error(from, errors::TOO_MANY_CHANNELS),
            Err(JoinError::Full) => return out.error(from, &format!("{} is full", ch.title)),
            Err(JoinError::Gone) => return out.error(from, &format!("no channel named {title}")),
            Err(JoinError::NoUser) => return,
        };
        if let Joined::New(before) = joined {
            let event = Event::UserJoins {
                title: &ch.title,
                nick: &nick,
            };
            self.channel_fanout(id, before, &event, out);
        }
        self.publish_user(now, wall, from, out);
        out.send(from, &Event::JoinAck(self.view_of(ch).info()));
        self.offer_group(now, from, id, out);
    }

    pub(super) fn part(
        &self,
        now: Instant,
        wall: SystemTime,
        from: SocketAddr,
        title: &str,
        out: &mut Outbox,
    ) {
        let Some((nick, channels)) = self.state.nick_and_channels(from) else {
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
        let Some(parted) = self.state.part(from, id) else {
            return; // not a member: no answer
        };
        self.leave_groups(from, &[id]);
        let Some(view) = self.channel_view(id) else {
            return;
        };
        let event = Event::UserParts {
            title: &view.ch.title,
            nick: &nick,
        };
        self.channel_fanout(id, parted.rest, &event, out);
        self.publish_user(now, wall, from, out);
        out.send(from, &Event::PartAck(view.info()));
        if let (true, Some(current)) = (parted.was_current, parted.new_current) {
            if let Some(v) = self.channel_view(current) {
                out.send(from, &Event::JoinAck(v.info()));
            }
        }
        self.left_channel(id, out);
    }

    pub(super) fn list_channels(&self, from: SocketAddr, out: &mut Outbox) {
        for ch in self.state.channels() {
            out.send(from, &Event::ChannelItem(self.view_of(ch).info()));
        }
    }

    pub(super) fn list_users(
        &self,
        now: Instant,
        wall: SystemTime,
        from: SocketAddr,
        out: &mut Outbox,
    ) {
        let Some(id) = self.state.current_channel(from) else {
            return out.error(from, errors::NO_CURRENT_CHANNEL);
        };
        for user in self.state.members_of(id) {
            self.user_item(now, from, &user, out);
        }
        if self.config.cluster {
            let now_ms = unix_ms(wall);
            for user in self.state.remote().members(id) {
                if self.state.address_of(&user.nick).is_none() {
                    self.remote_item(now_ms, from, &user, out);
                }
            }
        }
    }

    /// After channel `id` lost a member here: a temporary channel nobody is in any more
    /// is destroyed (and, in a cluster, the others are told).
    pub(super) fn left_channel(&self, id: ChannelId, out: &mut Outbox) {
        if let Some(ch) = self.state.destroy_if_empty(id) {
            self.channel_gone(&ch, out);
        }
    }
}
