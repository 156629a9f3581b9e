//! The actions an OCF resource agent can be asked to perform.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::ParseActionError;

/// One action of the OCF Resource Agent API 1.1, as passed to the agent in `argv[1]`.
///
/// `as_str` gives the exact spelling agents expect (`meta-data`, `validate-all`,
/// `migrate_to`), and [`FromStr`] reads it back; JSON uses the same spelling.
///
/// ```
/// use ocf_resources::Action;
/// let a: Action = "meta-data".parse()?;
/// assert_eq!(a, Action::MetaData);
/// assert_eq!(Action::MigrateTo.as_str(), "migrate_to");
/// assert!(Action::Monitor.is_mandatory());
/// # Ok::<(), ocf_resources::ParseActionError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Action {
    /// Start the resource (idempotent: starting a started resource succeeds).
    Start,
    /// Stop the resource (idempotent: stopping a stopped resource succeeds).
    Stop,
    /// Check the resource's state: 0 running, 7 stopped, 8 running promoted.
    Monitor,
    /// Promote a running instance of a promotable resource.
    Promote,
    /// Demote a promoted instance back to unpromoted.
    Demote,
    /// Tell a clone instance about an operation on its peers (`OCF_RESKEY_CRM_meta_notify_*`).
    Notify,
    /// Apply changed reloadable parameters without a restart (resource-level reload).
    Reload,
    /// Re-read the agent's own (reloadable) parameters (OCF 1.1).
    ReloadAgent,
    /// Migrate the resource away to `OCF_RESKEY_CRM_meta_migrate_target`.
    MigrateTo,
    /// Receive a resource migrated from `OCF_RESKEY_CRM_meta_migrate_source`.
    MigrateFrom,
    /// Print the agent's meta-data XML on stdout (works without any parameter).
    MetaData,
    /// Check the parameters without touching the resource.
    ValidateAll,
    /// Legacy: like monitor (pre-OCF scripts).
    Status,
    /// Legacy: list the supported actions.
    Methods,
    /// Legacy: print usage.
    Usage,
    /// Optional: a special form of restart for recovery.
    Recover,
}

impl Action {
    /// Every action, in the order of the specification.
    pub const ALL: [Action; 16] = [
        Action::Start,
        Action::Stop,
        Action::Monitor,
        Action::Promote,
        Action::Demote,
        Action::Notify,
        Action::Reload,
        Action::ReloadAgent,
        Action::MigrateTo,
        Action::MigrateFrom,
        Action::MetaData,
        Action::ValidateAll,
        Action::Status,
        Action::Methods,
        Action::Usage,
        Action::Recover,
    ];

    /// The name the agent receives as its argument.
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Stop => "stop",
            Action::Monitor => "monitor",
            Action::Promote => "promote",
            Action::Demote => "demote",
            Action::Notify => "notify",
            Action::Reload => "reload",
            Action::ReloadAgent => "reload-agent",
            Action::MigrateTo => "migrate_to",
            Action::MigrateFrom => "migrate_from",
            Action::MetaData => "meta-data",
            Action::ValidateAll => "validate-all",
            Action::Status => "status",
            Action::Methods => "methods",
            Action::Usage => "usage",
            Action::Recover => "recover",
        }
    }

    /// True for the actions every agent must implement: start, stop, monitor, meta-data.
    pub const fn is_mandatory(self) -> bool {
        matches!(
            self,
            Action::Start | Action::Stop | Action::Monitor | Action::MetaData
        )
    }

    /// True for the legacy actions kept for old scripts: status, methods, usage.
    pub const fn is_legacy(self) -> bool {
        matches!(self, Action::Status | Action::Methods | Action::Usage)
    }

    /// True for actions that only observe (they must not change the resource), so an executor
    /// may clean up anything they leave behind.
    pub const fn is_read_only(self) -> bool {
        matches!(
            self,
            Action::Monitor
                | Action::Status
                | Action::MetaData
                | Action::ValidateAll
                | Action::Methods
                | Action::Usage
        )
    }

    /// True for actions that report the resource's state with 0/7/8 (monitor and status).
    pub const fn is_probe_like(self) -> bool {
        matches!(self, Action::Monitor | Action::Status)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Action {
    type Err = ParseActionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Action::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| ParseActionError { name: s.to_owned() })
    }
}

impl Serialize for Action {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}
