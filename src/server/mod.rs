//! The server: sockets and threads around the [`Handler`].
//!
//! ```text
//!  socket (socket2, tuned buffers)
//!    │ recvmmsg batches
//!  receive thread ──► bounded queue per worker, chosen by source address
//!    │
//!  workers ── Handler::handle ──► single-address replies: sent by the worker (sendmmsg)
//!    │                            fan-outs: split into chunks ──► sender pool queues
//!  senders ── sendmmsg batches, resume after partial sends, count failures
//!  sweeper ── every check interval: idle users ──► Expire job to the owning worker
//! ```
//!
//! Shutdown drops handles from the front: the receive thread and sweeper stop on the stop
//! flag and drop their queue handles; workers drain their queues and drop theirs on the
//! pool; senders drain and exit. Nothing queued is lost.

pub mod limit;
pub mod metrics;
pub mod recv;
pub mod send;
pub mod stats;
pub mod sweep;
pub mod sys;
pub mod worker;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::bounded;
use socket2::{Domain, Protocol, Socket, Type};

pub use limit::Limits;
pub use stats::{Stats, StatsSnapshot};

use crate::accounts::{AccountStore, MemoryStore, SqliteStore};
use crate::config::{classic_channels, ChannelSpec};
use crate::handler::{Accounts, Handler};
use crate::protocol::{DEFAULT_MAX_DATAGRAM, DEFAULT_PORT};
use crate::state::State;

/// Datagrams each worker's queue holds before the receive thread drops more.
pub const WORKER_QUEUE: usize = 8192;
/// Fan-out chunks each sender's queue holds before workers wait.
pub const SENDER_QUEUE: usize = 1024;
/// How long the receive thread waits for a datagram before it checks the stop flag.
const RECV_TIMEOUT: Duration = Duration::from_millis(100);

/// Everything the server can be configured with.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address and port to listen on (`[::]` serves IPv6 and IPv4).
    pub bind: SocketAddr,
    /// The channels, in listing order.
    pub channels: Vec<ChannelSpec>,
    /// A user silent for longer than this is logged off.
    pub idle_timeout: Duration,
    /// How often the idle sweep runs.
    pub check_interval: Duration,
    /// Worker threads.
    pub workers: usize,
    /// Sender threads.
    pub senders: usize,
    /// Largest datagram accepted, in bytes.
    pub max_datagram: usize,
    /// Most users logged in at once.
    pub max_users: usize,
    /// Requested socket send buffer, in bytes.
    pub sndbuf: usize,
    /// Requested socket receive buffer, in bytes.
    pub rcvbuf: usize,
    /// Flood limits.
    pub limits: Limits,
    /// Channels one user may be in at once.
    pub max_channels_per_user: usize,
    /// Where to serve Prometheus metrics over HTTP, if anywhere.
    pub metrics: Option<SocketAddr>,
    /// The folder of the account database; `None` keeps accounts in memory only.
    pub data_dir: Option<std::path::PathBuf>,
}

/// Threads the machine can run at once (at least 1).
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT)),
            channels: classic_channels(),
            idle_timeout: Duration::from_secs(120),
            check_interval: Duration::from_secs(30),
            workers: default_threads(),
            senders: default_threads(),
            max_datagram: DEFAULT_MAX_DATAGRAM,
            max_users: 100_000,
            sndbuf: 4 << 20,
            rcvbuf: 4 << 20,
            limits: Limits::default(),
            max_channels_per_user: crate::handler::DEFAULT_MAX_CHANNELS_PER_USER,
            metrics: None,
            data_dir: None,
        }
    }
}

/// A bound server, not yet running.
pub struct Server {
    config: ServerConfig,
    metrics: Option<tiny_http::Server>,
    socket: Socket,
    local_addr: SocketAddr,
    stop: Arc<AtomicBool>,
    stats: Arc<Stats>,
    state: Arc<State>,
    accounts: Arc<Accounts>,
}

