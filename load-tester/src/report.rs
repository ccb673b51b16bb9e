//! Results: the figures of a fan-out run as one serialisable [`Report`], its human
//! summary, the latency summary of an hdrhistogram, and how every mode prints its report.

use std::fmt::Write as _;
use std::io::Write as _;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

pub use crate::procstat::UdpCounters;

/// A report of any mode: printed as JSON (`--json`) or as a summary for people.
pub(crate) trait Summary: Serialize {
    /// The summary for people.
    fn summary(&self) -> String;
}

/// Prints `report` on stdout: as JSON if `json`, else its summary.
///
/// # Errors
/// If it can't be serialised or written.
pub(crate) fn print(report: &(impl Summary + ?Sized), json: bool) -> anyhow::Result<()> {
    let out = if json {
        serde_json::to_string_pretty(report)?
    } else {
        report.summary()
    };
    writeln!(std::io::stdout().lock(), "{out}")?;
    Ok(())
}

/// `a / b`, or 0 when there is no `b` to divide by.
pub(crate) fn per(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

/// The share of `expected` that was not `received`, in per cent (0 when none was expected).
pub(crate) fn loss_pct(expected: u64, received: u64) -> f64 {
    per(
        100.0 * expected.saturating_sub(received) as f64,
        expected as f64,
    )
}

/// How a round of requests went.
#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize)]
pub struct RoundStats {
    /// Members asked.
    pub total: usize,
    /// Members that got their answer.
    pub done: usize,
    /// Requests sent, retries included.
    pub attempts: u64,
    /// Wall time of the round.
    pub secs: f64,
}

impl RoundStats {
    /// Answers per second.
    pub(crate) fn rate(&self) -> f64 {
        per(self.done as f64, self.secs)
    }
}

/// Latency percentiles in microseconds.
#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize)]
pub struct Latency {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest.
    pub max: u64,
}

impl Latency {
    /// Summarises `h`.
    pub(crate) fn of(h: &Histogram<u64>) -> Self {
        Latency {
            count: h.len(),
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// The raw blaster's figures.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct RawReport {
    /// Datagrams the kernel accepted.
    pub sent: u64,
    /// Datagrams the receivers got.
    pub received: u64,
    /// From the first send to the last arrival.
    pub secs: f64,
    /// Received per second: the kernel's limit on this machine in this run.
    pub deliveries_per_s: f64,
    /// Blaster CPU nanoseconds per datagram sent.
    pub cpu_ns_per_datagram: f64,
    /// Server deliveries/s divided by the raw figure.
    pub server_ratio: f64,
    /// Kernel UDP counters over the raw phase.
    pub udp: UdpCounters,
    /// Deliveries the datagrams sent should have made (multicast: one per member of the
    /// group's channel).
    #[serde(default)]
    pub expected: u64,
    /// Planned messages per second (0: as fast as it can).
    #[serde(default)]
    pub rate: f64,
    /// From the intended send time to arrival, when paced.
    #[serde(default)]
    pub latency_us: Option<Latency>,
}

/// How the multicast members fared, with `--multicast`.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct MulticastReport {
    /// Members that asked for multicast and joined.
    pub members: usize,
    /// Of those, how many were told a group (their channel has one).
    #[serde(default)]
    pub told: usize,
    /// Of those, how many heard their group and confirmed before publishing.
    pub confirmed: usize,
    /// Seconds the confirmations took after the joins.
    pub confirm_s: f64,
    /// What they heard on their groups during publishing (all members together).
    #[serde(flatten)]
    pub heard: GroupCounts<u64>,
}

/// What the multicast members heard on their groups: counted as it comes in
/// (`GroupCounts<AtomicU64>`, among the members' counters), reported as numbers.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupCounts<T> {
    /// CHANNEL_DATA datagrams accepted.
    pub group_datagrams: T,
    /// CHANNEL_DATA dropped for a bad tag, an old sequence, or garbage.
    pub bad_tag: T,
    /// See `bad_tag`.
    pub old_sequence: T,
    /// PUBLIC_MSGs that still came by unicast to a member that had confirmed its group (not
    /// counted: the group's copy is; MCAST_JOINED is sent again).
    pub unicast_after_confirm: T,
    /// Group sockets that could not be opened or registered.
    pub group_errors: T,
}

/// The same fan-out through a redis-server's PUBLISH to TCP subscribers (`--compare-redis`).
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct RedisReport {
    /// The redis-server's address.
    pub addr: String,
    /// Its process id (from `INFO server`), whose CPU is read from /proc.
    pub pid: u32,
    /// Subscribers: as many as the channel has members.
    pub subscribers: usize,
    /// PUBLISH commands sent.
    pub messages_sent: u64,
    /// Messages times subscribers.
    pub deliveries_expected: u64,
    /// Messages the subscribers received.
    pub deliveries_received: u64,
    /// Share of expected deliveries not received, percent.
    pub loss_pct: f64,
    /// From the first PUBLISH to the last message received.
    pub secs: f64,
    /// Deliveries received per second.
    pub deliveries_per_s: f64,
    /// From the intended send time to arrival.
    pub latency_us: Latency,
    /// redis-server CPU nanoseconds over the phase (all its threads).
    pub cpu_ns: u64,
    /// Those divided by deliveries received.
    pub cpu_ns_per_delivery: f64,
    /// The udpchat server's deliveries/s in this run divided by Redis's.
    pub server_ratio: f64,
    /// Subscribers Redis dropped (a slow subscriber over its output buffer limit).
    pub disconnected: usize,
}

/// The server's cost, read from `/proc` with `--server-pid`.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct ServerReport {
    /// The server's process id (the first one given).
    pub pid: u32,
    /// Every process id given, when more than one: the figures below are then their sums.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pids: Vec<u32>,
    /// CPU nanoseconds over the publishing phase.
    pub cpu_ns: u64,
    /// Those divided by deliveries received.
    pub cpu_ns_per_delivery: f64,
    /// Those divided by messages sent (with multicast, the figure that should not grow
    /// with the channel).
    #[serde(default)]
    pub cpu_ns_per_message: f64,
    /// Those divided by the raw blaster's per datagram, when `--raw` ran.
    pub cpu_ratio_to_raw: Option<f64>,
    /// Resident memory before the logins, KiB.
    pub rss_before_kib: u64,
    /// After the logins, KiB.
    pub rss_after_login_kib: u64,
    /// After the joins, KiB.
    pub rss_after_join_kib: u64,
    /// RSS growth over the logins divided by users logged in, bytes.
    pub rss_bytes_per_user: f64,
}

