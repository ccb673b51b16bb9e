//! What a thread that sends datagrams as fast as it is let did: the raw blasters of a
//! fan-out run and the flood count the same things and time themselves the same way.

use crate::sys::{now_ns, thread_cpu_ns};

/// What one sending thread did.
#[derive(Debug, Default, Clone)]
pub(crate) struct Sent {
    /// Datagrams the kernel accepted.
    pub(crate) sent: u64,
    /// Datagrams the kernel refused (skipped, not retried).
    pub(crate) refused: u64,
    /// CPU nanoseconds of the sending thread. On loopback this includes the kernel's
    /// delivery into the receiving sockets, as the server's CPU time does.
    pub(crate) cpu_ns: u64,
    /// Wall time spent sending, seconds.
    pub(crate) secs: f64,
}

/// When a sending thread started, on the wall clock and on its own CPU clock.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Start {
    /// `now_ns` at the start: what deadlines and planned send times count from.
    pub(crate) ns: u64,
    cpu_ns: u64,
}

impl Start {
    /// The calling thread's start, now.
    pub(crate) fn now() -> Self {
        Start {
            ns: now_ns(),
            cpu_ns: thread_cpu_ns(),
        }
    }
}

impl Sent {
    /// Records the time since `start`, which the calling thread took.
    pub(crate) fn stop(&mut self, start: Start) {
        self.cpu_ns = thread_cpu_ns() - start.cpu_ns;
        self.secs = (now_ns() - start.ns) as f64 / 1e9;
    }
}
