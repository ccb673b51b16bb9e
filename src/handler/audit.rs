//! What operators need to see attacks: counters of logins, failures, lockouts,
//! registrations and path changes (exported by `server::metrics`), next to the structured
//! `tracing` lines at info level that the handler logs for each, with the address.

use std::sync::atomic::{AtomicU64, Ordering};

/// Security counters, shared by the workers; relaxed atomics, read only for reports.
#[derive(Debug, Default)]
pub struct Audit {
    /// Password logins that finished.
    pub logins: AtomicU64,
    /// Password logins whose finish did not verify (a wrong password, or a forgery).
    pub login_failures: AtomicU64,
    /// Login starts refused by the limits (`accounts::limits`).
    pub logins_refused: AtomicU64,
    /// Lockouts of an account for a network prefix that began.
    pub lockouts: AtomicU64,
    /// AUTH_RETRY tokens sent (login starts from addresses not yet proven).
    pub retries: AtomicU64,
    /// Accounts registered.
    pub registrations: AtomicU64,
    /// Registrations refused: over the limits, or a look-alike of a registered nickname.
    pub registrations_refused: AtomicU64,
    /// Registration uploads without a valid cookie (forged or replayed), dropped.
    pub cookies_rejected: AtomicU64,
    /// Path challenges sent to a protected session heard from a new address.
    pub path_challenges: AtomicU64,
    /// Protected sessions moved to a validated new address.
    pub path_changes: AtomicU64,
}

impl Audit {
    /// Adds one to `counter`.
    pub fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Every counter as (metric name, help, value), for the metrics page.
    pub fn samples(&self) -> Vec<(&'static str, &'static str, u64)> {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        vec![
            (
                "password_logins_total",
                "Password logins that finished.",
                get(&self.logins),
            ),
            (
                "login_failures_total",
                "Password logins whose finish did not verify.",
                get(&self.login_failures),
            ),
            (
                "logins_refused_total",
                "Password login starts refused by the attempt limits.",
                get(&self.logins_refused),
            ),
            (
                "lockouts_total",
                "Lockouts of an account for a network prefix.",
                get(&self.lockouts),
            ),
            (
                "auth_retries_total",
                "AUTH_RETRY tokens sent to unproven addresses.",
                get(&self.retries),
            ),
            (
                "registrations_total",
                "Accounts registered.",
                get(&self.registrations),
            ),
            (
                "registrations_refused_total",
                "Registrations refused (limits, look-alike nicknames).",
                get(&self.registrations_refused),
            ),
            (
                "register_cookies_rejected_total",
                "Registration uploads without a valid cookie, dropped.",
                get(&self.cookies_rejected),
            ),
            (
                "path_challenges_total",
                "Path challenges sent to protected sessions heard from a new address.",
                get(&self.path_challenges),
            ),
            (
                "path_changes_total",
                "Protected sessions moved to a validated new address.",
                get(&self.path_changes),
            ),
        ]
    }
}
