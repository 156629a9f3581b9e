//! Clusters of built-in nodes on 127.0.0.1 inside one process: for the demo, the examples and
//! tests that want real UDP without writing config files by hand.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use crate::membership::builtin::engine::{BuiltinEngine, EngineError};
use crate::membership::builtin::key::ClusterKey;
use crate::membership::config::{ConfigError, NodeConfig};

/// Why a loopback cluster could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoopbackError {
    /// No free UDP port on 127.0.0.1.
    #[error("no free UDP port on 127.0.0.1: {0}")]
    Port(#[from] std::io::Error),
    /// A generated config did not validate.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A node did not start.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// Configs for nodes `1..=n` named `n1`, `n2`, ... of cluster `cluster`, on free UDP ports of
/// 127.0.0.1, with default timing, sockets and key file under `dir`.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let configs = ocf_ref::membership::builtin::loopback::configs("c1", 3, dir.path()).unwrap();
/// assert_eq!(configs.len(), 3);
/// assert_eq!(configs[2].local_id().get(), 3);
/// ```
pub fn configs(cluster: &str, n: u32, dir: &Path) -> Result<Vec<NodeConfig>, LoopbackError> {
    // Every socket is held until all ports are known, so no two nodes get the same one.
    let held: Vec<std::net::UdpSocket> = (0..n)
        .map(|_| std::net::UdpSocket::bind("127.0.0.1:0"))
        .collect::<Result<_, _>>()?;
    let mut nodes = String::new();
    for (id, socket) in (1..=n).zip(&held) {
        let _ = writeln!(
            nodes,
            "[[nodes]]\nid = {id}\nname = \"n{id}\"\naddress = \"{}\"",
            socket.local_addr()?
        );
    }
    drop(held);
    let key_file = dir.join("authkey").display().to_string();
    (1..=n)
        .map(|id| {
            let socket = dir.join(format!("n{id}.sock")).display().to_string();
            let text = format!(
                "cluster = {cluster:?}\nnode_id = {id}\nkey_file = {key_file:?}\nsocket = {socket:?}\n{nodes}"
            );
            Ok(NodeConfig::parse(&text, &dir.join(format!("n{id}.toml")))?)
        })
        .collect()
}

/// Starts every node of `configs` under one key.
pub async fn start(
    configs: &[NodeConfig],
    key: &ClusterKey,
) -> Result<Vec<Arc<BuiltinEngine>>, LoopbackError> {
    let mut engines = Vec::with_capacity(configs.len());
    for config in configs {
        engines.push(Arc::new(BuiltinEngine::start(config, key).await?));
    }
    Ok(engines)
}