/// Everything one run measured.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Report {
    /// Simulated clients.
    pub clients: usize,
    /// Channels they were spread over.
    pub channels: usize,
    /// Members of the largest channel.
    pub channel_size: usize,
    /// Publishing members.
    pub publishers: usize,
    /// Members logged in with a password (their traffic sealed), out of `clients`.
    #[serde(default)]
    pub protected: usize,
    /// Messages per second per publisher (0: as fast as possible).
    pub rate: f64,
    /// The batch size the clients asked for (`--batch`), if they did.
    #[serde(default)]
    pub batch: Option<u16>,
    /// Whether only every other client asked for batches (`--mixed`).
    #[serde(default)]
    pub mixed: bool,
    /// Text bytes per message.
    pub message_size: usize,
    /// Processes the clients were spread over.
    pub processes: usize,
    /// The servers the clients were spread over (client i on server i mod n).
    #[serde(default)]
    pub servers: Vec<std::net::SocketAddr>,
    /// The login round.
    pub login: RoundStats,
    /// The join round.
    pub join: RoundStats,
    /// Time waited for the server's USER_JOINS to stop.
    pub settle_s: f64,
    /// From the first JOIN_REQ to the last USER_JOINS received: filling the channels.
    #[serde(default)]
    pub fill_s: f64,
    /// Planned length of the publishing phase.
    pub duration_s: f64,
    /// From the planned start to the last delivery.
    pub publish_s: f64,
    /// SEND_PUBLICs sent.
    pub messages_sent: u64,
    /// Messages times members of their channel.
    pub deliveries_expected: u64,
    /// PUBLIC_MSGs received (events: those inside batches count one each).
    pub deliveries_received: u64,
    /// Datagrams that carried them.
    #[serde(default)]
    pub datagrams_received: u64,
    /// Deliveries per datagram.
    #[serde(default)]
    pub events_per_datagram: f64,
    /// Share of expected deliveries not received, percent.
    pub loss_pct: f64,
    /// Deliveries received per second of the publishing phase.
    pub deliveries_per_s: f64,
    /// From the intended send time to arrival.
    pub latency_us: Latency,
    /// With `--mixed`: the latency of the members that asked for batches.
    #[serde(default)]
    pub latency_batch_us: Option<Latency>,
    /// With `--mixed`: the latency of the classic members.
    #[serde(default)]
    pub latency_classic_us: Option<Latency>,
    /// Closed loop: windows restarted after losses.
    pub stalls: u64,
    /// Rated: the publisher's largest lag behind its plan, microseconds.
    pub max_publish_lag_us: u64,
    /// ERRORs received.
    pub errors: u64,
    /// `ERROR please log in` received (members the server had logged off).
    pub expired: u64,
    /// Kernel UDP counters over the publishing phase.
    pub udp: UdpCounters,
    /// The raw blaster, with `--raw`.
    pub raw: Option<RawReport>,
    /// The raw multicast blaster, with `--raw --multicast`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_multicast: Option<RawReport>,
    /// The multicast members, with `--multicast`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multicast: Option<MulticastReport>,
    /// The server's cost, with `--server-pid`.
    pub server: Option<ServerReport>,
    /// The same fan-out through Redis PUBLISH, with `--compare-redis`.
    #[serde(default)]
    pub redis_pubsub: Option<RedisReport>,
}

