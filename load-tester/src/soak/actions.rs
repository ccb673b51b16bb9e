//! What the driver does to the population: publishing, moving clients between channels,
//! replacing departing ones, and the periodic keepalives and retries.

use proto::Request;

use super::client::{probe, Asked, Phase, Vanished, RETRY_NS};
use super::driver::Soak;
use crate::sys::{now_ns, SEC};
use crate::text::stamp;

impl Soak<'_> {
    /// Keepalives, retries and closing lingering sockets.
    pub(super) fn housekeeping(&mut self, now: u64) {
        let mut to_close = Vec::new();
        let server = self.args.server;
        let mut retries = 0;
        let ka = self.keepalive_ns();
        for (&g, c) in self.clients.iter_mut() {
            match c.phase {
                Phase::Departed => {
                    if now >= c.close_ns {
                        to_close.push(g);
                    } else if c.left.last().is_some_and(|l| l.confirmed_ns.is_none())
                        && c.asked.overdue(now)
                    {
                        // Still unconfirmed: resend the LOGOFF with its probe.
                        let _ = c.socket.send_to(&Request::Logoff.to_bytes(), server);
                        let _ = c.socket.send_to(&probe(), server);
                        c.asked.again(now);
                        retries += 1;
                    }
                    continue;
                }
                Phase::LoggingIn | Phase::Proving | Phase::Joining | Phase::Parting
                    if c.asked.overdue(now) =>
                {
                    let title = self.args.title(c.stay.channel);
                    let old = c
                        .left
                        .last()
                        .map_or(title.clone(), |l| self.args.title(l.stay.channel));
                    if c.phase == Phase::Parting && c.asked.tries >= 2 {
                        // The server answers no PART for a channel the client is not in, so
                        // a lost PART_ACK would be waited for forever: the part happened.
                        c.phase = Phase::Joining;
                    }
                    let req = match c.phase {
                        Phase::LoggingIn => Request::Login { nick: &c.nick }.to_bytes(),
                        Phase::Proving => Request::ProveReq.to_bytes(),
                        Phase::Joining => Request::Join { title: &title }.to_bytes(),
                        _ => Request::Part { title: &old }.to_bytes(),
                    };
                    let _ = c.socket.send_to(&req, server);
                    c.asked.again(now);
                    retries += 1;
                }
                _ => {}
            }
            if now >= c.next_keepalive_ns {
                let _ = c.socket.send_to(&Request::StillHere.to_bytes(), server);
                c.next_keepalive_ns = now + ka;
            }
        }
        self.report.retries += retries;
        for g in to_close {
            self.close(g);
        }
        // The checker keeps itself alive too, and asks about vanished clients that are due.
        let _ = self
            .checker
            .send_to(&Request::StillHere.to_bytes(), self.args.server);
        for v in self.vanished.iter_mut() {
            if now < v.due_ns {
                break;
            }
            if v.asked_ns.is_none_or(|a| now > a + RETRY_NS) {
                let _ = self
                    .checker
                    .send_to(&Request::Whois { nick: &v.nick }.to_bytes(), server);
                v.asked_ns = Some(now);
            }
        }
    }

    /// A random active client publishes a message to its channel; every member is expected to get it.
    pub(super) fn publish(&mut self) {
        let Some(g) = self.random_active() else {
            return;
        };
        let Some(c) = self.clients.get(&g) else {
            return;
        };
        self.seq += 1;
        let now = now_ns();
        let t = stamp(self.seq, now);
        let _ = c.socket.send_to(
            &Request::SendPublic { text: &t }.to_bytes(),
            self.args.server,
        );
        self.report.messages_sent += 1;
        self.period.0 += self.members[c.stay.channel].len() as u64;
    }

    /// A random active client parts its channel and joins another.
    pub(super) fn move_one(&mut self) {
        let Some(g) = self.random_active() else {
            return;
        };
        let to = self.rng.below(self.args.channels);
        let Some(c) = self.clients.get(&g) else {
            return;
        };
        let from = c.stay.channel;
        // Not back into a channel it left recently: deliveries there are checked against
        // the part, and a rejoin would make them look like deliveries after it.
        if to == from || c.left.iter().any(|l| l.stay.channel == to) {
            return;
        }
        self.remove_member(g, from);
        let now = now_ns();
        let title = self.args.title(from);
        let c = self.clients.get_mut(&g).expect("present");
        let _ = c.socket.send_to(
            &Request::Part { title: &title }.to_bytes(),
            self.args.server,
        );
        c.left.retain(|l| now < l.from_ns + 60 * SEC);
        c.leave(now);
        c.phase = Phase::Parting;
        c.stay.channel = to;
        c.asked = Asked::at(now);
    }

    /// A random active client departs (logs off or vanishes) and a new one takes its place.
    pub(super) fn replace_one(&mut self) -> anyhow::Result<()> {
        let Some(g) = self.random_active() else {
            return Ok(());
        };
        let channel = self.clients[&g].stay.channel;
        self.remove_member(g, channel);
        let now = now_ns();
        if self.rng.chance(self.args.vanish_share) {
            let nick = self.clients[&g].nick.clone();
            self.close(g);
            self.vanished.push_back(Vanished {
                nick,
                due_ns: now + self.args.vanish_deadline_ns(),
                asked_ns: None,
            });
            self.report.vanished += 1;
        } else {
            let linger = (self.args.linger * SEC as f64) as u64;
            let server = self.args.server;
            let c = self.clients.get_mut(&g).expect("present");
            let _ = c.socket.send_to(&Request::Logoff.to_bytes(), server);
            let _ = c.socket.send_to(&probe(), server);
            c.leave(now);
            c.phase = Phase::Departed;
            c.asked = Asked::at(now);
            c.close_ns = now + linger;
            self.report.logged_off += 1;
        }
        let ch = self.rng.below(self.args.channels);
        self.spawn(ch)
    }
}
