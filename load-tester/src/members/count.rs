//! What one event means for the member that got it: acknowledgements move its status on,
//! PUBLIC_MSGs are counted and their latency taken from the send time written in the text,
//! USER_JOINS/USER_PARTS only note that the server is still busy with membership changes.
//!
//! An event is a datagram of its own or an entry of a BATCH (part 4), counted as if it had
//! come alone, whether it came to the member's own socket or from its channel's group.

use std::sync::atomic::Ordering;

use proto::{code, errors, Event, Request};

use super::shared::{Shared, CAPS, CONFIRMED, JOINED, LOGGED_IN, PROVED, TOLD};
use crate::hist::Hists;
use crate::text::{public_fields, sent_ns_and_publisher, sent_ns_of, RAW_SENDER};

/// What a receiver counts in one round of events, added to the shared counters at its end.
#[derive(Debug, Default)]
pub(super) struct Tally {
    /// PUBLIC_MSGs from the server.
    pub(super) public: u64,
    /// Datagrams (unicast or from a group) that carried them.
    pub(super) public_datagrams: u64,
    /// PUBLIC_MSGs from a raw blaster.
    pub(super) raw: u64,
    /// USER_JOINS and USER_PARTS.
    pub(super) membership: u64,
}

/// Where an event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Via {
    /// The member's own socket: every kind of event counts.
    Unicast,
    /// Its channel's group: only deliveries and membership notices count.
    Group,
}

/// Handles one event for member `i`, received at `now`. Returns an MCAST_GROUP that came
/// by unicast, for the receiver to open the group socket it names.
///
/// PUBLIC_MSGs, millions a second, take a short path over the bytes (the load tester's own
/// texts are ASCII): at ten times the kernel's datagram rate, a full decode of every event
/// would make the receiver, not the server, the thing measured.
pub(super) fn one_event<'a>(
    shared: &Shared,
    i: usize,
    bytes: &'a [u8],
    now: u64,
    t: &mut Tally,
    hists: &mut Hists,
    via: Via,
) -> Option<Event<'a>> {
    let c = &shared.counters;
    if let Some((title, sender, text)) = public_fields(bytes) {
        if sender == RAW_SENDER.as_bytes() {
            t.raw += 1;
            if let Some(sent_ns) = sent_ns_of(text) {
                let lat = now.saturating_sub(sent_ns) / 1000;
                hists.raw.saturating_record(lat.max(1));
            }
            return None;
        }
        if via == Via::Unicast && shared.has(i, CONFIRMED) {
            // The group's copy counts; the server has not heard our MCAST_JOINED.
            c.group
                .unicast_after_confirm
                .fetch_add(1, Ordering::Relaxed);
            if let Ok(title) = std::str::from_utf8(title) {
                let joined = Request::McastJoined { title }.to_bytes();
                let _ = shared.send(i, &joined);
            }
            return None;
        }
        t.public += 1;
        match sent_ns_and_publisher(text) {
            Some((sent_ns, publisher)) => {
                let lat = (now.saturating_sub(sent_ns) / 1000).max(1);
                hists.all.saturating_record(lat);
                // Kept apart only when the channel holds both kinds (--mixed).
                if shared.mixed {
                    if shared.batch[i] {
                        hists.batch.saturating_record(lat);
                    } else {
                        hists.classic.saturating_record(lat);
                    }
                }
                own_message_back(shared, i, publisher);
            }
            None => {
                c.garbage.fetch_add(1, Ordering::Relaxed);
            }
        }
        return None;
    }
    // Membership notices only count (filling a channel of 10,000 brings 50 million).
    if bytes.starts_with(&code::USER_JOINS.to_be_bytes())
        || bytes.starts_with(&code::USER_PARTS.to_be_bytes())
    {
        t.membership += 1;
        return None;
    }
    let decoded = Event::decode(bytes);
    if via == Via::Group {
        if decoded.is_err() {
            c.garbage.fetch_add(1, Ordering::Relaxed);
        }
        return None;
    }
    let bit = match decoded {
        Ok(Event::LoginAck { .. }) => {
            // Prove the address at once, before anything big is sent to it.
            if !shared.has(i, PROVED) {
                let _ = shared.send(i, &Request::ProveReq.to_bytes());
            }
            LOGGED_IN
        }
        Ok(Event::ProveToken { token }) => {
            let _ = shared.send(i, &Request::Prove { token }.to_bytes());
            return None;
        }
        Ok(Event::Proved) => PROVED,
        Ok(Event::Error { message })
            if message == errors::UNIMPLEMENTED
                && shared.has(i, LOGGED_IN)
                && !shared.has(i, PROVED) =>
        {
            // A server without proofs of address sends everything anyway.
            PROVED
        }
        Ok(Event::JoinAck(_)) => JOINED,
        Ok(Event::CapsAck { .. }) => CAPS,
        Ok(e @ Event::McastGroup { .. }) => {
            shared.status[i].fetch_or(TOLD, Ordering::Relaxed);
            return Some(e);
        }
        Ok(Event::Error { message }) => {
            c.errors.fetch_add(1, Ordering::Relaxed);
            if message == errors::PLEASE_LOG_IN {
                c.expired.fetch_add(1, Ordering::Relaxed);
            }
            return None;
        }
        Ok(_) => return None,
        Err(_) => {
            c.garbage.fetch_add(1, Ordering::Relaxed);
            return None;
        }
    };
    shared.status[i].fetch_or(bit, Ordering::Relaxed);
    None
}

/// A publisher that sees its own message come back may send the next one (closed loop).
fn own_message_back(shared: &Shared, member: usize, publisher: u32) {
    if shared.global[member] != publisher as usize {
        return;
    }
    let f = &shared.in_flight[member];
    if f.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_sub(1))
        .is_ok()
    {
        shared.publisher_thread.wake();
    }
}
