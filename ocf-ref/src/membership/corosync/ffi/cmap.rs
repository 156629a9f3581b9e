//! The configuration map: node names and ids from `nodelist.node.N.*`.

use std::ffi::{CStr, CString, c_char, c_int};

use super::CsError;
use super::sys::{self, CmapHandle, CmapIterHandle};

/// One cmap connection, used for queries only.
pub(crate) struct Cmap {
    handle: CmapHandle,
}

impl Cmap {
    /// Connects to corosync's cmap service.
    pub(crate) fn connect() -> Result<Self, CsError> {
        let mut handle: CmapHandle = 0;
        // SAFETY: out-pointer valid for writes.
        CsError::check("cmap_initialize", unsafe {
            sys::cmap_initialize(&raw mut handle)
        })?;
        Ok(Self { handle })
    }

    /// The names of the keys starting with `prefix`.
    pub(crate) fn keys(&self, prefix: &str) -> Result<Vec<String>, CsError> {
        let prefix = c_string("cmap_iter_init", prefix)?;
        let mut iter: CmapIterHandle = 0;
        // SAFETY: live handle; `prefix` is NUL-terminated; `iter` valid for writes.
        CsError::check("cmap_iter_init", unsafe {
            sys::cmap_iter_init(self.handle, prefix.as_ptr(), &raw mut iter)
        })?;
        let mut keys = Vec::new();
        let result = loop {
            let mut name = [0 as c_char; sys::CMAP_KEYNAME_MAXLEN + 1];
            let mut len: usize = 0;
            let mut value_type: c_int = 0;
            // SAFETY: live handles; `name` holds CMAP_KEYNAME_MAXLEN + 1 bytes as the header
            // requires; the other out-pointers are valid for writes.
            let rc = unsafe {
                sys::cmap_iter_next(
                    self.handle,
                    iter,
                    name.as_mut_ptr(),
                    &raw mut len,
                    &raw mut value_type,
                )
            };
            if rc == sys::CS_ERR_NO_SECTIONS {
                break Ok(keys);
            }
            if let Err(e) = CsError::check("cmap_iter_next", rc) {
                break Err(e);
            }
            // Force termination even if the library filled the whole buffer.
            name[sys::CMAP_KEYNAME_MAXLEN] = 0;
            // SAFETY: `name` is NUL-terminated (just ensured) and lives across the call.
            let key = unsafe { CStr::from_ptr(name.as_ptr()) };
            keys.push(key.to_string_lossy().into_owned());
        };
        // SAFETY: live handles; the iterator is finalized exactly once.
        let _ = unsafe { sys::cmap_iter_finalize(self.handle, iter) };
        result
    }

    /// The `u32` value of `key`.
    pub(crate) fn get_u32(&self, key: &str) -> Result<u32, CsError> {
        let key = c_string("cmap_get_uint32", key)?;
        let mut value: u32 = 0;
        // SAFETY: live handle; NUL-terminated key; `value` valid for writes.
        CsError::check("cmap_get_uint32", unsafe {
            sys::cmap_get_uint32(self.handle, key.as_ptr(), &raw mut value)
        })?;
        Ok(value)
    }

    /// The string value of `key`.
    pub(crate) fn get_string(&self, key: &str) -> Result<String, CsError> {
        let key = c_string("cmap_get_string", key)?;
        let mut value: *mut c_char = std::ptr::null_mut();
        // SAFETY: live handle; NUL-terminated key; `value` valid for writes. On success the
        // library stores a malloc'ed NUL-terminated string we must free.
        CsError::check("cmap_get_string", unsafe {
            sys::cmap_get_string(self.handle, key.as_ptr(), &raw mut value)
        })?;
        if value.is_null() {
            return Ok(String::new());
        }
        // SAFETY: non-null, NUL-terminated, owned by us until freed below.
        let text = unsafe { CStr::from_ptr(value) }
            .to_string_lossy()
            .into_owned();
        // SAFETY: allocated by the library with malloc, freed exactly once.
        unsafe { libc::free(value.cast()) };
        Ok(text)
    }
}

impl Drop for Cmap {
    fn drop(&mut self) {
        // SAFETY: the handle came from `cmap_initialize`; finalized exactly once.
        let _ = unsafe { sys::cmap_finalize(self.handle) };
    }
}

fn c_string(call: &'static str, s: &str) -> Result<CString, CsError> {
    CString::new(s).map_err(|_| CsError::Code {
        call,
        code: super::code::NOT_EXIST,
    })
}
