//! The `extern "C"` functions of `stonith.h`. Each checks its pointers (NULL; handles and
//! arrays against the ones this library made, so a stale, foreign or twice-freed one is an
//! error or ignored, never used), catches any panic, and records why it failed for
//! `ocf_last_error()` (and, once `stonith_set_log` gave one, the device's log function).
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int};

use super::codes::{S_INVAL, S_OK, S_OOPS};
use super::{Stonith, StonithNVpair};
use crate::{cstr, last_error, no_panic};

/// `PILLogFun`: cluster-glue's log function, `void (*)(PILLogLevel, const char *fmt, ...)`.
pub type PilLogFun = unsafe extern "C" fn(c_int, *const c_char, ...);

/// `PIL_WARN`, the level failures are logged at.
const PIL_WARN: c_int = 3;
/// The most pairs read from one `StonithNVpair` array (a longer one is refused, not walked).
const MAX_PAIRS: usize = 4096;

fn key(s: *const Stonith) -> usize {
    s as usize
}

/// After a failing call on `s`: the reason goes to the device's log function, if set.
fn report(s: *const Stonith, code: c_int) -> c_int {
    if code == S_OK {
        return code;
    }
    let (log, debug) = super::log_settings(key(s));
    if debug > 0 {
        eprintln!("stonith: {} (code {code})", last_error::get());
    }
    if let Some(log) = log
        && let Ok(text) = std::ffi::CString::new(last_error::get().replace('\0', " "))
    {
        // SAFETY: the host gave this function for logging; "%s" with one C string.
        unsafe { log(PIL_WARN, c"%s".as_ptr(), text.as_ptr()) };
    }
    code
}

/// `char **stonith_types(void)`: every device type (`ocf`, then cluster-glue's plugins), a
/// NULL-terminated array valid until the next call; the caller does not free it.
#[unsafe(no_mangle)]
pub extern "C" fn stonith_types() -> *mut *mut c_char {
    no_panic(std::ptr::null_mut(), super::types_array)
}

/// `Stonith *stonith_new(const char *type)`: a device of `type`, or NULL when no such type
/// exists (or `type` is NULL).
///
/// # Safety
/// `stype` must be NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn stonith_new(stype: *const c_char) -> *mut Stonith {
    no_panic(std::ptr::null_mut(), || {
        // SAFETY: the caller gives NULL or a C string.
        let Some(t) = (unsafe { cstr::arg(stype) }) else {
            last_error::set("stonith_new: type is NULL or not UTF-8");
            return std::ptr::null_mut();
        };
        super::new(t).map_or(std::ptr::null_mut(), super::public_ptr)
    })
}

/// `void stonith_delete(Stonith *s)`: frees the device (NULL and unknown handles are ignored).
///
/// # Safety
/// Any value is accepted; only handles this library made are used.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn stonith_delete(s: *mut Stonith) {
    no_panic((), || {
        super::delete(key(s));
    });
}

/// `const char * const *stonith_get_confignames(Stonith *s)`: the configuration names, a
/// NULL-terminated array owned by the device.
///
/// # Safety
/// Any value is accepted; only handles this library made are used.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn stonith_get_confignames(s: *mut Stonith) -> *const *const c_char {
    no_panic(std::ptr::null(), || super::confignames(key(s)))
}

/// `const char *stonith_get_info(Stonith *s, int infotype)`: `ST_CONF_XML`, `ST_DEVICEID`,
/// `ST_DEVICENAME` (type `ocf`: the node's socket), `ST_DEVICEDESCR`; NULL for others. The
/// string is owned by the device.
///
/// # Safety
/// Any value is accepted; only handles this library made are used.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn stonith_get_info(s: *mut Stonith, infotype: c_int) -> *const c_char {
    no_panic(std::ptr::null(), || super::info(key(s), infotype))
}

/// `void stonith_set_debug(Stonith *s, int level)`: a level above 0 also writes each failure
/// to standard error.
///
/// # Safety
/// Any value is accepted; only handles this library made are used.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn stonith_set_debug(s: *mut Stonith, level: c_int) {
    no_panic((), || super::set_debug(key(s), level));
}

/// `void stonith_set_log(Stonith *s, PILLogFun log)`: failures of this device are logged
/// through `log` (at `PIL_WARN`); NULL stops it.
///
/// # Safety
/// `log` must be NULL or a function of `PILLogFun`'s type.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn stonith_set_log(s: *mut Stonith, log: Option<PilLogFun>) {
    no_panic((), || super::set_log(key(s), log));
}

