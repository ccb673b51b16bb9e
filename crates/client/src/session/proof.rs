//! A guest session proves its address after every login: `PROVE_REQ`, then `PROVE` with the
//! token the server sent (part 3 of the protocol). Until then the server holds what it sends
//! a guest to the small budget of an address anyone could have forged, so a busy channel or
//! a long list may be cut short; once proved, nothing is held back. A password session is
//! proved by its login already and never asks. A server that does not know the request
//! answers `ERROR unimplemented` (after the answers to CAPS_REQ and HELLO, which go out
//! first), which is not shown; a lost answer is asked for again, a few times.

use std::time::Instant;

use super::machine::{Session, CAPS_WAIT};
use super::state::Proof;
use proto::{errors, Event, Request};

/// How many times PROVE_REQ goes out before the session stops asking.
const TRIES: u32 = 3;

impl Session {
    /// Asks for a proof token, unless the session is protected (proved by its login).
    pub(super) fn prove(&mut self, now: Instant) {
        if self.link.sealed {
            self.link.proof = Proof::Proved;
            return;
        }
        self.link.proof = Proof::Asked {
            since: now,
            tries: 1,
        };
        self.send(&Request::ProveReq);
    }

    /// The answers to the proof exchange; `true` when the event was one (nothing shows).
    pub(super) fn proof_event(&mut self, event: &Event<'_>) -> bool {
        match event {
            Event::ProveToken { token } if matches!(self.link.proof, Proof::Asked { .. }) => {
                self.send(&Request::Prove { token });
                true
            }
            Event::ProveToken { .. } => true,
            Event::Proved => {
                self.link.proof = Proof::Proved;
                true
            }
            Event::Error { message }
                if *message == errors::UNIMPLEMENTED
                    && matches!(self.link.proof, Proof::Asked { .. }) =>
            {
                self.link.proof = Proof::Unsupported;
                true
            }
            _ => false,
        }
    }

    /// A proof not answered in time is asked for again, then given up.
    pub(super) fn proof_tick(&mut self, now: Instant) {
        if let Proof::Asked { since, tries } = self.link.proof {
            if now.saturating_duration_since(since) < CAPS_WAIT {
                return;
            }
            if tries >= TRIES || !self.phase.is_chat() {
                self.link.proof = Proof::Unsupported;
            } else {
                self.link.proof = Proof::Asked {
                    since: now,
                    tries: tries + 1,
                };
                self.send(&Request::ProveReq);
            }
        }
    }

    /// When the proof asked for is next due to be looked at.
    pub(super) fn proof_deadline(&self) -> Option<Instant> {
        match self.link.proof {
            Proof::Asked { since, .. } => Some(since + CAPS_WAIT),
            _ => None,
        }
    }
}
