//! The votequorum service: votes, expected votes and the quorum threshold.

use std::ffi::c_uint;

use super::CsError;
use super::sys::{self, VotequorumHandle};

/// What votequorum says about one node and the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct VoteInfo {
    /// The node's votes.
    pub node_votes: u32,
    /// Expected votes of the cluster.
    pub expected_votes: u32,
    /// Votes present in this partition.
    pub total_votes: u32,
    /// Votes needed for quorum.
    pub quorum: u32,
}

/// One votequorum connection, used for queries only (no callbacks, no fd to watch).
pub(crate) struct Votequorum {
    handle: VotequorumHandle,
}

impl Votequorum {
    /// Connects to corosync's votequorum service.
    pub(crate) fn connect() -> Result<Self, CsError> {
        let mut callbacks = sys::VotequorumCallbacks {
            votequorum_quorum_notify_fn: None,
            votequorum_expectedvotes_notify_fn: None,
            votequorum_nodelist_notify_fn: None,
        };
        let mut handle: VotequorumHandle = 0;
        // SAFETY: out-pointer valid for writes; the callbacks struct is copied by the library
        // and holds no functions, so nothing is ever called back.
        let rc = unsafe { sys::votequorum_initialize(&raw mut handle, &raw mut callbacks) };
        CsError::check("votequorum_initialize", rc)?;
        Ok(Self { handle })
    }

    /// Votequorum's view of `nodeid` and of the cluster.
    pub(crate) fn info(&self, nodeid: u32) -> Result<VoteInfo, CsError> {
        // SAFETY: `votequorum_info` is plain integers and a char array: all-zero is valid.
        let mut info: sys::VotequorumInfo = unsafe { std::mem::zeroed() };
        // SAFETY: live handle; `info` valid for writes of one `struct votequorum_info`.
        CsError::check("votequorum_getinfo", unsafe {
            sys::votequorum_getinfo(self.handle, nodeid as c_uint, &raw mut info)
        })?;
        Ok(VoteInfo {
            node_votes: info.node_votes,
            expected_votes: info.node_expected_votes,
            total_votes: info.total_votes,
            quorum: info.quorum,
        })
    }
}

impl Drop for Votequorum {
    fn drop(&mut self) {
        // SAFETY: the handle came from `votequorum_initialize`; finalized exactly once.
        let _ = unsafe { sys::votequorum_finalize(self.handle) };
    }
}
