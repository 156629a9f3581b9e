//! fencing: see the crate documentation.
