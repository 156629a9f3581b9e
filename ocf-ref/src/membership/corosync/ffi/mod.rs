//! A thin, safe binding to the four Corosync client libraries ocf needs (CPG, quorum,
//! votequorum, cmap), written against the 3.1.7 headers.
//!
//! Why our own binding rather than the `rust-corosync` crate: that crate forces `fn`-pointer
//! callbacks that find their state in global handle maps held locked while a callback runs,
//! returns a pointer instead of the context given, swaps cmap's new and old values, hard-wires
//! CPG's model flags to 0 (so the totem ring is not delivered on join), and finalizes handles
//! in `Drop` behind the back of whoever polls their fd. The roughly twenty functions ocf calls
//! are easier to get right directly: each handle here owns
//!
//! - a per-handle context (a boxed channel sender) that the C library hands back to our
//!   `extern "C"` callbacks, which only copy their arguments into an owned [`Notification`] and
//!   send it; nothing global, nothing locked while user code runs;
//! - its file descriptor, registered with tokio ([`tokio::io::unix::AsyncFd`]) and deregistered
//!   *before* the handle is finalized (the library closes the fd in `*_finalize`).
//!
//! Callbacks run only inside `dispatch`, which the owner calls on its own task when the fd is
//! readable, with `CS_DISPATCH_ALL` (never blocks).

// This module is the one place in ocf that calls C: declaring and calling the Corosync client
// libraries' functions, and turning the raw pointers their callbacks receive back into Rust
// values, cannot be done without `unsafe`. Every unsafe block says why it is sound.
#![allow(unsafe_code)]

mod cmap;
mod cpg;
mod quorum;
mod sys;
mod votequorum;

use std::ffi::c_int;
use std::fmt;
use std::os::fd::{AsRawFd, RawFd};

pub(crate) use cmap::Cmap;
pub(crate) use cpg::Cpg;
pub(crate) use quorum::Quorum;
pub(crate) use votequorum::Votequorum;

/// A Corosync ring id: the representative node and the ring sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct RingId {
    /// The ring's representative node id.
    pub nodeid: u32,
    /// The ring sequence number.
    pub seq: u64,
}

/// One callback from a Corosync library, copied into owned data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Notification {
    /// Quorum service: the quorate flag, ring and members after a change (or on track start).
    Quorum {
        /// Whether this partition holds quorum.
        quorate: bool,
        /// The ring the decision belongs to.
        ring: RingId,
        /// Node ids in the ring.
        members: Vec<u32>,
    },
    /// Quorum service: the ring's node list changed (sent before the quorum decision).
    QuorumNodelist {
        /// The new ring.
        ring: RingId,
        /// Node ids in the ring.
        members: Vec<u32>,
    },
    /// CPG: the totem ring changed (every node in the ring, whether or not it joined a group).
    TotemRing {
        /// The new ring.
        ring: RingId,
        /// Node ids in the ring.
        members: Vec<u32>,
    },
    /// CPG: the membership of our process group changed.
    GroupChange {
        /// `(nodeid, pid)` of the group's processes now.
        members: Vec<(u32, u32)>,
    },
    /// CPG: a message multicast to our group, in agreed order.
    GroupMessage {
        /// Sender's node.
        nodeid: u32,
        /// Sender's process id.
        pid: u32,
        /// The message bytes.
        data: Vec<u8>,
    },
}

/// Where a handle's callbacks send their notifications.
pub(crate) type Sink = tokio::sync::mpsc::UnboundedSender<Notification>;

/// A failed library call: which function and which `cs_error_t`, or the registration of the
/// handle's fd with tokio.
#[derive(Debug)]
pub(crate) enum CsError {
    /// The library returned an error code.
    Code {
        /// The C function that failed.
        call: &'static str,
        /// Its `cs_error_t`.
        code: c_int,
    },
    /// Registering the library's fd with tokio failed.
    Io {
        /// What was being done.
        call: &'static str,
        /// The error.
        source: std::io::Error,
    },
}

/// `cs_error_t` values the callers branch on.
pub(crate) mod code {
    use std::ffi::c_int;
    /// `CS_ERR_LIBRARY`: the IPC connection to corosync failed or broke.
    pub const LIBRARY: c_int = 2;
    /// `CS_ERR_TRY_AGAIN`: corosync is busy (synchronizing); retry.
    pub const TRY_AGAIN: c_int = 6;
    /// `CS_ERR_BAD_HANDLE`: the handle is no longer valid (corosync went away).
    pub const BAD_HANDLE: c_int = 9;
    /// `CS_ERR_ACCESS`: corosync refused this client.
    pub const ACCESS: c_int = 11;
    /// `CS_ERR_INVALID_PARAM`.
    pub const INVALID_PARAM: c_int = 7;
    /// `CS_ERR_NOT_EXIST`.
    pub const NOT_EXIST: c_int = 12;
    /// `CS_ERR_NAME_TOO_LONG`: a CPG group name over 128 bytes.
    pub const NAME_TOO_LONG: c_int = 13;
    /// `CS_ERR_EXIST`: e.g. this process already joined the CPG group.
    pub const EXIST: c_int = 14;
    /// `CS_ERR_SECURITY`: corosync refused this client's credentials.
    pub const SECURITY: c_int = 100;
}