impl Report {
    /// Fills the derived figures from the counts.
    pub(crate) fn finish(&mut self) {
        self.loss_pct = loss_pct(self.deliveries_expected, self.deliveries_received);
        self.deliveries_per_s = per(self.deliveries_received as f64, self.publish_s);
        self.events_per_datagram = per(
            self.deliveries_received as f64,
            self.datagrams_received as f64,
        );
        for raw in [&mut self.raw, &mut self.raw_multicast]
            .into_iter()
            .flatten()
        {
            raw.server_ratio = per(self.deliveries_per_s, raw.deliveries_per_s);
        }
        if let Some(r) = &mut self.redis_pubsub {
            r.server_ratio = per(self.deliveries_per_s, r.deliveries_per_s);
        }
        let raw_cpu = self.raw.as_ref().map(|r| r.cpu_ns_per_datagram);
        if let Some(s) = &mut self.server {
            s.cpu_ns_per_delivery = per(s.cpu_ns as f64, self.deliveries_received as f64);
            s.cpu_ns_per_message = per(s.cpu_ns as f64, self.messages_sent as f64);
            s.cpu_ratio_to_raw = raw_cpu
                .filter(|r| *r > 0.0)
                .map(|r| s.cpu_ns_per_delivery / r);
        }
    }
}

