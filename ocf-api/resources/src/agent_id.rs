//! Agent ids: `ocf:<provider>:<type>`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::AgentIdError;

/// The id of an OCF resource agent: `ocf:<provider>:<type>`, e.g. `ocf:heartbeat:Dummy`.
///
/// The provider and type become path components (`$OCF_ROOT/resource.d/<provider>/<type>`),
/// so each must be a safe file name ([`PART_RULE`]): ASCII letters, digits, `_`, `.`, `+` and
/// `-`, starting with a letter, digit or `_`, at most 255 bytes. That refuses everything that
/// could leave the directory (`/`, `..`, a leading `.`) and everything a shell or a log line
/// would misread (white space, control characters, quotes, `$`). JSON writes the string form.
///
/// ```
/// use ocf_resources::AgentId;
/// let id: AgentId = "ocf:pacemaker:Stateful".parse()?;
/// assert_eq!(id.provider(), "pacemaker");
/// assert_eq!(id.agent_type(), "Stateful");
/// assert_eq!(id.to_string(), "ocf:pacemaker:Stateful");
/// assert!("ocf:../etc:passwd".parse::<AgentId>().is_err());
/// assert!("ocf:heartbeat:$(id)".parse::<AgentId>().is_err());
/// # Ok::<(), ocf_resources::AgentIdError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AgentId {
    provider: String,
    kind: String,
}

/// The class prefix of every OCF agent id.
pub const OCF_CLASS: &str = "ocf";

/// The rule a provider or agent type follows (see [`check_provider`]).
pub const PART_RULE: &str = "[A-Za-z0-9_][A-Za-z0-9_.+-]*, at most 255 bytes";

/// Checks a provider name (`heartbeat`) on its own, e.g. a `--provider` filter, by the rule
/// agent ids use ([`PART_RULE`]).
///
/// ```
/// use ocf_resources::agent_id::check_provider;
/// assert!(check_provider("heartbeat").is_ok());
/// assert!(check_provider("../../etc").is_err() && check_provider("a/b").is_err());
/// ```
pub fn check_provider(provider: &str) -> Result<(), AgentIdError> {
    check_part(provider, "provider")
}

impl AgentId {
    /// Builds an id from its provider and type, checking both as path components.
    pub fn new(provider: impl Into<String>, kind: impl Into<String>) -> Result<Self, AgentIdError> {
        let provider = provider.into();
        let kind = kind.into();
        check_part(&provider, "provider")?;
        check_part(&kind, "type")?;
        Ok(Self { provider, kind })
    }

    /// The provider (`heartbeat`, `pacemaker`, ...): the directory under `resource.d`.
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// The agent type (`Dummy`, `IPaddr2`, ...): the executable's file name, and what OCF
    /// calls `OCF_RESOURCE_TYPE`.
    pub fn agent_type(&self) -> &str {
        &self.kind
    }

    /// The agent type under its 0.1 name (every error's `kind()` means a category instead).
    #[deprecated(since = "0.2.0", note = "renamed `agent_type`")]
    pub fn kind(&self) -> &str {
        self.agent_type()
    }
}

fn check_part(part: &str, what: &'static str) -> Result<(), AgentIdError> {
    let reason = if part.is_empty() {
        "is empty"
    } else if part.len() > 255 {
        "is longer than 255 bytes"
    } else if part.starts_with('.') {
        "starts with '.'"
    } else if part.contains(['/', '\0', ':']) {
        "contains '/', ':' or NUL"
    } else if part.chars().any(char::is_whitespace) {
        "contains white space"
    } else if !part
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'+' | b'-'))
    {
        "holds a character other than ASCII letters, digits, '_', '.', '+' and '-'"
    } else if part.starts_with(['-', '+']) {
        "starts with '-' or '+'"
    } else {
        return Ok(());
    };
    Err(AgentIdError::BadPart {
        part: what,
        value: part.to_owned(),
        reason,
    })
}

impl fmt::Display for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{OCF_CLASS}:{}:{}", self.provider, self.kind)
    }
}

impl FromStr for AgentId {
    type Err = AgentIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.splitn(3, ':');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(OCF_CLASS), Some(provider), Some(kind)) => AgentId::new(provider, kind),
            (Some(class), Some(_), Some(_)) => Err(AgentIdError::NotOcf {
                input: s.to_owned(),
                class: class.to_owned(),
            }),
            _ => Err(AgentIdError::Syntax {
                input: s.to_owned(),
            }),
        }
    }
}

impl Serialize for AgentId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AgentId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}
