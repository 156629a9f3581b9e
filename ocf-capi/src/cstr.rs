//! C strings and string arrays crossing the boundary: reading the host's (checked for NULL and
//! for UTF-8) and allocating ours with the C allocator, so `free(3)` and our free functions
//! both release them.
#![allow(unsafe_code)]

use std::ffi::{CStr, c_char};

/// The host's string at `p`: `None` when `p` is NULL or not UTF-8.
///
/// # Safety
/// `p` must be NULL or point to a NUL-terminated string that lives for `'a`.
pub unsafe fn arg<'a>(p: *const c_char) -> Option<&'a str> {
    if p.is_null() {
        return None;
    }
    // SAFETY: the caller promises a NUL-terminated string.
    unsafe { CStr::from_ptr(p) }.to_str().ok()
}

/// A copy of `s` in memory from `malloc(3)` (NUL bytes inside `s` end it early); NULL when
/// memory runs out.
pub fn alloc(s: &str) -> *mut c_char {
    let bytes = s.as_bytes();
    let len = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    // SAFETY: malloc of len + 1 bytes; we write exactly len + 1 of them.
    unsafe {
        let p = libc::malloc(len + 1).cast::<u8>();
        if p.is_null() {
            return std::ptr::null_mut();
        }
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), p, len);
        *p.add(len) = 0;
        p.cast()
    }
}

/// A NULL-terminated array of copies of `items`, all from `malloc(3)` (release it with
/// [`free_array`]); NULL when memory runs out (nothing is left allocated then).
pub fn alloc_array<S: AsRef<str>>(items: &[S]) -> *mut *mut c_char {
    let slots = items.len() + 1;
    // SAFETY: an array of `slots` pointers, each written before it is read.
    unsafe {
        let array = libc::calloc(slots, std::mem::size_of::<*mut c_char>()).cast::<*mut c_char>();
        if array.is_null() {
            return std::ptr::null_mut();
        }
        for (i, item) in items.iter().enumerate() {
            let s = alloc(item.as_ref());
            if s.is_null() {
                free_array(array);
                return std::ptr::null_mut();
            }
            *array.add(i) = s;
        }
        array
    }
}

/// Frees an array made by [`alloc_array`] (NULL is fine).
///
/// # Safety
/// `array` must be NULL or come from [`alloc_array`], and not be used afterwards.
pub unsafe fn free_array(array: *mut *mut c_char) {
    if array.is_null() {
        return;
    }
    // SAFETY: the array is NULL-terminated and every entry came from malloc.
    unsafe {
        let mut i = 0;
        loop {
            let s = *array.add(i);
            if s.is_null() {
                break;
            }
            libc::free(s.cast());
            i += 1;
        }
        libc::free(array.cast());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_round_trip_and_free() {
        let a = alloc_array(&["n1", "n2"]);
        assert!(!a.is_null());
        // SAFETY: `a` came from alloc_array just above.
        unsafe {
            assert_eq!(arg(*a), Some("n1"));
            assert_eq!(arg(*a.add(1)), Some("n2"));
            assert!((*a.add(2)).is_null());
            free_array(a);
            free_array(std::ptr::null_mut());
            assert_eq!(arg(std::ptr::null()), None);
        }
    }

    #[test]
    fn an_inner_nul_ends_the_copy() {
        let p = alloc("ab\0cd");
        // SAFETY: `p` came from alloc just above.
        unsafe {
            assert_eq!(arg(p), Some("ab"));
            libc::free(p.cast());
        }
    }
}
