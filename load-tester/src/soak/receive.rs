//! Receiving: the poller over every client socket and the checker, and what each datagram
//! means for the client that got it (acknowledgements move it on, PUBLIC_MSGs are counted or
//! judged against its departures).

use std::io;
use std::time::Duration;

use mio::Events;
use proto::{errors, Event, Request};

use super::client::Phase;
use super::driver::{Soak, CHECKER};
use crate::sys::{now_ns, MS};
use crate::text::sent_ns;

impl Soak<'_> {
    /// Waits up to `timeout` for datagrams and handles all that came.
    pub(super) fn poll_once(&mut self, timeout: Duration) {
        let mut events = Events::with_capacity(1024);
        if self.poll.poll(&mut events, Some(timeout)).is_err() {
            return;
        }
        for ev in events.iter() {
            let g = ev.token().0;
            // Edge-triggered: read until empty.
            loop {
                let r = if g == CHECKER {
                    self.checker.recv(&mut self.buf)
                } else {
                    match self.clients.get(&g) {
                        Some(c) => c.socket.recv(&mut self.buf),
                        None => break,
                    }
                };
                let len = match r {
                    Ok(len) => len,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    // A queued ICMP error: read past it.
                    Err(_) => continue,
                };
                let data = self.buf[..len].to_vec();
                if g == CHECKER {
                    self.on_checker(&data);
                } else {
                    self.on_datagram(g, &data);
                }
            }
        }
    }

    /// A WHOIS answer about a vanished client.
    pub(super) fn on_checker(&mut self, data: &[u8]) {
        let (nick, gone) = match Event::decode(data) {
            Ok(Event::UserItem { nick, .. }) => (nick.to_string(), false),
            Ok(Event::Error { message }) => match message.strip_suffix(": not logged in") {
                Some(n) => (n.to_string(), true),
                None => {
                    self.report.errors += 1;
                    return;
                }
            },
            _ => return,
        };
        if let Some(p) = self
            .vanished
            .iter()
            .position(|v| v.asked_ns.is_some() && v.nick.eq_ignore_ascii_case(&nick))
        {
            self.vanished.remove(p);
            self.report.vanished_checked += 1;
            if !gone {
                self.report.vanished_still_there += 1;
                self.log(format!("vanished client {nick} still logged in"));
            }
        }
    }

    /// A datagram for client `g`: acknowledgements move it on, PUBLIC_MSGs are counted or judged against its departures.
    pub(super) fn on_datagram(&mut self, g: usize, data: &[u8]) {
        let now = now_ns();
        let grace = self.args.grace_ms * MS;
        let Some(c) = self.clients.get_mut(&g) else {
            return;
        };
        match Event::decode(data) {
            Ok(Event::PublicMsg { title, text, .. }) => {
                let Some(pub_ns) = sent_ns(text) else {
                    self.report.errors += 1;
                    return;
                };
                let current = self.args.title(c.stay.channel);
                if title == current && matches!(c.phase, Phase::Active) && pub_ns > c.stay.joined_ns
                {
                    self.period.1 += 1;
                    return;
                }
                // A channel it left: in flight, or a delivery after the departure.
                let Some(l) = c
                    .left
                    .iter()
                    .rev()
                    .find(|l| self.args.title(l.stay.channel) == title)
                else {
                    return;
                };
                let departed = c.phase == Phase::Departed
                    && c.left.last().map(|x| x.stay.channel) == Some(l.stay.channel);
                if let Some(confirmed) = l.confirmed_ns.filter(|&t| pub_ns > t) {
                    // The server had processed the departure before this was even sent.
                    if departed {
                        self.report.departed_delivered += 1;
                    } else {
                        self.report.parted_delivered += 1;
                    }
                    let what = if departed { "logged off" } else { "parted" };
                    let msg = format!(
                        "{} ({what} {title}) got a message published {} ms after its {what} was confirmed",
                        c.nick,
                        (pub_ns - confirmed) / MS
                    );
                    self.log(msg);
                } else if pub_ns > l.from_ns + grace {
                    if departed {
                        self.report.departed_after_grace += 1;
                    } else {
                        self.report.parted_after_grace += 1;
                    }
                } else if pub_ns > l.stay.joined_ns && pub_ns < l.from_ns {
                    // Published while it was a member: an expected delivery that came late.
                    self.period.1 += 1;
                } else {
                    self.report.departed_in_flight += 1;
                }
            }
            Ok(Event::LoginAck { .. }) if c.phase == Phase::LoggingIn => {
                c.prove(self.args.server, now);
            }
            Ok(Event::ProveToken { token }) if c.phase == Phase::Proving => {
                let _ = c
                    .socket
                    .send_to(&Request::Prove { token }.to_bytes(), self.args.server);
            }
            Ok(Event::Proved) if c.phase == Phase::Proving => {
                c.join(&self.args.title(c.stay.channel), self.args.server, now);
            }
            Ok(Event::Error { message })
                if c.phase == Phase::Proving && message == errors::UNIMPLEMENTED =>
            {
                // A server without proofs of address sends everything anyway.
                c.join(&self.args.title(c.stay.channel), self.args.server, now);
            }
            Ok(Event::JoinAck(info)) if c.phase == Phase::Joining => {
                if info.title == self.args.title(c.stay.channel) {
                    c.phase = Phase::Active;
                    c.stay.joined_ns = now;
                    let ch = c.stay.channel;
                    self.members[ch].push(g);
                    if c.left.is_empty() {
                        self.report.logins += 1;
                    } else {
                        self.report.moves_done += 1;
                    }
                }
            }
            Ok(Event::PartAck(info)) if c.phase == Phase::Parting => {
                let old = c.left.last().map(|l| l.stay.channel);
                if old.map(|o| self.args.title(o)) == Some(info.title.to_string()) {
                    if let Some(l) = c.left.last_mut() {
                        l.confirmed_ns = Some(now);
                        let ms = (now - l.from_ns) as f64 / MS as f64;
                        self.report.part_confirm_max_ms = self.report.part_confirm_max_ms.max(ms);
                    }
                    c.join(&self.args.title(c.stay.channel), self.args.server, now);
                }
            }
            Ok(Event::Error { message }) if message == errors::PLEASE_LOG_IN => {
                if c.phase == Phase::Departed {
                    if let Some(l) = c.left.last_mut() {
                        if l.confirmed_ns.is_none() {
                            l.confirmed_ns = Some(now);
                            self.report.logoffs_confirmed += 1;
                            let ms = (now - l.from_ns) as f64 / MS as f64;
                            self.report.logoff_confirm_max_ms =
                                self.report.logoff_confirm_max_ms.max(ms);
                        }
                    }
                } else {
                    self.report.errors += 1;
                    let msg = format!("{} was logged off by the server", c.nick);
                    self.log(msg);
                }
            }
            Ok(Event::Error { .. }) => self.report.errors += 1,
            Ok(_) => {
                // USER_JOINS/USER_PARTS and the like: after a confirmed logoff, none may come.
                if c.phase == Phase::Departed {
                    if let Some(confirmed) = c.left.last().and_then(|l| l.confirmed_ns) {
                        if now > confirmed + grace {
                            self.report.departed_other += 1;
                        }
                    }
                }
            }
            Err(_) => self.report.errors += 1,
        }
    }
}
