//! A string that must never be printed: fence passwords, cluster keys.

use std::fmt;

use serde::{Deserialize, Serialize, Serializer};

/// A secret value (a fence device password, a cluster key's text).
///
/// `Debug` and `Display` print `<redacted>`, and serializing writes `"<redacted>"`, so a secret
/// that slips into a log line, an error or a JSON history does not leak. The only way to the
/// value is [`Secret::expose`], which makes every use easy to find in review.
///
/// ```
/// let s = ocf_core::Secret::new("pw");
/// assert_eq!(format!("{s:?} {s}"), "Secret(<redacted>) <redacted>");
/// assert_eq!(s.expose(), "pw");
/// assert_eq!(serde_json::to_string(&s).unwrap(), "\"<redacted>\"");
/// ```
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

/// What a secret prints as.
pub const REDACTED: &str = "<redacted>";

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself. Call it only where the value leaves the process for its consumer
    /// (an agent's stdin, a MAC computation), never for logging.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({REDACTED})")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}
