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
///
/// Deserializing files values the way [`DeviceParams::insert`] does, so a password read from a
/// configuration file is a secret from the start:
///
/// ```
/// use ocf_fencing::DeviceParams;
/// let p: DeviceParams = serde_json::from_str(r#"{"password":"hunter2","ip":"10.0.0.9"}"#).unwrap();
/// assert!(p.get("password").unwrap().is_secret());
/// assert!(!format!("{p:?}").contains("hunter2"));
/// ```
#[derive(Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct DeviceParams(BTreeMap<String, ParamValue>);

impl<'de> Deserialize<'de> for DeviceParams {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Every value arrives as plain text; the name decides what is secret, as in insert.
        let map = BTreeMap::<String, String>::deserialize(deserializer)?;
        Ok(map.into_iter().collect())
    }
}

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

    /// Hides every secret in `text` (agent output, before it reaches a log, an error or the
    /// history) behind one fixed `<redacted>` marker.
    ///
    /// A secret value is hidden where it stands as a whole value: a token bounded by
    /// whitespace, quotes, brackets or `=`/`:`/`,`/`;` (a trailing `.` too), as in `-P hunter2`,
    /// `password=hunter2` or `'hunter2'`. The value after `name=` or `--name=` is hidden
    /// whatever it is, for every secret parameter's name and every name of
    /// [`crate::SECRET_PARAMETER_NAMES`] (to the end of the line when the
    /// line starts with it, as an echoed stdin line does). All matches are found in the
    /// original text and replaced in one pass, so a short secret never cuts into an ordinary
    /// word (`powered` stays `powered` with the password `o`), a marker is never rewritten by
    /// another secret, and the marker does not tell the secret's length.
    ///
    /// ```
    /// use ocf_fencing::DeviceParams;
    /// let p: DeviceParams = [("password", "o")].into_iter().collect();
    /// assert_eq!(
    ///     p.redact("host is powered on; ipmitool -P o"),
    ///     "host is powered on; ipmitool -P <redacted>"
    /// );
    /// ```
    pub fn redact(&self, text: &str) -> String {
        let mut spans: Vec<(usize, usize)> = Vec::new();
        for (name, value) in self.iter() {
            if let ParamValue::Secret(s) = value {
                whole_value_spans(text, s.expose(), &mut spans);
                after_name_spans(text, name, &mut spans);
            }
        }
        // A password a `password_script` produced is not among the values, but an agent that
        // echoes it writes it after its name.
        for name in crate::SECRET_PARAMETER_NAMES {
            after_name_spans(text, name, &mut spans);
        }
        if spans.is_empty() {
            return text.to_owned();
        }
        spans.sort_unstable();
        let mut out = String::with_capacity(text.len());
        let mut done = 0;
        let mut iter = spans.into_iter().peekable();
        while let Some((start, mut end)) = iter.next() {
            // Overlapping matches become one marker.
            while let Some(&(s2, e2)) = iter.peek() {
                if s2 > end {
                    break;
                }
                end = end.max(e2);
                iter.next();
            }
            let start = start.max(done);
            out.push_str(&text[done..start]);
            out.push_str(REDACTED);
            done = end.max(done);
        }
        out.push_str(&text[done..]);
        out
    }
}

/// What a secret is replaced with: [`Secret`]'s own redacted form.
const REDACTED: &str = "<redacted>";

/// Characters that may stand right before or after a whole value.
fn is_value_boundary(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '=' | ':'
                | ','
                | ';'
                | '\''
                | '"'
                | '`'
                | '('
                | ')'
                | '['
                | ']'
                | '{'
                | '}'
                | '<'
                | '>'
        )
}

