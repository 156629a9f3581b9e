//! Why the etcd engine did not start, or an etcd operation failed.

use std::path::PathBuf;

use ocf_core::NodeId;

/// What went wrong with etcd.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EtcdError {
    /// The config has no `[etcd]` table (or is not `backend = "etcd"`).
    #[error("node {node}: the config has no [etcd] table; backend = \"etcd\" needs one")]
    NotConfigured {
        /// This node.
        node: NodeId,
    },
    /// The configured node id is not among the `[[nodes]]`.
    #[error("node {node} is not in the cluster's [[nodes]]")]
    NotInCluster {
        /// The id.
        node: NodeId,
    },
    /// A TLS or password file could not be read.
    #[error("etcd {what} file {path}: {reason}")]
    File {
        /// Which file (`ca_file`, `cert_file`, `key_file`, `password_file`).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why (the reader's message).
        reason: String,
    },
    /// The client could not be built or could not reach any endpoint.
    #[error(
        "cannot connect to etcd at {endpoints:?}: {source} (are the members up, and the \
         endpoints, TLS files and credentials right?)"
    )]
    Connect {
        /// The endpoints tried.
        endpoints: Vec<String>,
        /// The client's error.
        source: etcd_client::Error,
    },
    /// An etcd request failed.
    #[error("etcd {operation} for node {node} failed: {source}")]
    Request {
        /// What was asked (`lease grant`, `join`, `read members`, ...).
        operation: &'static str,
        /// This node.
        node: NodeId,
        /// The client's error.
        source: etcd_client::Error,
    },
    /// An etcd request did not answer in time.
    #[error("etcd {operation} for node {node} did not answer within {after_ms} ms")]
    TimedOut {
        /// What was asked.
        operation: &'static str,
        /// This node.
        node: NodeId,
        /// How long it waited.
        after_ms: u64,
    },
    /// etcd answered something the engine cannot use.
    #[error("etcd {operation} for node {node}: {reason}")]
    Protocol {
        /// What was asked.
        operation: &'static str,
        /// This node.
        node: NodeId,
        /// What was wrong.
        reason: String,
    },
    /// The failure detector (the built-in engine over UDP) did not start.
    #[error("node {node}: the failure detector did not start: {source}")]
    Detector {
        /// This node.
        node: NodeId,
        /// Why.
        source: crate::membership::builtin::EngineError,
    },
}