/// Reads a host's pair array (`None`: NULL, too long, or a name that is not UTF-8).
///
/// # Safety
/// `list` must be NULL or a NULL-name-terminated array of pairs.
unsafe fn read_pairs(list: *const StonithNVpair) -> Option<Vec<(String, Option<String>)>> {
    if list.is_null() {
        last_error::set("stonith_set_config: the list is NULL");
        return None;
    }
    let mut pairs = Vec::new();
    for i in 0..=MAX_PAIRS {
        if i == MAX_PAIRS {
            last_error::set(format!(
                "stonith_set_config: more than {MAX_PAIRS} pairs (is the list NULL-terminated?)"
            ));
            return None;
        }
        // SAFETY: the caller gives a terminated array; we stop at its NULL name.
        let pair = unsafe { &*list.add(i) };
        if pair.s_name.is_null() {
            break;
        }
        // SAFETY: non-NULL name and value are C strings.
        let Some(name) = (unsafe { cstr::arg(pair.s_name) }) else {
            last_error::set("stonith_set_config: a name is not UTF-8");
            return None;
        };
        // SAFETY: as above.
        let value = unsafe { cstr::arg(pair.s_value) }.map(str::to_owned);
        pairs.push((name.to_owned(), value));
    }
    Some(pairs)
}

/// `int stonith_set_config(Stonith *s, StonithNVpair *list)`: configures the device.
///
/// # Safety
/// `list` must be NULL or a NULL-name-terminated array of pairs of C strings.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn stonith_set_config(s: *mut Stonith, list: *mut StonithNVpair) -> c_int {
    no_panic(S_OOPS, || {
        // SAFETY: the caller's promise above.
        let code = match unsafe { read_pairs(list) } {
            Some(pairs) => super::set_config(key(s), &pairs),
            None => S_INVAL,
        };
        report(s, code)
    })
}

/// `int stonith_set_config_file(Stonith *s, const char *file)`: configures from a `-F` file
/// (values in the order of the configuration names; `#` starts a comment line).
///
/// # Safety
/// `file` must be NULL or a C string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn stonith_set_config_file(s: *mut Stonith, file: *const c_char) -> c_int {
    no_panic(S_OOPS, || {
        // SAFETY: the caller gives NULL or a C string.
        let code = if let Some(f) = unsafe { cstr::arg(file) } {
            super::set_config_file(key(s), std::path::Path::new(f))
        } else {
            last_error::set("stonith_set_config_file: the file name is NULL");
            S_INVAL
        };
        report(s, code)
    })
}

/// `int stonith_set_config_info(Stonith *s, const char *info)`: configures from a `-p`
/// string (values in the order of the configuration names, the last taking the rest).
///
/// # Safety
/// `info` must be NULL or a C string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn stonith_set_config_info(s: *mut Stonith, info: *const c_char) -> c_int {
    no_panic(S_OOPS, || {
        // SAFETY: the caller gives NULL or a C string.
        let code = if let Some(i) = unsafe { cstr::arg(info) } {
            super::set_config_info(key(s), i)
        } else {
            last_error::set("stonith_set_config_info: the string is NULL");
            S_INVAL
        };
        report(s, code)
    })
}

/// `char **stonith_get_hostlist(Stonith *s)`: the hosts the device can reset, lower-cased;
/// NULL on failure. Free it with `stonith_free_hostlist`.
///
/// # Safety
/// Any value is accepted; only handles this library made are used.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn stonith_get_hostlist(s: *mut Stonith) -> *mut *mut c_char {
    no_panic(std::ptr::null_mut(), || match super::hostlist(key(s)) {
        Ok(hosts) => {
            let array = cstr::alloc_array(&hosts);
            if !array.is_null() {
                super::with_registry(|r| r.hostlists.insert(array as usize));
            }
            array
        }
        Err(code) => {
            report(s, code);
            std::ptr::null_mut()
        }
    })
}

/// `void stonith_free_hostlist(char **hostlist)`: frees a host list (NULL, and lists this
/// library did not give or freed already, are ignored).
///
/// # Safety
/// Any value is accepted; only lists this library gave out are freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn stonith_free_hostlist(hostlist: *mut *mut c_char) {
    no_panic((), || {
        if super::with_registry(|r| r.hostlists.remove(&(hostlist as usize))) {
            // SAFETY: made by cstr::alloc_array and handed out once.
            unsafe { cstr::free_array(hostlist) };
        }
    });
}

/// `int stonith_get_status(Stonith *s)`: `S_OK` when the device (for type `ocf`: the node's
/// fencer) can be reached.
///
/// # Safety
/// Any value is accepted; only handles this library made are used.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn stonith_get_status(s: *mut Stonith) -> c_int {
    no_panic(S_OOPS, || report(s, super::status(key(s))))
}

