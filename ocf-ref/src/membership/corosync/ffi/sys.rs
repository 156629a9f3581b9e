//! Raw declarations of the Corosync client library functions ocf uses, transcribed from the
//! 3.1.7 headers (`corotypes.h`, `cpg.h`, `quorum.h`, `votequorum.h`, `cmap.h`).
//!
//! Only what the safe wrappers beside this file call is declared. C enums (`cs_error_t`,
//! `cs_dispatch_flags_t`, model and guarantee enums) are `int`-sized on every Linux ABI, so
//! they appear here as `c_int`/`c_uint` and are interpreted by the wrappers.

use std::ffi::{c_char, c_int, c_uint, c_void};

/// `cs_error_t`: 1 is `CS_OK`.
pub type CsErrorT = c_int;
/// `CS_OK`.
pub const CS_OK: CsErrorT = 1;
/// `CS_DISPATCH_ALL`: dispatch everything pending, never block.
pub const CS_DISPATCH_ALL: c_int = 2;
/// `CS_TRACK_CURRENT`.
pub const CS_TRACK_CURRENT: c_uint = 0x01;
/// `CS_TRACK_CHANGES`.
pub const CS_TRACK_CHANGES: c_uint = 0x02;

// ---- cpg.h ----

/// `cpg_handle_t`.
pub type CpgHandle = u64;
/// `CPG_MODEL_V1`.
pub const CPG_MODEL_V1: c_int = 1;
/// `CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF`.
pub const CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF: c_uint = 0x01;
/// `CPG_MAX_NAME_LENGTH`.
pub const CPG_MAX_NAME_LENGTH: usize = 128;
/// `CPG_TYPE_AGREED` (`cpg_guarantee_t`): delivered to every member in one total order.
pub const CPG_TYPE_AGREED: c_int = 2;

/// `struct cpg_name`.
#[repr(C)]
pub struct CpgName {
    pub length: u32,
    pub value: [c_char; CPG_MAX_NAME_LENGTH],
}

/// `struct cpg_address`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct CpgAddress {
    pub nodeid: u32,
    pub pid: u32,
    pub reason: u32,
}

/// `struct cpg_ring_id` (passed by value).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct CpgRingId {
    pub nodeid: u32,
    pub seq: u64,
}

/// `cpg_deliver_fn_t`.
pub type CpgDeliverFn = unsafe extern "C" fn(
    handle: CpgHandle,
    group_name: *const CpgName,
    nodeid: u32,
    pid: u32,
    msg: *mut c_void,
    msg_len: usize,
);
/// `cpg_confchg_fn_t`.
pub type CpgConfchgFn = unsafe extern "C" fn(
    handle: CpgHandle,
    group_name: *const CpgName,
    member_list: *const CpgAddress,
    member_list_entries: usize,
    left_list: *const CpgAddress,
    left_list_entries: usize,
    joined_list: *const CpgAddress,
    joined_list_entries: usize,
);
/// `cpg_totem_confchg_fn_t`.
pub type CpgTotemConfchgFn = unsafe extern "C" fn(
    handle: CpgHandle,
    ring_id: CpgRingId,
    member_list_entries: u32,
    member_list: *const u32,
);

/// `cpg_model_v1_data_t`.
#[repr(C)]
pub struct CpgModelV1Data {
    pub model: c_int,
    pub cpg_deliver_fn: Option<CpgDeliverFn>,
    pub cpg_confchg_fn: Option<CpgConfchgFn>,
    pub cpg_totem_confchg_fn: Option<CpgTotemConfchgFn>,
    pub flags: c_uint,
}

#[link(name = "cpg")]
unsafe extern "C" {
    pub fn cpg_model_initialize(
        handle: *mut CpgHandle,
        model: c_int,
        model_data: *mut CpgModelV1Data,
        context: *mut c_void,
    ) -> CsErrorT;
    pub fn cpg_finalize(handle: CpgHandle) -> CsErrorT;
    pub fn cpg_fd_get(handle: CpgHandle, fd: *mut c_int) -> CsErrorT;
    pub fn cpg_context_get(handle: CpgHandle, context: *mut *mut c_void) -> CsErrorT;
    pub fn cpg_dispatch(handle: CpgHandle, dispatch_types: c_int) -> CsErrorT;
    pub fn cpg_join(handle: CpgHandle, group: *const CpgName) -> CsErrorT;
    pub fn cpg_local_get(handle: CpgHandle, local_nodeid: *mut c_uint) -> CsErrorT;
    pub fn cpg_leave(handle: CpgHandle, group: *const CpgName) -> CsErrorT;
    pub fn cpg_mcast_joined(
        handle: CpgHandle,
        guarantee: c_int,
        iovec: *const libc::iovec,
        iov_len: c_uint,
    ) -> CsErrorT;
}

// ---- quorum.h ----

/// `quorum_handle_t`.
pub type QuorumHandle = u64;
/// `QUORUM_MODEL_V1`.
pub const QUORUM_MODEL_V1: c_int = 1;
/// `QUORUM_SET`: a quorum provider is configured.
pub const QUORUM_SET: u32 = 1;

/// `struct quorum_ring_id` (passed by value).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct QuorumRingId {
    pub nodeid: u32,
    pub seq: u64,
}

