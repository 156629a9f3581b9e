//! Serde helpers that write a [`Duration`] as whole milliseconds, the unit OCF uses everywhere
//! (`OCF_RESKEY_CRM_meta_timeout`, Corosync's `token`), so JSON stays readable and stable.
//!
//! ```
//! use std::time::Duration;
//! #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
//! struct Op {
//!     #[serde(with = "ocf_core::millis")]
//!     timeout: Duration,
//! }
//! let json = serde_json::to_string(&Op { timeout: Duration::from_millis(1500) }).unwrap();
//! assert_eq!(json, r#"{"timeout":1500}"#);
//! ```

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

/// Writes a duration as whole milliseconds (saturating at `u64::MAX`).
pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(as_millis(*d))
}

/// Reads whole milliseconds into a duration.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(Duration::from_millis)
}

/// A duration's whole milliseconds, saturating at `u64::MAX`.
pub fn as_millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The same helpers for `Option<Duration>` (`null` for `None`).
pub mod option {
    use super::{Deserialize, Deserializer, Duration, Serializer, as_millis};

    /// Writes `Some(d)` as milliseconds and `None` as `null`.
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&as_millis(*d)),
            None => s.serialize_none(),
        }
    }

    /// Reads milliseconds or `null`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<u64>::deserialize(d).map(|o| o.map(Duration::from_millis))
    }
}
