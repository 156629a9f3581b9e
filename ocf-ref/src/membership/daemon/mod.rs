//! The node daemon: serves a membership source on the local Unix socket ([`local_api`], on a
//! socket path claimed safely by [`local_socket`]), so every process on the node shares one
//! membership; [`client`] is the other end, a [`Membership`] over that socket. Given a fencer
//! ([`ServeOptions::with_fencer`]), the same socket serves it too (the `fence` lines of
//! [`local_api`]); [`DaemonFencer`](crate::fencing::daemon_fencer::DaemonFencer) is that end.
//!
//! [`serve_source`] serves any [`Membership`] (the built-in engine, Corosync, a test double);
//! [`serve`] starts the built-in engine from a config and serves it; [`start`] starts whichever
//! engine the config's `backend` names (what `ocf node` runs). All return handles, so one
//! process can run several nodes (the demo does).
//!
//! Over Corosync the daemon passes the engine's events through unchanged: when corosync stops
//! or restarts under it, every subscriber gets `Evicted` with the last view, the backend
//! reconnects with backoff, and events resume on the same streams (with `seq` continuing).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ocf_fencing::{FenceDevice, Fencer};
use ocf_membership::{Membership, MembershipError};
use ocf_resources::ExecutorAdmin;
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

pub mod client;
mod executor_service;
mod fence_service;
pub mod local_api;
pub mod local_socket;
mod no_membership;
pub mod reply_line;

pub use client::DaemonClient;
pub use no_membership::NoMembership;

use crate::membership::builtin::engine::{BuiltinEngine, EngineError};
use crate::membership::builtin::key::{ClusterKey, KeyError};
use crate::membership::builtin::transport::TransportStats;
use crate::membership::config::{BackendKind, NodeConfig};
use local_api::{
    DEFAULT_MAX_CLIENTS, DaemonStats, MAX_REQUEST_LINE, REQUEST_IDLE_TIMEOUT, Reply, Request,
    WRITE_TIMEOUT,
};
use local_socket::ClaimedSocket;

use crate::explain::IncidentLog;
use crate::explain::recorder::{self, DetectorTimers};
use crate::fencing::cluster::protocol::Settings;
use crate::fencing::cluster::protocol::message::Caps;
use crate::fencing::cluster::{ClusterFencer, ClusterOptions};
use crate::fencing::fencer::FencerConfig;
use crate::fencing::node_devices::{NodeDevices, build_fencer};
use crate::resources::{AgentRegistry, ExecutorConfig, LocalExecutor, NativeDummy};

/// Why the daemon did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DaemonError {
    /// The cluster key could not be read.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The engine did not start.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The config asks for an engine this build does not have, or for another engine than the
    /// function called starts.
    #[error(
        "membership backend {backend:?} is not available here; build ocf with `--features \
         corosync` for backend = \"corosync\" or `--features etcd` for backend = \"etcd\", or \
         use backend = \"builtin\""
    )]
    BackendNotBuilt {
        /// The backend asked for.
        backend: BackendKind,
    },
    /// The etcd engine did not start (feature `etcd`).
    #[cfg(feature = "etcd")]
    #[error(transparent)]
    Etcd(#[from] crate::membership::etcd::EtcdError),
    /// The engine's source (the local Corosync) could not be reached.
    #[error(transparent)]
    Source(#[from] MembershipError),
    /// Another daemon holds the socket's lock file, or something live answers on the socket.
    #[error("{}", in_use_message(path, lock, *holder))]
    InUse {
        /// The socket.
        path: PathBuf,
        /// The lock file beside it.
        lock: PathBuf,
        /// The pid of the daemon holding the lock, when it recorded one.
        holder: Option<u32>,
    },
    /// Something other than a socket sits at the socket path (or the lock file's path); it is
    /// left untouched.
    #[error(
        "{path} is {what}, not a socket of ocf; the daemon removes only its own stale socket: \
         configure another `socket` path, or move that file away yourself"
    )]
    NotASocket {
        /// The path.
        path: PathBuf,
        /// What is there.
        what: &'static str,
    },
    /// The lock file beside the socket is not one the daemon can safely use; it is left
    /// untouched.
    #[error(
        "the socket's lock file {path} {problem}; the daemon writes its pid there, so it must be \
         its own regular file: remove it, or configure another `socket`"
    )]
    BadLockFile {
        /// The lock file.
        path: PathBuf,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// `socket_group` names no group of this system.
    #[error(
        "socket_group {group:?} cannot be used: {reason}; create the group or fix `socket_group`"
    )]
    UnknownGroup {
        /// The group asked for.
        group: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// The fence devices of node.toml could not be checked or built; nothing started.
    #[error(transparent)]
    Fencing(#[from] crate::fencing::node_devices::NodeDevicesError),
    /// The cluster fencer's link could not be opened (over Corosync: its CPG group).
    #[error("the cluster fencer's link: {0}")]
    FenceLink(String),
    /// The socket could not be created.
    #[error("cannot create the local API socket {path}: {source}")]
    Socket {
        /// The socket (or its lock file).
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

fn in_use_message(path: &Path, lock: &Path, holder: Option<u32>) -> String {
    match holder {
        Some(pid) => format!(
            "another daemon (pid {pid}) holds the lock {} of the socket {}; stop it first or \
             configure another `socket`",
            lock.display(),
            path.display()
        ),
        None => format!(
            "another daemon holds the lock {} of the socket {}, or a process not using the lock \
             serves that socket; stop it first or configure another `socket`",
            lock.display(),
            path.display()
        ),
    }
}

/// How the daemon serves its socket: who may connect, how many at once, what `stats` shows,
/// and which fencer (if any) answers the fencing requests.
#[derive(Clone)]
#[non_exhaustive]
pub struct ServeOptions {
    /// The most connections served at once; past it a client is answered "busy" and closed.
    pub max_clients: usize,
    /// The socket's group (its mode is always 0660); `None`: the daemon's own group.
    pub socket_group: Option<String>,
    /// The engine's packet counters, reported by `stats`.
    pub packets: Option<Arc<TransportStats>>,
    /// The fencer that answers `fence`, `fence_history` and `fence_subscribe`; `None`: those
    /// requests are answered with an `unavailable` error saying this daemon serves no fencer.
    pub fencer: Option<Arc<dyn Fencer>>,
    /// The node's own fence devices, which answer `fence_targets` (with a fencer served).
    pub fence_devices: Vec<Arc<dyn FenceDevice>>,
    /// The executor that answers the `exec_*` requests; `None`: they are answered `closed`,
    /// saying this daemon serves no executor.
    pub executor: Option<Arc<dyn ExecutorAdmin>>,
    /// The incident log that answers `incident_note` and `incident_notes`; `None`: they are
    /// answered with an error saying this daemon keeps none.
    pub incidents: Option<Arc<IncidentLog>>,
}

impl std::fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeOptions")
            .field("max_clients", &self.max_clients)
            .field("socket_group", &self.socket_group)
            .field("packets", &self.packets)
            .field("fencer", &self.fencer.as_ref().map(|_| "dyn Fencer"))
            .field(
                "fence_devices",
                &self
                    .fence_devices
                    .iter()
                    .map(ocf_fencing::FenceDevice::id)
                    .collect::<Vec<_>>(),
            )
            .field(
                "executor",
                &self.executor.as_ref().map(|_| "dyn ExecutorAdmin"),
            )
            .field(
                "incidents",
                &self.incidents.as_ref().map(|l| l.path().to_owned()),
            )
            .finish()
    }
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            max_clients: DEFAULT_MAX_CLIENTS,
            socket_group: None,
            packets: None,
            fencer: None,
            fence_devices: Vec::new(),
            executor: None,
            incidents: None,
        }
    }
}

