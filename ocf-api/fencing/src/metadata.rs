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
    /// Whether it holds a secret: its name says so ([`is_secret_parameter`]), or its meta-data
    /// does (a `[password]`-style getopt placeholder, or it obsoletes a secret parameter).
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

/// The parameter names that hold a secret in fence-agents and cluster-glue, written with `_`
/// (fence-agents also accept `-`). The password *scripts* and the SSH identity file are on the
/// list too: where the password comes from is as private as the password.
pub const SECRET_PARAMETER_NAMES: &[&str] = &[
    "password",
    "passwd",
    "password_script",
    "passwd_script",
    "snmp_priv_passwd",
    "snmp_priv_passwd_script",
    "identity_file",
    "community",
    "hexadecimal_kg",
    "apikey",
    "api_key",
    "access_key",
    "secret_key",
    "token",
];

/// The value placeholders of fence-agents' `<getopt mixed="--password=[password]">` that mark
/// a secret. `[key]` is *not* one: fence_scsi's and fence_mpath's reservation `key` uses it,
/// and that key is an identifier printed in their own logs.
pub const SECRET_GETOPT_PLACEHOLDERS: &[&str] =
    &["password", "pass", "authkey", "community", "token"];

/// Whether a parameter called `name` holds a secret, by name alone: the names of
/// [`SECRET_PARAMETER_NAMES`], and names ending in `password` or `passwd` (`ilo_password`) or
/// containing `secret`. Case and `-`/`_` do not matter.
///
/// It does not guess from fragments such as `key`: fence_scsi's `key` is a reservation key,
/// not a secret. Meta-data can mark more (see [`DeviceParameter::secret`]).
///
/// ```
/// use ocf_fencing::is_secret_parameter;
/// assert!(is_secret_parameter("passwd"));
/// assert!(is_secret_parameter("snmp-priv-passwd"));
/// assert!(is_secret_parameter("ilo_password"));
/// assert!(is_secret_parameter("identity_file"));
/// assert!(!is_secret_parameter("key"));
/// assert!(!is_secret_parameter("ip"));
/// ```
pub fn is_secret_parameter(name: &str) -> bool {
    let n = name.to_ascii_lowercase().replace('-', "_");
    SECRET_PARAMETER_NAMES.contains(&n.as_str())
        || n.ends_with("password")
        || n.ends_with("passwd")
        || n.contains("secret")
}

/// Whether a getopt placeholder (`password` in `--password=[password]`) marks a secret.
pub fn is_secret_placeholder(placeholder: &str) -> bool {
    SECRET_GETOPT_PLACEHOLDERS.contains(&placeholder.to_ascii_lowercase().as_str())
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
            "secret_key",
            "token",
            "community",
            "passwd_script",
            "password-script",
            "snmp_priv_passwd",
            "identity_file",
            "hexadecimal_kg",
            "ilo_password",
        ] {
            assert!(is_secret_parameter(s), "{s}");
        }
        for s in [
            // fence_scsi's and fence_mpath's reservation key is an identifier, not a secret.
            "key",
            "token_file",
            "login",
            "ipaddr",
            "key_value",
            "auth",
            "cipher",
            "plug",
        ] {
            assert!(!is_secret_parameter(s), "{s}");
        }
    }
}
