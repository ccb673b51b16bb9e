//! `--metrics ADDR`: the server's counters in the Prometheus text format over HTTP.
//!
//! The exposition is written here by hand: the counters already live in [`Stats`] (plain
//! atomics, cheap on the hot path), and the text format is a few lines per metric; a
//! registry crate would keep a second copy of every counter for no gain.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Sender;

use super::jobs::Job;
use super::send::SenderPool;
use super::stats::{Stats, EVENTS_PER_DATAGRAM_BOUNDS};
use crate::state::State;

/// What the metrics page reads.
pub(crate) struct Sources {
    /// The shared state (users, channel members).
    pub state: Arc<State>,
    /// The counters.
    pub stats: Arc<Stats>,
    /// Worker queues, for their depth.
    pub workers: Vec<Sender<Job>>,
    /// The sender pool, for its queues' depth.
    pub senders: SenderPool,
    /// The effect threads' queues and counters.
    pub effects: super::effects::Effects,
    /// The cluster, if the server is part of one.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
    /// The channels' multicast groups (empty without multicast).
    pub groups: Arc<crate::multicast::Groups>,
    /// The security counters.
    pub audit: Arc<crate::handler::audit::Audit>,
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn metric(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, u64)]) {
    let _ = writeln!(out, "# HELP udpchat_{name} {help}");
    let _ = writeln!(out, "# TYPE udpchat_{name} {kind}");
    for (labels, value) in samples {
        let _ = writeln!(out, "udpchat_{name}{labels} {value}");
    }
}