impl ServeOptions {
    /// The options `config` sets (`max_clients`, `socket_group`).
    pub fn from_config(config: &NodeConfig) -> Self {
        Self {
            max_clients: config.max_clients,
            socket_group: config.socket_group.clone(),
            packets: None,
            fencer: None,
            fence_devices: Vec::new(),
            executor: None,
            incidents: None,
        }
    }

    /// The same, with `stats` reporting these packet counters.
    #[must_use]
    pub fn with_packets(mut self, packets: Arc<TransportStats>) -> Self {
        self.packets = Some(packets);
        self
    }

    /// The same, serving `fencer` to the socket's fencing requests (see [`local_api`]).
    #[must_use]
    pub fn with_fencer(mut self, fencer: Arc<dyn Fencer>) -> Self {
        self.fencer = Some(fencer);
        self
    }

    /// The same, answering `fence_targets` from `devices` (the node's own; see [`local_api`]).
    #[must_use]
    pub fn with_fence_devices(mut self, devices: Vec<Arc<dyn FenceDevice>>) -> Self {
        self.fence_devices = devices;
        self
    }

    /// The same, serving `executor` to the socket's `exec_*` requests (see [`local_api`]).
    #[must_use]
    pub fn with_executor(mut self, executor: Arc<dyn ExecutorAdmin>) -> Self {
        self.executor = Some(executor);
        self
    }

    /// The same, keeping and serving `log` (the `incident_*` lines of [`local_api`]).
    #[must_use]
    pub fn with_incidents(mut self, log: Arc<IncidentLog>) -> Self {
        self.incidents = Some(log);
        self
    }

    /// The same, serving at most `max_clients` connections at once (at least 1).
    #[must_use]
    pub fn with_max_clients(mut self, max_clients: usize) -> Self {
        self.max_clients = max_clients.max(1);
        self
    }
}

/// A running socket server. Dropping it stops serving, removes the socket file (if it is
/// still the one it created) and releases the socket's lock.
#[derive(Debug)]
pub struct ServerHandle {
    task: JoinHandle<()>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    claim: ClaimedSocket,
}

/// How long [`ServerHandle::shutdown`] lets open connections finish (a subscriber whose source
/// ended takes its last lines) before it drops them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

impl ServerHandle {
    /// The socket's path.
    pub fn path(&self) -> &Path {
        self.claim.path()
    }

