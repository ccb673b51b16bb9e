//! Multicast channels (part 4), the session's side: what to do with the `multicast` cap,
//! `MCAST_GROUP` (a first key, or a new one after a member left), every `CHANNEL_DATA`
//! heard on a group (tag, then sequence; what fails is dropped and counted), when to
//! confirm with `MCAST_JOINED` and give up with `MCAST_LEFT`, which group to leave on
//! part, and what `/status` says. No I/O here: listening to a group is an [`Effect`] for
//! the shell, whose sockets are [`crate::groups`]'.
//!
//! Keys change when a member leaves (PROTOCOL.md part 4): MCAST_GROUP names the new key
//! and the first sequence it seals. The old key is taken below that sequence only, and
//! for [`OLD_KEY_FOR`](super::paths::OLD_KEY_FOR) only, so a former member's datagrams
//! count for nothing once the announcement is here; a datagram under the new key that
//! arrives before its announcement is held a moment ([`Held`](super::paths::Held)) and
//! checked when the key comes. A sequence may be at most
//! [`MAX_SEQ_JUMP`](super::paths::MAX_SEQ_JUMP) above the last one taken, plus
//! [`SEQ_RATE`](super::paths::SEQ_RATE) a second since: one datagram far ahead (a
//! member's forgery) can't make the genuine ones that follow look old.
//!
//! Events heard on a group go through [`Session::chat_event`] exactly as the same events
//! by unicast, so both interfaces show the same lines either way. While a channel switches
//! between unicast and its group (from `MCAST_GROUP` until the server has our
//! `MCAST_JOINED`, or back after `MCAST_LEFT`) one event can arrive both ways; `Pairing`
//! (in `paths.rs`) shows each once: an event seen on one path is remembered for a few seconds, and its
//! twin from the other path is consumed silently. Identical events (someone saying "hi"
//! twice) pair up one for one, so none is lost.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use base64::Engine as _;

use super::io::Effect;
use super::machine::{Session, WANTED_CAPS, WANTED_CAPS_MULTICAST};
use super::paths::{Channel, Key, Path};
use crate::text::sanitize;
use proto::channel_data::{KEY_LEN, LOST_AFTER};
use proto::{batch, channel_data, code, words, Event, Request};

/// A confirmed channel whose events still come by unicast this long after MCAST_JOINED
/// went out: the server did not get it, so it is sent again.
const REJOIN_AFTER: Duration = Duration::from_secs(1);
/// Channels with a group at most (a user may be in 64 channels by default): a server that
/// names more groups can't make the client open sockets and threads without end.
const MAX_GROUPS: usize = 64;

