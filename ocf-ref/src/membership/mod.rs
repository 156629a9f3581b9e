//! membership: see the crate documentation.
#[cfg(feature = "corosync")]
pub mod corosync;