    /// Stops accepting, lets open connections finish for up to [`SHUTDOWN_GRACE`] (stop the
    /// source first: its subscribers then get their `end` line rather than a hang-up), then
    /// drops the rest and the socket.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(SHUTDOWN_GRACE * 2, &mut self.task).await;
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `source` on the Unix socket `path` with default [`ServeOptions`]: claims the path
/// (see [`local_socket`]: its lock, only a stale socket replaced, mode
/// 0660), then serves.
pub async fn serve_source(
    source: Arc<dyn Membership>,
    path: &Path,
) -> Result<ServerHandle, DaemonError> {
    let claim = local_socket::claim(path, None).await?;
    Ok(serve_claimed(source, claim, ServeOptions::default()))
}

/// What every connection's task shares.
struct Shared {
    source: Arc<dyn Membership>,
    permits: Arc<Semaphore>,
    max_clients: usize,
    refused_busy: AtomicU64,
    packets: Option<Arc<TransportStats>>,
    fencer: Option<Arc<dyn Fencer>>,
    fence_devices: Vec<Arc<dyn FenceDevice>>,
    executor: Option<Arc<executor_service::ServedExecutor>>,
    incidents: Option<Arc<IncidentLog>>,
    /// Turns true when the server stops: fence subscribers then get their `end` line.
    stopping: watch::Receiver<bool>,
}

impl Shared {
    fn stats(&self) -> DaemonStats {
        DaemonStats {
            clients: (self.max_clients - self.permits.available_permits()) as u64,
            max_clients: self.max_clients as u64,
            refused_busy: self.refused_busy.load(Ordering::Relaxed),
            packets: self.packets.as_ref().map(|p| p.snapshot()),
        }
    }
}

/// Serves `source` on a socket [`claim`](local_socket::claim)ed already.
pub fn serve_claimed(
    source: Arc<dyn Membership>,
    mut claim: ClaimedSocket,
    options: ServeOptions,
) -> ServerHandle {
    let max_clients = options.max_clients.max(1);
    let (stopping_tx, stopping) = watch::channel(false);
    let shared = Arc::new(Shared {
        source,
        permits: Arc::new(Semaphore::new(max_clients)),
        max_clients,
        refused_busy: AtomicU64::new(0),
        packets: options.packets,
        fencer: options.fencer,
        fence_devices: options.fence_devices,
        executor: options
            .executor
            .map(|e| Arc::new(executor_service::ServedExecutor::new(e))),
        incidents: options.incidents,
        stopping,
    });
    let listener = claim.take_listener();
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let Some(listener) = listener else {
            return;
        };
        // Client tasks live in this set, so stopping the server ends them all.
        let mut clients = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                // Reap finished clients as they end, not only at the next accept.
                Some(_) = clients.join_next(), if !clients.is_empty() => {}
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        if let Ok(permit) = Arc::clone(&shared.permits).try_acquire_owned() {
                            let shared = Arc::clone(&shared);
                            clients.spawn(async move {
                                if let Err(e) = serve_client(&shared, stream).await {
                                    tracing::debug!(error = %e, "local membership client left");
                                }
                                drop(permit);
                            });
                        } else {
                            refuse_busy(&shared, &stream);
                        }
                    }
                    Err(e) => {
                        // EMFILE and friends: wait for clients to leave rather than spin.
                        tracing::warn!(error = %e, "local API accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        }
        // Open connections may finish (a subscription writes its `end`); the rest are dropped.
        let _ = stopping_tx.send(true);
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
            while clients.join_next().await.is_some() {}
        })
        .await;
    });
    ServerHandle {
        task,
        stop: Some(stop),
        claim,
    }
}

/// Answers one "busy" line without waiting (a fresh socket's buffer takes it) and closes.
fn refuse_busy(shared: &Shared, stream: &UnixStream) {
    let n = shared.refused_busy.fetch_add(1, Ordering::Relaxed);
    if n == 0 || n.is_power_of_two() {
        tracing::warn!(
            max_clients = shared.max_clients,
            refused = n + 1,
            "local API busy: refusing a client (raise `max_clients` if this is legitimate)"
        );
    }
    let reply = Reply {
        busy: true,
        ..Reply::error(format!(
            "busy: too many clients (max_clients = {}); try again later",
            shared.max_clients
        ))
    };
    if let Ok(mut line) = serde_json::to_vec(&reply) {
        line.push(b'\n');
        let _ = stream.try_write(&line);
    }
}

async fn write_reply<T: Serialize>(w: &mut OwnedWriteHalf, reply: &T) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(reply).map_err(std::io::Error::other)?;
    line.push(b'\n');
    // A client that does not read would otherwise hold its task (and descriptor) for ever.
    tokio::time::timeout(WRITE_TIMEOUT, async {
        w.write_all(&line).await?;
        w.flush().await
    })
    .await
    .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "client did not read"))?
}

fn error_reply(e: &MembershipError) -> Reply {
    let mut r = Reply::error(e.to_string());
    if let MembershipError::Lagged { missed } = e {
        r.missed = Some(*missed);
    }
    r
}

/// One request line, read with a bound.
enum RequestLine {
    Line(Vec<u8>),
    TooLong,
    End,
}

