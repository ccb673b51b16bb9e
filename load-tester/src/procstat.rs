//! Readings from `/proc`: a process's CPU time and resident memory, and the kernel's UDP
//! counters, so that server cost and receive-buffer loss are reported, not guessed.

use std::fs;

use serde::{Deserialize, Serialize};

/// CPU nanoseconds used by all live threads of `pid` (sum of `/proc/PID/task/*/schedstat`,
/// which counts in nanoseconds rather than the 10 ms ticks of `/proc/PID/stat`).
pub(crate) fn process_cpu_ns(pid: u32) -> Option<u64> {
    let mut total = 0u64;
    for task in fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let path = task.ok()?.path().join("schedstat");
        // A thread may end between the listing and the read: skip it.
        if let Ok(text) = fs::read_to_string(path) {
            total += text.split_whitespace().next()?.parse::<u64>().ok()?;
        }
    }
    Some(total)
}

/// Resident memory of `pid` in KiB (`VmRSS` of `/proc/PID/status`).
pub(crate) fn rss_kib(pid: u32) -> Option<u64> {
    status_field(pid, "VmRSS:")
}

/// Threads of `pid` (`Threads:` of `/proc/PID/status`).
pub(crate) fn threads(pid: u32) -> Option<u64> {
    status_field(pid, "Threads:")
}

/// The number after `name` in `/proc/PID/status`.
fn status_field(pid: u32, name: &str) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with(name))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The UDP counters of `/proc/net/snmp` that show where datagrams were lost.
#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct UdpCounters {
    /// Datagrams delivered to sockets.
    pub in_datagrams: u64,
    /// Datagrams for a port nobody listens on.
    pub no_ports: u64,
    /// Datagrams dropped because a receive buffer was full.
    pub rcvbuf_errors: u64,
    /// Datagrams dropped because a send buffer was full.
    pub sndbuf_errors: u64,
}

impl UdpCounters {
    /// The machine-wide counters now (zero if they can't be read).
    pub(crate) fn read() -> Self {
        let text = fs::read_to_string("/proc/net/snmp").unwrap_or_default();
        let mut lines = text.lines().filter(|l| l.starts_with("Udp:"));
        let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
            return Self::default();
        };
        let mut c = Self::default();
        for (name, value) in names.split_whitespace().zip(values.split_whitespace()) {
            let v = value.parse().unwrap_or(0);
            match name {
                "InDatagrams" => c.in_datagrams = v,
                "NoPorts" => c.no_ports = v,
                "RcvbufErrors" => c.rcvbuf_errors = v,
                "SndbufErrors" => c.sndbuf_errors = v,
                _ => {}
            }
        }
        c
    }

    /// The counts from `earlier` to `self`.
    pub(crate) fn since(&self, earlier: &Self) -> Self {
        UdpCounters {
            in_datagrams: self.in_datagrams.saturating_sub(earlier.in_datagrams),
            no_ports: self.no_ports.saturating_sub(earlier.no_ports),
            rcvbuf_errors: self.rcvbuf_errors.saturating_sub(earlier.rcvbuf_errors),
            sndbuf_errors: self.sndbuf_errors.saturating_sub(earlier.sndbuf_errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_process() {
        let pid = std::process::id();
        assert!(process_cpu_ns(pid).is_some());
        assert!(rss_kib(pid).unwrap() > 0);
        assert!(threads(pid).unwrap() >= 1);
    }
}