/// `quorum_v1_quorum_notification_fn_t`.
pub type QuorumV1QuorumFn = unsafe extern "C" fn(
    handle: QuorumHandle,
    quorate: u32,
    ring_id: QuorumRingId,
    member_list_entries: u32,
    member_list: *const u32,
);
/// `quorum_v1_nodelist_notification_fn_t`.
pub type QuorumV1NodelistFn = unsafe extern "C" fn(
    handle: QuorumHandle,
    ring_id: QuorumRingId,
    member_list_entries: u32,
    member_list: *const u32,
    joined_list_entries: u32,
    joined_list: *const u32,
    left_list_entries: u32,
    left_list: *const u32,
);

/// `quorum_model_v1_data_t`.
#[repr(C)]
pub struct QuorumModelV1Data {
    pub model: c_int,
    pub quorum_notify_fn: Option<QuorumV1QuorumFn>,
    pub nodelist_notify_fn: Option<QuorumV1NodelistFn>,
}

#[link(name = "quorum")]
unsafe extern "C" {
    pub fn quorum_model_initialize(
        handle: *mut QuorumHandle,
        model: c_int,
        model_data: *mut QuorumModelV1Data,
        quorum_type: *mut u32,
        context: *mut c_void,
    ) -> CsErrorT;
    pub fn quorum_finalize(handle: QuorumHandle) -> CsErrorT;
    pub fn quorum_fd_get(handle: QuorumHandle, fd: *mut c_int) -> CsErrorT;
    pub fn quorum_dispatch(handle: QuorumHandle, dispatch_types: c_int) -> CsErrorT;
    pub fn quorum_trackstart(handle: QuorumHandle, flags: c_uint) -> CsErrorT;
    pub fn quorum_context_get(handle: QuorumHandle, context: *mut *const c_void) -> CsErrorT;
}

// ---- votequorum.h ----

/// `votequorum_handle_t`.
pub type VotequorumHandle = u64;
/// `VOTEQUORUM_QDEVICE_MAX_NAME_LEN`.
pub const VOTEQUORUM_QDEVICE_MAX_NAME_LEN: usize = 255;

/// `struct votequorum_info`.
#[repr(C)]
pub struct VotequorumInfo {
    pub node_id: c_uint,
    pub node_state: c_uint,
    pub node_votes: c_uint,
    pub node_expected_votes: c_uint,
    pub highest_expected: c_uint,
    pub total_votes: c_uint,
    pub quorum: c_uint,
    pub flags: c_uint,
    pub qdevice_votes: c_uint,
    pub qdevice_name: [c_char; VOTEQUORUM_QDEVICE_MAX_NAME_LEN],
}

/// `votequorum_callbacks_t`; ocf registers none (it asks `votequorum_getinfo` on each view),
/// so every member is `None`.
#[repr(C)]
#[allow(clippy::struct_field_names)] // the C header's names
pub struct VotequorumCallbacks {
    pub votequorum_quorum_notify_fn: Option<unsafe extern "C" fn()>,
    pub votequorum_expectedvotes_notify_fn: Option<unsafe extern "C" fn()>,
    pub votequorum_nodelist_notify_fn: Option<unsafe extern "C" fn()>,
}

#[link(name = "votequorum")]
unsafe extern "C" {
    pub fn votequorum_initialize(
        handle: *mut VotequorumHandle,
        callbacks: *mut VotequorumCallbacks,
    ) -> CsErrorT;
    pub fn votequorum_finalize(handle: VotequorumHandle) -> CsErrorT;
    pub fn votequorum_getinfo(
        handle: VotequorumHandle,
        nodeid: c_uint,
        info: *mut VotequorumInfo,
    ) -> CsErrorT;
}

// ---- cmap.h ----

/// `cmap_handle_t`.
pub type CmapHandle = u64;
/// `cmap_iter_handle_t`.
pub type CmapIterHandle = u64;
/// `CMAP_KEYNAME_MAXLEN`.
pub const CMAP_KEYNAME_MAXLEN: usize = 255;
/// `CS_ERR_NO_SECTIONS`: the iterator is exhausted.
pub const CS_ERR_NO_SECTIONS: CsErrorT = 27;

#[link(name = "cmap")]
unsafe extern "C" {
    pub fn cmap_initialize(handle: *mut CmapHandle) -> CsErrorT;
    pub fn cmap_finalize(handle: CmapHandle) -> CsErrorT;
    pub fn cmap_get_uint32(handle: CmapHandle, key_name: *const c_char, u32: *mut u32) -> CsErrorT;
    pub fn cmap_get_string(
        handle: CmapHandle,
        key_name: *const c_char,
        str: *mut *mut c_char,
    ) -> CsErrorT;
    pub fn cmap_iter_init(
        handle: CmapHandle,
        prefix: *const c_char,
        iter_handle: *mut CmapIterHandle,
    ) -> CsErrorT;
    pub fn cmap_iter_next(
        handle: CmapHandle,
        iter_handle: CmapIterHandle,
        key_name: *mut c_char,
        value_len: *mut usize,
        value_type: *mut c_int,
    ) -> CsErrorT;
    pub fn cmap_iter_finalize(handle: CmapHandle, iter_handle: CmapIterHandle) -> CsErrorT;
}
