//! Channels: `JOIN_REQ`, `PART_REQ`, `LIST_CHANNELS` and `LIST_USERS`.

use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

use super::{unix_ms, Handler, Outbox};
use crate::protocol::{errors, Event};
use crate::state::{ChannelId, Joined};

impl Handler {
    pub(super) fn join(
        &self,
        now: Instant,
        wall: SystemTime,
        from: SocketAddr,
        title: &str,
        out: &mut Outbox,
    ) {
        let Some(id) = self.state.channel_id(title) else {
            return out.error(from, &format!("no channel named {title}"));
        };
        let Some(nick) = self.state.nick_of(from) else {
            return;
        };
        let Some(joined) = self.state.join(from, id, self.config.max_channels_per_user) else {
            return out.error(from, errors::TOO_MANY_CHANNELS);
        };
        if let Joined::New(before) = joined {
            let ch = self.state.channel(id);
            let event = Event::UserJoins {
                title: &ch.title,
                nick: &nick,
            };
            self.channel_fanout(id, before, &event, out);
        }
        self.publish_user(now, wall, from, out);
        out.send(from, &Event::JoinAck(self.channel_info(id)));
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
        let ch = self.state.channel(id);
        let event = Event::UserParts {
            title: &ch.title,
            nick: &nick,
        };
        self.channel_fanout(id, parted.rest, &event, out);
        self.publish_user(now, wall, from, out);
        out.send(from, &Event::PartAck(self.channel_info(id)));
        if let (true, Some(current)) = (parted.was_current, parted.new_current) {
            out.send(from, &Event::JoinAck(self.channel_info(current)));
        }
    }

    pub(super) fn list_channels(&self, from: SocketAddr, out: &mut Outbox) {
        for id in 0..self.state.channels.len() {
            out.send(
                from,
                &Event::ChannelItem(self.channel_info(id as ChannelId)),
            );
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
            for user in self.state.remote.members(id) {
                if self.state.address_of(&user.nick).is_none() {
                    self.remote_item(now_ms, from, &user, out);
                }
            }
        }
    }
}