/// The metrics page, in the Prometheus text format (version 0.0.4).
pub(crate) fn render(src: &Sources) -> String {
    let s = src.stats.snapshot();
    let mut out = String::new();
    let one = |v: u64| vec![(String::new(), v)];
    metric(
        &mut out,
        "users",
        "gauge",
        "Logged-in users.",
        &one(src.state.user_count() as u64),
    );
    metric(
        &mut out,
        "channels",
        "gauge",
        "Channels (configured and created).",
        &one(src.state.channel_count() as u64),
    );
    let members: Vec<(String, u64)> = src
        .state
        .channels()
        .iter()
        .map(|c| {
            (
                format!("{{channel=\"{}\"}}", escape(&c.title)),
                c.len() as u64,
            )
        })
        .collect();
    metric(
        &mut out,
        "channel_members",
        "gauge",
        "Members per channel.",
        &members,
    );
    metric(
        &mut out,
        "datagrams_received_total",
        "counter",
        "Datagrams received.",
        &one(s.datagrams_in),
    );
    metric(
        &mut out,
        "bytes_received_total",
        "counter",
        "Bytes received.",
        &one(s.bytes_in),
    );
    metric(
        &mut out,
        "datagrams_sent_total",
        "counter",
        "Datagrams handed to the kernel.",
        &one(s.datagrams_out),
    );
    metric(
        &mut out,
        "bytes_sent_total",
        "counter",
        "Bytes handed to the kernel.",
        &one(s.bytes_out),
    );
    metric(
        &mut out,
        "events_sent_total",
        "counter",
        "Events handed to the kernel: replies, classic deliveries, and each event inside a BATCH.",
        &one(s.events_out),
    );
    events_per_datagram(&mut out, &s);
    let drops = vec![
        ("{reason=\"queue_full\"}".to_string(), s.dropped_queue_full),
        (
            "{reason=\"rate_limited\"}".to_string(),
            s.dropped_rate_limited,
        ),
        (
            "{reason=\"reply_withheld\"}".to_string(),
            s.replies_withheld,
        ),
        ("{reason=\"send_error\"}".to_string(), s.send_errors),
        ("{reason=\"auth\"}".to_string(), src.state.auth_rejected()),
    ];
    metric(
        &mut out,
        "dropped_total",
        "counter",
        "Datagrams dropped, by reason.",
        &drops,
    );
    unproved_metrics(&mut out, src.state.budgets());
    metric(
        &mut out,
        "sweep_logoffs_total",
        "counter",
        "Users logged off by the idle sweep.",
        &one(s.sweep_logoffs),
    );
    let mut depths: Vec<(String, u64)> = src
        .workers
        .iter()
        .enumerate()
        .map(|(i, q)| (format!("{{queue=\"worker-{i}\"}}"), q.len() as u64))
        .collect();
    depths.extend(
        src.senders
            .depths()
            .into_iter()
            .enumerate()
            .map(|(i, n)| (format!("{{queue=\"sender-{i}\"}}"), n as u64)),
    );
    depths.push((
        "{queue=\"store\"}".to_string(),
        src.effects.store_depth() as u64,
    ));
    if let Some(sink) = src.effects.community() {
        depths.push((
            "{queue=\"community-store\"}".to_string(),
            sink.depth() as u64,
        ));
    }
    metric(
        &mut out,
        "queue_depth",
        "gauge",
        "Items waiting in each queue.",
        &depths,
    );
    let es = src.effects.stats();
    metric(
        &mut out,
        "effects_refused_total",
        "counter",
        "Effects (account reads and writes, leases) refused because their queue was full.",
        &one(es.refused.load(Ordering::Relaxed)),
    );
    metric(
        &mut out,
        "store_errors_total",
        "counter",
        "Account reads and writes that failed in the store.",
        &one(es.store_errors.load(Ordering::Relaxed)),
    );
    metric(
        &mut out,
        "protected_sessions",
        "gauge",
        "Users logged in with a password (their datagrams are sealed).",
        &one(src.state.sealers().len() as u64),
    );
    metric(
        &mut out,
        "unproved_hot_list_entries",
        "gauge",
        "Hot-list entries held by guests that have not proved their address (bounded by --unproved-hot-lists-total).",
        &one(src.state.unproved_watch_entries() as u64),
    );
    for (name, help, value) in src.audit.samples() {
        metric(&mut out, name, "counter", help, &one(value));
    }
    if !src.groups.is_empty() {
        metric(
            &mut out,
            "multicast_datagrams_sent_total",
            "counter",
            "CHANNEL_DATA datagrams handed to the kernel for the groups (also in datagrams_sent_total).",
            &one(s.group_datagrams_out),
        );
        let mut listeners = Vec::new();
        for (_, g) in src.groups.all() {
            let c = g.counts();
            let title = escape(&g.title);
            listeners.push((
                format!("{{channel=\"{title}\",state=\"confirmed\"}}"),
                c.confirmed as u64,
            ));
            listeners.push((
                format!("{{channel=\"{title}\",state=\"pending\"}}"),
                c.pending as u64,
            ));
        }
        metric(
            &mut out,
            "multicast_listeners",
            "gauge",
            "Members per channel hearing it on its group (confirmed) or told the group and not confirmed yet (pending).",
            &listeners,
        );
    }
    if let Some(sink) = src.effects.community() {
        let cs = &sink.stats;
        metric(
            &mut out,
            "community_refused_total",
            "counter",
            "Part-5 effects (stored channels, bans, history, kept messages, orders for users) refused because their queue was full.",
            &one(cs.thread.refused.load(Ordering::Relaxed)),
        );
        metric(
            &mut out,
            "community_store_errors_total",
            "counter",
            "Part-5 reads and writes that failed in the store.",
            &one(cs.thread.store_errors.load(Ordering::Relaxed)),
        );
        metric(
            &mut out,
            "audit_records_total",
            "counter",
            "Moderation and operator actions written to the audit log.",
            &one(cs.audited.load(Ordering::Relaxed)),
        );
    }
    if let Some(c) = &src.cluster {
        cluster_metrics(&mut out, c, src.state.remote().len());
    }
    out
}

/// The events-per-datagram histogram, in the Prometheus histogram form (cumulative
/// buckets, `_sum` and `_count`).
/// What the budgets of unproved guests let through and held back (`crate::budget`).
fn unproved_metrics(out: &mut String, budgets: &crate::budget::Budgets) {
    metric(
        out,
        "unproved_guests",
        "gauge",
        "Guests whose address is not proved, held to a budget.",
        &[(String::new(), budgets.len() as u64)],
    );
    metric(
        out,
        "unproved_sent_bytes_total",
        "counter",
        "Bytes sent to addresses not proved.",
        &[(String::new(), budgets.sent_bytes())],
    );
    let (mut datagrams, mut bytes) = (Vec::new(), Vec::new());
    for kind in crate::budget::Budgets::kinds() {
        let (d, b) = budgets.held(kind);
        let label = format!("{{budget=\"{}\"}}", kind.label());
        datagrams.push((label.clone(), d));
        bytes.push((label, b));
    }
    metric(
        out,
        "unproved_held_datagrams_total",
        "counter",
        "Datagrams to addresses not proved held back, by the budget that held them.",
        &datagrams,
    );
    metric(
        out,
        "unproved_held_bytes_total",
        "counter",
        "Bytes to addresses not proved held back, by the budget that held them.",
        &bytes,
    );
}

