//! The `extern "C"` functions of `oc_event.h`. Each checks its pointers (NULL, and tokens
//! against the ones registered: a stale or foreign token is `EINVAL`, never read), catches any
//! panic, and records why it failed for `ocf_last_error()`.
//!
//! Return values follow CCM: 0 on success, an `errno` value on failure
//! (`oc_ev_handle_event`: -1 once the class has ended or on a bad token).
#![allow(unsafe_code)]

use std::ffi::{c_int, c_void};

use super::payload::OcNode;
use super::{Callback, translate::OC_EV_MEMB_CLASS};
use crate::no_panic;

/// The registry key of a token pointer.
fn key(token: *const c_int) -> usize {
    token as usize
}

/// `int oc_ev_register(oc_ev_t **token)`: a new client token in `*token`.
///
/// # Safety
/// `token` must be NULL (refused with `EINVAL`) or point to writable memory for a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn oc_ev_register(token: *mut *mut c_int) -> c_int {
    no_panic(libc::EINVAL, || {
        if token.is_null() {
            crate::last_error::set("oc_ev_register: token is NULL");
            return libc::EINVAL;
        }
        let k = super::register();
        // SAFETY: checked non-NULL; the caller gives writable memory.
        unsafe { *token = super::token_ptr(k) };
        0
    })
}

/// `int oc_ev_unregister(oc_ev_t *token)`: ends the client (safe inside its own callback).
///
/// # Safety
/// Any value is accepted; only tokens this library gave out are used.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn oc_ev_unregister(token: *mut c_int) -> c_int {
    no_panic(libc::EINVAL, || super::unregister(key(token)))
}

/// `int oc_ev_set_callback(const oc_ev_t *token, oc_ev_class_t class, oc_ev_callback_t *fn,
/// oc_ev_callback_t **prev_fn)`: sets the class's callback; the previous one in `*prev_fn`
/// when `prev_fn` is not NULL.
///
/// # Safety
/// `prev_fn` must be NULL or writable; `callback` must be NULL or a function of the
/// callback's type.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn oc_ev_set_callback(
    token: *const c_int,
    class: c_int,
    callback: Option<Callback>,
    prev_fn: *mut Option<Callback>,
) -> c_int {
    no_panic(libc::EINVAL, || {
        match super::set_callback(key(token), class, callback) {
            Ok(prev) => {
                if !prev_fn.is_null() {
                    // SAFETY: checked non-NULL; the caller gives writable memory.
                    unsafe { *prev_fn = prev };
                }
                0
            }
            Err(errno) => errno,
        }
    })
}

/// `int oc_ev_special(const oc_ev_t *token, oc_ev_class_t class, int type)`: CCM's extension,
/// delivering memberships without quorum too, as `OC_EV_MS_INVALID` (`type` is ignored).
///
/// # Safety
/// Any value is accepted; only tokens this library gave out are used.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn oc_ev_special(token: *const c_int, class: c_int, _type: c_int) -> c_int {
    no_panic(libc::EINVAL, || super::special(key(token), class))
}

/// `int oc_ev_activate(const oc_ev_t *token, int *fd)`: connects to the local node,
/// subscribes, and gives the descriptor to poll in `*fd`. `EMFILE` when no callback is set;
/// `ENOENT` when no node could be located; the connect's `errno` (such as `ECONNREFUSED` or
/// `ENOENT`) when the node does not answer; `ocf_last_error()` says which socket and why.
///
/// # Safety
/// `fd` must be NULL (refused with `EINVAL`) or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn oc_ev_activate(token: *const c_int, fd: *mut c_int) -> c_int {
    no_panic(libc::EINVAL, || {
        if fd.is_null() {
            crate::last_error::set("oc_ev_activate: fd is NULL");
            return libc::EINVAL;
        }
        match super::activate(key(token)) {
            Ok(raw) => {
                // SAFETY: checked non-NULL; the caller gives writable memory.
                unsafe { *fd = raw };
                0
            }
            Err(errno) => errno,
        }
    })
}

/// `int oc_ev_handle_event(const oc_ev_t *token)`: call when the descriptor is readable;
/// delivers what arrived. 0, or -1 once the daemon is gone (or for a bad token).
///
/// # Safety
/// Any value is accepted; only tokens this library gave out are used.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn oc_ev_handle_event(token: *const c_int) -> c_int {
    no_panic(-1, || super::handle_event(key(token)))
}

/// `int oc_ev_callback_done(void *cookie)`: the callback's payload is released; the next event
/// may be delivered.
///
/// # Safety
/// Any value is accepted; only cookies this library gave out are used.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn oc_ev_callback_done(cookie: *mut c_void) -> c_int {
    no_panic(libc::EINVAL, || super::callback_done(cookie as u64))
}

/// `int oc_ev_is_my_nodeid(const oc_ev_t *token, const oc_node_t *node)`: 1 when `node` is
/// the local node, else 0 (also for NULL or a token not activated).
///
/// # Safety
/// `node` must be NULL or point to an `oc_node_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn oc_ev_is_my_nodeid(token: *const c_int, node: *const OcNode) -> c_int {
    no_panic(0, || {
        if node.is_null() {
            crate::last_error::set("oc_ev_is_my_nodeid: node is NULL");
            return 0;
        }
        // SAFETY: checked non-NULL; the caller gives an oc_node_t.
        let id = unsafe { (*node).node_id };
        super::is_my_nodeid(key(token), id)
    })
}

/// The class number served, for tests and Rust callers.
pub const MEMBERSHIP_CLASS: c_int = OC_EV_MEMB_CLASS as c_int;
