//! The clocks and the open-file limit the load tester needs beyond std. Batched sends use
//! the server's own system-call layer, `udpchat-udp`, and socket options socket2.
//!
//! The clocks are read with `clock_gettime` (through nix, without `unsafe` here) rather than
//! `std::time::Instant`, because Instant can't be turned into a number that another process
//! understands and has no per-thread CPU clock: a publisher in one process writes its send
//! time into the message, and a receiver in another compares it with its own clock.

use nix::time::{clock_gettime, ClockId};

/// A second on the nanosecond clocks.
pub(crate) const SEC: u64 = 1_000_000_000;
/// A millisecond on the nanosecond clocks.
pub(crate) const MS: u64 = 1_000_000;

/// Nanoseconds on `CLOCK_MONOTONIC`: one clock for every process on the machine, so a
/// timestamp written by a publisher in one process is comparable in another.
pub(crate) fn now_ns() -> u64 {
    clock(ClockId::CLOCK_MONOTONIC)
}

/// CPU nanoseconds the calling thread has used.
pub(crate) fn thread_cpu_ns() -> u64 {
    clock(ClockId::CLOCK_THREAD_CPUTIME_ID)
}

fn clock(id: ClockId) -> u64 {
    // Both clocks exist on every Linux the load tester runs on; a failure would be a
    // kernel without them, where 0 at least keeps the arithmetic going.
    clock_gettime(id).map_or(0, |ts| {
        ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64
    })
}

/// Raises the soft open-file limit to the hard one and returns the result (1024, the usual
/// default, if the limit can't be read).
pub(crate) fn raise_nofile_limit() -> u64 {
    rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024)
}

/// As [`raise_nofile_limit`], and if that is under `want`, tries to raise the hard limit
/// to `want` too (only a privileged process may). Multicast members need two sockets
/// each, and a sweep holds all its members in one process. Returns the limit now.
pub(crate) fn raise_nofile_limit_to(want: u64) -> u64 {
    let now = raise_nofile_limit();
    if now >= want {
        return now;
    }
    match rlimit::setrlimit(rlimit::Resource::NOFILE, want, want) {
        Ok(()) => want,
        Err(_) => now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks_move_forward() {
        let (t0, c0) = (now_ns(), thread_cpu_ns());
        let mut x = 0u64;
        for i in 0..1_000_000u64 {
            x = x.wrapping_add(std::hint::black_box(i));
        }
        std::hint::black_box(x);
        assert!(now_ns() > t0);
        assert!(thread_cpu_ns() > c0);
    }

    #[test]
    fn nofile_limit_is_at_least_the_usual_default() {
        assert!(raise_nofile_limit() >= 256);
    }
}