/// The spans where `secret` occurs in `text` as a whole value.
fn whole_value_spans(text: &str, secret: &str, spans: &mut Vec<(usize, usize)>) {
    if secret.is_empty() {
        return;
    }
    let mut from = 0;
    while let Some(i) = text[from..].find(secret) {
        let start = from + i;
        let end = start + secret.len();
        let before_ok = text[..start]
            .chars()
            .next_back()
            .is_none_or(is_value_boundary);
        let rest = &text[end..];
        let mut after = rest.chars();
        let after_ok = match after.next() {
            None => true,
            // A sentence's full stop, not a host name's dot.
            Some('.' | '!' | '?') => after.next().is_none_or(char::is_whitespace),
            Some(c) => is_value_boundary(c),
        };
        if before_ok && after_ok {
            spans.push((start, end));
            from = end;
        } else {
            from = start + text[start..].chars().next().map_or(1, char::len_utf8);
        }
    }
}

/// The spans of the values written after `name=` or `--name=` (either `_` or `-` spelling).
fn after_name_spans(text: &str, name: &str, spans: &mut Vec<(usize, usize)>) {
    if name.is_empty() {
        return;
    }
    let dashed = name.replace('_', "-");
    let underscored = name.replace('-', "_");
    for spelling in [underscored.as_str(), dashed.as_str()] {
        let needle = format!("{spelling}=");
        let mut from = 0;
        while let Some(i) = text[from..].find(&needle) {
            let start = from + i;
            let value_start = start + needle.len();
            from = value_start;
            let line_start = text[..start].rfind('\n').map_or(0, |n| n + 1);
            // `name=`, `--name=` or `-name=`, at a line's start or after whitespace.
            let before = text[line_start..start].trim_end_matches('-');
            let own_line = before.trim().is_empty();
            if !(own_line || before.ends_with(char::is_whitespace)) {
                continue;
            }
            let rest = &text[value_start..];
            let len = if own_line {
                // An echoed `name=value` line: the value is the rest of the line.
                rest.find(['\n', '\r']).unwrap_or(rest.len())
            } else {
                rest.find(char::is_whitespace).unwrap_or(rest.len())
            };
            if len > 0 {
                spans.push((value_start, value_start + len));
            }
        }
        if dashed == underscored {
            break;
        }
    }
}

/// Why a parameter cannot be handed to an agent exactly as given.
///
/// fence-agents read `name=value` lines on stdin (fencing.py's `_parse_input_stdin`): each
/// line is stripped of surrounding whitespace, lines starting with `#` are comments, a value
/// wrapped in `"` loses its quotes, and a line ends at a line break. A value that one of these
/// would change, or a name that would not be read as given, is refused instead of being
/// changed silently. cluster-glue's `stonith -E` reads parameters from its environment, which
/// carries values exactly, but names must be environment names and must not be ones the
/// `stonith` process or its shell plugins act on (`PATH`, `LD_PRELOAD`, `BASH_ENV`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ParamRefusal {
    /// The name is empty.
    #[error("the name is empty")]
    EmptyName,
    /// The name starts with `#`: the agent would read the line as a comment and drop it.
    #[error("the name starts with '#', so the agent would read the line as a comment and drop it")]
    CommentName,
    /// The name holds `=`, whitespace or a control character.
    #[error(
        "the name holds '=', whitespace or a control character; use the name the agent's meta-data lists"
    )]
    BadName,
    /// The value holds a line break: it would end the line (and could inject another option).
    #[error(
        "the value holds a line break, which would end the key=value line (and could inject another option)"
    )]
    LineBreak,
    /// The value holds a NUL byte, which no process argument, line or environment carries.
    #[error("the value holds a NUL byte, which the agent cannot receive")]
    NulByte,
    /// The value starts or ends with whitespace, which fence agents strip.
    #[error(
        "the value starts or ends with whitespace, which fence agents strip: the agent would get another value"
    )]
    EdgeWhitespace,
    /// The value is wrapped in double quotes, which fence agents remove.
    #[error(
        "the value is wrapped in double quotes, which fence agents remove: the agent would get another value"
    )]
    Quoted,
    /// The name is an environment variable the `stonith` process or its plugins act on.
    #[error(
        "the name is an environment variable that stonith or its plugins act on (PATH, LD_*, BASH_ENV, ...); no plugin parameter is called that"
    )]
    ReservedName,
}

