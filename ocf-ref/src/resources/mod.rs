//! resources: see the crate documentation.
