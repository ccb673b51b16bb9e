//! What operators need to see attacks: counters of logins, failures, lockouts,
//! registrations and path changes (exported by `server::metrics`), next to the structured
//! `tracing` lines at info level that the handler logs for each, with the address.

use std::sync::atomic::{AtomicU64, Ordering};

/// Declares [`Audit`] with one counter per row (`field, metric name, help`), so that a
/// counter and its line on the metrics page are written once.
macro_rules! counters {
    ($($field:ident, $name:literal, $help:literal;)*) => {
        /// Security counters, shared by the workers; relaxed atomics, read only for
        /// reports.
        #[derive(Debug, Default)]
        pub struct Audit {
            $(#[doc = $help] pub $field: AtomicU64,)*
        }

        impl Audit {
            /// Every counter as (metric name, help, value), for the metrics page.
            pub fn samples(&self) -> Vec<(&'static str, &'static str, u64)> {
                vec![$(($name, $help, self.$field.load(Ordering::Relaxed)),)*]
            }
        }
    };
}

counters! {
    logins, "password_logins_total", "Password logins that finished.";
    login_failures, "login_failures_total", "Password logins whose finish did not verify.";
    logins_refused, "logins_refused_total",
        "Password login starts refused by the attempt limits.";
    lockouts, "lockouts_total", "Lockouts of an account for a network prefix.";
    retries, "auth_retries_total", "AUTH_RETRY tokens sent to unproven addresses.";
    registrations, "registrations_total", "Accounts registered.";
    registrations_refused, "registrations_refused_total",
        "Registrations refused (limits, look-alike nicknames).";
    cookies_rejected, "register_cookies_rejected_total",
        "Registration uploads without a valid cookie, dropped.";
    path_challenges, "path_challenges_total",
        "Path challenges sent to protected sessions heard from a new address.";
    path_changes, "path_changes_total", "Protected sessions moved to a validated new address.";
    proofs, "address_proofs_total", "Guests that proved their address (PROVE).";
    proofs_refused, "address_proofs_refused_total",
        "PROVE datagrams whose token did not verify, dropped.";
    hot_list_refused, "unproved_hot_list_refused_total",
        "WATCH_REQs cut short because the guest had not proved its address (its own, its network's or the total limit of unproved hot lists).";
    mail_unproved, "mail_unproved_refused_total",
        "Private messages for users away not kept because the sender had not proved its address.";
    mail_refused, "mail_refused_total",
        "Private messages for users away not kept: the recipient refuses the sender, or the sender's or the box's limit.";
}

impl Audit {
    /// Adds one to `counter`.
    pub fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}
