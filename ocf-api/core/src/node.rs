//! Node identity: a numeric id (what protocols carry) and a name (what people and agents use).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A node's numeric id, unique within one cluster.
///
/// It is what membership engines carry on the wire (Corosync's `nodeid`, the built-in engine's
/// `node_id`). Zero is a valid value here; engines that reserve it say so themselves.
///
/// ```
/// let id = ocf_core::NodeId::new(7);
/// assert_eq!(id.get(), 7);
/// assert_eq!(serde_json::to_string(&id).unwrap(), "7");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(u32);

impl NodeId {
    /// Wraps a raw id.
    pub const fn new(id: u32) -> Self {
        Self(id)
    }

    /// The raw id.
    pub const fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl From<u32> for NodeId {
    fn from(id: u32) -> Self {
        Self(id)
    }
}

/// The longest node name accepted, in bytes (a DNS name's limit).
pub const MAX_NAME_LEN: usize = 253;

/// A node's name, as used by fence devices (`plug=`, host lists) and resource placement.
///
/// A valid name is 1 to [`MAX_NAME_LEN`] bytes of printable, non-whitespace characters, so it
/// can travel safely as a `key=value` line to a fence agent or as a command-line argument.
///
/// ```
/// use ocf_core::NodeName;
/// let n: NodeName = "web-1.example".parse().unwrap();
/// assert_eq!(n.as_str(), "web-1.example");
/// assert!("bad name".parse::<NodeName>().is_err());
/// assert!("".parse::<NodeName>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NodeName(String);

/// Why a string is not a valid [`NodeName`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// The name is empty.
    #[error("a node name must not be empty")]
    Empty,
    /// The name is longer than [`MAX_NAME_LEN`] bytes.
    #[error("node name of {len} bytes is longer than the limit of {MAX_NAME_LEN}")]
    TooLong {
        /// The length that was given.
        len: usize,
    },
    /// The name holds whitespace, a control character, `=` or another forbidden character.
    #[error("node name {name:?} holds the forbidden character {bad:?}")]
    BadCharacter {
        /// The name as given.
        name: String,
        /// The first forbidden character.
        bad: char,
    },
}

impl NodeName {
    /// Checks and wraps a name.
    pub fn new(name: impl Into<String>) -> Result<Self, NameError> {
        let name = name.into();
        if name.is_empty() {
            return Err(NameError::Empty);
        }
        if name.len() > MAX_NAME_LEN {
            return Err(NameError::TooLong { len: name.len() });
        }
        // `=` would break fence agents' `key=value` stdin protocol.
        if let Some(bad) = name
            .chars()
            .find(|c| c.is_whitespace() || c.is_control() || *c == '=')
        {
            return Err(NameError::BadCharacter { name, bad });
        }
        Ok(Self(name))
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for NodeName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl TryFrom<String> for NodeName {
    type Error = NameError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

impl From<NodeName> for String {
    fn from(n: NodeName) -> Self {
        n.0
    }
}

impl AsRef<str> for NodeName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for NodeName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rejects_separator_characters() {
        for bad in ["a b", "a\tb", "a=b", "a\nb", "a\u{7f}"] {
            assert!(NodeName::new(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            NodeName::new("x".repeat(254)),
            Err(NameError::TooLong { len: 254 })
        );
    }

    #[test]
    fn json_refuses_invalid_names() {
        assert!(serde_json::from_str::<NodeName>("\"a b\"").is_err());
        let n: NodeName = serde_json::from_str("\"n1\"").unwrap();
        assert_eq!(n.as_str(), "n1");
    }

    proptest! {
        #[test]
        fn valid_names_round_trip(s in "[a-zA-Z0-9._-]{1,64}") {
            let n = NodeName::new(s.clone()).unwrap();
            let json = serde_json::to_string(&n).unwrap();
            prop_assert_eq!(serde_json::from_str::<NodeName>(&json).unwrap(), n);
        }

        #[test]
        fn never_panics(s in any::<String>()) {
            let _ = NodeName::new(s);
        }
    }
}
