//! Flag groups that several modes share, flattened into their own flags: how the report is
//! printed, and the server's own figures that the flood, the churn and the soak read while
//! they run.

use std::net::SocketAddr;

use crate::procstat;
use crate::report::{print, Summary};
use crate::scrape::metrics_addr;

/// How a mode shows what it does (`--json`, `--quiet`).
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Output {
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub(crate) json: bool,
    /// No progress lines on stderr.
    #[arg(long)]
    pub(crate) quiet: bool,
}

impl Output {
    /// Prints `report` on stdout, as JSON with `--json`.
    ///
    /// # Errors
    /// If it can't be serialised or written.
    pub(crate) fn print(&self, report: &(impl Summary + ?Sized)) -> anyhow::Result<()> {
        print(report, self.json)
    }
}

/// Where the server's own figures are read (`--server-pid`, `--metrics`).
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ServerFigures {
    /// The server's process id, to read its CPU time, memory and threads from /proc.
    #[arg(long)]
    pub(crate) server_pid: Option<u32>,
    /// The server's metrics endpoint (`http://127.0.0.1:9027/metrics` or `127.0.0.1:9027`),
    /// on loopback, for the server's own counts.
    #[arg(long)]
    pub(crate) metrics: Option<String>,
}

impl ServerFigures {
    /// The metrics endpoint's address, if one is given.
    ///
    /// # Errors
    /// If it does not resolve, or not to loopback.
    pub(crate) fn metrics_addr(&self) -> anyhow::Result<Option<SocketAddr>> {
        let Some(m) = &self.metrics else {
            return Ok(None);
        };
        let addr = metrics_addr(m)?;
        anyhow::ensure!(addr.ip().is_loopback(), "--metrics must be on loopback");
        Ok(Some(addr))
    }

    /// The server's resident memory now, KiB, if its process id is given.
    pub(crate) fn rss_kib(&self) -> Option<u64> {
        self.server_pid.and_then(procstat::rss_kib)
    }
}
