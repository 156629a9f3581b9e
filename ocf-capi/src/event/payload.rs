//! The C layout of a membership payload: one `oc_ev_membership_t` whose `m_array` holds the
//! members, then the nodes that left, then the nodes that joined (so `m_memb_idx` is 0,
//! `m_out_idx` is `m_n_member`, `m_in_idx` is `m_n_member + m_n_out`), and each
//! `node_uname` a separate C string. All of it comes from `malloc(3)` and is released by
//! [`Payload::free`] (through `oc_ev_callback_done`).
#![allow(unsafe_code)]

use std::ffi::{c_char, c_uint};

use super::translate::{Membership, Node};
use crate::cstr;

/// `oc_node_t`.
#[repr(C)]
#[derive(Debug)]
pub struct OcNode {
    /// `node_uname`.
    pub node_uname: *mut c_char,
    /// `node_id`.
    pub node_id: c_uint,
    /// `node_born_on`.
    pub node_born_on: c_uint,
}

/// `oc_ev_membership_t` (with its declared one-element `m_array`; the allocation is longer).
#[repr(C)]
#[derive(Debug)]
pub struct OcMembership {
    /// `m_instance`.
    pub m_instance: c_uint,
    /// `m_n_member`.
    pub m_n_member: c_uint,
    /// `m_memb_idx`.
    pub m_memb_idx: c_uint,
    /// `m_n_out`.
    pub m_n_out: c_uint,
    /// `m_out_idx`.
    pub m_out_idx: c_uint,
    /// `m_n_in`.
    pub m_n_in: c_uint,
    /// `m_in_idx`.
    pub m_in_idx: c_uint,
    /// `m_array[1]`.
    pub m_array: [OcNode; 1],
}

/// A payload handed to C: where it is, how many nodes it holds and its size in bytes.
#[derive(Debug)]
pub struct Payload {
    ptr: *mut OcMembership,
    nodes: usize,
    size: usize,
}

// The payload is plain memory owned by this library until it is freed; the registry that
// holds it is behind a mutex.
// SAFETY: no thread-affine state; access is serialised by the registry's mutex.
unsafe impl Send for Payload {}

impl Payload {
    /// Lays `m` out in C memory; `None` when memory runs out.
    pub fn new(m: &Membership) -> Option<Self> {
        let nodes: Vec<&Node> = m.members.iter().chain(&m.out).chain(&m.joined).collect();
        let size = std::mem::size_of::<OcMembership>()
            + nodes.len().saturating_sub(1) * std::mem::size_of::<OcNode>();
        // SAFETY: calloc of `size` bytes, large enough for the header and `nodes.len()`
        // entries (at least the declared one); every entry is written before it is read.
        unsafe {
            let ptr = libc::calloc(1, size).cast::<OcMembership>();
            if ptr.is_null() {
                return None;
            }
            let n_member = m.members.len() as c_uint;
            let n_out = m.out.len() as c_uint;
            (*ptr).m_instance = m.instance;
            (*ptr).m_n_member = n_member;
            (*ptr).m_memb_idx = 0;
            (*ptr).m_n_out = n_out;
            (*ptr).m_out_idx = n_member;
            (*ptr).m_n_in = m.joined.len() as c_uint;
            (*ptr).m_in_idx = n_member + n_out;
            let array = std::ptr::addr_of_mut!((*ptr).m_array).cast::<OcNode>();
            let payload = Self {
                ptr,
                nodes: 0,
                size,
            };
            let mut payload = payload;
            for (i, node) in nodes.iter().enumerate() {
                let uname = cstr::alloc(&node.uname);
                if uname.is_null() {
                    payload.free();
                    return None;
                }
                array.add(i).write(OcNode {
                    node_uname: uname,
                    node_id: node.id,
                    node_born_on: node.born_on,
                });
                payload.nodes = i + 1;
            }
            Some(payload)
        }
    }

    /// The pointer handed to the callback as `data`.
    pub fn data(&self) -> *const std::ffi::c_void {
        self.ptr.cast()
    }

    /// The size handed to the callback.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Frees the names and the payload.
    pub fn free(self) {
        // SAFETY: `ptr` came from calloc in `new`, its first `nodes` entries hold names from
        // malloc; nothing else frees them (the payload is consumed).
        unsafe {
            let array = std::ptr::addr_of_mut!((*self.ptr).m_array).cast::<OcNode>();
            for i in 0..self.nodes {
                libc::free((*array.add(i)).node_uname.cast());
            }
            libc::free(self.ptr.cast());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: u32) -> Node {
        Node {
            uname: format!("n{id}"),
            id,
            born_on: id,
        }
    }

    #[test]
    fn the_layout_matches_the_c_header() {
        assert_eq!(std::mem::size_of::<OcNode>(), 16);
        assert_eq!(std::mem::offset_of!(OcMembership, m_array), 32);
        let m = Membership {
            instance: 12,
            members: vec![node(1), node(2), node(4)],
            out: vec![node(3)],
            joined: vec![node(4)],
        };
        let p = Payload::new(&m).unwrap();
        assert_eq!(p.size(), 32 + 5 * 16);
        // SAFETY: reading back what `new` wrote.
        unsafe {
            let h = &*p.ptr;
            assert_eq!(
                (
                    h.m_instance,
                    h.m_n_member,
                    h.m_n_out,
                    h.m_out_idx,
                    h.m_n_in,
                    h.m_in_idx
                ),
                (12, 3, 1, 3, 1, 4)
            );
            let array = std::ptr::addr_of!(h.m_array).cast::<OcNode>();
            assert_eq!((*array.add(3)).node_id, 3);
            assert_eq!(cstr::arg((*array.add(4)).node_uname), Some("n4"));
        }
        p.free();
        let empty = Payload::new(&Membership {
            instance: 1,
            members: vec![],
            out: vec![],
            joined: vec![],
        })
        .unwrap();
        assert_eq!(empty.size(), 48);
        empty.free();
    }
}
