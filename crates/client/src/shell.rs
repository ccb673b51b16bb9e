//! The session thread: the I/O shell around the [`Session`], which does no I/O itself. It
//! hands the session what comes in (typed lines from the interface, datagrams from the
//! receive thread, signals) and the expiry of its timers, with the time; then it carries
//! out what the session asks: datagrams to [`Net`] (which seals them in a protected
//! session), multicast groups to listen to, the pinned server keys to check in the known
//! servers' file, and what to show to the interface. The answers of the effects go back
//! to the session as inputs at once, before anything else comes in.
//!
//! The shell also watches the clocks: a wall clock that jumped ahead of the monotonic one
//! means the machine slept, which it tells the session ([`Input::Woke`]).

use std::io;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::net::Net;
use crate::secure::KnownServers;
use crate::session::{Effect, Input, Options, Out, Session, Transmit, UiKind};

/// How often the clocks are compared even when no timer of the session is due, so that
/// waking from sleep is noticed soon.
const CLOCK_CHECK: Duration = Duration::from_millis(100);
/// A wall clock that jumped ahead this much more than the monotonic one means the machine
/// slept: the server may have logged us off meanwhile, so look at once.
const SLEEP_JUMP: Duration = Duration::from_secs(10);

/// Starts the session thread: a session set up by `opts` for an interface of kind `ui`
/// that talks to the server through `net` and to the interface through `out`, and is told
/// what happens through `inbox`. It ends when the session does.
///
/// # Errors
/// The thread could not be started.
pub(crate) fn spawn(
    net: Arc<Net>,
    opts: Options,
    ui: UiKind,
    out: Sender<Out>,
    inbox: Receiver<Input>,
) -> io::Result<thread::JoinHandle<()>> {
    thread::Builder::new()
        .name("session".into())
        .spawn(move || {
            let known = KnownServers::new(opts.known_servers.clone());
            let session = Session::new(opts, ui, net.server(), Instant::now());
            run(session, &net, &known, &out, &inbox);
        })
}

fn run(
    mut session: Session,
    net: &Net,
    known: &KnownServers,
    out: &Sender<Out>,
    inbox: &Receiver<Input>,
) {
    let mut clocks = (Instant::now(), SystemTime::now());
    loop {
        carry(&mut session, net, known, out);
        if session.is_done() {
            return;
        }
        let wait = session
            .poll_timeout()
            .map_or(CLOCK_CHECK, |at| {
                at.saturating_duration_since(Instant::now())
            })
            .min(CLOCK_CHECK);
        let input = match inbox.recv_timeout(wait) {
            Ok(input) => Some(input),
            Err(RecvTimeoutError::Timeout) => None,
            // Nobody is left to type or to listen: end as after a quit.
            Err(RecvTimeoutError::Disconnected) => Some(Input::Signal(0)),
        };
        let now = Instant::now();
        let (mono, wall) = std::mem::replace(&mut clocks, (now, SystemTime::now()));
        let slept = clocks.1.duration_since(wall).unwrap_or_default();
        let woke = slept > now.saturating_duration_since(mono) + SLEEP_JUMP;
        if let Some(input) = input {
            session.handle(input, now);
        }
        if woke {
            session.handle(Input::Woke, now);
        } else if session.poll_timeout().is_some_and(|at| at <= now) {
            session.handle(Input::Timeout, now);
        }
    }
}

/// Carries out everything the session asked for, and hands it the answers, until it asks
/// for nothing more.
fn carry(session: &mut Session, net: &Net, known: &KnownServers, out: &Sender<Out>) {
    loop {
        let mut answers = Vec::new();
        while let Some(transmit) = session.poll_transmit() {
            let sent = match transmit {
                Transmit::Datagram(datagram) => net.send_bytes(&datagram),
                Transmit::Seal { keys, finish } => {
                    net.set_session(Some(*keys));
                    net.send_unsealed(&finish)
                }
                Transmit::Unseal => {
                    net.set_session(None);
                    Ok(())
                }
            };
            if let Err(e) = sent {
                answers.push(Input::SendFailed(e.to_string()));
            }
        }
        while let Some(effect) = session.poll_effect() {
            match effect {
                Effect::Listen(group) => {
                    if let Err(e) = net.join_group(group) {
                        answers.push(Input::CannotListen {
                            group,
                            error: e.to_string(),
                        });
                    }
                }
                Effect::Unlisten(group) => net.leave_group(group),
                Effect::CheckPin { server, key } => {
                    let pin = known.check(&server, &key).map_err(|e| e.to_string());
                    answers.push(Input::Pinned { key, pin });
                }
            }
        }
        while let Some(output) = session.poll_output() {
            // Fails only once the interface is gone, at shutdown, when nobody is looking.
            let _ = out.send(output);
        }
        if answers.is_empty() {
            return;
        }
        let now = Instant::now();
        for answer in answers {
            session.handle(answer, now);
        }
    }
}
