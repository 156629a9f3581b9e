//! The parameter values a device is configured with, secrets kept apart.

use std::collections::BTreeMap;
use std::fmt;

use ocf_core::Secret;
use serde::{Deserialize, Serialize};

use crate::is_secret_parameter;

/// One parameter value: plain text, or a secret that prints as `<redacted>`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ParamValue {
    /// A value that may be logged.
    Plain(String),
    /// A value that must never be logged (serializes as `"<redacted>"`).
    Secret(Secret),
}

impl ParamValue {
    /// The value itself, for the one place it leaves the process (an agent's stdin or
    /// environment). Never log it.
    pub fn expose(&self) -> &str {
        match self {
            Self::Plain(s) => s,
            Self::Secret(s) => s.expose(),
        }
    }

    /// Whether it is a secret.
    pub fn is_secret(&self) -> bool {
        matches!(self, Self::Secret(_))
    }
}

impl fmt::Debug for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Plain(s) => fmt::Debug::fmt(s, f),
            Self::Secret(s) => fmt::Debug::fmt(s, f),
        }
    }
}

/// A device's configured parameters, name → value, in name order.
///
/// [`DeviceParams::insert`] files a value as a secret when its name says so
/// ([`is_secret_parameter`]); [`DeviceParams::insert_secret`] does so for any name. `Debug`
/// and JSON show secrets as `<redacted>`, so a configuration can be logged as it is.
///
/// ```
/// use ocf_fencing::DeviceParams;
/// let mut p = DeviceParams::new();
/// p.insert("ip", "10.0.0.9");
/// p.insert("password", "hunter2");
/// assert_eq!(p.get("password").unwrap().expose(), "hunter2");
/// let shown = format!("{p:?}");
/// assert!(shown.contains("10.0.0.9") && !shown.contains("hunter2"));
/// assert!(!serde_json::to_string(&p).unwrap().contains("hunter2"));
/// ```
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DeviceParams(BTreeMap<String, ParamValue>);

impl DeviceParams {
    /// No parameters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `name`, as a secret if its name says it is one.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        let value = value.into();
        let value = if is_secret_parameter(&name) {
            ParamValue::Secret(Secret::new(value))
        } else {
            ParamValue::Plain(value)
        };
        self.0.insert(name, value);
    }

    /// Sets `name` to a secret value, whatever its name.
    pub fn insert_secret(&mut self, name: impl Into<String>, value: Secret) {
        self.0.insert(name.into(), ParamValue::Secret(value));
    }

    /// Turns an existing plain value into a secret (for parameters meta-data marks secret).
    pub fn mark_secret(&mut self, name: &str) {
        if let Some(v) = self.0.get_mut(name) {
            if let ParamValue::Plain(s) = v {
                *v = ParamValue::Secret(Secret::new(std::mem::take(s)));
            }
        }
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&ParamValue> {
        self.0.get(name)
    }

    /// Removes `name`, returning its value.
    pub fn remove(&mut self, name: &str) -> Option<ParamValue> {
        self.0.remove(name)
    }

    /// Whether `name` is set.
    pub fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// All parameters in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ParamValue)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// How many parameters are set.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether none are set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Replaces every secret value that occurs in `text` with `<redacted>`: for agent output
    /// that may echo what it was given before it reaches a log or a history record.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for (_, v) in self.iter() {
            if let ParamValue::Secret(s) = v {
                if !s.expose().is_empty() {
                    // `Secret`'s Display is its redacted form.
                    out = out.replace(s.expose(), &s.to_string());
                }
            }
        }
        out
    }
}

impl fmt::Debug for DeviceParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.0.iter()).finish()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for DeviceParams {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut p = Self::new();
        for (k, v) in iter {
            p.insert(k, v);
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_secret_values_in_text() {
        let p: DeviceParams = [("passwd", "s3cret"), ("login", "admin")]
            .into_iter()
            .collect();
        assert_eq!(
            p.redact("login admin with s3cret failed"),
            "login admin with <redacted> failed"
        );
    }

    #[test]
    fn mark_secret_hides_a_plain_value() {
        let mut p = DeviceParams::new();
        p.insert("pin", "1234");
        assert!(format!("{p:?}").contains("1234"));
        p.mark_secret("pin");
        assert!(!format!("{p:?}").contains("1234"));
        assert_eq!(p.get("pin").unwrap().expose(), "1234");
    }
}