/// `int stonith_req_reset(Stonith *s, int operation, const char *node)`: `ST_GENERIC_RESET`,
/// `ST_POWERON` or `ST_POWEROFF` on `node` (lower-cased first). Type `ocf` answers once the
/// cluster fencer's incident for that node has its outcome.
///
/// # Safety
/// `node` must be NULL or a C string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn stonith_req_reset(
    s: *mut Stonith,
    operation: c_int,
    node: *const c_char,
) -> c_int {
    no_panic(S_OOPS, || {
        // SAFETY: the caller gives NULL or a C string.
        let code = if let Some(n) = unsafe { cstr::arg(node) } {
            super::reset(key(s), operation, n)
        } else {
            last_error::set("stonith_req_reset: the node name is NULL or not UTF-8");
            S_INVAL
        };
        report(s, code)
    })
}

/// A pair array from `pairs`, with the C allocator, registered for `free_NVpair`.
fn alloc_pairs(pairs: &[(String, Option<String>)]) -> *mut StonithNVpair {
    // SAFETY: calloc of len + 1 zeroed pairs (the last is the NULL terminator); each entry
    // written holds strings from malloc.
    unsafe {
        let array = libc::calloc(pairs.len() + 1, std::mem::size_of::<StonithNVpair>())
            .cast::<StonithNVpair>();
        if array.is_null() {
            return array;
        }
        for (i, (name, value)) in pairs.iter().enumerate() {
            let entry = &mut *array.add(i);
            entry.s_name = cstr::alloc(name);
            entry.s_value = value.as_deref().map_or(std::ptr::null_mut(), cstr::alloc);
            if entry.s_name.is_null() {
                free_pairs(array);
                return std::ptr::null_mut();
            }
        }
        super::with_registry(|r| r.pairs.insert(array as usize));
        array
    }
}

/// Frees a pair array made by [`alloc_pairs`].
///
/// # Safety
/// `array` must come from [`alloc_pairs`] and not be used afterwards.
unsafe fn free_pairs(array: *mut StonithNVpair) {
    // SAFETY: the array ends with a zeroed pair; every string came from malloc.
    unsafe {
        let mut i = 0;
        loop {
            let entry = &*array.add(i);
            if entry.s_name.is_null() {
                break;
            }
            libc::free(entry.s_name.cast());
            libc::free(entry.s_value.cast());
            i += 1;
        }
        libc::free(array.cast());
    }
}

/// `StonithNVpair *stonith_env_to_NVpair(Stonith *s)`: each configuration name with the value
/// of the environment variable of that name (a NULL value when it is unset). Free it with
/// `free_NVpair`.
///
/// # Safety
/// Any value is accepted; only handles this library made are used.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn stonith_env_to_NVpair(s: *mut Stonith) -> *mut StonithNVpair {
    no_panic(std::ptr::null_mut(), || {
        super::env_pairs(key(s)).map_or(std::ptr::null_mut(), |p| alloc_pairs(&p))
    })
}

/// `StonithNVpair *stonith1_compat_string_to_NVpair(Stonith *s, const char *str)`: a `-p`
/// string as pairs (NULL when it has too few values). Free it with `free_NVpair`.
///
/// # Safety
/// `text` must be NULL or a C string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn stonith1_compat_string_to_NVpair(
    s: *mut Stonith,
    text: *const c_char,
) -> *mut StonithNVpair {
    no_panic(std::ptr::null_mut(), || {
        // SAFETY: the caller gives NULL or a C string.
        let Some(t) = (unsafe { cstr::arg(text) }) else {
            last_error::set("stonith1_compat_string_to_NVpair: the string is NULL");
            return std::ptr::null_mut();
        };
        super::info_pairs(key(s), t).map_or(std::ptr::null_mut(), |p| alloc_pairs(&p))
    })
}

/// `void free_NVpair(StonithNVpair *pairs)`: frees an array this library made (NULL, and
/// arrays it did not make or freed already, are ignored).
///
/// # Safety
/// Any value is accepted; only arrays this library gave out are freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn free_NVpair(pairs: *mut StonithNVpair) {
    no_panic((), || {
        if super::with_registry(|r| r.pairs.remove(&(pairs as usize))) {
            // SAFETY: made by alloc_pairs and handed out once.
            unsafe { free_pairs(pairs) };
        }
    });
}

/// `void strdown(char *str)`: lower-cases an ASCII string in place (NULL is ignored).
///
/// # Safety
/// `text` must be NULL or a writable C string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn strdown(text: *mut c_char) {
    no_panic((), || {
        if text.is_null() {
            return;
        }
        let mut p = text;
        // SAFETY: a writable NUL-terminated string: we stop at its NUL.
        unsafe {
            while *p != 0 {
                *p = (*p as u8).to_ascii_lowercase() as c_char;
                p = p.add(1);
            }
        }
    });
}
