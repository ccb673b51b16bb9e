//! The invariants between users, nicknames, channels and sessions, checked by tests and
//! the fuzzer after every step.

use super::State;

impl State {
    /// Checks the invariants between users, nicknames, channels and sessions; returns the
    /// first broken one. For tests and fuzzing: it locks every channel in turn and walks
    /// every user.
    ///
    /// # Errors
    /// The first invariant found broken, described.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut member_total = 0;
        for ch in self.channels() {
            let snapshot = ch.snapshot();
            member_total += snapshot.len();
            for m in snapshot.iter() {
                let addr = m.addr;
                let found = self.users.read(addr, |u| {
                    if !u.channels.contains(&ch.id) {
                        return Err(format!("{} in {} does not list it", u.nick, ch.title));
                    }
                    if m.batch != u.caps.batch.unwrap_or(0) {
                        return Err(format!("{}'s batch size in {} is stale", u.nick, ch.title));
                    }
                    Ok(())
                });
                found.unwrap_or_else(|| {
                    Err(format!("{addr} is in {} but not logged in", ch.title))
                })?;
            }
        }
        let users = self.users();
        let mut listed = 0;
        for (addr, u) in &users {
            listed += u.channels.len();
            if self.nicks.holder(&u.nick) != Some(*addr) {
                return Err(format!("{} is not in the nickname index", u.nick));
            }
            if let Some(id) = u.session {
                if self.sessions.addr_of(id) != Some(*addr) {
                    return Err(format!("{}'s session is not bound to it", u.nick));
                }
            }
        }
        // The quota of unproved guests' hot lists holds exactly their entries.
        let mut by_network = std::collections::HashMap::new();
        for (addr, u) in users
            .iter()
            .filter(|(_, u)| !u.proved && !u.watching.is_empty())
        {
            by_network
                .entry(crate::accounts::limits::Prefix::of(*addr))
                .or_insert((0, *addr))
                .0 += u.watching.len();
        }
        let unproved: usize = by_network.values().map(|(n, _)| n).sum();
        if unproved != self.watch_quota.total() || by_network.len() != self.watch_quota.networks() {
            return Err(format!(
                "unproved guests hold {unproved} hot-list entries in {} networks, the quota \
                 counts {} in {}",
                by_network.len(),
                self.watch_quota.total(),
                self.watch_quota.networks()
            ));
        }
        for (n, addr) in by_network.values() {
            if *n != self.watch_quota.of_network(*addr) {
                return Err(format!("the quota of {addr}'s network is not {n}"));
            }
        }
        if listed != member_total {
            return Err(format!(
                "users list {listed} memberships, channels hold {member_total}"
            ));
        }
        self.nicks.check(self.users.len())
    }
}
