//! The server: sockets and threads around the [`Handler`].
//!
//! ```text
//!  socket (socket2, tuned buffers)
//!    │ recvmmsg batches
//!  receive thread ── classify once ──► bounded queue per worker, chosen by route
//!    │                                  (source address, or session for sealed datagrams)
//!  workers ── Handler::handle ──► single-address replies: sent by the worker (sendmmsg)
//!    │   ▲                        fan-outs: whole, to the senders of their members
//!    │   └── results ◄──┐         effects ──► effect threads (store, leases) / cluster queue
//!  senders ── each writes to its own members (by lane); what waits for one member goes
//!             out together: BATCH datagrams for clients granted `batch`, one event per
//!             datagram for classic ones; sendmmsg, resume after partial sends, count failures
//!  effect threads ── SQLite/PostgreSQL, Redis leases; results back to the owning worker
//!  community-store ── part-5 effects: channels, bans, history, kept messages, audit log
//!  sweeper ── every check interval: idle users ──► Expire job to the owning worker
//!  prober (with --multicast) ── MCAST_PROBE to active groups ──► sender pool
//!  discovery (bound to one address) ── DISCOVER heard on 239.255.77.77 ──► workers
//!  cluster (with --redis) ── events from Redis ──► Handler::cluster_input ──► replies, fan-outs
//!  cluster-pub (with --redis) ── published events ──► Redis, pipelined
//! ```
//!
//! Shutdown drops handles from the front: the receive thread and sweeper stop on the stop
//! flag and drop their queue handles; workers drain their queues and drop theirs on the
//! pool and the effect threads; senders and effect threads drain and exit. Nothing queued
//! for sending is lost. `docs/ARCHITECTURE.md` draws the same path with who owns what.

pub(crate) mod community;
pub mod config;
pub(crate) mod effects;
mod jobs;
pub mod limit;
pub(crate) mod metrics;
pub(crate) mod multicast;
pub(crate) mod recv;
pub mod send;
pub(crate) mod stats;
pub(crate) mod sweep;
pub(crate) mod worker;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::bounded;
use jobs::named_thread;
use socket2::{Domain, Protocol, Socket, Type};

pub use config::{
    default_threads, host_name, store_kind, ServerConfig, SetupError, DEFAULT_BATCH_WINDOW,
};
pub use limit::Limits;
pub use send::BatchWindow;
pub use stats::{Stats, StatsSnapshot};

use crate::accounts::{AccountStore, CommunityStore, Service, StoreError, StoreKind};
use crate::cluster::{Cluster, ClusterError};
use crate::handler::{Discovery, Handler};
use crate::multicast::Groups;
use crate::settings::LiveSettings;
use crate::state::State;

pub use community::{operator_warnings, operator_warnings_with, Reloader};