/// Whether `c` counts as whitespace at a line's edge for Python's `str.strip()` (a superset
/// of Unicode White_Space: it also strips the ASCII separators 0x1C-0x1F).
fn stripped_by_python(c: char) -> bool {
    c.is_whitespace() || c.is_control()
}

/// Checks that `name=value` reaches a fence agent exactly as given through the stdin
/// protocol, or says why it cannot (see [`ParamRefusal`]).
///
/// ```
/// use ocf_fencing::{ParamRefusal, check_stdin_param};
/// assert!(check_stdin_param("password", "p a s s").is_ok());
/// assert_eq!(check_stdin_param("password", "secret "), Err(ParamRefusal::EdgeWhitespace));
/// assert_eq!(check_stdin_param("#ip", "10.0.0.1"), Err(ParamRefusal::CommentName));
/// assert_eq!(check_stdin_param("ip", "a\naction=on"), Err(ParamRefusal::LineBreak));
/// ```
pub fn check_stdin_param(name: &str, value: &str) -> Result<(), ParamRefusal> {
    check_name(name)?;
    if name.contains('=') || name.chars().any(stripped_by_python) {
        return Err(ParamRefusal::BadName);
    }
    if value.contains('\0') {
        return Err(ParamRefusal::NulByte);
    }
    // Python's text stdin turns \r and \r\n into \n as well.
    if value.contains(['\n', '\r']) {
        return Err(ParamRefusal::LineBreak);
    }
    if value.starts_with(stripped_by_python) || value.ends_with(stripped_by_python) {
        return Err(ParamRefusal::EdgeWhitespace);
    }
    if value.len() >= 2 && value.starts_with('"') && value.ends_with('"') {
        return Err(ParamRefusal::Quoted);
    }
    Ok(())
}

/// Environment variables that `stonith`, the shell running its external plugins or the
/// dynamic loader act on: a parameter must not set them.
const RESERVED_ENV: &[&str] = &[
    "PATH",
    "LANG",
    "LANGUAGE",
    "HOME",
    "IFS",
    "ENV",
    "BASH_ENV",
    "SHELLOPTS",
    "BASHOPTS",
    "PS4",
    "CDPATH",
    "TMPDIR",
    "GCONV_PATH",
    "PYTHONPATH",
    "PYTHONHOME",
    "PERL5LIB",
    "PERL5OPT",
];

/// Checks that `name=value` can be handed to `stonith -E` in its environment exactly as
/// given, or says why not (see [`ParamRefusal`]). The environment carries whitespace,
/// quotes and line breaks exactly, so only the name and NUL bytes are checked.
///
/// ```
/// use ocf_fencing::{ParamRefusal, check_env_param};
/// assert!(check_env_param("hostlist", " n1 n2 ").is_ok());
/// assert_eq!(check_env_param("LD_PRELOAD", "/tmp/x.so"), Err(ParamRefusal::ReservedName));
/// ```
pub fn check_env_param(name: &str, value: &str) -> Result<(), ParamRefusal> {
    check_name(name)?;
    let valid = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid {
        return Err(ParamRefusal::BadName);
    }
    if RESERVED_ENV.contains(&name)
        || ["LD_", "LC_", "BASH_FUNC_", "DYLD_"]
            .iter()
            .any(|p| name.starts_with(p))
    {
        return Err(ParamRefusal::ReservedName);
    }
    if value.contains('\0') {
        return Err(ParamRefusal::NulByte);
    }
    Ok(())
}

