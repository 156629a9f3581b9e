//! The quorum service: the primary-partition decision, with its ring and members.

use std::ffi::{c_int, c_void};

use tokio::io::unix::AsyncFd;

use super::sys::{self, QuorumHandle, QuorumRingId};
use super::{CsError, LibFd, Notification, RingId, Sink, copy_array, register, wait_readable};

/// One quorum-service connection (model v1: every notification carries its ring id).
pub(crate) struct Quorum {
    handle: QuorumHandle,
    fd: Option<AsyncFd<LibFd>>,
    provider: bool,
    // Boxed so its address, handed to the library as the context, never moves; dropped only
    // after `quorum_finalize`.
    sink: Box<Sink>,
}

impl Quorum {
    /// Connects to corosync's quorum service; notifications go to `sink` once
    /// [`Quorum::track`] is called. Must be called inside a tokio runtime.
    pub(crate) fn connect(sink: Sink) -> Result<Self, CsError> {
        let sink = Box::new(sink);
        let mut model = sys::QuorumModelV1Data {
            model: sys::QUORUM_MODEL_V1,
            quorum_notify_fn: Some(on_quorum),
            nodelist_notify_fn: Some(on_nodelist),
        };
        let mut handle: QuorumHandle = 0;
        let mut quorum_type: u32 = 0;
        let context = std::ptr::from_ref::<Sink>(&sink)
            .cast_mut()
            .cast::<c_void>();
        // SAFETY: out-pointers valid for writes; the model is copied by the library; the
        // context is the boxed sink, which outlives the handle (see `Drop`).
        let rc = unsafe {
            sys::quorum_model_initialize(
                &raw mut handle,
                sys::QUORUM_MODEL_V1,
                &raw mut model,
                &raw mut quorum_type,
                context,
            )
        };
        CsError::check("quorum_model_initialize", rc)?;
        let mut quorum = Self {
            handle,
            fd: None,
            provider: quorum_type == sys::QUORUM_SET,
            sink,
        };
        let mut fd: c_int = -1;
        // SAFETY: live handle; `fd` valid for writes.
        CsError::check("quorum_fd_get", unsafe {
            sys::quorum_fd_get(quorum.handle, &raw mut fd)
        })?;
        quorum.fd = Some(register("quorum_fd_get", fd)?);
        Ok(quorum)
    }

    /// True when corosync has a quorum provider (votequorum); without one every partition
    /// counts as quorate and no quorum notifications come.
    pub(crate) fn has_provider(&self) -> bool {
        self.provider
    }

    /// Asks for the current state now and for every change from then on.
    pub(crate) fn track(&self) -> Result<(), CsError> {
        // SAFETY: live handle.
        CsError::check("quorum_trackstart", unsafe {
            sys::quorum_trackstart(self.handle, sys::CS_TRACK_CURRENT | sys::CS_TRACK_CHANGES)
        })
    }

    /// Waits until the connection has something to dispatch (or has hung up).
    pub(crate) async fn readable(&self) -> std::io::Result<()> {
        wait_readable(self.fd.as_ref()).await
    }

    /// Runs the callbacks for everything pending, without blocking.
    pub(crate) fn dispatch(&self) -> Result<(), CsError> {
        // SAFETY: live handle; the callbacks only read their arguments and the sink.
        CsError::check("quorum_dispatch", unsafe {
            sys::quorum_dispatch(self.handle, sys::CS_DISPATCH_ALL)
        })
    }
}

impl Drop for Quorum {
    fn drop(&mut self) {
        // Deregister from tokio while the fd is still open; finalize closes it.
        drop(self.fd.take());
        // SAFETY: the handle came from `quorum_model_initialize`; finalized exactly once.
        let _ = unsafe { sys::quorum_finalize(self.handle) };
        let _ = &self.sink;
    }
}

/// The sink registered as `handle`'s context, if any.
fn sink_of(handle: QuorumHandle) -> Option<&'static Sink> {
    let mut ctx: *const c_void = std::ptr::null();
    // SAFETY: `ctx` valid for writes; an unknown handle just returns an error.
    let rc = unsafe { sys::quorum_context_get(handle, &raw mut ctx) };
    if rc != sys::CS_OK || ctx.is_null() {
        return None;
    }
    // SAFETY: the only context ever set is the boxed `Sink` of the `Quorum` owning `handle`;
    // callbacks run only inside `Quorum::dispatch`, while it is alive. The reference never
    // escapes the callback.
    Some(unsafe { &*ctx.cast::<Sink>() })
}

unsafe extern "C" fn on_quorum(
    handle: QuorumHandle,
    quorate: u32,
    ring_id: QuorumRingId,
    member_list_entries: u32,
    member_list: *const u32,
) {
    let Some(sink) = sink_of(handle) else { return };
    // SAFETY: the library passes `member_list_entries` ids valid during the callback.
    let members = unsafe { copy_array(member_list, member_list_entries as usize) };
    let _ = sink.send(Notification::Quorum {
        quorate: quorate != 0,
        ring: RingId {
            nodeid: ring_id.nodeid,
            seq: ring_id.seq,
        },
        members,
    });
}

unsafe extern "C" fn on_nodelist(
    handle: QuorumHandle,
    ring_id: QuorumRingId,
    member_list_entries: u32,
    member_list: *const u32,
    _joined_list_entries: u32,
    _joined_list: *const u32,
    _left_list_entries: u32,
    _left_list: *const u32,
) {
    let Some(sink) = sink_of(handle) else { return };
    // SAFETY: the library passes `member_list_entries` ids valid during the callback.
    let members = unsafe { copy_array(member_list, member_list_entries as usize) };
    let _ = sink.send(Notification::QuorumNodelist {
        ring: RingId {
            nodeid: ring_id.nodeid,
            seq: ring_id.seq,
        },
        members,
    });
}
