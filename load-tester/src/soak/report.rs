//! What a soak found: the samples taken along the way, the totals and checks, and the
//! human summary.

use serde::{Deserialize, Serialize};

use crate::report::Summary;

/// One sample of the server and of the traffic since the previous sample.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sample {
    /// Seconds since the steady load started.
    pub t: f64,
    /// Server resident memory, KiB.
    pub rss_kib: Option<u64>,
    /// Server threads.
    pub threads: Option<u64>,
    /// Logged-in users by the server's metrics.
    pub users: Option<u64>,
    /// Members of all channels by the server's metrics.
    pub channel_members: Option<u64>,
    /// Clients the driver holds logged in (not departing).
    pub clients: usize,
    /// Vanished clients the server may still hold (not yet swept).
    pub vanished_pending: usize,
    /// Deliveries expected since the previous sample.
    pub expected: u64,
    /// Of those, received.
    pub received: u64,
    /// Server drops since the start, all reasons (from metrics).
    pub server_drops: Option<u64>,
    /// Sum of the server's queue depths (from metrics).
    pub queue_depth: Option<u64>,
}

/// What the soak found.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SoakReport {
    /// Seconds of steady load.
    pub duration_s: f64,
    /// Steady population.
    pub clients: usize,
    /// Channels.
    pub channels: usize,
    /// Public messages per second asked for.
    pub rate: f64,
    /// Replacements per second asked for.
    pub churn: f64,
    /// Moves per second asked for.
    pub moves: f64,
    /// The grace after a departure, ms.
    pub grace_ms: u64,
    /// Seconds the initial population took to log in and join.
    pub setup_s: f64,
    /// The samples.
    pub samples: Vec<Sample>,
    /// RSS (KiB) at the first and last sample, and the largest seen.
    pub rss_first_kib: Option<u64>,
    /// See `rss_first_kib`.
    pub rss_last_kib: Option<u64>,
    /// See `rss_first_kib`.
    pub rss_max_kib: Option<u64>,
    /// Threads at the first and last sample, and the most seen.
    pub threads_first: Option<u64>,
    /// See `threads_first`.
    pub threads_last: Option<u64>,
    /// See `threads_first`.
    pub threads_max: Option<u64>,
    /// Public messages sent.
    pub messages_sent: u64,
    /// Deliveries expected (members in the channel, by their acknowledgements, at publish).
    pub deliveries_expected: u64,
    /// Of those, received.
    pub deliveries_received: u64,
    /// `1 - received/expected`, in per cent.
    pub loss_pct: f64,
    /// Clients that logged in (initial population and replacements).
    pub logins: u64,
    /// Clients that logged off cleanly.
    pub logged_off: u64,
    /// Of those, whose logoff the server confirmed.
    pub logoffs_confirmed: u64,
    /// Clients that vanished.
    pub vanished: u64,
    /// Vanished clients checked after the idle timeout (WHOIS answered).
    pub vanished_checked: u64,
    /// Vanished clients still logged in when checked: must be 0.
    pub vanished_still_there: u64,
    /// Channel moves (PART then JOIN) completed.
    pub moves_done: u64,
    /// PUBLIC_MSGs a logged-off client got that were published after the server confirmed
    /// its logoff: must be 0.
    pub departed_delivered: u64,
    /// PUBLIC_MSGs for a parted channel published after its PART_ACK arrived: must be 0.
    pub parted_delivered: u64,
    /// PUBLIC_MSGs a logged-off client got that were published more than the grace after
    /// the LOGOFF was sent but before the server confirmed it: the server had not yet
    /// processed the LOGOFF, so they are not wrong, but show how far its queues lagged.
    pub departed_after_grace: u64,
    /// The same for parted channels (published after PART + grace, before the PART_ACK).
    pub parted_after_grace: u64,
    /// PUBLIC_MSGs a departed or parted client got that were published within the grace.
    pub departed_in_flight: u64,
    /// Longest time from a LOGOFF to the server's confirmation, ms.
    pub logoff_confirm_max_ms: f64,
    /// Longest time from a PART to its PART_ACK, ms.
    pub part_confirm_max_ms: f64,
    /// Datagrams other than PUBLIC_MSG a logged-off client got after its logoff was
    /// confirmed (USER_JOINS, USER_PARTS, ...): must be 0.
    pub departed_other: u64,
    /// Requests resent for want of an answer.
    pub retries: u64,
    /// ERRORs other than the expected `please log in` and WHOIS answers.
    pub errors: u64,
    /// Users by the metrics after all clients logged off at the end (should be 0).
    pub users_after_logoff: Option<u64>,
    /// Departed-but-delivered and vanished checks passed.
    pub clean: bool,
}

