//! What a flood found: its rate, what it cost the server, what the server answered, and
//! how the steady user fared; the human summary.

use clap::ValueEnum;
use serde::{Deserialize, Serialize};

use super::args::Kind;
use super::sender::Replies;
use super::steady::Window;
use crate::procstat::UdpCounters;
use crate::report::Summary;

/// The server's side, from `/proc` (with --server-pid).
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct ServerCost {
    /// CPU nanoseconds of the server from the flood's start to the end of the stretch after
    /// it (--after), so that the queued work a flood leaves is counted; the steady user's
    /// own messages are in it too, a small share beside a flood.
    pub cpu_ns: u64,
    /// `cpu_ns` per flood datagram sent.
    pub cpu_ns_per_datagram: f64,
    /// Resident memory before the flood, KiB.
    pub rss_before_kib: u64,
    /// Resident memory at the end of the after-flood stretch, KiB.
    pub rss_after_kib: u64,
    /// The most resident memory seen along the way, KiB.
    pub rss_max_kib: u64,
}

/// The server's own counts, from its metrics (with --metrics).
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct ServerCounts {
    /// Logged-in users before the flood (the steady user among them).
    pub users_before: u64,
    /// Logged-in users after it (the steady user among them).
    pub users_after: u64,
    /// Datagrams the server read during the flood and the stretch after it.
    pub datagrams_received: u64,
    /// Of those, dropped because their source was over its rate.
    pub rate_limited: u64,
    /// Dropped because a worker's queue was full.
    pub queue_full: u64,
    /// Replies withheld from addresses not logged in.
    pub replies_withheld: u64,
}

/// The steady user's answers, before, during and after the flood.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct SteadyUser {
    /// Its nickname.
    pub nick: String,
    /// The channel it talks in.
    pub channel: String,
    /// Milliseconds between its messages.
    pub interval_ms: u64,
    /// Messages sent before the flood (the baseline).
    pub before: Window,
    /// Messages sent while the flood was being sent.
    pub during: Window,
    /// Messages sent after it.
    pub after: Window,
    /// ERRORs it got (none expected).
    pub errors: u64,
    /// Whether its messages came back after the flood.
    pub served: bool,
    /// Seconds from the end of the flood to the first answer to a message sent after it:
    /// how long the server took to serve the user again.
    pub served_again_after_s: Option<f64>,
}

/// The report of a flood.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct FloodReport {
    /// The server.
    pub server: String,
    /// What the flood datagrams were.
    pub kind: Option<Kind>,
    /// Distinct source addresses.
    pub addresses: usize,
    /// Datagrams per second asked for (0: as fast as possible).
    pub rate: f64,
    /// Datagrams the kernel accepted.
    pub sent: u64,
    /// Datagrams the kernel refused.
    pub refused: u64,
    /// Seconds of sending.
    pub secs: f64,
    /// `sent / secs`.
    pub sent_per_s: f64,
    /// Passes over the addresses (`sent / addresses`).
    pub passes: f64,
    /// CPU nanoseconds of the flood's sending thread per datagram.
    pub sender_cpu_ns_per_datagram: f64,
    /// The machine's UDP counters over the flood and the stretch after it: `rcvbuf_errors`
    /// are datagrams the kernel dropped at a full receive buffer (mostly the server's).
    pub udp: UdpCounters,
    /// What the server answered to the flood's addresses.
    pub replies: Replies,
    /// The server's CPU and memory (with --server-pid).
    pub server_cost: Option<ServerCost>,
    /// The server's counts (with --metrics).
    pub server_counts: Option<ServerCounts>,
    /// The steady user.
    pub steady: SteadyUser,
}

impl Summary for FloodReport {
    fn summary(&self) -> String {
        let kind = self
            .kind
            .and_then(|k| k.to_possible_value())
            .map(|v| v.get_name().to_string())
            .unwrap_or_default();
        let mut s = format!(
            "flood: {} {kind} datagrams from {} distinct source addresses ({:.2} passes) to {} in {:.2} s: {:.0} datagrams/s{}\n",
            self.sent,
            self.addresses,
            self.passes,
            self.server,
            self.secs,
            self.sent_per_s,
            note(self.refused, "refused by the kernel")
        );
        s.push_str(&format!(
            "flood sender: {:.0} CPU ns/datagram; kernel UDP drops at full receive buffers: {}\n",
            self.sender_cpu_ns_per_datagram, self.udp.rcvbuf_errors
        ));
        let r = &self.replies;
        s.push_str(&format!(
            "server answered the flood: {} LOGIN_ACK ({} distinct sources logged in), {} server full, {} please log in, {} other errors, {} other\n",
            r.login_acks, r.distinct_logged_in, r.server_full, r.please_log_in, r.other_errors, r.other
        ));
        match &self.server_cost {
            Some(c) => s.push_str(&format!(
                "server: {:.0} CPU ns per flood datagram ({:.2} CPU s up to the end of the after-flood stretch); RSS {} KiB before, {} KiB after ({:+} KiB), {} KiB at most\n",
                c.cpu_ns_per_datagram,
                c.cpu_ns as f64 / 1e9,
                c.rss_before_kib,
                c.rss_after_kib,
                c.rss_after_kib as i64 - c.rss_before_kib as i64,
                c.rss_max_kib
            )),
            None => s.push_str("server: CPU and memory not measured (give --server-pid)\n"),
        }
        if let Some(m) = &self.server_counts {
            s.push_str(&format!(
                "server metrics: users {} before, {} after; {} datagrams received, {} rate-limited, {} dropped at full queues, {} replies withheld\n",
                m.users_before, m.users_after, m.datagrams_received, m.rate_limited, m.queue_full, m.replies_withheld
            ));
        }
        let st = &self.steady;
        s.push_str(&format!(
            "steady user {} in {}, a message every {} ms:\n",
            st.nick, st.channel, st.interval_ms
        ));
        for (name, w) in [
            ("before", &st.before),
            ("during", &st.during),
            ("after", &st.after),
        ] {
            s.push_str(&format!(
                "  {name:<6} the flood: {:>5}/{:<5} answered ({:5.1} %), round trip p50 {} µs, p99 {} µs, max {} µs\n",
                w.answered,
                w.sent,
                w.answered_pct(),
                w.p50_us,
                w.p99_us,
                w.max_us
            ));
        }
        s.push_str(&format!(
            "steady user still served: {}{}{}",
            if st.served { "yes" } else { "NO" },
            st.served_again_after_s
                .map(|t| format!(" (first answer {t:.2} s after the flood)"))
                .unwrap_or_default(),
            note(st.errors, "ERRORs to it")
        ));
        s
    }
}

/// ` (N what)` when there were any, for the end of a summary line; else nothing.
fn note(n: u64, what: &str) -> String {
    if n > 0 {
        format!(" ({n} {what})")
    } else {
        String::new()
    }
}