/// Socket buffer sizes the kernel granted (it doubles requests and clamps them to
/// `net.core.wmem_max`/`rmem_max`).
#[derive(Debug, Clone, Copy)]
pub struct Buffers {
    /// `SO_SNDBUF` as read back.
    pub sndbuf: usize,
    /// `SO_RCVBUF` as read back.
    pub rcvbuf: usize,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.local_addr)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Creates the socket, tunes its buffers and binds it; opens the account database.
    ///
    /// # Errors
    /// When the socket can't be created or bound (address in use, no permission), or the
    /// account database can't be opened.
    pub fn bind(config: ServerConfig) -> io::Result<Server> {
        let socket = Socket::new(
            Domain::for_address(config.bind),
            Type::DGRAM,
            Some(Protocol::UDP),
        )?;
        if config.bind.is_ipv6() {
            // `[::]` should serve IPv4 too, as v4-mapped addresses.
            socket.set_only_v6(false)?;
        }
        // Best effort: a failure leaves the kernel's default, which is logged below.
        let _ = socket.set_send_buffer_size(config.sndbuf);
        let _ = socket.set_recv_buffer_size(config.rcvbuf);
        socket.set_read_timeout(Some(RECV_TIMEOUT))?;
        socket.bind(&config.bind.into())?;
        let local_addr = socket
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::other("bound address is not IP"))?;
        let metrics = match config.metrics {
            Some(addr) => Some(tiny_http::Server::http(addr).map_err(|e| {
                io::Error::new(io::ErrorKind::AddrInUse, format!("metrics on {addr}: {e}"))
            })?),
            None => None,
        };
        let store: Arc<dyn AccountStore> = match &config.data_dir {
            Some(dir) => Arc::new(SqliteStore::open_dir(dir).map_err(io::Error::other)?),
            None => Arc::new(MemoryStore::default()),
        };
        let accounts = Arc::new(Accounts::open(store).map_err(io::Error::other)?);
        let state = Arc::new(State::new(&config.channels, config.max_users));
        Ok(Server {
            accounts,
            config,
            metrics,
            socket,
            local_addr,
            stop: Arc::new(AtomicBool::new(false)),
            stats: Arc::new(Stats::default()),
            state,
        })
    }

    /// The address the server listens on (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The socket buffer sizes the kernel granted.
    ///
    /// # Errors
    /// When the socket options can't be read.
    pub fn buffers(&self) -> io::Result<Buffers> {
        Ok(Buffers {
            sndbuf: self.socket.send_buffer_size()?,
            rcvbuf: self.socket.recv_buffer_size()?,
        })
    }

    /// The address metrics are served on, if enabled.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|m| m.server_addr().to_ip())
    }

    /// A flag that stops the server when set (for signal handlers).
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// The server's counters.
    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// The shared state (for tests and reports).
    pub fn state(&self) -> Arc<State> {
        self.state.clone()
    }

    /// Runs the server until its stop flag is set, then finishes the queued work and returns.
    ///
    /// # Errors
    /// When a thread can't be started or the socket can't be shared with one.
    pub fn run(self) -> io::Result<()> {
        let c = &self.config;
        let handler = Handler::new(self.state.clone(), c.max_datagram, c.idle_timeout)
            .with_max_channels_per_user(c.max_channels_per_user)
            .with_accounts(self.accounts.clone());
        let mut threads: Vec<JoinHandle<()>> = Vec::new();

        let (send_txs, send_rxs): (Vec<_>, Vec<_>) =
            (0..c.senders.max(1)).map(|_| bounded(SENDER_QUEUE)).unzip();
        for (i, rx) in send_rxs.into_iter().enumerate() {
            let socket = self.socket.try_clone()?;
            let stats = self.stats.clone();
            threads.push(spawn(format!("sender-{i}"), move || {
                send::run_sender(socket, rx, stats)
            })?);
        }

        let (work_txs, work_rxs): (Vec<_>, Vec<_>) =
            (0..c.workers.max(1)).map(|_| bounded(WORKER_QUEUE)).unzip();
        for (i, rx) in work_rxs.into_iter().enumerate() {
            let (handler, socket) = (handler.clone(), self.socket.try_clone()?);
            let (senders, stats, limits) = (send_txs.clone(), self.stats.clone(), c.limits);
            threads.push(spawn(format!("worker-{i}"), move || {
                worker::run_worker(handler, limits, socket, rx, senders, stats)
            })?);
        }
        let pool = send_txs;

        {
            let (workers, stop, interval) = (work_txs.clone(), self.stop.clone(), c.check_interval);
            threads.push(spawn("sweeper".into(), move || {
                sweep::run_sweeper(handler, interval, workers, stop)
            })?);
        }
        if let Some(http) = self.metrics {
            let sources = metrics::Sources {
                state: self.state.clone(),
                stats: self.stats.clone(),
                workers: work_txs.clone(),
                senders: pool.clone(),
            };
            let stop = self.stop.clone();
            threads.push(spawn("metrics".into(), move || {
                metrics::run_metrics(http, sources, stop)
            })?);
        }
        drop(pool);
        let (stop, stats, max) = (self.stop.clone(), self.stats.clone(), c.max_datagram);
        let socket = self.socket;
        threads.push(spawn("receiver".into(), move || {
            recv::run_receiver(socket, work_txs, max, stop, stats)
        })?);

        for t in threads {
            if t.join().is_err() {
                tracing::error!("a server thread panicked");
            }
        }
        Ok(())
    }

    /// Runs the server on a thread of its own; for tests and embedding.
    pub fn spawn(self) -> RunningServer {
        let addr = self.local_addr;
        let metrics_addr = self.metrics_addr();
        let stop = self.stop.clone();
        let stats = self.stats.clone();
        let state = self.state.clone();
        let thread = std::thread::Builder::new()
            .name("server".into())
            .spawn(move || self.run())
            .expect("spawning the server thread");
        RunningServer {
            addr,
            metrics_addr,
            stop,
            stats,
            state,
            thread: Some(thread),
        }
    }
}

fn spawn(name: String, f: impl FnOnce() + Send + 'static) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name(name).spawn(f)
}

/// A server running on its own thread; stops and joins when shut down or dropped.
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    stop: Arc<AtomicBool>,
    stats: Arc<Stats>,
    state: Arc<State>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl RunningServer {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where it serves metrics, if it does.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// Its counters now.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// Its shared state.
    pub fn state(&self) -> &Arc<State> {
        &self.state
    }

    /// Stops it, waits for queued sends to finish, and returns how the run ended.
    ///
    /// # Errors
    /// The error [`Server::run`] returned.
    pub fn shutdown(mut self) -> io::Result<()> {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> io::Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(io::Error::other("server thread panicked")),
            None => Ok(()),
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        let _ = self.stop_and_join();
    }
}
