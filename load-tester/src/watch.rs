//! The server's CPU and memory, read from `/proc` around the phases of a fan-out run
//! (`--server-pid`), summed over the processes of a cluster.

use std::thread;
use std::time::Duration;

use crate::procstat::{process_cpu_ns, rss_kib};
use crate::report::ServerReport;

/// Server CPU and memory readings taken around the phases, summed over the server processes
/// given (the servers of a cluster share the work of one channel).
#[derive(Debug, Default)]
pub(crate) struct ServerWatch {
    pids: Vec<u32>,
    report: ServerReport,
    cpu0: u64,
}

impl ServerWatch {
    /// Watches `pids`, if any, and takes the memory baseline.
    pub(crate) fn new(pids: &[u32]) -> Self {
        let mut w = ServerWatch {
            pids: pids.to_vec(),
            ..Self::default()
        };
        if let Some(&first) = pids.first() {
            w.report.pid = first;
            if pids.len() > 1 {
                w.report.pids = pids.to_vec();
            }
            w.report.rss_before_kib = w.rss();
        }
        w
    }

    fn rss(&self) -> u64 {
        self.pids.iter().map(|&p| rss_kib(p).unwrap_or(0)).sum()
    }

    fn cpu(&self) -> u64 {
        self.pids
            .iter()
            .map(|&p| process_cpu_ns(p).unwrap_or(0))
            .sum()
    }

    /// After the logins of `users` users.
    pub(crate) fn logged_in(&mut self, users: usize) {
        if !self.pids.is_empty() {
            thread::sleep(Duration::from_millis(300));
            self.report.rss_after_login_kib = self.rss();
            let grown = self
                .report
                .rss_after_login_kib
                .saturating_sub(self.report.rss_before_kib);
            self.report.rss_bytes_per_user = (grown * 1024) as f64 / users.max(1) as f64;
        }
    }

    /// After the joins.
    pub(crate) fn joined(&mut self) {
        if !self.pids.is_empty() {
            self.report.rss_after_join_kib = self.rss();
        }
    }

    /// At the start of publishing.
    pub(crate) fn start(&mut self) {
        if !self.pids.is_empty() {
            self.cpu0 = self.cpu();
        }
    }

    /// At the end of publishing: the figures so far.
    pub(crate) fn stop(&mut self) -> Option<ServerReport> {
        if self.pids.is_empty() {
            return None;
        }
        self.report.cpu_ns = self.cpu().saturating_sub(self.cpu0);
        Some(self.report.clone())
    }
}
