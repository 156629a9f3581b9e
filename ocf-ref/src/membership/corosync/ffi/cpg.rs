//! Closed Process Groups: the totem ring, our group's members and agreed-order messages.

use std::ffi::{c_int, c_uint, c_void};

use tokio::io::unix::AsyncFd;

use super::sys::{self, CpgAddress, CpgHandle, CpgName, CpgRingId};
use super::{CsError, LibFd, Notification, RingId, Sink, copy_array, register, wait_readable};

/// One CPG connection, joined to one group once [`Cpg::join`] succeeds.
pub(crate) struct Cpg {
    handle: CpgHandle,
    fd: Option<AsyncFd<LibFd>>,
    // Boxed so its address, handed to the library as the context, never moves; dropped only
    // after `cpg_finalize` (fields drop after `Drop::drop`).
    sink: Box<Sink>,
}

impl Cpg {
    /// Connects to corosync's CPG service; totem ring changes (including the current ring, on
    /// join) and group events go to `sink`. Must be called inside a tokio runtime.
    pub(crate) fn connect(sink: Sink) -> Result<Self, CsError> {
        let sink = Box::new(sink);
        let mut model = sys::CpgModelV1Data {
            model: sys::CPG_MODEL_V1,
            cpg_deliver_fn: Some(on_deliver),
            cpg_confchg_fn: Some(on_confchg),
            cpg_totem_confchg_fn: Some(on_totem_confchg),
            flags: sys::CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF,
        };
        let mut handle: CpgHandle = 0;
        let context = std::ptr::from_ref::<Sink>(&sink)
            .cast_mut()
            .cast::<c_void>();
        // SAFETY: `handle` and `model` are valid for writes/reads during the call (the library
        // copies the model); `context` points at the boxed sink, which outlives the handle
        // because `Drop` finalizes the handle before the box is freed.
        let rc = unsafe {
            sys::cpg_model_initialize(&raw mut handle, sys::CPG_MODEL_V1, &raw mut model, context)
        };
        CsError::check("cpg_model_initialize", rc)?;
        let mut cpg = Self {
            handle,
            fd: None,
            sink,
        };
        let mut fd: c_int = -1;
        // SAFETY: `cpg.handle` is a live handle; `fd` is valid for writes.
        CsError::check("cpg_fd_get", unsafe {
            sys::cpg_fd_get(cpg.handle, &raw mut fd)
        })?;
        cpg.fd = Some(register("cpg_fd_get", fd)?);
        Ok(cpg)
    }

    /// Joins the process group `group` (at most 128 bytes).
    pub(crate) fn join(&self, group: &str) -> Result<(), CsError> {
        let bytes = group.as_bytes();
        if bytes.len() > sys::CPG_MAX_NAME_LENGTH {
            return Err(CsError::Code {
                call: "cpg_join",
                code: super::code::NOT_EXIST,
            });
        }
        let mut name = CpgName {
            length: bytes.len() as u32,
            value: [0; sys::CPG_MAX_NAME_LENGTH],
        };
        for (dst, src) in name.value.iter_mut().zip(bytes) {
            *dst = *src as std::ffi::c_char;
        }
        // SAFETY: live handle; `name` is a valid `struct cpg_name` for the call's duration.
        CsError::check("cpg_join", unsafe {
            sys::cpg_join(self.handle, &raw const name)
        })
    }

    /// This node's id.
    pub(crate) fn local_node(&self) -> Result<u32, CsError> {
        let mut id: c_uint = 0;
        // SAFETY: live handle; `id` is valid for writes.
        CsError::check("cpg_local_get", unsafe {
            sys::cpg_local_get(self.handle, &raw mut id)
        })?;
        Ok(id)
    }

    /// Waits until the connection has something to dispatch (or has hung up).
    pub(crate) async fn readable(&self) -> std::io::Result<()> {
        wait_readable(self.fd.as_ref()).await
    }

    /// Runs the callbacks for everything pending, without blocking.
    pub(crate) fn dispatch(&self) -> Result<(), CsError> {
        // SAFETY: live handle; the callbacks it runs only read their arguments and the sink.
        CsError::check("cpg_dispatch", unsafe {
            sys::cpg_dispatch(self.handle, sys::CS_DISPATCH_ALL)
        })
    }
}

impl Drop for Cpg {
    fn drop(&mut self) {
        // Deregister from tokio while the fd is still open; finalize closes it.
        drop(self.fd.take());
        // SAFETY: the handle came from `cpg_model_initialize` and is finalized exactly once.
        let _ = unsafe { sys::cpg_finalize(self.handle) };
        let _ = &self.sink;
    }
}

/// The sink registered as `handle`'s context, if any.
fn sink_of(handle: CpgHandle) -> Option<&'static Sink> {
    let mut ctx: *mut c_void = std::ptr::null_mut();
    // SAFETY: `ctx` is valid for writes; an unknown handle just returns an error.
    let rc = unsafe { sys::cpg_context_get(handle, &raw mut ctx) };
    if rc != sys::CS_OK || ctx.is_null() {
        return None;
    }
    // SAFETY: the only context ever set is the boxed `Sink` of the `Cpg` owning `handle`;
    // callbacks run only inside `Cpg::dispatch`, while that `Cpg` (and so the box) is alive.
    // The 'static lifetime never escapes the callback that asked for it.
    Some(unsafe { &*ctx.cast::<Sink>() })
}

unsafe extern "C" fn on_totem_confchg(
    handle: CpgHandle,
    ring_id: CpgRingId,
    member_list_entries: u32,
    member_list: *const u32,
) {
    let Some(sink) = sink_of(handle) else { return };
    // SAFETY: the library passes `member_list_entries` node ids valid during the callback.
    let members = unsafe { copy_array(member_list, member_list_entries as usize) };
    let _ = sink.send(Notification::TotemRing {
        ring: RingId {
            nodeid: ring_id.nodeid,
            seq: ring_id.seq,
        },
        members,
    });
}

unsafe extern "C" fn on_confchg(
    handle: CpgHandle,
    _group_name: *const CpgName,
    member_list: *const CpgAddress,
    member_list_entries: usize,
    _left_list: *const CpgAddress,
    _left_list_entries: usize,
    _joined_list: *const CpgAddress,
    _joined_list_entries: usize,
) {
    let Some(sink) = sink_of(handle) else { return };
    // SAFETY: the library passes `member_list_entries` addresses valid during the callback.
    let members = unsafe { copy_array(member_list, member_list_entries) };
    let _ = sink.send(Notification::GroupChange {
        members: members.iter().map(|a| (a.nodeid, a.pid)).collect(),
    });
}

unsafe extern "C" fn on_deliver(
    handle: CpgHandle,
    _group_name: *const CpgName,
    nodeid: u32,
    pid: u32,
    msg: *mut c_void,
    msg_len: usize,
) {
    let Some(sink) = sink_of(handle) else { return };
    // SAFETY: the library passes `msg_len` bytes at `msg`, valid during the callback.
    let data = unsafe { copy_array(msg.cast_const().cast::<u8>(), msg_len) };
    let _ = sink.send(Notification::GroupMessage { nodeid, pid, data });
}