impl Session {
    /// The caps asked for after every login.
    pub(super) fn wanted_caps(&self) -> &'static str {
        if self.opts.multicast {
            WANTED_CAPS_MULTICAST
        } else {
            WANTED_CAPS
        }
    }

    /// Forgets every group and leaves them (logged off, connection lost, a new login: the
    /// server tells the groups again after the new CAPS_REQ and JOIN_REQs).
    pub(super) fn mcast_reset(&mut self) {
        for group in std::mem::take(&mut self.mcast.listening) {
            self.effect(Effect::Unlisten(group));
        }
        self.mcast.granted = false;
        self.mcast.channels.clear();
        self.mcast.failed.clear();
        self.mcast.held.clear();
    }

    /// CAPS_ACK: whether multicast was granted.
    pub(super) fn mcast_caps(&mut self, caps: &str) {
        self.mcast.granted = self.opts.multicast && words(caps).any(|c| c == "multicast");
        if !self.mcast.granted {
            self.mcast_reset();
        }
    }

    /// MCAST_GROUP: remember the channel's group and key (sealing from sequence `from`),
    /// and listen to the group. A new key for a channel's group replaces the old one
    /// (module docs).
    pub(super) fn mcast_told(&mut self, told: &Event<'_>, now: Instant) {
        let &Event::McastGroup {
            title,
            group,
            port,
            key: key_b64,
            from,
        } = told
        else {
            return;
        };
        if !self.opts.multicast {
            // Never asked for (--no-multicast): nothing to join.
            return;
        }
        let ip: Option<IpAddr> = group.parse().ok().filter(|ip: &IpAddr| ip.is_multicast());
        let key = base64::engine::general_purpose::STANDARD
            .decode(key_b64)
            .ok()
            .and_then(|k| <[u8; KEY_LEN]>::try_from(k).ok());
        let m = &mut self.mcast;
        let (Some(ip), Some(key), true) = (ip, key, port != 0) else {
            m.drops.malformed += 1;
            return;
        };
        let group = SocketAddr::new(ip, port);
        let lower = title.to_lowercase();
        if !m.channels.contains_key(&lower) && m.channels.len() >= MAX_GROUPS {
            m.drops.malformed += 1;
            return;
        }
        match m.channels.get_mut(&lower) {
            Some(c) if c.group == group && c.key == key => {
                // The server counts us as waiting to confirm again (a repeated join):
                // confirm on the next datagram.
                c.path = Path::Waiting;
            }
            Some(c) if c.group == group => c.rekey(key, from, now),
            _ => {
                let old = m
                    .channels
                    .insert(lower, Channel::new(title, group, key, from, now));
                if let Some(old) = old.filter(|o| o.group != group) {
                    self.mcast_unused(old.group);
                }
            }
        }
        if self.mcast.listening.insert(group) {
            self.mcast.failed.remove(&group);
            self.effect(Effect::Listen(group));
        }
        // What was heard under this key before we had it.
        for datagram in self.mcast.held.take(group, now) {
            // Counted as a bad tag when held; now it is whatever it turns out to be.
            let m = &mut self.mcast;
            m.drops.bad_tag = m.drops.bad_tag.saturating_sub(1);
            if !self.group_check(group, &datagram, now) {
                let m = &mut self.mcast;
                m.drops.bad_tag += 1;
                m.held.hold(group, &datagram, now);
            }
        }
    }

    /// The shell could not listen to `group`: `/status` says why, and the next
    /// MCAST_GROUP naming it tries again.
    pub(super) fn mcast_cannot_listen(&mut self, group: SocketAddr, error: String) {
        self.mcast.listening.remove(&group);
        self.mcast.failed.insert(group, error);
    }

    /// Leaves `group` if no channel of ours uses it any more.
    fn mcast_unused(&mut self, group: SocketAddr) {
        if !self.mcast.channels.values().any(|c| c.group == group) {
            if self.mcast.listening.remove(&group) {
                self.effect(Effect::Unlisten(group));
            }
            self.mcast.failed.remove(&group);
        }
    }

    /// A unicast event (already decoded from `bytes`): whether to show it, or whether it
    /// is the twin of one shown from the group. Leaves the group on PART_ACK.
    pub(super) fn mcast_unicast(&mut self, event: &Event<'_>, bytes: &[u8], now: Instant) -> bool {
        let title = match event {
            Event::PartAck(info) => {
                if let Some(c) = self.mcast.channels.remove(&info.title.to_lowercase()) {
                    self.mcast_unused(c.group);
                }
                return true;
            }
            Event::PublicMsg { title, .. }
            | Event::UserJoins { title, .. }
            | Event::UserParts { title, .. } => title,
            _ => return true,
        };
        let Some(c) = self.mcast.channels.get_mut(&title.to_lowercase()) else {
            return true;
        };
        if !c.pairing.arrive(bytes, false, now) {
            return false;
        }
        c.by_unicast += 1;
        // Confirmed, yet the channel still comes by unicast: the server missed our
        // MCAST_JOINED.
        if c.path == Path::Confirmed
            && c.joined_sent
                .is_some_and(|t| now.saturating_duration_since(t) > REJOIN_AFTER)
        {
            c.joined_sent = Some(now);
            let title = c.title.clone();
            self.send(&Request::McastJoined { title: &title });
        }
        true
    }

    /// A datagram heard on `group`: check it, confirm the channel if that is news, and
    /// show its events as unicast would. One that no key of ours verifies is counted as a
    /// bad tag and held a moment, in case its key is on its way (module docs).
    pub(super) fn group_datagram(&mut self, group: SocketAddr, datagram: &[u8], now: Instant) {
        if !self.group_check(group, datagram, now) {
            let m = &mut self.mcast;
            m.drops.bad_tag += 1;
            m.held.hold(group, datagram, now);
        }
    }

    /// [`group_datagram`](Self::group_datagram) but for what to do when no key verifies:
    /// returns `false` then, and `true` when the datagram was dealt with (shown, or dropped
    /// and counted).
    fn group_check(&mut self, group: SocketAddr, datagram: &[u8], now: Instant) -> bool {
        let me = self.me.nick.clone().unwrap_or_default();
        let m = &mut self.mcast;
        if !m.channels.values().any(|c| c.group == group) {
            // A group we left a moment ago (or never joined): nothing to check it against.
            return true;
        }
        let Ok(data) = channel_data::parse(datagram) else {
            m.drops.malformed += 1;
            return true;
        };
        let Some((c, key)) = m
            .channels
            .values_mut()
            .filter(|c| c.group == group)
            .find_map(|c| c.key_of(&data, now).map(|k| (c, k)))
        else {
            return false;
        };
        if key == Key::Old && c.old.as_ref().is_some_and(|o| data.seq >= o.below) {
            // The old key past its change: the server tags nothing new with it, a former
            // member may.
            m.drops.bad_tag += 1;
            return true;
        }
        if data.seq <= c.last_seq || (key == Key::Current && data.seq < c.key_from) {
            m.drops.old_sequence += 1;
            return true;
        }
        if c.too_far(data.seq, now) {
            m.drops.too_far += 1;
            return true;
        }
        let inners: Vec<&[u8]> = if data.inner.starts_with(&code::BATCH.to_be_bytes()) {
            match batch::events(data.inner) {
                Ok(events) => events.collect(),
                Err(_) => {
                    m.drops.malformed += 1;
                    return true;
                }
            }
        } else {
            vec![data.inner]
        };
        c.took(data.seq, now);
        // Confirmed under the key of the moment only: the server counts us as waiting
        // until we hear the new one.
        let confirm = (c.path != Path::Confirmed && key == Key::Current).then(|| {
            c.path = Path::Confirmed;
            c.joined_sent = Some(now);
            c.title.clone()
        });
        let mut shown: Vec<Vec<u8>> = Vec::new();
        for inner in inners {
            let Ok(event) = Event::decode(inner) else {
                m.drops.malformed += 1;
                continue;
            };
            let (title, own) = match &event {
                Event::PublicMsg { title, .. } => (*title, false),
                Event::UserJoins { title, nick } | Event::UserParts { title, nick } => {
                    // Unicast never tells a user of its own coming and going.
                    (*title, *nick == me)
                }
                // MCAST_PROBE, and whatever else: heard, nothing to show.
                _ => continue,
            };
            if own || !title.eq_ignore_ascii_case(&c.title) {
                continue;
            }
            if c.pairing.arrive(inner, true, now) {
                c.by_group += 1;
                shown.push(inner.to_vec());
            }
        }
        if let Some(title) = confirm {
            self.send(&Request::McastJoined { title: &title });
        }
        for bytes in shown {
            if let Ok(event) = Event::decode(&bytes) {
                self.chat_event(&event, now);
            }
        }
        true
    }

    /// A confirmed group that has gone quiet (no probe for [`LOST_AFTER`]) is given up
    /// with MCAST_LEFT: the server puts us back on unicast.
    pub(super) fn mcast_tick(&mut self, now: Instant) {
        if !self.phase.is_chat() {
            return;
        }
        let mut lost = Vec::new();
        for c in self.mcast.channels.values_mut() {
            let quiet = c
                .last_heard
                .is_none_or(|t| now.saturating_duration_since(t) >= LOST_AFTER);
            if c.path == Path::Confirmed && quiet {
                c.path = Path::Lost;
                lost.push(c.title.clone());
            }
        }
        for title in lost {
            self.send(&Request::McastLeft { title: &title });
        }
    }

    /// `/status`: who we are, where, and how each channel's traffic arrives.
    pub(super) fn show_status(&mut self, now: Instant) {
        let nick = self.me.nick.as_deref().unwrap_or_default();
        let protected = if self.link.sealed {
            " (protected with a password)"
        } else {
            ""
        };
        let mut lines = vec![format!(
            "\tLogged in as {} on {}{protected}",
            sanitize(nick),
            self.server
        )];
        let m = &self.mcast;
        lines.push(match (self.opts.multicast, m.granted) {
            (false, _) => "\tMulticast: not asked for (--no-multicast)".to_string(),
            (true, true) => "\tMulticast: granted by the server".to_string(),
            (true, false) => "\tMulticast: not offered by this server".to_string(),
        });
        // In the order they were joined.
        for title in self.channels.joined.iter().rev() {
            lines.push(match m.channels.get(&title.to_lowercase()) {
                None => format!("\t{}: by unicast", sanitize(title)),
                Some(c) => {
                    let how = match c.path {
                        Path::Confirmed => "by multicast",
                        Path::Waiting => "by unicast (waiting to hear the group)",
                        Path::Lost => "by unicast (the group went quiet)",
                    };
                    let heard = c.last_heard.map_or("never".to_string(), |t| {
                        format!(
                            "{:.1} s ago",
                            now.saturating_duration_since(t).as_secs_f64()
                        )
                    });
                    let failed = m
                        .failed
                        .get(&c.group)
                        .map(|e| format!("; cannot join the group: {e}"))
                        .unwrap_or_default();
                    format!(
                        "\t{}: {how} on group {}; {} events by multicast, {} by unicast; group last heard {heard}{failed}",
                        sanitize(&c.title),
                        c.group,
                        c.by_group,
                        c.by_unicast,
                    )
                }
            });
        }
        let d = m.drops;
        lines.push(format!(
            "\tGroup datagrams dropped: {} (bad tag {}, old sequence {}, too far ahead {}, malformed {})",
            d.bad_tag + d.old_sequence + d.too_far + d.malformed,
            d.bad_tag,
            d.old_sequence,
            d.too_far,
            d.malformed
        ));
        for line in lines {
            self.notice(line);
        }
    }
}
