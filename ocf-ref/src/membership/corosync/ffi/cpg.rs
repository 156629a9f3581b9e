//! Closed Process Groups: the totem ring, our group's members and agreed-order messages.

use std::ffi::{c_int, c_uint, c_void};

use tokio::io::unix::AsyncFd;

use super::sys::{self, CpgAddress, CpgHandle, CpgName, CpgRingId};
use super::{
    CsError, LibFd, Notification, RingId, Sink, copy_array, no_unwind, register, wait_readable,
};

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
        let name = group_name("cpg_join", group)?;
        // SAFETY: live handle; `name` is a valid `struct cpg_name` for the call's duration.
        CsError::check("cpg_join", unsafe {
            sys::cpg_join(self.handle, &raw const name)
        })
    }

    /// Leaves the process group `group` (joined before with [`Cpg::join`]).
    pub(crate) fn leave(&self, group: &str) -> Result<(), CsError> {
        let name = group_name("cpg_leave", group)?;
        // SAFETY: live handle; `name` is a valid `struct cpg_name` for the call's duration.
        CsError::check("cpg_leave", unsafe {
            sys::cpg_leave(self.handle, &raw const name)
        })
    }

    /// Multicasts one message, the concatenation of `parts`, to the joined group in agreed
    /// order (every member, the sender included, delivers it in the same total order).
    ///
    /// Corosync's flow control answers `CS_ERR_TRY_AGAIN` (see [`CsError::is_try_again`]) when
    /// its queues are full or it is synchronizing: the caller retries later, after dispatching.
    pub(crate) fn mcast(&self, parts: &[&[u8]]) -> Result<(), CsError> {
        let iov: Vec<libc::iovec> = parts
            .iter()
            .map(|p| libc::iovec {
                iov_base: p.as_ptr().cast_mut().cast::<c_void>(),
                iov_len: p.len(),
            })
            .collect();
        let Ok(count) = c_uint::try_from(iov.len()) else {
            return Err(CsError::Code {
                call: "cpg_mcast_joined",
                code: super::code::INVALID_PARAM,
            });
        };
        // SAFETY: live handle; `iov` holds `count` iovecs, each pointing at a borrowed slice of
        // `iov_len` bytes that outlives the call; the library only reads them (the `*mut` in
        // `struct iovec` is C's, not a write permission).
        CsError::check("cpg_mcast_joined", unsafe {
            sys::cpg_mcast_joined(self.handle, sys::CPG_TYPE_AGREED, iov.as_ptr(), count)
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

/// `group` as a `struct cpg_name`; longer than 128 bytes is `CS_ERR_NAME_TOO_LONG`.
fn group_name(call: &'static str, group: &str) -> Result<CpgName, CsError> {
    let bytes = group.as_bytes();
    let Ok(length) = u32::try_from(bytes.len()) else {
        return Err(CsError::Code {
            call,
            code: super::code::NAME_TOO_LONG,
        });
    };
    if bytes.len() > sys::CPG_MAX_NAME_LENGTH {
        return Err(CsError::Code {
            call,
            code: super::code::NAME_TOO_LONG,
        });
    }
    let mut name = CpgName {
        length,
        value: [0; sys::CPG_MAX_NAME_LENGTH],
    };
    for (dst, src) in name.value.iter_mut().zip(bytes) {
        *dst = *src as std::ffi::c_char;
    }
    Ok(name)
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
    no_unwind(|| {
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
    no_unwind(|| {
        let Some(sink) = sink_of(handle) else { return };
        // SAFETY: the library passes `member_list_entries` addresses valid during the callback.
        let members = unsafe { copy_array(member_list, member_list_entries) };
        let _ = sink.send(Notification::GroupChange {
            members: members.iter().map(|a| (a.nodeid, a.pid)).collect(),
        });
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
    no_unwind(|| {
        let Some(sink) = sink_of(handle) else { return };
        // SAFETY: the library passes `msg_len` bytes at `msg`, valid during the callback
        // (`copy_array` gives an empty message for a null pointer).
        let data = unsafe { copy_array(msg.cast_const().cast::<u8>(), msg_len) };
        let _ = sink.send(Notification::GroupMessage { nodeid, pid, data });
    });
}