async fn read_request(r: &mut BufReader<OwnedReadHalf>) -> std::io::Result<RequestLine> {
    let mut line = Vec::new();
    let n = (&mut *r)
        .take(MAX_REQUEST_LINE as u64 + 1)
        .read_until(b'\n', &mut line)
        .await?;
    if n == 0 {
        return Ok(RequestLine::End);
    }
    if line.last() != Some(&b'\n') && line.len() > MAX_REQUEST_LINE {
        return Ok(RequestLine::TooLong);
    }
    Ok(RequestLine::Line(line))
}

async fn serve_client(shared: &Shared, stream: UnixStream) -> std::io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut reader = BufReader::new(r);
    loop {
        let Ok(read) = tokio::time::timeout(REQUEST_IDLE_TIMEOUT, read_request(&mut reader)).await
        else {
            return Ok(()); // idle: a slot is worth more than a silent client
        };
        let line = match read? {
            RequestLine::End => return Ok(()),
            RequestLine::TooLong => {
                let message =
                    format!("bad request: line longer than {MAX_REQUEST_LINE} bytes; closing");
                return write_reply(&mut w, &Reply::error(message)).await;
            }
            RequestLine::Line(line) => line,
        };
        let text = String::from_utf8_lossy(&line);
        if text.trim().is_empty() {
            continue;
        }
        if let Some(request) = exec_request(text.trim()) {
            match serve_exec(shared, request, &mut reader, &mut w).await? {
                executor_service::Flow::Continue => continue,
                executor_service::Flow::Close => return Ok(()),
            }
        }
        let request: Request = match serde_json::from_str(text.trim()) {
            Ok(r) => r,
            Err(e) => {
                write_reply(&mut w, &Reply::error(format!("bad request: {e}"))).await?;
                continue;
            }
        };
        let source = &shared.source;
        let reply = match request {
            Request::LocalNode => match source.local_node().await {
                Ok(id) => Reply {
                    node_id: Some(id),
                    ..Reply::ok()
                },
                Err(e) => error_reply(&e),
            },
            Request::View => match source.current_view().await {
                Ok(view) => Reply {
                    view,
                    ..Reply::ok()
                },
                Err(e) => error_reply(&e),
            },
            Request::Stats => Reply {
                stats: Some(shared.stats()),
                ..Reply::ok()
            },
            Request::Subscribe => return serve_subscription(source, reader, w).await,
            Request::Fence { request } => {
                let reply =
                    fence_service::fence(shared.fencer.as_ref(), request, &mut reader).await;
                match reply {
                    Some(reply) => write_reply(&mut w, &reply).await?,
                    None => return Ok(()), // the client hung up while it waited
                }
                continue;
            }
            Request::FenceHistory { filter } => {
                let reply = fence_service::history(shared.fencer.as_ref(), &filter).await;
                write_reply(&mut w, &reply).await?;
                continue;
            }
            Request::FenceTargets => {
                let reply =
                    fence_service::targets(shared.fencer.as_ref(), &shared.fence_devices).await;
                write_reply(&mut w, &reply).await?;
                continue;
            }
            Request::IncidentNote { note } => {
                write_reply(&mut w, &incident_reply(shared, Some(note))).await?;
                continue;
            }
            Request::IncidentNotes => {
                write_reply(&mut w, &incident_reply(shared, None)).await?;
                continue;
            }
            Request::FenceSubscribe => {
                return fence_service::subscribe(
                    shared.fencer.as_ref(),
                    shared.stopping.clone(),
                    reader,
                    w,
                )
                .await;
            }
        };
        write_reply(&mut w, &reply).await?;
    }
}

/// Answers an executor request line (a line that does not parse is answered and skipped).
async fn serve_exec(
    shared: &Shared,
    request: Result<local_api::ExecRequest, serde_json::Error>,
    reader: &mut BufReader<OwnedReadHalf>,
    w: &mut OwnedWriteHalf,
) -> std::io::Result<executor_service::Flow> {
    let request = match request {
        Ok(r) => r,
        Err(e) => {
            write_reply(w, &Reply::error(format!("bad request: {e}"))).await?;
            return Ok(executor_service::Flow::Continue);
        }
    };
    executor_service::handle(
        shared.executor.as_ref(),
        request,
        shared.stopping.clone(),
        reader,
        w,
    )
    .await
}

/// Keeps `note` (when given) or answers the notes kept.
fn incident_reply(shared: &Shared, note: Option<crate::explain::Note>) -> local_api::NotesReply {
    let Some(log) = &shared.incidents else {
        return local_api::NotesReply {
            ok: false,
            error: Some("this node daemon keeps no incident log".into()),
            ..local_api::NotesReply::default()
        };
    };
    let notes = match note {
        Some(note) => {
            log.append(note);
            None
        }
        None => Some(log.notes()),
    };
    local_api::NotesReply {
        ok: true,
        notes,
        ..local_api::NotesReply::default()
    }
}

/// The line as an executor request, when its `op` starts with `exec_`.
fn exec_request(text: &str) -> Option<Result<local_api::ExecRequest, serde_json::Error>> {
    #[derive(serde::Deserialize)]
    struct Op<'a> {
        #[serde(borrow)]
        op: std::borrow::Cow<'a, str>,
    }
    let op: Op<'_> = serde_json::from_str(text).ok()?;
    op.op
        .starts_with("exec_")
        .then(|| serde_json::from_str(text))
}

