//! The fence authority on etcd: before the cluster fencer's executor runs its devices, it
//! claims the attempt with a create-if-absent transaction, so exactly one node runs it even if
//! two believed themselves assigned (see `fencing/cluster/FENCING.md`).

use async_trait::async_trait;
use etcd_client::{Client, Compare, CompareOp, Txn, TxnOp, TxnOpResponse};
use ocf_core::NodeName;
use ocf_fencing::{FenceError, FenceId};

use super::keys::KeyLayout;
use crate::fencing::cluster::ExecutionGuard;

/// How long a claim may wait for etcd.
const CLAIM_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Claims `<prefix>fence/<incident>/<attempt>` for this node (the value is its name).
#[derive(Clone)]
pub struct EtcdFenceGuard {
    client: Client,
    layout: KeyLayout,
    name: NodeName,
}

impl std::fmt::Debug for EtcdFenceGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdFenceGuard")
            .field("prefix", &self.layout.prefix())
            .field("node", &self.name)
            .finish_non_exhaustive()
    }
}

impl EtcdFenceGuard {
    /// The guard of node `name`, claiming under `layout` through `client`.
    pub fn new(client: Client, layout: KeyLayout, name: NodeName) -> Self {
        Self {
            client,
            layout,
            name,
        }
    }

    /// Who holds the attempt's key, if anyone (for tests and tools).
    pub async fn holder(
        &self,
        incident: FenceId,
        attempt: u32,
    ) -> Result<Option<String>, FenceError> {
        let key = self.layout.fence_key(incident, attempt);
        let mut client = self.client.clone();
        let r = client
            .get(key.clone(), None)
            .await
            .map_err(|e| unavailable(&key, &e))?;
        Ok(r.kvs()
            .first()
            .map(|kv| String::from_utf8_lossy(kv.value()).into_owned()))
    }
}

fn unavailable(key: &str, e: &etcd_client::Error) -> FenceError {
    FenceError::unavailable(format!(
        "cannot claim fence key {key} in etcd: {e}; the attempt is not run"
    ))
}

#[async_trait]
impl ExecutionGuard for EtcdFenceGuard {
    async fn claim(&self, incident: FenceId, attempt: u32) -> Result<bool, FenceError> {
        let key = self.layout.fence_key(incident, attempt);
        let me = self.name.as_str().as_bytes().to_vec();
        let txn = Txn::new()
            .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key.clone(), me.clone(), None)])
            .or_else([TxnOp::get(key.clone(), None)]);
        let mut client = self.client.clone();
        let r = tokio::time::timeout(CLAIM_TIMEOUT, client.txn(txn))
            .await
            .map_err(|_| {
                FenceError::unavailable(format!(
                    "etcd did not answer the claim of fence key {key} within {} s; the attempt is \
                     not run",
                    CLAIM_TIMEOUT.as_secs()
                ))
            })?
            .map_err(|e| unavailable(&key, &e))?;
        if r.succeeded() {
            tracing::info!(incident, attempt, key, "fence attempt claimed in etcd");
            return Ok(true);
        }
        let holder = r.op_responses().into_iter().find_map(|op| match op {
            TxnOpResponse::Get(g) => g.kvs().first().map(|kv| kv.value().to_vec()),
            _ => None,
        });
        let mine = holder.as_deref() == Some(me.as_slice());
        tracing::info!(
            incident,
            attempt,
            key,
            holder = %String::from_utf8_lossy(holder.as_deref().unwrap_or_default()),
            mine,
            "fence attempt already claimed in etcd"
        );
        Ok(mine)
    }
}
