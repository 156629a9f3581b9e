//! A fence device's self-description: its parameters and the actions it supports.
//!
//! fence-agents print it as XML for `action=metadata`, cluster-glue plugins for `stonith -m`;
//! `ocf-ref` parses both into this model.

use serde::{Deserialize, Serialize};

use crate::DeviceAction;

/// What a device says about itself.
///
/// ```
/// use ocf_fencing::{DeviceMetadata, DeviceParameter, DeviceAction};
/// let mut md = DeviceMetadata::new("fence_example");
/// md.parameters.push(DeviceParameter::new("password"));
/// md.actions = vec!["reboot".into(), "status".into()];
/// assert!(md.parameter("password").unwrap().secret);
/// assert!(md.supports(DeviceAction::Reboot));
/// assert!(!md.supports(DeviceAction::List));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DeviceMetadata {
    /// The agent or plugin name (`fence_ipmilan`, `external/ssh`).
    pub name: String,
    /// A one-line description.
    #[serde(default)]
    pub shortdesc: String,
    /// A longer description.
    #[serde(default)]
    pub longdesc: String,
    /// The parameters, in the order the device lists them.
    #[serde(default)]
    pub parameters: Vec<DeviceParameter>,
    /// The action names the device lists, as written (unknown ones such as `manpage` kept).
    #[serde(default)]
    pub actions: Vec<String>,
}

impl DeviceMetadata {
    /// Empty meta-data for a device called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }

    /// The parameter called `name`, if the device has one.
    pub fn parameter(&self, name: &str) -> Option<&DeviceParameter> {
        self.parameters.iter().find(|p| p.name == name)
    }

    /// Whether the device lists `action` (`metadata` is always supported).
    pub fn supports(&self, action: DeviceAction) -> bool {
        action == DeviceAction::Metadata || self.actions.iter().any(|a| a == action.as_str())
    }

    /// The parameter that names the target host on a multi-host device: `plug` when the device
    /// has it, else `port`, else `None` (a single-host device such as `fence_dummy`).
    pub fn plug_parameter(&self) -> Option<&str> {
        ["plug", "port"]
            .into_iter()
            .find(|name| self.parameter(name).is_some())
    }
}

/// One parameter a device accepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DeviceParameter {
    /// Its name, as written in `name=value`.
    pub name: String,
    /// Whether the device refuses to work without it.
    #[serde(default)]
    pub required: bool,
    /// Its value type.
    #[serde(default)]
    pub kind: ParameterType,
    /// The value used when it is not given.
    #[serde(default)]
    pub default: Option<String>,
    /// A one-line description.
    #[serde(default)]
    pub shortdesc: String,
    /// Whether it holds a secret (a password, a key): see [`is_secret_parameter`].
    #[serde(default)]
    pub secret: bool,
    /// Whether the device marks it deprecated.
    #[serde(default)]
    pub deprecated: bool,
    /// The older parameter this one replaces, if any.
    #[serde(default)]
    pub obsoletes: Option<String>,
}

impl DeviceParameter {
    /// An optional string parameter; `secret` follows [`is_secret_parameter`].
    pub fn new(name: impl Into<String>) -> Self {
        let name = name.into();
        Self {
            secret: is_secret_parameter(&name),
            name,
            required: false,
            kind: ParameterType::String,
            default: None,
            shortdesc: String::new(),
            deprecated: false,
            obsoletes: None,
        }
    }
}

/// A parameter's value type, as fence-agents write it in `<content type=...>`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "type", content = "values", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ParameterType {
    /// Any text.
    #[default]
    String,
    /// A whole number.
    Integer,
    /// `0`/`1`, `true`/`false`, `yes`/`no`, `on`/`off`.
    Boolean,
    /// Whole or decimal seconds (fence-agents `second`).
    Second,
    /// One of a fixed set of values.
    Select(Vec<String>),
    /// A type this crate does not know, kept by name.
    Other(String),
}