/// Streams events until the source ends or fails, or the client hangs up (a lag is reported
/// and streaming goes on); a hang-up
/// is noticed at once (end of file on the read side), not at the next event.
async fn serve_subscription(
    source: &Arc<dyn Membership>,
    mut reader: BufReader<OwnedReadHalf>,
    mut w: OwnedWriteHalf,
) -> std::io::Result<()> {
    let mut sub = match source.subscribe().await {
        Ok(s) => s,
        Err(e) => return write_reply(&mut w, &error_reply(&e)).await,
    };
    let first = Reply {
        view: sub.initial_view().cloned(),
        ..Reply::ok()
    };
    write_reply(&mut w, &first).await?;
    let mut scratch = [0u8; 512];
    loop {
        let next = {
            let event = sub.next_event();
            tokio::pin!(event);
            loop {
                tokio::select! {
                    e = &mut event => break e,
                    n = reader.read(&mut scratch) => match n {
                        // The client hung up (or broke): free its slot now.
                        Ok(0) | Err(_) => return Ok(()),
                        // Bytes after `subscribe` mean nothing; read and drop them.
                        Ok(_) => {}
                    },
                }
            }
        };
        let reply = match next {
            Ok(Some(event)) => Reply {
                event: Some(event),
                ..Reply::ok()
            },
            Ok(None) => {
                return write_reply(
                    &mut w,
                    &Reply {
                        end: true,
                        ..Reply::ok()
                    },
                )
                .await;
            }
            // A lag is reported and the stream goes on after the gap.
            Err(e @ MembershipError::Lagged { .. }) => error_reply(&e),
            Err(e) => return write_reply(&mut w, &error_reply(&e)).await,
        };
        write_reply(&mut w, &reply).await?;
    }
}

/// A running node daemon: the built-in engine and its socket.
#[derive(Debug)]
pub struct Daemon {
    engine: Arc<BuiltinEngine>,
    server: ServerHandle,
    fencer: ClusterFencer,
    executor: Arc<LocalExecutor>,
    recorder: JoinHandle<()>,
}

impl Daemon {
    /// The engine (a [`Membership`] for in-process users).
    pub fn engine(&self) -> &Arc<BuiltinEngine> {
        &self.engine
    }

    /// The local API socket.
    pub fn socket(&self) -> &Path {
        self.server.path()
    }

    /// The node's share of the cluster fencer (what the socket's `fence` lines reach).
    pub fn fencer(&self) -> &ClusterFencer {
        &self.fencer
    }

    /// The node's executor (what the socket's `exec_*` lines reach).
    pub fn executor(&self) -> &Arc<LocalExecutor> {
        &self.executor
    }

    /// Stops the engine, then the fencer and the socket (subscribers see the end of their
    /// stream first).
    pub async fn shutdown(self) {
        self.recorder.abort();
        self.engine.stop();
        self.fencer.shutdown().await;
        self.server.shutdown().await;
        match Arc::try_unwrap(self.engine) {
            Ok(engine) => engine.shutdown().await,
            Err(engine) => engine.stop(),
        }
    }
}

/// Starts the built-in engine of `config` and serves it on the config's socket. The socket is
/// claimed first, so a second daemon of the same socket fails before touching the network.
pub async fn serve(config: &NodeConfig) -> Result<Daemon, DaemonError> {
    if config.backend != BackendKind::Builtin {
        return Err(DaemonError::BackendNotBuilt {
            backend: config.backend,
        });
    }
    let key = ClusterKey::load(&config.key_file)?;
    serve_with_key(config, &key).await
}

/// Like [`serve`], with the cluster key given rather than read from `key_file` (the demo runs
/// several nodes in one process with one in-memory key).
pub async fn serve_with_key(config: &NodeConfig, key: &ClusterKey) -> Result<Daemon, DaemonError> {
    if config.backend != BackendKind::Builtin {
        return Err(DaemonError::BackendNotBuilt {
            backend: config.backend,
        });
    }
    let claim = local_socket::claim(&config.socket_path(), config.socket_group.as_deref()).await?;
    // Devices are checked before the node joins: a bad device table starts nothing.
    let devices = build_fencer(config, FencerConfig::default()).await?;
    let engine = Arc::new(BuiltinEngine::start(config, key).await?);
    let source: Arc<dyn Membership> = Arc::clone(&engine) as Arc<dyn Membership>;
    let link = engine
        .take_fence_link()
        .ok_or_else(|| DaemonError::FenceLink("the engine's link was taken already".into()))?;
    let services = serve_services(
        config,
        claim,
        NodeParts {
            me: config.local_id(),
            name: local_name(config)?,
            source,
            link,
            devices,
            hooks: EngineHooks::default(),
            timers: detector_timers(config),
            packets: Some(Arc::clone(engine.stats())),
        },
    )?;
    Ok(Daemon {
        engine,
        server: services.server,
        fencer: services.fencer,
        executor: services.executor,
        recorder: services.recorder,
    })
}

/// The incident log under the config's state directory.
fn open_incident_log(config: &NodeConfig) -> Result<Arc<IncidentLog>, DaemonError> {
    IncidentLog::open(&config.state_path())
        .map(Arc::new)
        .map_err(|e| DaemonError::Socket {
            path: e.path,
            source: e.source,
        })
}

