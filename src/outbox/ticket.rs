//! The [`Ticket`] that names the request an effect's result belongs to.

use std::net::SocketAddr;

use crate::state::Route;

/// Names the pending request an effect's result belongs to: the address (and the route of
/// the worker owning it) and a serial number, so a late result for a request that was
/// given up is recognised and ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    /// The address that asked.
    pub addr: SocketAddr,
    /// The route of the worker that must get the result.
    pub route: Route,
    /// Serial number, unique within the server's run.
    pub serial: u64,
}
