//! The node daemon: serves a membership source on the local Unix socket (see
//! [`local_api`](super::local_api)), so every process on the node shares one membership.
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

use ocf_membership::{Membership, MembershipError};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinHandle;

use super::config::{BackendKind, NodeConfig};
use super::engine::{BuiltinEngine, EngineError};
use super::key::{ClusterKey, KeyError};
use super::local_api::{MAX_LINE, Reply, Request};

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
         corosync` for backend = \"corosync\", or use backend = \"builtin\""
    )]
    BackendNotBuilt {
        /// The backend asked for.
        backend: BackendKind,
    },
    /// The engine's source (the local Corosync) could not be reached.
    #[error(transparent)]
    Source(#[from] MembershipError),
    /// Another daemon answers on the socket already.
    #[error("another daemon is serving {path}; stop it first or configure another `socket`")]
    InUse {
        /// The socket.
        path: PathBuf,
    },
    /// The socket could not be created.
    #[error("cannot create the local API socket {path}: {source}")]
    Socket {
        /// The socket.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// A running socket server. Dropping it stops serving and removes the socket file.
#[derive(Debug)]
pub struct ServerHandle {
    path: PathBuf,
    task: JoinHandle<()>,
}

impl ServerHandle {
    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Serves `source` on the Unix socket `path`, creating its directory. A stale socket file
/// (nobody answering) is replaced; a live one is an error.
pub async fn serve_source(
    source: Arc<dyn Membership>,
    path: &Path,
) -> Result<ServerHandle, DaemonError> {
    let socket_err = |source: std::io::Error| DaemonError::Socket {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(socket_err)?;
    }
    if path.exists() {
        if UnixStream::connect(path).await.is_ok() {
            return Err(DaemonError::InUse {
                path: path.to_owned(),
            });
        }
        std::fs::remove_file(path).map_err(socket_err)?;
    }
    let listener = UnixListener::bind(path).map_err(socket_err)?;
    let task = tokio::spawn(async move {
        // Client tasks live in this set, so stopping the server ends them all.
        let mut clients = tokio::task::JoinSet::new();
        loop {
            while clients.try_join_next().is_some() {}
            match listener.accept().await {
                Ok((stream, _)) => {
                    let source = Arc::clone(&source);
                    clients.spawn(async move {
                        if let Err(e) = serve_client(source, stream).await {
                            tracing::debug!(error = %e, "local membership client left");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "local API accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    });
    Ok(ServerHandle {
        path: path.to_owned(),
        task,
    })
}

async fn write_reply(
    w: &mut tokio::net::unix::OwnedWriteHalf,
    reply: &Reply,
) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(reply).map_err(std::io::Error::other)?;
    line.push(b'\n');
    w.write_all(&line).await?;
    w.flush().await
}

fn error_reply(e: &MembershipError) -> Reply {
    let mut r = Reply::error(e.to_string());
    if let MembershipError::Lagged { missed } = e {
        r.missed = Some(*missed);
    }
    r
}

async fn serve_client(source: Arc<dyn Membership>, stream: UnixStream) -> std::io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut lines = BufReader::new(r);
    let mut line = String::new();
    loop {
        line.clear();
        let n = (&mut lines)
            .take(MAX_LINE as u64)
            .read_line(&mut line)
            .await?;
        if n == 0 {
            return Ok(());
        }
        if line.trim().is_empty() {
            continue;
        }
        let request: Request = match serde_json::from_str(line.trim()) {
            Ok(r) => r,
            Err(e) => {
                write_reply(&mut w, &Reply::error(format!("bad request: {e}"))).await?;
                continue;
            }
        };
        match request {
            Request::LocalNode => {
                let reply = match source.local_node().await {
                    Ok(id) => Reply {
                        node_id: Some(id),
                        ..Reply::ok()
                    },
                    Err(e) => error_reply(&e),
                };
                write_reply(&mut w, &reply).await?;
            }
            Request::View => {
                let reply = match source.current_view().await {
                    Ok(view) => Reply {
                        view,
                        ..Reply::ok()
                    },
                    Err(e) => error_reply(&e),
                };
                write_reply(&mut w, &reply).await?;
            }
            Request::Subscribe => {
                let mut sub = match source.subscribe().await {
                    Ok(s) => s,
                    Err(e) => return write_reply(&mut w, &error_reply(&e)).await,
                };
                let first = Reply {
                    view: sub.initial_view().cloned(),
                    ..Reply::ok()
                };
                write_reply(&mut w, &first).await?;
                loop {
                    let reply = match sub.next_event().await {
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
                        Err(e) => return write_reply(&mut w, &error_reply(&e)).await,
                    };
                    write_reply(&mut w, &reply).await?;
                }
            }
        }
    }
}

/// A running node daemon: the built-in engine and its socket.
#[derive(Debug)]
pub struct Daemon {
    engine: Arc<BuiltinEngine>,
    server: ServerHandle,
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

    /// Stops the engine, then the socket (subscribers see the end of their stream first).
    pub async fn shutdown(self) {
        self.engine.stop();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        drop(self.server);
        match Arc::try_unwrap(self.engine) {
            Ok(engine) => engine.shutdown().await,
            Err(engine) => engine.stop(),
        }
    }
}

/// Starts the built-in engine of `config` and serves it on the config's socket.
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
    let engine = Arc::new(BuiltinEngine::start(config, key).await?);
    let source: Arc<dyn Membership> = Arc::clone(&engine) as Arc<dyn Membership>;
    let server = serve_source(source, &config.socket_path()).await?;
    Ok(Daemon { engine, server })
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
}

impl NodeDaemon {
    /// The membership being served.
    pub fn membership(&self) -> Arc<dyn Membership> {
        match self {
            Self::Builtin(d) => Arc::clone(d.engine()) as Arc<dyn Membership>,
            #[cfg(feature = "corosync")]
            Self::Corosync(d) => Arc::new(d.membership().clone()) as Arc<dyn Membership>,
        }
    }

    /// The local API socket.
    pub fn socket(&self) -> &Path {
        match self {
            Self::Builtin(d) => d.socket(),
            #[cfg(feature = "corosync")]
            Self::Corosync(d) => d.socket(),
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
        }
    }

    /// Stops serving (subscribers of the built-in engine see evicted, then the end).
    pub async fn shutdown(self) {
        match self {
            Self::Builtin(d) => d.shutdown().await,
            #[cfg(feature = "corosync")]
            Self::Corosync(d) => d.shutdown(),
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
    }
}

/// A running node daemon over Corosync: one connection to the local corosync, served on the
/// local socket.
#[cfg(feature = "corosync")]
#[derive(Debug)]
pub struct CorosyncDaemon {
    membership: super::corosync::CorosyncMembership,
    server: ServerHandle,
}

#[cfg(feature = "corosync")]
impl CorosyncDaemon {
    /// The Corosync membership (for in-process users).
    pub fn membership(&self) -> &super::corosync::CorosyncMembership {
        &self.membership
    }

    /// The local API socket.
    pub fn socket(&self) -> &Path {
        self.server.path()
    }

    /// Stops serving and closes the connection to corosync (corosync itself keeps running).
    pub fn shutdown(self) {
        drop(self.server);
        drop(self.membership);
    }
}

/// Connects to the local corosync and serves its views on `config`'s socket
/// (`backend = "corosync"`).
#[cfg(feature = "corosync")]
pub async fn serve_corosync(config: &NodeConfig) -> Result<CorosyncDaemon, DaemonError> {
    use super::corosync::{CorosyncMembership, CorosyncOptions};
    if config.backend != BackendKind::Corosync {
        return Err(DaemonError::BackendNotBuilt {
            backend: config.backend,
        });
    }
    let membership = CorosyncMembership::connect_with(CorosyncOptions::default()).await?;
    let source: Arc<dyn Membership> = Arc::new(membership.clone());
    let server = serve_source(source, &config.socket_path()).await?;
    Ok(CorosyncDaemon { membership, server })
}