/// Datagrams each worker's queue holds before the receive thread drops more.
pub const WORKER_QUEUE: usize = 8192;
/// Fan-out chunks each sender's queue holds before workers wait.
pub const SENDER_QUEUE: usize = 1024;
/// How long the receive thread waits for a datagram before it checks the stop flag.
const RECV_TIMEOUT: Duration = Duration::from_millis(100);

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The UDP socket could not be made or set up.
    #[error("cannot make the UDP socket: {0}")]
    Socket(#[source] io::Error),
    /// The address could not be bound (in use, not local, no permission).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// What the system said.
        #[source]
        source: io::Error,
    },
    /// The metrics address could not be bound.
    #[error("cannot serve metrics on {addr}: {message}")]
    Metrics {
        /// The address.
        addr: SocketAddr,
        /// What went wrong.
        message: String,
    },
    /// The account store could not be opened.
    #[error("cannot open the account store ({kind}): {source}")]
    Store {
        /// Which store.
        kind: StoreKind,
        /// What went wrong.
        #[source]
        source: StoreError,
    },
    /// The cluster configuration is invalid.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// Cluster mode with accounts in a store only this server sees.
    #[error("a cluster needs accounts in a store every server shares (--database postgres://...); with accounts in this server's own SQLite file a registered nickname could be used without its password on the others. Use --database, or --accounts-off to run the cluster without accounts")]
    ClusterStore,
    /// The TLS settings are unusable.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// A thread could not be started.
    #[error("cannot start a thread: {0}")]
    Thread(#[source] io::Error),
    /// The multicast socket could not be set up (`--multicast-if` not a local address, ...).
    #[error("cannot set up multicast: {0}")]
    Multicast(#[source] io::Error),
    /// The discovery group could not be joined.
    #[error("cannot listen for DISCOVER on the discovery group: {0}")]
    Discovery(#[source] io::Error),
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
    store: Arc<dyn AccountStore>,
    accounts: Arc<Service>,
    cluster: Option<Arc<Cluster>>,
    /// The channels' groups (empty without multicast).
    groups: Arc<Groups>,
    /// The socket group traffic leaves from, with multicast.
    group_socket: Option<Socket>,
    /// The extra socket that hears DISCOVER when the chat socket can't (module
    /// `multicast`).
    discovery_socket: Option<Socket>,
    community_store: Arc<dyn CommunityStore>,
    live: Arc<LiveSettings>,
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
    /// Creates the socket, tunes its buffers and binds it; opens the account store.
    ///
    /// # Errors
    /// When the socket can't be created or bound (address in use, no permission), the
    /// metrics address can't be bound, the account store can't be opened, or the cluster
    /// configuration is invalid.
    pub fn bind(config: ServerConfig) -> Result<Server, ServerError> {
        let socket = Socket::new(
            Domain::for_address(config.bind),
            Type::DGRAM,
            Some(Protocol::UDP),
        )
        .map_err(ServerError::Socket)?;
        if config.bind.is_ipv6() {
            // `[::]` should serve IPv4 too, as v4-mapped addresses.
            socket.set_only_v6(false).map_err(ServerError::Socket)?;
        }
        // Best effort: a failure leaves the kernel's default, which is logged at start.
        let _ = socket.set_send_buffer_size(config.sndbuf);
        let _ = socket.set_recv_buffer_size(config.rcvbuf);
        socket
            .set_read_timeout(Some(RECV_TIMEOUT))
            .map_err(ServerError::Socket)?;
        socket
            .bind(&config.bind.into())
            .map_err(|source| ServerError::Bind {
                addr: config.bind,
                source,
            })?;
        let local_addr = socket
            .local_addr()
            .map_err(ServerError::Socket)?
            .as_socket()
            .ok_or_else(|| ServerError::Socket(io::Error::other("bound address is not IP")))?;
        let metrics = match config.metrics {
            Some(addr) => {
                Some(
                    tiny_http::Server::http(addr).map_err(|e| ServerError::Metrics {
                        addr,
                        message: e.to_string(),
                    })?,
                )
            }
            None => None,
        };
        let store_error = |source| ServerError::Store {
            kind: config.store.clone(),
            source,
        };
        let trust = crate::tls::Trust::new(config.tls_ca.as_deref())?;
        if config.cluster.is_some() && config.accounts {
            let shared = matches!(config.store, StoreKind::Postgres(_) | StoreKind::Memory);
            // Memory is the tests' own store: shared by nobody, but gone with the process.
            if !shared {
                return Err(ServerError::ClusterStore);
            }
        }
        let (store, accounts) = if config.accounts {
            let store = config.store.open_with(&trust).map_err(store_error)?;
            let accounts = Service::open(&*store).map_err(store_error)?;
            (store, accounts.with_register_limit(config.register_limit))
        } else {
            let store: Arc<dyn AccountStore> = Arc::new(crate::accounts::MemoryStore::default());
            (store, Service::disabled())
        };
        accounts.reserve(&config.live.operators);
        let accounts = Arc::new(accounts);
        let state =
            Arc::new(State::new(&config.channels, config.max_users).with_budgets(config.budgets));
        if config.accounts {
            let pct = usize::from(config.account_reserve_percent.min(100));
            state.reserve_for_accounts(config.max_users * pct / 100);
        }
        let community_store = config
            .store
            .open_community_with(&trust)
            .map_err(store_error)?;
        let live = config.live.clone();
        community::load(&*community_store, &state, &live).map_err(store_error)?;
        let cluster = match &config.cluster {
            Some(c) => Some(Arc::new(Cluster::new(c.clone(), &trust)?)),
            None => None,
        };
        let (groups, group_socket) = match &config.multicast {
            Some(m) => (
                Arc::new(m.groups(&config.channels, local_addr.port())),
                Some(
                    multicast::group_socket(m, local_addr, config.sndbuf)
                        .map_err(ServerError::Multicast)?,
                ),
            ),
            None => (Arc::default(), None),
        };
        let discovery_socket = if config.discovery {
            multicast::discovery_socket(&socket, local_addr).map_err(ServerError::Discovery)?
        } else {
            None
        };
        Ok(Server {
            groups,
            group_socket,
            discovery_socket,
            cluster,
            store,
            accounts,
            community_store,
            live: Arc::new(LiveSettings::new(live)),
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

    /// The channels' multicast groups (empty without multicast).
    pub fn groups(&self) -> Arc<Groups> {
        self.groups.clone()
    }

    /// What changes the configuration while the server runs (on SIGHUP).
    pub fn reloader(&self) -> Reloader {
        Reloader {
            state: self.state.clone(),
            live: self.live.clone(),
            accounts: self.accounts.clone(),
        }
    }

    /// What is wrong with the configured operators ([`operator_warnings`]), to log at
    /// start.
    pub fn operator_warnings(&self) -> Vec<String> {
        operator_warnings(&self.live.get(), &self.accounts, &self.state)
    }

    /// Runs the server until its stop flag is set, then finishes the queued work and returns.
    ///
    /// # Errors
    /// When a thread can't be started or the socket can't be shared with one.
    pub fn run(self) -> Result<(), ServerError> {
        let c = &self.config;
        let mut handler = Handler::new(self.state.clone(), c.max_datagram, c.idle_timeout)
            .with_live(self.live.clone())
            .with_accounts(self.accounts.clone());
        if self.cluster.is_some() {
            handler = handler.in_cluster();
        }
        handler = handler.with_groups(self.groups.clone());
        if c.discovery {
            let name = c.name.clone().unwrap_or_else(|| match &c.cluster {
                Some(cl) => cl.server_id.clone(),
                None => host_name(),
            });
            handler = handler.with_discovery(Discovery {
                name,
                port: self.local_addr.port(),
            });
        }
        let socket = |s: &Socket| s.try_clone().map_err(ServerError::Socket);
        let mut threads: Vec<JoinHandle<()>> = Vec::new();

        let (send_txs, send_rxs): (Vec<_>, Vec<_>) =
            (0..c.senders.max(1)).map(|_| bounded(SENDER_QUEUE)).unzip();
        let senders = send_rxs.len();
        for (i, rx) in send_rxs.into_iter().enumerate() {
            let sender = send::Sender {
                socket: socket(&self.socket)?,
                index: i,
                senders,
                window: c.batch_window,
                stats: self.stats.clone(),
                sealers: self.state.sealers().clone(),
                budgets: self.state.budgets().clone(),
                group_socket: self.group_socket.as_ref().map(socket).transpose()?,
            };
            threads.push(
                named_thread(format!("sender-{i}"), move || sender.run(rx))
                    .map_err(ServerError::Thread)?,
            );
        }
        let send_txs = send::SenderPool::new(send_txs);

        let workers = c.workers.max(1);
        let (work_txs, work_rxs): (Vec<_>, Vec<_>) =
            (0..workers).map(|_| bounded(WORKER_QUEUE)).unzip();
        let (done_txs, done_rxs): (Vec<_>, Vec<_>) =
            (0..workers).map(|_| bounded(effects::DONE_QUEUE)).unzip();
        let (community_sink, community_thread) = community::spawn(
            self.community_store.clone(),
            done_txs.clone(),
            c.audit_log.as_deref(),
        )
        .map_err(ServerError::Thread)?;
        threads.push(community_thread);
        let (effects, effect_threads) = effects::spawn(
            self.store.clone(),
            self.accounts.clone(),
            self.cluster.clone(),
            done_txs,
            self.stop.clone(),
        )
        .map_err(ServerError::Thread)?;
        let effects = effects.with_community(community_sink);
        threads.extend(effect_threads);
        for (i, (rx, done)) in work_rxs.into_iter().zip(done_rxs).enumerate() {
            let worker = worker::Worker {
                handler: handler.clone(),
                limits: c.limits,
                socket: socket(&self.socket)?,
                senders: send_txs.clone(),
                effects: effects.clone(),
                stats: self.stats.clone(),
            };
            threads.push(
                named_thread(format!("worker-{i}"), move || worker.run(rx, done))
                    .map_err(ServerError::Thread)?,
            );
        }
        let pool = send_txs;
        if let Some(cluster) = &self.cluster {
            threads.extend(self.spawn_cluster(cluster.clone(), &handler, &pool, &effects)?);
        }
        if !self.groups.is_empty() {
            let (groups, senders, stop) = (self.groups.clone(), pool.clone(), self.stop.clone());
            threads.push(
                named_thread("prober".into(), move || {
                    multicast::run_prober(groups, senders, stop)
                })
                .map_err(ServerError::Thread)?,
            );
        }

        {
            let (workers, stop, interval) = (work_txs.clone(), self.stop.clone(), c.check_interval);
            let handler = handler.clone();
            threads.push(
                named_thread("sweeper".into(), move || {
                    sweep::run_sweeper(handler, interval, workers, stop)
                })
                .map_err(ServerError::Thread)?,
            );
        }
        if let Some(http) = self.metrics {
            let sources = metrics::Sources {
                state: self.state.clone(),
                stats: self.stats.clone(),
                workers: work_txs.clone(),
                senders: pool.clone(),
                effects: effects.clone(),
                cluster: self.cluster.clone(),
                groups: self.groups.clone(),
                audit: handler.audit().clone(),
            };
            let stop = self.stop.clone();
            threads.push(
                named_thread("metrics".into(), move || {
                    metrics::run_metrics(http, sources, stop)
                })
                .map_err(ServerError::Thread)?,
            );
        }
        drop(pool);
        drop(effects);
        let (stop, stats, max) = (self.stop.clone(), self.stats.clone(), c.max_datagram);
        if let Some(discovery) = self.discovery_socket {
            let (workers, stop, stats) = (work_txs.clone(), stop.clone(), stats.clone());
            threads.push(
                named_thread("discovery".into(), move || {
                    recv::run_receiver(discovery, workers, max, stop, stats)
                })
                .map_err(ServerError::Thread)?,
            );
        }
        let socket = self.socket;
        threads.push(
            named_thread("receiver".into(), move || {
                recv::run_receiver(socket, work_txs, max, stop, stats)
            })
            .map_err(ServerError::Thread)?,
        );

        for t in threads {
            if t.join().is_err() {
                tracing::error!("a server thread panicked");
            }
        }
        Ok(())
    }

    /// Starts the cluster's publisher thread and its cluster thread, which feeds what the
    /// other servers report into the handler and delivers the result as a worker would:
    /// single replies itself, fan-outs through the sender pool.
    fn spawn_cluster(
        &self,
        cluster: Arc<Cluster>,
        handler: &Handler,
        pool: &send::SenderPool,
        effects: &effects::Effects,
    ) -> Result<Vec<JoinHandle<()>>, ServerError> {
        let publisher = {
            let (cluster, stop) = (cluster.clone(), self.stop.clone());
            named_thread("cluster-pub".into(), move || {
                crate::cluster::redis::run_publisher(cluster, stop)
            })
            .map_err(ServerError::Thread)?
        };
        let socket = self.socket.try_clone().map_err(ServerError::Socket)?;
        let (senders, stats) = (pool.clone(), self.stats.clone());
        let (state, stop, handler) = (self.state.clone(), self.stop.clone(), handler.clone());
        let state_for_seal = self.state.clone();
        let mut log = send::ErrorLog::new();
        let mut out = crate::outbox::Outbox::new();
        let effects = effects.clone();
        let deliver = move |inputs: Vec<crate::cluster::ClusterInput>| {
            for input in inputs {
                handler.cluster_input(input, &mut out);
            }
            // Orders for local users (a kick or kill from another server) and what a
            // change owes the cluster or the store; nothing here waits for an answer.
            for effect in out.effects.drain(..) {
                let _ = effects.submit(effect);
            }
            for fanout in out.fanouts.drain(..) {
                senders.dispatch(fanout);
            }
            if out.unicast_len() > 0 {
                let replies = send::sealed_replies(&out, &state_for_seal, Instant::now());
                send::send_replies(&socket, &replies, &stats, &mut log);
            }
            out.clear();
        };
        let thread = named_thread("cluster".into(), move || {
            crate::cluster::redis::run_cluster(cluster, state, deliver, stop)
        })
        .map_err(ServerError::Thread)?;
        Ok(vec![publisher, thread])
    }

    /// Runs the server on a thread of its own; for tests and embedding.
    pub fn spawn(self) -> RunningServer {
        let addr = self.local_addr;
        let metrics_addr = self.metrics_addr();
        let stop = self.stop.clone();
        let stats = self.stats.clone();
        let state = self.state.clone();
        let cluster = self.cluster.clone();
        let groups = self.groups.clone();
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
            cluster,
            groups,
            thread: Some(thread),
        }
    }
}

/// A server running on its own thread; stops and joins when shut down or dropped.
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    stop: Arc<AtomicBool>,
    stats: Arc<Stats>,
    state: Arc<State>,
    cluster: Option<Arc<Cluster>>,
    groups: Arc<Groups>,
    thread: Option<JoinHandle<Result<(), ServerError>>>,
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

    /// Its cluster handle, if it is part of a cluster.
    pub fn cluster(&self) -> Option<&Arc<Cluster>> {
        self.cluster.as_ref()
    }

    /// Its channels' multicast groups (empty without multicast).
    pub fn groups(&self) -> &Arc<Groups> {
        &self.groups
    }

    /// Stops it, waits for queued sends to finish, and returns how the run ended.
    ///
    /// # Errors
    /// The error [`Server::run`] returned.
    pub fn shutdown(mut self) -> Result<(), ServerError> {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> Result<(), ServerError> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(ServerError::Thread(io::Error::other(
                "server thread panicked",
            ))),
            None => Ok(()),
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        let _ = self.stop_and_join();
    }
}