/// The detector's timers of `config`, for the incident log's notes.
fn detector_timers(config: &NodeConfig) -> DetectorTimers {
    let spec = config.cluster_spec();
    DetectorTimers {
        heartbeat_ms: spec.timing.heartbeat_ms,
        dead_ms: spec.timing.dead_ms,
    }
}

/// This node's name in `[[nodes]]`.
fn local_name(config: &NodeConfig) -> Result<ocf_core::NodeName, DaemonError> {
    config.local_entry().map(|e| e.name.clone()).ok_or_else(|| {
        EngineError::NotInCluster {
            node: config.local_id(),
        }
        .into()
    })
}

/// What an engine hands over to be served beside its membership.
struct NodeParts {
    me: ocf_core::NodeId,
    name: ocf_core::NodeName,
    source: Arc<dyn Membership>,
    link: crate::fencing::cluster::link::LinkEnds,
    devices: NodeDevices,
    hooks: EngineHooks,
    timers: DetectorTimers,
    packets: Option<Arc<TransportStats>>,
}

/// The services every node daemon runs beside its membership, whatever the engine.
struct NodeServices {
    fencer: ClusterFencer,
    executor: Arc<LocalExecutor>,
    recorder: JoinHandle<()>,
    server: ServerHandle,
}

/// Starts the cluster fencer, the executor and the incident recorder of a node, and serves
/// them with its membership on the claimed socket.
fn serve_services(
    config: &NodeConfig,
    claim: ClaimedSocket,
    parts: NodeParts,
) -> Result<NodeServices, DaemonError> {
    let NodeParts {
        me,
        name,
        source,
        link,
        devices,
        hooks,
        timers,
        packets,
    } = parts;
    let fence_devices: Vec<Arc<dyn FenceDevice>> = devices
        .devices
        .iter()
        .filter_map(|d| devices.fencer.device(&d.id))
        .collect();
    let fencer = start_cluster_fencer(config, me, name, Arc::clone(&source), link, devices, hooks);
    let executor = node_executor();
    let log = open_incident_log(config)?;
    let recorder = recorder::spawn(
        Arc::clone(&log),
        Arc::clone(&source),
        Some(Arc::new(fencer.clone())),
        timers,
    );
    let mut options = ServeOptions::from_config(config)
        .with_fencer(Arc::new(fencer.clone()))
        .with_fence_devices(fence_devices)
        .with_executor(Arc::clone(&executor) as Arc<dyn ExecutorAdmin>)
        .with_incidents(log);
    if let Some(packets) = packets {
        options = options.with_packets(packets);
    }
    let server = serve_claimed(source, claim, options);
    Ok(NodeServices {
        fencer,
        executor,
        recorder,
        server,
    })
}

/// The node's one executor: the agents under `$OCF_ROOT` and the native ones, with the
/// default limits.
pub fn node_executor() -> Arc<LocalExecutor> {
    let registry = AgentRegistry::from_env();
    registry.add_native(Arc::new(NativeDummy::new()));
    Arc::new(LocalExecutor::new(
        Arc::new(registry),
        ExecutorConfig::default(),
    ))
}

/// What an engine adds to its cluster fencer: the fencer group (Corosync) or the execution
/// guard (etcd).
#[derive(Default)]
struct EngineHooks {
    group: Option<tokio::sync::watch::Receiver<Vec<(ocf_core::NodeId, u32)>>>,
    guard: Option<Arc<dyn crate::fencing::cluster::ExecutionGuard>>,
}

/// Starts the node's share of the cluster fencer over `link`, running `devices`.
fn start_cluster_fencer(
    config: &NodeConfig,
    me: ocf_core::NodeId,
    name: ocf_core::NodeName,
    membership: Arc<dyn Membership>,
    link: crate::fencing::cluster::link::LinkEnds,
    devices: NodeDevices,
    engine_hooks: EngineHooks,
) -> ClusterFencer {
    let EngineHooks { group, guard } = engine_hooks;
    let mut targets: Vec<ocf_core::NodeName> = Vec::new();
    let mut dynamic = false;
    for d in &devices.devices {
        match &d.hosts {
            Some(hosts) => targets.extend(hosts.iter().cloned()),
            None => dynamic = true,
        }
    }
    targets.extend(config.levels.iter().map(|l| l.target.clone()));
    targets.sort();
    targets.dedup();
    let settings = Settings {
        lost_node_action: devices.lost_node_action.fence_action(),
        ..Settings::default()
    };
    tracing::info!(
        devices = devices.devices.len(),
        ?targets,
        dynamic,
        "cluster fencer starting"
    );
    let mut options = ClusterOptions::new(Caps { targets, dynamic }).with_settings(settings);
    if let Some(group) = group {
        options = options.with_group(group);
    }
    if let Some(guard) = guard {
        options = options.with_guard(guard);
    }
    ClusterFencer::start(
        me,
        name,
        membership,
        link,
        Arc::new(devices.fencer),
        options,
    )
}