impl Summary for Report {
    fn summary(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} clients in {} process(es), {} channel(s) (largest {} members), {} publisher(s) at {}{}",
            self.clients,
            self.processes,
            self.channels,
            self.channel_size,
            self.publishers,
            if self.rate > 0.0 {
                format!("{} msg/s each", self.rate)
            } else {
                "full speed (closed loop)".to_string()
            },
            match (self.batch, self.mixed) {
                (Some(b), false) => format!("; clients ask for batch={b}"),
                (Some(b), true) => format!("; every other client asks for batch={b}"),
                (None, _) => String::new(),
            }
        );
        if self.protected > 0 {
            let _ = writeln!(
                s,
                "{} of them protected (password login; their datagrams sealed both ways)",
                self.protected
            );
        }
        if self.servers.len() > 1 {
            let list: Vec<String> = self.servers.iter().map(|a| a.to_string()).collect();
            let _ = writeln!(
                s,
                "spread over {} servers: {}",
                self.servers.len(),
                list.join(", ")
            );
        }
        let _ = writeln!(
            s,
            "login: {}/{} in {:.2} s ({:.0}/s, {} requests); join: {}/{} in {:.2} s ({:.0}/s, {} requests); settled in {:.2} s",
            self.login.done,
            self.login.total,
            self.login.secs,
            self.login.rate(),
            self.login.attempts,
            self.join.done,
            self.join.total,
            self.join.secs,
            self.join.rate(),
            self.join.attempts,
            self.settle_s
        );
        if self.fill_s > 0.0 {
            let _ = writeln!(
                s,
                "channels filled (first join to last USER_JOINS) in {:.2} s",
                self.fill_s
            );
        }
        let _ = writeln!(
            s,
            "messages sent: {}, deliveries expected: {}, received: {}, loss: {:.3}%",
            self.messages_sent, self.deliveries_expected, self.deliveries_received, self.loss_pct
        );
        let l = &self.latency_us;
        let _ = writeln!(
            s,
            "server deliveries/s: {:.0} over {:.2} s; latency from intended send (us): p50 {} p90 {} p99 {} p99.9 {} max {}",
            self.deliveries_per_s, self.publish_s, l.p50, l.p90, l.p99, l.p999, l.max
        );
        if self.datagrams_received > 0 {
            let _ = writeln!(
                s,
                "datagrams carrying them: {} ({:.2} events per datagram)",
                self.datagrams_received, self.events_per_datagram
            );
        }
        for (who, l) in [
            ("batch members", &self.latency_batch_us),
            ("classic members", &self.latency_classic_us),
        ] {
            if let Some(l) = l {
                let _ = writeln!(
                    s,
                    "latency of {who} (us): p50 {} p90 {} p99 {} p99.9 {} max {}",
                    l.p50, l.p90, l.p99, l.p999, l.max
                );
            }
        }
        let _ = writeln!(
            s,
            "kernel UDP during publishing: in {} rcvbuf-errors {} sndbuf-errors {} no-ports {}; errors received {} (please log in: {})",
            self.udp.in_datagrams,
            self.udp.rcvbuf_errors,
            self.udp.sndbuf_errors,
            self.udp.no_ports,
            self.errors,
            self.expired
        );
        if let Some(r) = &self.raw {
            let _ = writeln!(
                s,
                "raw sendmmsg: {} sent, {} received in {:.2} s = {:.0}/s, {:.0} CPU ns/datagram (rcvbuf-errors {}); server/raw deliveries/s = {:.3}",
                r.sent, r.received, r.secs, r.deliveries_per_s, r.cpu_ns_per_datagram, r.udp.rcvbuf_errors, r.server_ratio
            );
            if let Some(l) = &r.latency_us {
                let _ = writeln!(
                    s,
                    "raw paced at {} msg/s: latency (us) p50 {} p90 {} p99 {} p99.9 {} max {}",
                    r.rate, l.p50, l.p90, l.p99, l.p999, l.max
                );
            }
        }
        if let Some(r) = &self.redis_pubsub {
            let l = &r.latency_us;
            let _ = writeln!(
                s,
                "redis PUBLISH ({}, pid {}) to {} subscribers: {} sent, {} of {} received ({:.3}% lost, {} disconnected) in {:.2} s = {:.0}/s, {:.0} redis CPU ns/delivery; server/redis deliveries/s = {:.3}; latency (us) p50 {} p99 {} max {}",
                r.addr, r.pid, r.subscribers, r.messages_sent, r.deliveries_received, r.deliveries_expected,
                r.loss_pct, r.disconnected, r.secs, r.deliveries_per_s, r.cpu_ns_per_delivery, r.server_ratio,
                l.p50, l.p99, l.max
            );
        }
        if let Some(r) = &self.raw_multicast {
            let _ = writeln!(
                s,
                "raw multicast: {} datagrams sent, {} deliveries received (of {}) in {:.2} s = {:.0}/s, {:.0} CPU ns/datagram (rcvbuf-errors {}); server/raw-multicast deliveries/s = {:.3}",
                r.sent, r.received, r.expected, r.secs, r.deliveries_per_s, r.cpu_ns_per_datagram, r.udp.rcvbuf_errors, r.server_ratio
            );
        }
        if let Some(m) = &self.multicast {
            let _ = writeln!(
                s,
                "multicast: {} members asked, {} were told a group, {} confirmed in {:.2} s; {} CHANNEL_DATA accepted while publishing, dropped: bad tag {}, old sequence {}; unicast after confirming {}; group socket errors {}",
                m.members, m.told, m.confirmed, m.confirm_s, m.heard.group_datagrams, m.heard.bad_tag, m.heard.old_sequence, m.heard.unicast_after_confirm, m.heard.group_errors
            );
        }
        if let Some(v) = &self.server {
            let _ = writeln!(s, "server CPU per message: {:.0} ns", v.cpu_ns_per_message);
            let _ = writeln!(
                s,
                "server pid {}: {:.0} CPU ns/delivery{}; RSS {} -> {} KiB after login ({:.0} B/user), {} KiB after join",
                if v.pids.is_empty() {
                    v.pid.to_string()
                } else {
                    let pids: Vec<String> = v.pids.iter().map(u32::to_string).collect();
                    format!("{} (summed)", pids.join("+"))
                },
                v.cpu_ns_per_delivery,
                v.cpu_ratio_to_raw
                    .map(|r| format!(" ({r:.3} x raw)"))
                    .unwrap_or_default(),
                v.rss_before_kib,
                v.rss_after_login_kib,
                v.rss_bytes_per_user,
                v.rss_after_join_kib
            );
        }
        s
    }
}

/// A sweep's reports, one per channel size: a table.
impl Summary for [Report] {
    fn summary(&self) -> String {
        let mut s = String::from(
            "| members | server deliveries/s | events/datagram | raw deliveries/s | server/raw | loss % | server CPU ns/delivery | raw CPU ns/datagram |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for r in self {
            let raw = r.raw.as_ref();
            let _ = writeln!(
                s,
                "| {} | {:.0} | {:.2} | {} | {} | {:.3} | {} | {} |",
                r.channel_size,
                r.deliveries_per_s,
                r.events_per_datagram,
                raw.map(|x| format!("{:.0}", x.deliveries_per_s))
                    .unwrap_or_default(),
                raw.map(|x| format!("{:.3}", x.server_ratio))
                    .unwrap_or_default(),
                r.loss_pct,
                r.server
                    .as_ref()
                    .map(|x| format!("{:.0}", x.cpu_ns_per_delivery))
                    .unwrap_or_default(),
                raw.map(|x| format!("{:.0}", x.cpu_ns_per_datagram))
                    .unwrap_or_default(),
            );
        }
        s
    }
}