pub(super) fn finish(r: &mut SoakReport, unchecked: u64) {
    let rss: Vec<u64> = r.samples.iter().filter_map(|x| x.rss_kib).collect();
    r.rss_first_kib = rss.first().copied();
    r.rss_last_kib = rss.last().copied();
    r.rss_max_kib = rss.iter().copied().max();
    let th: Vec<u64> = r.samples.iter().filter_map(|x| x.threads).collect();
    r.threads_first = th.first().copied();
    r.threads_last = th.last().copied();
    r.threads_max = th.iter().copied().max();
    r.loss_pct = if r.deliveries_expected > 0 {
        100.0 * (1.0 - r.deliveries_received as f64 / r.deliveries_expected as f64)
    } else {
        0.0
    };
    r.clean = r.departed_delivered == 0
        && r.parted_delivered == 0
        && r.departed_other == 0
        && r.vanished_still_there == 0
        && unchecked == 0;
}

impl Summary for SoakReport {
    fn summary(&self) -> String {
        let opt = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
        let mut s = format!(
            "soak: {:.0} s, {} clients in {} channels, {} msg/s, churn {}/s, moves {}/s (setup {:.1} s)\n",
            self.duration_s, self.clients, self.channels, self.rate, self.churn, self.moves, self.setup_s
        );
        s.push_str("| t (s) | RSS (KiB) | threads | users | clients | vanished pending | delivered / expected |\n|---:|---:|---:|---:|---:|---:|---:|\n");
        for x in &self.samples {
            s.push_str(&format!(
                "| {:.0} | {} | {} | {} | {} | {} | {} / {} |\n",
                x.t,
                opt(x.rss_kib),
                opt(x.threads),
                opt(x.users),
                x.clients,
                x.vanished_pending,
                x.received,
                x.expected
            ));
        }
        s.push_str(&format!(
            "RSS first/last/max: {} / {} / {} KiB; threads first/last/max: {} / {} / {}\n",
            opt(self.rss_first_kib),
            opt(self.rss_last_kib),
            opt(self.rss_max_kib),
            opt(self.threads_first),
            opt(self.threads_last),
            opt(self.threads_max)
        ));
        s.push_str(&format!(
            "messages {}, deliveries {} of {} expected (loss {:.4} %)\n",
            self.messages_sent, self.deliveries_received, self.deliveries_expected, self.loss_pct
        ));
        s.push_str(&format!(
            "replacements: {} logged in, {} logged off ({} confirmed), {} vanished ({} checked, {} still there); {} moves; {} retries, {} errors\n",
            self.logins,
            self.logged_off,
            self.logoffs_confirmed,
            self.vanished,
            self.vanished_checked,
            self.vanished_still_there,
            self.moves_done,
            self.retries,
            self.errors
        ));
        s.push_str(&format!(
            "departed-but-delivered (published after the server confirmed the departure): {} after logoff, {} after part, {} other datagrams after logoff; users after final logoff: {}\n",
            self.departed_delivered,
            self.parted_delivered,
            self.departed_other,
            opt(self.users_after_logoff)
        ));
        s.push_str(&format!(
            "in flight: {} published within {} ms of the departure; {} after logoff and {} after part published later than that but before the server confirmed (longest confirmation: logoff {:.0} ms, part {:.0} ms)\n",
            self.departed_in_flight,
            self.grace_ms,
            self.departed_after_grace,
            self.parted_after_grace,
            self.logoff_confirm_max_ms,
            self.part_confirm_max_ms
        ));
        s.push_str(if self.clean {
            "verdict: clean\n"
        } else {
            "verdict: FAILED\n"
        });
        s
    }
}
