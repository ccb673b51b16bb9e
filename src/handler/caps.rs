//! The delivery extensions' requests (part 4 of the protocol): `CAPS_REQ`, answered with
//! the caps granted, and `PING`, answered with `PONG` (a sign of life like any datagram).

use super::ctx::{Ctx, Req};
use super::multicast;
use super::refusal::Refusal;
use crate::state::Caps;
use proto::{batch, words, Event, MAX_PING_TOKEN};

/// What a CAPS_REQ word asks for, if the server knows it.
fn parse_cap(word: &str) -> Option<Cap> {
    match word.split_once('=') {
        None if word == "batch" => Some(Cap::Batch(batch::DEFAULT_SIZE as u16)),
        None if word == "multicast" => Some(Cap::Multicast),
        Some(("batch", bytes)) => {
            // A size outside the range is a cap the server does not know: ignored, so
            // that a client never gets batches bigger or smaller than it can take.
            // Digits only: `+600` or ` 600` is not a size a client should rely on.
            if bytes.is_empty() || !bytes.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let n: usize = bytes.parse().ok()?;
            (batch::MIN_SIZE..=batch::MAX_SIZE)
                .contains(&n)
                .then_some(Cap::Batch(n as u16))
        }
        _ => None,
    }
}

enum Cap {
    Batch(u16),
    Multicast,
}

/// `CAPS_REQ`: the caps named replace those granted before; unknown ones are ignored.
/// The answer lists what is granted, `batch` with its size (`batch=1200`). A user that
/// gains `multicast` while in channels is then offered their groups, as after a join;
/// one that loses it goes back to unicast everywhere.
pub(crate) fn caps(cx: &mut Ctx<'_>, rq: &Req, list: &str) {
    let (sh, from) = (cx.sh, rq.from);
    let before = sh.state.caps_of(from);
    let mut caps = Caps::default();
    for cap in words(list).filter_map(parse_cap) {
        match cap {
            Cap::Batch(size) => caps.batch = Some(size),
            Cap::Multicast if sh.config.multicast => caps.multicast = true,
            Cap::Multicast => {}
        }
    }
    sh.state.set_caps(from, caps);
    let mut granted = Vec::new();
    if let Some(size) = caps.batch {
        granted.push(format!("batch={size}"));
    }
    if caps.multicast {
        granted.push("multicast".to_owned());
    }
    cx.out.send(
        from,
        &Event::CapsAck {
            caps: &granted.join(" "),
        },
    );
    match (before.multicast, caps.multicast) {
        (false, true) => multicast::offer_groups(cx, rq.now, from),
        (true, false) => {
            if let Some((_, channels)) = sh.state.nick_and_channels(from) {
                multicast::leave_groups(cx, from, &channels);
            }
        }
        (false, false) | (true, true) => {}
    }
}

/// `PING`: `PONG` with the same token.
pub(crate) fn ping(cx: &mut Ctx<'_>, rq: &Req, token: &str) {
    if token.len() > MAX_PING_TOKEN {
        return cx.refuse(rq.from, Refusal::PingTokenTooLong);
    }
    cx.out.send(rq.from, &Event::Pong { token });
}
