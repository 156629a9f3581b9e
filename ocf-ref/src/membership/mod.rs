//! membership: see the crate documentation.