fn check_name(name: &str) -> Result<(), ParamRefusal> {
    if name.is_empty() {
        return Err(ParamRefusal::EmptyName);
    }
    if name.trim_start().starts_with('#') {
        return Err(ParamRefusal::CommentName);
    }
    Ok(())
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
    fn the_marker_is_the_secrets_own() {
        assert_eq!(Secret::new("x").to_string(), REDACTED);
    }

    #[test]
    fn a_one_letter_secret_neither_mangles_words_nor_shows_its_shape() {
        let p: DeviceParams = [("password", "o")].into_iter().collect();
        let text =
            "host is powered on\nRunning: ipmitool -U admin -P o -L OPERATOR\npassword=o\n'o'.";
        assert_eq!(
            p.redact(text),
            "host is powered on\nRunning: ipmitool -U admin -P <redacted> -L OPERATOR\npassword=<redacted>\n'<redacted>'."
        );
    }

    #[test]
    fn two_short_secrets_do_not_rewrite_each_others_markers() {
        // "<redacted>" holds both "red" and "act": a second pass over the output would cut it.
        let p: DeviceParams = [("password", "red"), ("snmp_priv_passwd", "act")]
            .into_iter()
            .collect();
        assert_eq!(
            p.redact("login red act redacted acted"),
            "login <redacted> <redacted> redacted acted"
        );
    }

    #[test]
    fn overlapping_secrets_become_one_marker() {
        let p: DeviceParams = [("password", "ab cd"), ("passwd", "cd ef")]
            .into_iter()
            .collect();
        assert_eq!(p.redact("x ab cd ef y"), "x <redacted> y");
    }

    #[test]
    fn values_after_secret_names_are_hidden_whatever_they_are() {
        let p: DeviceParams = [("password", "pw"), ("ip", "10.0.0.1")]
            .into_iter()
            .collect();
        assert_eq!(
            p.redact("password=other value\nrun --password=x1 -H 10.0.0.1\nmypassword=z"),
            "password=<redacted>\nrun --password=<redacted> -H 10.0.0.1\nmypassword=z"
        );
    }

    #[test]
    fn a_scripted_password_echoed_after_its_name_is_hidden() {
        let p: DeviceParams = [("passwd_script", "/etc/fence/pw.sh"), ("ip", "10.0.0.1")]
            .into_iter()
            .collect();
        assert_eq!(
            p.redact("ssh -p 22 --password=fromscript x\npasswd=fromscript\n"),
            "ssh -p 22 --password=<redacted> x\npasswd=<redacted>\n"
        );
        assert_eq!(p.redact("key=1a2b ip 10.0.0.1"), "key=1a2b ip 10.0.0.1");
    }

    #[test]
    fn stdin_refusals() {
        assert_eq!(check_stdin_param("", "x"), Err(ParamRefusal::EmptyName));
        assert_eq!(
            check_stdin_param("#ip", "x"),
            Err(ParamRefusal::CommentName)
        );
        assert_eq!(check_stdin_param("i p", "x"), Err(ParamRefusal::BadName));
        assert_eq!(check_stdin_param("a=b", "x"), Err(ParamRefusal::BadName));
        assert_eq!(
            check_stdin_param("ip", "x\ry"),
            Err(ParamRefusal::LineBreak)
        );
        assert_eq!(check_stdin_param("ip", "x\0"), Err(ParamRefusal::NulByte));
        for v in [" x", "x ", "x\t", "\u{a0}x", "x\u{1f}"] {
            assert_eq!(
                check_stdin_param("ip", v),
                Err(ParamRefusal::EdgeWhitespace),
                "{v:?}"
            );
        }
        assert_eq!(check_stdin_param("ip", "\"x\""), Err(ParamRefusal::Quoted));
        for v in ["x", "a b", "\"", "\"x", "x#y", "#x", "=x"] {
            assert_eq!(check_stdin_param("ip", v), Ok(()), "{v:?}");
        }
    }

    #[test]
    fn env_refusals() {
        assert_eq!(check_env_param("hostlist", " a\nb \"c\" "), Ok(()));
        assert_eq!(check_env_param("VI_SERVER", "x"), Ok(()));
        assert_eq!(check_env_param("mib-version", "1"), Ok(()));
        for n in ["PATH", "LD_PRELOAD", "LC_ALL", "BASH_ENV", "BASH_FUNC_x%%"] {
            assert!(check_env_param(n, "x").is_err(), "{n}");
        }
        assert_eq!(check_env_param("#x", "1"), Err(ParamRefusal::CommentName));
        assert_eq!(check_env_param("1x", "1"), Err(ParamRefusal::BadName));
        assert_eq!(check_env_param("x", "a\0"), Err(ParamRefusal::NulByte));
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
