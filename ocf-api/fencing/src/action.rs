//! What a fence device can be asked to do: the three fencing actions, the device operations
//! around them, and the power state a status query reports.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An action that changes a node's power: what a fence request asks for.
///
/// The names are fence-agents' (`action=reboot|off|on`); cluster-glue's `reset` is accepted as
/// a synonym of [`FenceAction::Reboot`] when parsing.
///
/// ```
/// use ocf_fencing::FenceAction;
/// assert_eq!("reboot".parse::<FenceAction>().unwrap(), FenceAction::Reboot);
/// assert_eq!("reset".parse::<FenceAction>().unwrap(), FenceAction::Reboot);
/// assert_eq!(FenceAction::Off.as_str(), "off");
/// assert_eq!(serde_json::to_string(&FenceAction::On).unwrap(), "\"on\"");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum FenceAction {
    /// Power the node off and on again (fence-agents `reboot`, cluster-glue `reset`).
    Reboot,
    /// Power the node off and leave it off.
    Off,
    /// Power the node on ("unfencing").
    On,
}

impl FenceAction {
    /// Every fencing action, in a stable order.
    pub const ALL: [Self; 3] = [Self::Reboot, Self::Off, Self::On];

    /// The fence-agents name (`reboot`, `off`, `on`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Reboot => "reboot",
            Self::Off => "off",
            Self::On => "on",
        }
    }

    /// True for the actions after which the node is guaranteed not to run anything it ran
    /// before (`reboot`, `off`): the ones that make it safe to recover its resources.
    pub const fn is_fencing(self) -> bool {
        matches!(self, Self::Reboot | Self::Off)
    }
}

impl fmt::Display for FenceAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no known action.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown fence action {given:?} (expected one of: {expected})")]
pub struct UnknownAction {
    /// What was given.
    pub given: String,
    /// The accepted names, comma-separated.
    pub expected: &'static str,
}

impl FromStr for FenceAction {
    type Err = UnknownAction;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "reboot" | "reset" => Ok(Self::Reboot),
            "off" | "poweroff" => Ok(Self::Off),
            "on" | "poweron" => Ok(Self::On),
            _ => Err(UnknownAction {
                given: s.to_owned(),
                expected: "reboot, off, on",
            }),
        }
    }
}

/// Every operation a fence device understands: the fencing actions plus the queries and checks
/// fence-agents define (`status`, `list`, `monitor`, `metadata`, `validate-all`).
///
/// ```
/// use ocf_fencing::{DeviceAction, FenceAction};
/// assert_eq!(DeviceAction::from(FenceAction::Off), DeviceAction::Off);
/// assert_eq!("validate-all".parse::<DeviceAction>().unwrap(), DeviceAction::ValidateAll);
/// assert_eq!(serde_json::to_string(&DeviceAction::ValidateAll).unwrap(), "\"validate-all\"");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum DeviceAction {
    /// Power-cycle a host.
    Reboot,
    /// Power a host off.
    Off,
    /// Power a host on.
    On,
    /// Report one host's power state.
    Status,
    /// List the hosts (plugs) the device controls.
    List,
    /// Check that the device itself is reachable and healthy.
    Monitor,
    /// Describe the device's parameters and actions.
    Metadata,
    /// Check the configuration without touching the device.
    ValidateAll,
}

impl DeviceAction {
    /// Every device operation, in a stable order.
    pub const ALL: [Self; 8] = [
        Self::Reboot,
        Self::Off,
        Self::On,
        Self::Status,
        Self::List,
        Self::Monitor,
        Self::Metadata,
        Self::ValidateAll,
    ];

    /// The fence-agents name, as given in `action=`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Reboot => "reboot",
            Self::Off => "off",
            Self::On => "on",
            Self::Status => "status",
            Self::List => "list",
            Self::Monitor => "monitor",
            Self::Metadata => "metadata",
            Self::ValidateAll => "validate-all",
        }
    }

    /// The fencing action this is, if it changes power.
    pub const fn fence_action(self) -> Option<FenceAction> {
        match self {
            Self::Reboot => Some(FenceAction::Reboot),
            Self::Off => Some(FenceAction::Off),
            Self::On => Some(FenceAction::On),
            _ => None,
        }
    }

    /// True for operations that need a target host (`reboot`, `off`, `on`, `status`).
    pub const fn needs_target(self) -> bool {
        matches!(self, Self::Reboot | Self::Off | Self::On | Self::Status)
    }
}

impl fmt::Display for DeviceAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<FenceAction> for DeviceAction {
    fn from(a: FenceAction) -> Self {
        match a {
            FenceAction::Reboot => Self::Reboot,
            FenceAction::Off => Self::Off,
            FenceAction::On => Self::On,
        }
    }
}

impl FromStr for DeviceAction {
    type Err = UnknownAction;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(a) = s.parse::<FenceAction>() {
            return Ok(a.into());
        }
        match s {
            "status" => Ok(Self::Status),
            "list" => Ok(Self::List),
            "monitor" => Ok(Self::Monitor),
            "metadata" | "meta-data" => Ok(Self::Metadata),
            "validate-all" => Ok(Self::ValidateAll),
            _ => Err(UnknownAction {
                given: s.to_owned(),
                expected: "reboot, off, on, status, list, monitor, metadata, validate-all",
            }),
        }
    }
}

/// A host's power state as a device reports it.
///
/// fence-agents report it through `status`'s exit code: 0 on, 2 off, anything else an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum PowerState {
    /// The host has power.
    On,
    /// The host is powered off.
    Off,
    /// The device answered but could not tell.
    Unknown,
}

impl PowerState {
    /// `on`, `off` or `unknown`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::On => "on",
            Self::Off => "off",
            Self::Unknown => "unknown",
        }
    }
}

impl fmt::Display for PowerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for a in DeviceAction::ALL {
            assert_eq!(a.as_str().parse::<DeviceAction>().unwrap(), a);
            let json = serde_json::to_string(&a).unwrap();
            assert_eq!(json, format!("\"{}\"", a.as_str()));
            assert_eq!(serde_json::from_str::<DeviceAction>(&json).unwrap(), a);
        }
        for a in FenceAction::ALL {
            assert_eq!(a.as_str().parse::<FenceAction>().unwrap(), a);
            assert_eq!(DeviceAction::from(a).fence_action(), Some(a));
        }
    }

    #[test]
    fn unknown_names_are_refused_with_the_choices() {
        let e = "explode".parse::<FenceAction>().unwrap_err();
        assert!(e.to_string().contains("reboot, off, on"), "{e}");
        assert!("".parse::<DeviceAction>().is_err());
        assert!("status".parse::<FenceAction>().is_err());
    }
}
