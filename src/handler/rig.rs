//! The handler's test fixture, shared by its unit tests: a handler with an injected
//! clock, requests in as datagrams, and what came out decoded. No sockets, no threads.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::{Done, Handler, Outbox};
use crate::cluster::ClusterInput;
use crate::config::classic_channels;
use crate::datagram::Incoming;
use crate::outbox::{Effect, Ticket};
use crate::state::State;
use proto::{Event, Request};

/// A datagram that went out: (destination port, code, payload as text).
pub(crate) type Sent = (u16, u16, String);

/// The loopback address with `port`: a test's client.
pub(crate) fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A handler and the moment its test starts, on both clocks.
pub(crate) struct Rig {
    pub(crate) h: Handler,
    pub(crate) t0: Instant,
    pub(crate) w0: SystemTime,
}

impl Rig {
    /// A rig around `h`, starting now.
    pub(crate) fn with(h: Handler) -> Rig {
        Rig {
            h,
            t0: Instant::now(),
            w0: SystemTime::now(),
        }
    }

    /// A handler over the classic channels, room for 1000 users, a 120 s idle timeout.
    pub(crate) fn handler() -> Handler {
        let state = Arc::new(State::new(&classic_channels(), 1000));
        Handler::new(state, 1024, Duration::from_secs(120))
    }

    /// A server standing alone.
    pub(crate) fn new() -> Rig {
        Rig::with(Rig::handler())
    }

    /// A server of a cluster: logins wait for leases, changes are published.
    pub(crate) fn cluster() -> Rig {
        Rig::with(Rig::handler().in_cluster())
    }

    /// Handles the datagram `bytes` from port `from` at `secs` after the start.
    pub(crate) fn bytes_at(&self, secs: u64, from: u16, bytes: &[u8]) -> Outbox {
        let mut out = Outbox::new();
        let later = Duration::from_secs(secs);
        self.h.handle(
            self.t0 + later,
            self.w0 + later,
            Incoming::new(addr(from), bytes),
            &mut out,
        );
        out
    }

    /// Handles the datagram `bytes` from port `from` at the start.
    pub(crate) fn bytes(&self, from: u16, bytes: &[u8]) -> Outbox {
        self.bytes_at(0, from, bytes)
    }

    /// Handles `req` from port `from` at `secs` after the start; returns the outbox.
    pub(crate) fn raw(&self, secs: u64, from: u16, req: Request<'_>) -> Outbox {
        self.bytes_at(secs, from, &req.to_bytes())
    }

    /// Handles `req` from port `from` at the start; returns the outbox.
    pub(crate) fn send(&self, from: u16, req: Request<'_>) -> Outbox {
        self.raw(0, from, req)
    }

    /// As [`raw`](Self::raw), returning the datagrams that went out, in order.
    pub(crate) fn at(&self, secs: u64, from: u16, req: Request<'_>) -> Vec<Sent> {
        decode_all(&self.raw(secs, from, req))
    }

    /// Logs `nick` in at port `port`, saying HELLO after if `hello` (a part-5 client).
    pub(crate) fn login(&self, port: u16, nick: &str, hello: bool) {
        self.send(port, Request::Login { nick });
        if hello {
            self.send(port, Request::Hello { client: "t" });
        }
    }

    /// Marks the guest at port `port` as proved (it echoed a proof token), as channel
    /// creation needs.
    pub(crate) fn prove(&self, port: u16) {
        assert!(
            self.h.state().prove(addr(port)),
            "a guest at {port} to prove"
        );
    }

    /// Feeds the result of an effect back, at the start.
    pub(crate) fn complete(&self, done: Done) -> Outbox {
        let mut out = Outbox::new();
        self.h.complete(self.t0, self.w0, done, &mut out);
        out
    }

    /// Feeds what the cluster reported.
    pub(crate) fn cluster_input(&self, input: ClusterInput) -> Outbox {
        let mut out = Outbox::new();
        self.h.cluster_input(input, &mut out);
        out
    }
}

/// The datagrams in `out`, in order; each must decode as an event.
pub(crate) fn decode_all(out: &Outbox) -> Vec<Sent> {
    out.datagrams()
        .into_iter()
        .map(|(to, d)| {
            Event::decode(&d).expect("handler output decodes");
            let code = u16::from_be_bytes([d[0], d[1]]);
            (to.port(), code, String::from_utf8(d[2..].to_vec()).unwrap())
        })
        .collect()
}

/// The datagrams in `out`, sorted (for answers whose order does not matter).
pub(crate) fn sent(out: &Outbox) -> Vec<Sent> {
    let mut v = decode_all(out);
    v.sort();
    v
}

/// The ticket of the only `ClaimLease` in `out`.
pub(crate) fn claim(out: &Outbox) -> Ticket {
    match &out.effects[..] {
        [Effect::ClaimLease { ticket, .. }] => *ticket,
        other => panic!("expected one lease claim, got {other:?}"),
    }
}