impl CsError {
    fn check(call: &'static str, code: c_int) -> Result<(), Self> {
        if code == sys::CS_OK {
            Ok(())
        } else {
            Err(Self::Code { call, code })
        }
    }

    /// The `cs_error_t`, if the library returned one.
    pub(crate) fn code(&self) -> Option<c_int> {
        match self {
            Self::Code { code, .. } => Some(*code),
            Self::Io { .. } => None,
        }
    }

    /// True for `CS_ERR_TRY_AGAIN`.
    pub(crate) fn is_try_again(&self) -> bool {
        self.code() == Some(code::TRY_AGAIN)
    }
}

/// The symbolic name of a `cs_error_t`.
pub(crate) fn code_name(code: c_int) -> &'static str {
    match code {
        1 => "CS_OK",
        2 => "CS_ERR_LIBRARY",
        3 => "CS_ERR_VERSION",
        4 => "CS_ERR_INIT",
        5 => "CS_ERR_TIMEOUT",
        6 => "CS_ERR_TRY_AGAIN",
        7 => "CS_ERR_INVALID_PARAM",
        8 => "CS_ERR_NO_MEMORY",
        9 => "CS_ERR_BAD_HANDLE",
        10 => "CS_ERR_BUSY",
        11 => "CS_ERR_ACCESS",
        12 => "CS_ERR_NOT_EXIST",
        13 => "CS_ERR_NAME_TOO_LONG",
        14 => "CS_ERR_EXIST",
        15 => "CS_ERR_NO_SPACE",
        16 => "CS_ERR_INTERRUPT",
        17 => "CS_ERR_NAME_NOT_FOUND",
        18 => "CS_ERR_NO_RESOURCES",
        19 => "CS_ERR_NOT_SUPPORTED",
        20 => "CS_ERR_BAD_OPERATION",
        21 => "CS_ERR_FAILED_OPERATION",
        22 => "CS_ERR_MESSAGE_ERROR",
        23 => "CS_ERR_QUEUE_FULL",
        24 => "CS_ERR_QUEUE_NOT_AVAILABLE",
        25 => "CS_ERR_BAD_FLAGS",
        26 => "CS_ERR_TOO_BIG",
        27 => "CS_ERR_NO_SECTIONS",
        28 => "CS_ERR_CONTEXT_NOT_FOUND",
        30 => "CS_ERR_TOO_MANY_GROUPS",
        100 => "CS_ERR_SECURITY",
        _ => "unknown cs_error_t",
    }
}

impl fmt::Display for CsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Code { call, code } => write!(f, "{call} failed: {} ({code})", code_name(*code)),
            Self::Io { call, source } => write!(f, "{call} failed: {source}"),
        }
    }
}

impl std::error::Error for CsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            Self::Code { .. } => None,
        }
    }
}

/// A library-owned fd, borrowed for tokio's reactor. Never closed here: the library closes it
/// in `*_finalize`, after the owner has deregistered it.
struct LibFd(RawFd);

impl AsRawFd for LibFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// Registers a library fd with tokio's reactor (read interest only).
/// Refuses (instead of panicking) outside a tokio runtime.
fn register(call: &'static str, fd: RawFd) -> Result<tokio::io::unix::AsyncFd<LibFd>, CsError> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(CsError::Io {
            call,
            source: std::io::Error::other("the Corosync client must run inside a tokio runtime"),
        });
    }
    // SAFETY: `fd` was just returned by the library's `*_fd_get` for a live handle, so it is
    // open; it stays open and the same until that handle is finalized, and every owner drops
    // the `AsyncFd` before finalizing (see the `Drop` impls). `LibFd` always returns this fd.
    unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(LibFd(fd), tokio::io::Interest::READABLE)
    }
    .map_err(|e| CsError::Io {
        call,
        source: e.into_parts().1,
    })
}

/// Waits until `fd` is readable (or hung up), clearing the readiness first so that data
/// arriving during the following dispatch wakes the next wait.
async fn wait_readable(fd: Option<&tokio::io::unix::AsyncFd<LibFd>>) -> std::io::Result<()> {
    match fd {
        Some(fd) => {
            let mut guard = fd.readable().await?;
            guard.clear_ready();
            Ok(())
        }
        None => std::future::pending().await,
    }
}

/// Runs a callback's body so that a panic never unwinds into C: it is caught and logged
/// (the notification is lost; the connection goes on).
fn no_unwind(body: impl FnOnce()) {
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).is_err() {
        tracing::error!("a Corosync callback panicked; its notification was dropped");
    }
}

/// Copies a C array of `len` elements into a `Vec`; null or empty gives an empty `Vec`.
///
/// # Safety
/// When `ptr` is non-null it must point at `len` initialized elements that stay valid for the
/// duration of the call.
unsafe fn copy_array<T: Copy>(ptr: *const T, len: usize) -> Vec<T> {
    if ptr.is_null() || len == 0 {
        return Vec::new();
    }
    // SAFETY: non-null and `len` elements valid, as the caller promised.
    unsafe { std::slice::from_raw_parts(ptr, len) }.to_vec()
}
