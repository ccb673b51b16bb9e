//! The handler's fixed limits: how much one request may ask for and how long a request
//! may wait for an effect. The limits an operator sets live in [`crate::settings::Live`].

use std::time::Duration;

/// The most nicknames one user's hot list holds.
pub(crate) const MAX_WATCH: usize = 100;
/// The most USER_ITEMs one WHO_REQ answers with.
pub(crate) const MAX_WHO: usize = 100;
/// Requests waiting for an effect's result at once, per kind; past it new ones are
/// refused, so a flood can't grow the tables.
pub(crate) const MAX_WAITING: usize = 4096;
/// How long a request waits for an effect's result before it is given up (the threads
/// that carry effects out answer well within this: Redis requests time out after 500 ms).
pub(crate) const WAIT_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest ban, in seconds (ten years); 0 means until lifted.
pub(crate) const MAX_BAN_SECONDS: u64 = 315_360_000;
/// The largest member limit (`+l`).
pub(crate) const MAX_LIMIT: u32 = 1_000_000;
/// The most masks one user may refuse kept messages from (`MAIL_REFUSE`); the list is
/// sent in one `MAIL_REFUSALS` of at most 20 × 65 bytes.
pub(crate) const MAX_REFUSALS: usize = 20;
