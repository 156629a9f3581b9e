//! The text of the last failure on this thread, for C callers whose APIs return only a code.
//!
//! Every entry point that fails records why (which node socket it tried and how it found it,
//! what the daemon answered, which argument was wrong); [`ocf_last_error`] hands the text to C.
//! With `OCF_CAPI_DEBUG` set in the environment, each one is also written to standard error.
#![allow(unsafe_code)]

use std::cell::RefCell;
use std::ffi::{CString, c_char};

thread_local! {
    static LAST: RefCell<CString> = RefCell::new(CString::default());
}

/// Records `message` as this thread's last error.
pub fn set(message: impl Into<String>) {
    let message = message.into();
    if std::env::var_os("OCF_CAPI_DEBUG").is_some() {
        eprintln!("{message}");
    }
    let c = CString::new(message.replace('\0', " ")).unwrap_or_default();
    LAST.with(|l| *l.borrow_mut() = c);
}

/// This thread's last error, as text (empty when there was none).
pub fn get() -> String {
    LAST.with(|l| l.borrow().to_string_lossy().into_owned())
}

/// The text of the last failure of an `oc_ev_*` or `stonith_*` call on the calling thread:
/// never NULL (an empty string when nothing failed yet), valid until this thread's next call
/// into the library.
///
/// ```c
/// if (oc_ev_activate(token, &fd) != 0)
///         fprintf(stderr, "membership: %s\n", ocf_last_error());
/// ```
#[unsafe(no_mangle)]
pub extern "C" fn ocf_last_error() -> *const c_char {
    crate::no_panic(c"".as_ptr(), || LAST.with(|l| l.borrow().as_ptr()))
}
