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
        if listed != member_total {
            return Err(format!(
                "users list {listed} memberships, channels hold {member_total}"
            ));
        }
        self.nicks.check(self.users.len())
    }
}