/// A running node daemon of any backend: what [`start`] returns.
#[derive(Debug)]
#[non_exhaustive]
pub enum NodeDaemon {
    /// The built-in engine.
    Builtin(Daemon),
    /// Corosync's views (feature `corosync`).
    #[cfg(feature = "corosync")]
    Corosync(CorosyncDaemon),
    /// Views kept in etcd (feature `etcd`).
    #[cfg(feature = "etcd")]
    Etcd(EtcdDaemon),
}

impl NodeDaemon {
    /// The membership being served.
    pub fn membership(&self) -> Arc<dyn Membership> {
        match self {
            Self::Builtin(d) => Arc::clone(d.engine()) as Arc<dyn Membership>,
            #[cfg(feature = "corosync")]
            Self::Corosync(d) => Arc::new(d.membership().clone()) as Arc<dyn Membership>,
            #[cfg(feature = "etcd")]
            Self::Etcd(d) => Arc::clone(d.engine()) as Arc<dyn Membership>,
        }
    }

    /// The node's share of the cluster fencer.
    pub fn fencer(&self) -> &ClusterFencer {
        match self {
            Self::Builtin(d) => d.fencer(),
            #[cfg(feature = "corosync")]
            Self::Corosync(d) => &d.fencer,
            #[cfg(feature = "etcd")]
            Self::Etcd(d) => d.fencer(),
        }
    }

    /// The local API socket.
    pub fn socket(&self) -> &Path {
        match self {
            Self::Builtin(d) => d.socket(),
            #[cfg(feature = "corosync")]
            Self::Corosync(d) => d.socket(),
            #[cfg(feature = "etcd")]
            Self::Etcd(d) => d.socket(),
        }
    }

    /// A line for people: which engine serves which socket.
    pub fn describe(&self) -> String {
        match self {
            Self::Builtin(d) => format!(
                "built-in membership on udp {}, local API on {}",
                d.engine().address(),
                d.socket().display()
            ),
            #[cfg(feature = "corosync")]
            Self::Corosync(d) => format!(
                "membership from the local corosync, local API on {}",
                d.socket().display()
            ),
            #[cfg(feature = "etcd")]
            Self::Etcd(d) => format!(
                "membership in etcd under {} (detector on udp {}), local API on {}",
                d.engine().layout().prefix(),
                d.engine().detector().address(),
                d.socket().display()
            ),
        }
    }

    /// Stops serving (subscribers of the built-in engine see evicted, then the end).
    pub async fn shutdown(self) {
        match self {
            Self::Builtin(d) => d.shutdown().await,
            #[cfg(feature = "corosync")]
            Self::Corosync(d) => d.shutdown().await,
            #[cfg(feature = "etcd")]
            Self::Etcd(d) => d.shutdown().await,
        }
    }
}

/// Starts the engine `config.backend` names and serves it on the config's socket: the
/// built-in engine (reading `key_file`), or the local Corosync's views.
///
/// With Corosync, fails with [`DaemonError::Source`] when corosync is not running or refuses
/// this user (the message says how to allow it); once started, the daemon outlives corosync
/// restarts.
pub async fn start(config: &NodeConfig) -> Result<NodeDaemon, DaemonError> {
    match config.backend {
        BackendKind::Builtin => Ok(NodeDaemon::Builtin(serve(config).await?)),
        #[cfg(feature = "corosync")]
        BackendKind::Corosync => Ok(NodeDaemon::Corosync(serve_corosync(config).await?)),
        #[cfg(not(feature = "corosync"))]
        BackendKind::Corosync => Err(DaemonError::BackendNotBuilt {
            backend: config.backend,
        }),
        #[cfg(feature = "etcd")]
        BackendKind::Etcd => Ok(NodeDaemon::Etcd(serve_etcd(config).await?)),
        #[cfg(not(feature = "etcd"))]
        BackendKind::Etcd => Err(DaemonError::BackendNotBuilt {
            backend: config.backend,
        }),
    }
}

/// A running node daemon over etcd: the etcd engine (with its detector), the cluster fencer
/// (its messages over the detector's UDP transport, each execution claimed in etcd), and the
/// socket.
#[cfg(feature = "etcd")]
#[derive(Debug)]
pub struct EtcdDaemon {
    engine: Arc<crate::membership::etcd::EtcdEngine>,
    server: ServerHandle,
    fencer: ClusterFencer,
    recorder: JoinHandle<()>,
}

#[cfg(feature = "etcd")]
impl EtcdDaemon {
    /// The engine (a [`Membership`] for in-process users).
    pub fn engine(&self) -> &Arc<crate::membership::etcd::EtcdEngine> {
        &self.engine
    }

    /// The local API socket.
    pub fn socket(&self) -> &Path {
        self.server.path()
    }

    /// The node's share of the cluster fencer.
    pub fn fencer(&self) -> &ClusterFencer {
        &self.fencer
    }

    /// Leaves etcd (the lease is revoked: peers install a view without this node at once),
    /// then stops the fencer and the socket.
    pub async fn shutdown(self) {
        self.recorder.abort();
        self.engine.shutdown().await;
        self.fencer.shutdown().await;
        self.server.shutdown().await;
    }
}