fn events_per_datagram(out: &mut String, s: &super::stats::StatsSnapshot) {
    let name = "udpchat_events_per_datagram";
    let _ = writeln!(
        out,
        "# HELP {name} Events carried by each datagram sent (1 for a reply or a classic delivery; more for a BATCH)."
    );
    let _ = writeln!(out, "# TYPE {name} histogram");
    let mut cumulative = 0;
    for (i, n) in s.events_per_datagram.iter().enumerate() {
        cumulative += n;
        let le = EVENTS_PER_DATAGRAM_BOUNDS
            .get(i)
            .map_or_else(|| "+Inf".to_string(), u64::to_string);
        let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
    }
    let _ = writeln!(out, "{name}_sum {}", s.events_out);
    let _ = writeln!(out, "{name}_count {cumulative}");
}

fn cluster_metrics(out: &mut String, c: &crate::cluster::Cluster, remote_users: usize) {
    let one = |v: u64| vec![(String::new(), v)];
    let get = |a: &std::sync::atomic::AtomicU64| one(a.load(Ordering::Relaxed));
    let st = &c.stats;
    metric(
        out,
        "cluster_connected",
        "gauge",
        "1 while connected to Redis, 0 while serving local users only.",
        &one(u64::from(c.is_connected())),
    );
    metric(
        out,
        "cluster_remote_users",
        "gauge",
        "Users on the other servers of the cluster.",
        &one(remote_users as u64),
    );
    let counters: [(&str, &str, &std::sync::atomic::AtomicU64); 11] = [
        (
            "cluster_published_total",
            "Events published to Redis.",
            &st.published,
        ),
        (
            "cluster_publish_dropped_total",
            "Events dropped: queue full or Redis unreachable.",
            &st.publish_dropped,
        ),
        (
            "cluster_received_total",
            "Events from other servers applied.",
            &st.received,
        ),
        (
            "cluster_malformed_total",
            "Malformed events from Redis dropped.",
            &st.malformed,
        ),
        (
            "cluster_duplicates_total",
            "Duplicate or stale events dropped.",
            &st.duplicates,
        ),
        (
            "cluster_too_old_total",
            "Events dropped as too old to be news (replayed, or clocks apart).",
            &st.too_old,
        ),
        (
            "cluster_gaps_total",
            "Events found missing by sequence number.",
            &st.gaps,
        ),
        (
            "cluster_local_only_logins_total",
            "Logins decided without Redis.",
            &st.local_only_logins,
        ),
        (
            "cluster_lease_conflicts_total",
            "Leases found held by another server on renewal.",
            &st.lease_conflicts,
        ),
        (
            "cluster_connects_total",
            "Connections to Redis established.",
            &st.connects,
        ),
        (
            "cluster_servers_lost_total",
            "Servers found dead and dropped.",
            &st.servers_lost,
        ),
    ];
    for (name, help, value) in counters {
        metric(out, name, "counter", help, &get(value));
    }
}

/// Serves the page on `http` until `stop` is set; any path answers with the metrics.
pub(crate) fn run_metrics(http: tiny_http::Server, src: Sources, stop: Arc<AtomicBool>) {
    let content_type = tiny_http::Header::from_bytes(
        &b"Content-Type"[..],
        &b"text/plain; version=0.0.4; charset=utf-8"[..],
    )
    .expect("a valid static header");
    while !stop.load(Ordering::Relaxed) {
        match http.recv_timeout(Duration::from_millis(100)) {
            Ok(Some(request)) => {
                let page = render(&src);
                let response =
                    tiny_http::Response::from_string(page).with_header(content_type.clone());
                if let Err(e) = request.respond(response) {
                    tracing::debug!(error = %e, "metrics response failed");
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "metrics listener failed; metrics off");
                return;
            }
        }
    }
}
