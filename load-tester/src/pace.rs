//! How publishers and blasters keep their pace: sleeping until a planned time on the shared
//! clock, or, in closed loop, parking until a receiver sees a message come back.

use std::sync::Mutex;
use std::thread::{self, Thread};
use std::time::Duration;

use crate::sys::now_ns;

/// Sleeps until `now_ns() >= t`, spinning only for the last few tens of microseconds.
pub(crate) fn sleep_until(t: u64) {
    loop {
        let now = now_ns();
        if now >= t {
            return;
        }
        let left = t - now;
        if left > 100_000 {
            thread::sleep(Duration::from_nanos(left - 60_000));
        } else {
            thread::yield_now();
        }
    }
}

/// The thread, if any, that parks until woken: a closed-loop publisher or blaster waiting
/// for its deliveries to be counted. The lock is only taken to wake it (when a publisher's
/// own message comes back, or once per receiver round that counted raw deliveries), never
/// per delivery.
#[derive(Debug, Default)]
pub(crate) struct Parked(Mutex<Option<Thread>>);

impl Parked {
    /// The calling thread is the one to wake from now on.
    pub(crate) fn register(&self) {
        if let Ok(mut t) = self.0.lock() {
            *t = Some(thread::current());
        }
    }

    /// No thread is to be woken any more.
    pub(crate) fn clear(&self) {
        if let Ok(mut t) = self.0.lock() {
            *t = None;
        }
    }

    /// Wakes the thread, if one is registered.
    pub(crate) fn wake(&self) {
        if let Ok(t) = self.0.lock() {
            if let Some(t) = t.as_ref() {
                t.unpark();
            }
        }
    }
}