/// Starts the etcd engine of `config` (`backend = "etcd"`, reading `key_file` for the
/// detector) and serves it on the config's socket.
#[cfg(feature = "etcd")]
pub async fn serve_etcd(config: &NodeConfig) -> Result<EtcdDaemon, DaemonError> {
    let key = ClusterKey::load(&config.key_file)?;
    serve_etcd_with_key(config, &key).await
}

/// Like [`serve_etcd`], with the detector's cluster key given.
#[cfg(feature = "etcd")]
pub async fn serve_etcd_with_key(
    config: &NodeConfig,
    key: &ClusterKey,
) -> Result<EtcdDaemon, DaemonError> {
    use crate::membership::etcd::{EtcdEngine, EtcdFenceGuard};
    if config.backend != BackendKind::Etcd {
        return Err(DaemonError::BackendNotBuilt {
            backend: config.backend,
        });
    }
    let claim = local_socket::claim(&config.socket_path(), config.socket_group.as_deref()).await?;
    let devices = build_fencer(config, FencerConfig::default()).await?;
    let engine = Arc::new(EtcdEngine::start(config, key).await?);
    let source: Arc<dyn Membership> = Arc::clone(&engine) as Arc<dyn Membership>;
    let link = engine
        .take_fence_link()
        .ok_or_else(|| DaemonError::FenceLink("the detector's link was taken already".into()))?;
    let name = local_name(config)?;
    let guard = EtcdFenceGuard::new(
        engine.client().clone(),
        engine.layout().clone(),
        name.clone(),
    );
    let services = serve_services(
        config,
        claim,
        NodeParts {
            me: config.local_id(),
            name,
            source,
            link,
            devices,
            hooks: EngineHooks {
                group: None,
                guard: Some(Arc::new(guard)),
            },
            timers: detector_timers(config),
            packets: Some(Arc::clone(engine.detector().stats())),
        },
    )?;
    Ok(EtcdDaemon {
        engine,
        server: services.server,
        fencer: services.fencer,
        recorder: services.recorder,
    })
}

/// A running node daemon over Corosync: one connection to the local corosync, served on the
/// local socket.
#[cfg(feature = "corosync")]
#[derive(Debug)]
pub struct CorosyncDaemon {
    membership: crate::membership::corosync::CorosyncMembership,
    server: ServerHandle,
    fencer: ClusterFencer,
    recorder: JoinHandle<()>,
    _link: crate::membership::corosync::CpgLink,
}

#[cfg(feature = "corosync")]
impl CorosyncDaemon {
    /// The Corosync membership (for in-process users).
    pub fn membership(&self) -> &crate::membership::corosync::CorosyncMembership {
        &self.membership
    }

    /// The local API socket.
    pub fn socket(&self) -> &Path {
        self.server.path()
    }

    /// Closes the connection to corosync (corosync itself keeps running), so that every
    /// subscriber's stream ends, then stops serving.
    pub async fn shutdown(self) {
        self.recorder.abort();
        self.membership.close();
        self.fencer.shutdown().await;
        self.server.shutdown().await;
    }
}

/// Connects to the local corosync and serves its views on `config`'s socket
/// (`backend = "corosync"`).
#[cfg(feature = "corosync")]
pub async fn serve_corosync(config: &NodeConfig) -> Result<CorosyncDaemon, DaemonError> {
    use crate::membership::corosync::{CorosyncMembership, CorosyncOptions};
    if config.backend != BackendKind::Corosync {
        return Err(DaemonError::BackendNotBuilt {
            backend: config.backend,
        });
    }
    let claim = local_socket::claim(&config.socket_path(), config.socket_group.as_deref()).await?;
    let devices = build_fencer(config, FencerConfig::default()).await?;
    let membership = CorosyncMembership::connect_with(CorosyncOptions::default()).await?;
    let source: Arc<dyn Membership> = Arc::new(membership.clone());
    let mut link = crate::membership::corosync::cpg_link(&config.cluster)
        .await
        .map_err(|e| DaemonError::FenceLink(e.to_string()))?;
    let ends = link
        .take_ends()
        .ok_or_else(|| DaemonError::FenceLink("the CPG link's ends were taken already".into()))?;
    let me = source.local_node().await?;
    let name = match source.current_view().await {
        Ok(Some(v)) => v.member(me).map(|m| m.name.clone()),
        _ => None,
    };
    let name = name
        .or_else(|| format!("node{}", me.get()).parse().ok())
        .ok_or_else(|| DaemonError::FenceLink(format!("node {me} has no usable name")))?;
    // Corosync sees a node, not its ocf node: the fencer acts on the members whose fencer
    // process is in the CPG group, so one that dies alone (its corosync up) leaves the view.
    let group = Some(link.processes());
    let services = serve_services(
        config,
        claim,
        NodeParts {
            me,
            name,
            source,
            link: ends,
            devices,
            hooks: EngineHooks { group, guard: None },
            // Corosync's totem detects failures; its timers are not ocf's to state.
            timers: DetectorTimers {
                heartbeat_ms: 0,
                dead_ms: 0,
            },
            packets: None,
        },
    )?;
    Ok(CorosyncDaemon {
        membership,
        server: services.server,
        fencer: services.fencer,
        recorder: services.recorder,
        _link: link,
    })
}