impl ParameterType {
    /// Reads fence-agents' type names; `options` are the `<option value>`s of a `select`.
    pub fn from_xml(type_name: &str, options: Vec<String>) -> Self {
        match type_name {
            "" | "string" => Self::String,
            "integer" | "int" => Self::Integer,
            "boolean" | "bool" => Self::Boolean,
            "second" | "time" => Self::Second,
            "select" => Self::Select(options),
            other => Self::Other(other.to_owned()),
        }
    }

    /// Whether `value` is acceptable for this type (unknown types accept anything).
    pub fn accepts(&self, value: &str) -> bool {
        match self {
            Self::String | Self::Other(_) => true,
            Self::Integer => value.trim().parse::<i64>().is_ok(),
            Self::Boolean => matches!(
                value.trim().to_ascii_lowercase().as_str(),
                "0" | "1" | "true" | "false" | "yes" | "no" | "on" | "off" | ""
            ),
            Self::Second => value.trim().parse::<f64>().is_ok_and(|s| s >= 0.0),
            Self::Select(options) => options.is_empty() || options.iter().any(|o| o == value),
        }
    }
}

/// Whether a parameter called `name` holds a secret, by fence-agents' and cluster-glue's
/// naming: `password`, `passwd`, `snmp_priv_passwd`, `key`, `secret_key`, `access_key`,
/// `apikey`, `token`, `community` and anything with `secret` in it. Names of files or scripts
/// that *produce* a secret (`password_script`, `identity_file`) are not secrets themselves.
///
/// When in doubt it says yes: a wrongly redacted log line costs little.
///
/// ```
/// use ocf_fencing::is_secret_parameter;
/// assert!(is_secret_parameter("passwd"));
/// assert!(is_secret_parameter("snmp_priv_passwd"));
/// assert!(is_secret_parameter("secret_key"));
/// assert!(!is_secret_parameter("password_script"));
/// assert!(!is_secret_parameter("ip"));
/// ```
pub fn is_secret_parameter(name: &str) -> bool {
    let n = name.to_ascii_lowercase().replace('-', "_");
    if n.ends_with("_script") || n.ends_with("_file") || n.ends_with("_path") {
        return false;
    }
    n.ends_with("passwd")
        || n.contains("password")
        || n.contains("secret")
        || n.ends_with("key")
        || n == "token"
        || n.ends_with("_token")
        || n == "community"
        || n.ends_with("_community")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_check_values() {
        assert!(ParameterType::Integer.accepts("42"));
        assert!(!ParameterType::Integer.accepts("forty"));
        assert!(ParameterType::Boolean.accepts("on"));
        assert!(!ParameterType::Boolean.accepts("maybe"));
        assert!(ParameterType::Second.accepts("1.5"));
        assert!(!ParameterType::Second.accepts("-1"));
        let sel = ParameterType::from_xml("select", vec!["a".into(), "b".into()]);
        assert!(sel.accepts("a") && !sel.accepts("c"));
        assert_eq!(
            ParameterType::from_xml("weird", vec![]),
            ParameterType::Other("weird".into())
        );
    }

    #[test]
    fn plug_parameter_prefers_plug() {
        let mut md = DeviceMetadata::new("x");
        assert_eq!(md.plug_parameter(), None);
        md.parameters.push(DeviceParameter::new("port"));
        assert_eq!(md.plug_parameter(), Some("port"));
        md.parameters.push(DeviceParameter::new("plug"));
        assert_eq!(md.plug_parameter(), Some("plug"));
    }

    #[test]
    fn secret_names() {
        for s in [
            "password",
            "PASSWD",
            "api-key",
            "apikey",
            "access_key",
            "token",
            "community",
        ] {
            assert!(is_secret_parameter(s), "{s}");
        }
        for s in [
            "passwd_script",
            "identity_file",
            "token_file",
            "login",
            "ipaddr",
            "key_value",
        ] {
            assert!(!is_secret_parameter(s), "{s}");
        }
    }
}
