//! The OCF C APIs, served by ocf: heartbeat CCM's membership event API (`oc_event.h`) and
//! cluster-glue's reset service (`stonith.h`), so a C program written for those headers links
//! `-locf` and joins the same membership, and the same fence-once cluster fencer, as every
//! Rust client of the node.
//!
//! The library talks to the local `ocf node` over its socket (the JSON lines of
//! [`ocf_ref::membership::daemon::local_api`]); it starts no thread that outlives a call and
//! forces no async runtime on the host program: the host's own `poll`/`select` loop drives
//! [`oc_ev_handle_event`](event::ffi::oc_ev_handle_event) through the descriptor
//! [`oc_ev_activate`](event::ffi::oc_ev_activate) returns, exactly as CCM clients did.
//!
//! Which node: [`locate`](mod@locate) explains the order (`OCF_SOCKET`, then `OCF_NODE_CONFIG`, then
//! `/etc/ocf/node.toml`, then the one socket under `/run/ocf`), and every failure to reach it
//! says which it tried; [`ocf_last_error`](last_error::ocf_last_error) gives the text to C.
//!
//! The headers are in `include/ocf/` (`oc_event.h`, `stonith.h`, and `ocf.h`, which includes
//! both); `scripts/install-capi` builds and installs the shared and static libraries, the
//! headers and `ocf.pc`. The guide's chapter "From C" has a complete example.
//!
//! Safety at the boundary: `unsafe` lives only in the FFI layer: the entry points (the `ffi`
//! modules and [`ocf_last_error`](last_error::ocf_last_error)), [`cstr`] (C strings and arrays),
//! [`event::payload`] (a membership in C's layout), the one call of a host's callback in
//! [`event`], and the `Send` of the registries that hold pointers handed to C; no panic
//! crosses into C (each entry point catches one and answers its error value); every pointer
//! argument is checked (NULL, and handles against the ones this library gave out, so a stale
//! or foreign handle is an error, never a read); every allocation handed to C has its free
//! function (`oc_ev_callback_done`, `stonith_free_hostlist`, `free_NVpair`, `stonith_delete`).

pub mod cstr;
pub mod event;
pub mod last_error;
pub mod locate;
pub mod stonith;
pub mod wire;

pub use locate::{Located, locate};

/// Runs `f`, turning a panic into `fallback` (with the panic noted as the thread's last
/// error), so that no unwind ever crosses an `extern "C"` boundary.
pub(crate) fn no_panic<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            last_error::set(format!("ocf: internal error (please report): {what}"));
            fallback
        }
    }
}
