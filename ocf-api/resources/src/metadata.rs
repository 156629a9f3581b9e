//! The meta-data model (`ra-api-1.dtd`, extended by OCF 1.1), read from and written to XML.
//!
//! Real agents bend the DTD (agent versions like `1.2`, `unique-group`, `type="select"`,
//! integers with defaults like `5s`, actions without a timeout), so parsing is lenient: it
//! keeps what it understands, ignores unknown elements and attributes, and refuses only what
//! is not meta-data at all (malformed XML, a different root element, a parameter or action
//! without a name). Values stay as the agent wrote them; typed accessors such as
//! [`ActionSpec::timeout`] interpret them, so a checker can report what does not parse.

use std::fmt::Write as _;
use std::time::Duration;

use quick_xml::events::{BytesStart, Event};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Action;
use crate::error::MetadataError;

/// How deep elements may nest before the document is refused (meta-data needs 4).
pub const MAX_DEPTH: usize = 64;

/// A text in one language (`<longdesc lang="en">`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Text {
    /// The language tag, when the agent gave one.
    pub lang: Option<String>,
    /// The text, with surrounding white space removed.
    pub text: String,
}

impl Text {
    /// A text in `lang`.
    pub fn new(lang: Option<&str>, text: impl Into<String>) -> Self {
        Self {
            lang: lang.map(str::to_owned),
            text: text.into(),
        }
    }

    /// An English text (`lang="en"`).
    pub fn en(text: impl Into<String>) -> Self {
        Self::new(Some("en"), text)
    }
}

/// Picks the text in `lang`, else English, else the first one.
fn pick<'a>(texts: &'a [Text], lang: &str) -> Option<&'a str> {
    texts
        .iter()
        .find(|t| t.lang.as_deref() == Some(lang))
        .or_else(|| texts.iter().find(|t| t.lang.as_deref() == Some("en")))
        .or_else(|| texts.first())
        .map(|t| t.text.as_str())
}

/// The type of a parameter's value (`<content type=...>`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ContentType {
    /// Any string.
    String,
    /// A decimal integer, optionally signed.
    Integer,
    /// A boolean (`true/false`, `yes/no`, `on/off`, `1/0`).
    Boolean,
    /// A duration (`10`, `10s`, `500ms`, `2min`).
    Time,
    /// One of the listed options ([`Content::options`]).
    Select,
    /// A type this crate does not know, as written (validated like a string).
    Other(String),
}

impl ContentType {
    /// The name used in XML and JSON.
    pub fn as_str(&self) -> &str {
        match self {
            ContentType::String => "string",
            ContentType::Integer => "integer",
            ContentType::Boolean => "boolean",
            ContentType::Time => "time",
            ContentType::Select => "select",
            ContentType::Other(s) => s,
        }
    }

    /// Reads a type name; unknown names become [`ContentType::Other`].
    pub fn from_name(name: &str) -> Self {
        match name {
            "string" => ContentType::String,
            "integer" => ContentType::Integer,
            "boolean" => ContentType::Boolean,
            "time" => ContentType::Time,
            "select" => ContentType::Select,
            other => ContentType::Other(other.to_owned()),
        }
    }
}

impl Serialize for ContentType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ContentType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(ContentType::from_name(&String::deserialize(d)?))
    }
}

/// A parameter's value type, default and (for `select`) options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Content {
    /// The type.
    #[serde(rename = "type")]
    pub kind: ContentType,
    /// The default value, as written by the agent (not validated: real agents write `5s` as
    /// an integer default).
    pub default: Option<String>,
    /// The allowed values of a `select`.
    pub options: Vec<String>,
}

impl Content {
    /// Content of `kind` with no default and no options.
    pub fn new(kind: ContentType) -> Self {
        Self {
            kind,
            default: None,
            options: Vec::new(),
        }
    }

    /// Sets the default.
    #[must_use]
    pub fn with_default(mut self, default: impl Into<String>) -> Self {
        self.default = Some(default.into());
        self
    }

    /// Sets the options of a `select`.
    #[must_use]
    pub fn with_options<I: IntoIterator<Item = S>, S: Into<String>>(mut self, options: I) -> Self {
        self.options = options.into_iter().map(Into::into).collect();
        self
    }
}

/// A parameter's deprecation (OCF 1.1 `<deprecated>`, or the attribute `deprecated="1"`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Deprecation {
    /// The parameters that replace it (`<replaced-with name=...>`).
    pub replaced_with: Vec<String>,
    /// Why, and what to do instead (`<desc>`).
    pub desc: Vec<Text>,
}

/// One parameter an agent accepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Parameter {
    /// The name (`OCF_RESKEY_<name>`).
    pub name: String,
    /// The agent cannot work without it.
    pub required: bool,
    /// Its value must be unique among instances of this agent (OCF 1.0 `unique`).
    pub unique: bool,
    /// Parameters in the same group must be unique together (OCF 1.1 `unique-group`).
    pub unique_group: Option<String>,
    /// A change can be applied with `reload-agent` instead of a restart.
    pub reloadable: bool,
    /// Set when the parameter is deprecated.
    pub deprecated: Option<Deprecation>,
    /// Long descriptions, one per language.
    pub longdesc: Vec<Text>,
    /// Short descriptions, one per language.
    pub shortdesc: Vec<Text>,
    /// The value's type and default.
    pub content: Content,
    /// The parameter this one replaces (fence-agents' `obsoletes=` attribute).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub obsoletes: Option<String>,
    /// Its command-line spelling, fence-agents' `<getopt mixed=...>`
    /// (`-p, --password=[password]`); the bracketed placeholder names the kind of value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub getopt: Option<String>,
}

impl Parameter {
    /// An optional, non-unique parameter of the given content.
    pub fn new(name: impl Into<String>, content: Content) -> Self {
        Self {
            name: name.into(),
            required: false,
            unique: false,
            unique_group: None,
            reloadable: false,
            deprecated: None,
            longdesc: Vec::new(),
            shortdesc: Vec::new(),
            content,
            obsoletes: None,
            getopt: None,
        }
    }

    /// Marks it required.
    #[must_use]
    pub fn required(mut self, required: bool) -> Self {
        self.required = required;
        self
    }

    /// Marks it unique.
    #[must_use]
    pub fn unique(mut self, unique: bool) -> Self {
        self.unique = unique;
        self
    }

    /// Marks it reloadable.
    #[must_use]
    pub fn reloadable(mut self, reloadable: bool) -> Self {
        self.reloadable = reloadable;
        self
    }

    /// Sets the English short and long descriptions.
    #[must_use]
    pub fn describe(mut self, shortdesc: &str, longdesc: &str) -> Self {
        self.shortdesc = vec![Text::en(shortdesc)];
        self.longdesc = vec![Text::en(longdesc)];
        self
    }

    /// The short description in `lang` (else English, else any).
    pub fn shortdesc_in(&self, lang: &str) -> Option<&str> {
        pick(&self.shortdesc, lang)
    }
}

/// One action an agent advertises, with the caller's suggested settings, as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ActionSpec {
    /// The action's name, as written (agents also list `restart` or `validate`).
    pub name: String,
    /// The suggested timeout (`20s`, `20`).
    pub timeout: Option<String>,
    /// The suggested interval of a recurring monitor.
    pub interval: Option<String>,
    /// The monitor depth (`OCF_CHECK_LEVEL`).
    pub depth: Option<String>,
    /// The role this entry applies to (`Promoted`, `Unpromoted`; 1.0: `Master`, `Slave`).
    pub role: Option<String>,
    /// Delay before the first run (deprecated by Pacemaker).
    pub start_delay: Option<String>,
}

impl ActionSpec {
    /// An entry for `action` with a timeout.
    pub fn new(action: Action, timeout: Duration) -> Self {
        Self {
            name: action.as_str().to_owned(),
            timeout: Some(format_duration(timeout)),
            interval: None,
            depth: None,
            role: None,
            start_delay: None,
        }
    }

    /// Sets the interval.
    #[must_use]
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = Some(format_duration(interval));
        self
    }

    /// Sets the depth.
    #[must_use]
    pub fn with_depth(mut self, depth: u32) -> Self {
        self.depth = Some(depth.to_string());
        self
    }

    /// Sets the role.
    #[must_use]
    pub fn with_role(mut self, role: Role) -> Self {
        self.role = Some(role.as_str().to_owned());
        self
    }

    /// The action, when the name is one the API defines.
    pub fn action(&self) -> Option<Action> {
        self.name.parse().ok()
    }

    /// The timeout, when given and well-formed.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout.as_deref().and_then(parse_duration)
    }

    /// The interval, when given and well-formed.
    pub fn interval(&self) -> Option<Duration> {
        self.interval.as_deref().and_then(parse_duration)
    }

    /// The depth, when given and a number.
    pub fn depth(&self) -> Option<u32> {
        self.depth.as_deref().and_then(|d| d.trim().parse().ok())
    }

    /// The role, when given and known (1.0 names map to 1.1 ones).
    pub fn role(&self) -> Option<Role> {
        self.role.as_deref().and_then(Role::from_name)
    }
}

/// The role of a promotable resource's instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Role {
    /// Promoted (1.0: `Master`).
    Promoted,
    /// Unpromoted (1.0: `Slave`).
    Unpromoted,
}

impl Role {
    /// The 1.1 name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Promoted => "Promoted",
            Role::Unpromoted => "Unpromoted",
        }
    }

    /// Reads a 1.1 or 1.0 role name.
    pub fn from_name(name: &str) -> Option<Self> {
        match name.trim() {
            "Promoted" | "Master" => Some(Role::Promoted),
            "Unpromoted" | "Slave" => Some(Role::Unpromoted),
            _ => None,
        }
    }
}

/// An agent's meta-data.
///
/// ```
/// use ocf_resources::metadata::Metadata;
/// let xml = r#"<?xml version="1.0"?>
/// <resource-agent name="Dummy" version="1.0">
///   <version>1.1</version>
///   <shortdesc lang="en">Example</shortdesc>
///   <parameters>
///     <parameter name="state" unique-group="state" reloadable="1">
///       <shortdesc lang="en">State file</shortdesc>
///       <content type="string" default="/run/Dummy.state"/>
///     </parameter>
///   </parameters>
///   <actions><action name="start" timeout="20s"/><action name="monitor" timeout="20" interval="10s"/></actions>
/// </resource-agent>"#;
/// let meta = Metadata::parse(xml.as_bytes())?;
/// assert_eq!(meta.name, "Dummy");
/// assert_eq!(meta.api_version(), Some((1, 1)));
/// assert!(meta.parameters[0].reloadable);
/// assert_eq!(meta.timeout_for(ocf_resources::Action::Monitor), Some(std::time::Duration::from_secs(20)));
/// // Writing and reading back gives the same model.
/// assert_eq!(Metadata::parse(meta.to_xml().as_bytes())?, meta);
/// # Ok::<(), ocf_resources::MetadataError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Metadata {
    /// The agent's name (`<resource-agent name>`).
    pub name: String,
    /// The agent's own version (`<resource-agent version>`).
    pub version: Option<String>,
    /// The OCF API version it follows (`<version>`: `1.0`, `1.1`).
    pub api_version: Option<String>,
    /// Long descriptions, one per language.
    pub longdesc: Vec<Text>,
    /// Short descriptions, one per language.
    pub shortdesc: Vec<Text>,
    /// The parameters it accepts.
    pub parameters: Vec<Parameter>,
    /// The actions it advertises.
    pub actions: Vec<ActionSpec>,
}

impl Metadata {
    /// Empty meta-data for an agent called `name`, following API 1.1.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            version: None,
            api_version: Some("1.1".to_owned()),
            longdesc: Vec::new(),
            shortdesc: Vec::new(),
            parameters: Vec::new(),
            actions: Vec::new(),
        }
    }

    /// The parameter called `name`.
    pub fn parameter(&self, name: &str) -> Option<&Parameter> {
        self.parameters.iter().find(|p| p.name == name)
    }

    /// The first advertised entry for `action` (agents may list monitor once per role).
    pub fn action(&self, action: Action) -> Option<&ActionSpec> {
        self.actions.iter().find(|a| a.name == action.as_str())
    }

    /// True when the agent advertises `action`.
    pub fn advertises(&self, action: Action) -> bool {
        self.action(action).is_some()
    }

    /// The advertised timeout for `action`, when given and well-formed.
    pub fn timeout_for(&self, action: Action) -> Option<Duration> {
        self.action(action).and_then(ActionSpec::timeout)
    }

    /// True when the agent advertises both promote and demote.
    pub fn is_promotable(&self) -> bool {
        self.advertises(Action::Promote) && self.advertises(Action::Demote)
    }

    /// The API version as numbers, when `<version>` is `major.minor`.
    pub fn api_version(&self) -> Option<(u32, u32)> {
        let v = self.api_version.as_deref()?.trim();
        let (major, minor) = v.split_once('.')?;
        Some((major.parse().ok()?, minor.parse().ok()?))
    }

    /// The short description in `lang` (else English, else any).
    pub fn shortdesc_in(&self, lang: &str) -> Option<&str> {
        pick(&self.shortdesc, lang)
    }

    /// The long description in `lang` (else English, else any).
    pub fn longdesc_in(&self, lang: &str) -> Option<&str> {
        pick(&self.longdesc, lang)
    }

    /// Parses meta-data XML (what `agent meta-data` prints). Never panics.
    pub fn parse(xml: &[u8]) -> Result<Self, MetadataError> {
        let text = std::str::from_utf8(xml).map_err(|e| MetadataError::NotUtf8 {
            position: e.valid_up_to() as u64,
        })?;
        let root = read_tree(text)?;
        from_tree(&root)
    }

    /// Writes the meta-data as XML that [`Metadata::parse`] reads back to an equal value.
    pub fn to_xml(&self) -> String {
        let mut out = String::from("<?xml version=\"1.0\"?>\n");
        out.push_str("<resource-agent");
        attr(&mut out, "name", &self.name);
        if let Some(v) = &self.version {
            attr(&mut out, "version", v);
        }
        out.push_str(">\n");
        if let Some(v) = &self.api_version {
            let _ = writeln!(out, "<version>{}</version>", esc(v));
        }
        texts(&mut out, "longdesc", &self.longdesc);
        texts(&mut out, "shortdesc", &self.shortdesc);
        out.push_str("<parameters>\n");
        for p in &self.parameters {
            write_parameter(&mut out, p);
        }
        out.push_str("</parameters>\n<actions>\n");
        for a in &self.actions {
            out.push_str("<action");
            attr(&mut out, "name", &a.name);
            for (key, value) in [
                ("timeout", &a.timeout),
                ("interval", &a.interval),
                ("depth", &a.depth),
                ("role", &a.role),
                ("start-delay", &a.start_delay),
            ] {
                if let Some(v) = value {
                    attr(&mut out, key, v);
                }
            }
            out.push_str("/>\n");
        }
        out.push_str("</actions>\n</resource-agent>\n");
        out
    }
}

fn write_parameter(out: &mut String, p: &Parameter) {
    out.push_str("<parameter");
    attr(out, "name", &p.name);
    attr(out, "required", if p.required { "1" } else { "0" });
    attr(out, "unique", if p.unique { "1" } else { "0" });
    if let Some(g) = &p.unique_group {
        attr(out, "unique-group", g);
    }
    if p.reloadable {
        attr(out, "reloadable", "1");
    }
    if let Some(o) = &p.obsoletes {
        attr(out, "obsoletes", o);
    }
    out.push_str(">\n");
    if let Some(g) = &p.getopt {
        out.push_str("<getopt");
        attr(out, "mixed", g);
        out.push_str("/>\n");
    }
    texts(out, "longdesc", &p.longdesc);
    texts(out, "shortdesc", &p.shortdesc);
    if let Some(d) = &p.deprecated {
        out.push_str("<deprecated>\n");
        for r in &d.replaced_with {
            out.push_str("<replaced-with");
            attr(out, "name", r);
            out.push_str("/>\n");
        }
        texts(out, "desc", &d.desc);
        out.push_str("</deprecated>\n");
    }
    out.push_str("<content");
    attr(out, "type", p.content.kind.as_str());
    if let Some(d) = &p.content.default {
        attr(out, "default", d);
    }
    if p.content.options.is_empty() {
        out.push_str("/>\n");
    } else {
        out.push_str(">\n");
        for o in &p.content.options {
            out.push_str("<option");
            attr(out, "value", o);
            out.push_str("/>\n");
        }
        out.push_str("</content>\n");
    }
    out.push_str("</parameter>\n");
}

fn esc(s: &str) -> std::borrow::Cow<'_, str> {
    quick_xml::escape::escape(s)
}

fn attr(out: &mut String, key: &str, value: &str) {
    let _ = write!(out, " {key}=\"{}\"", esc(value));
}

fn texts(out: &mut String, tag: &str, texts: &[Text]) {
    for t in texts {
        let _ = write!(out, "<{tag}");
        if let Some(lang) = &t.lang {
            attr(out, "lang", lang);
        }
        let _ = writeln!(out, ">{}</{tag}>", esc(&t.text));
    }
}

/// Parses an OCF/Pacemaker duration: a number with an optional unit (`ms`, `msec`, `us`,
/// `usec`, `s`, `sec`, `m`, `min`, `h`, `hr`; none means seconds). `None` when malformed.
///
/// ```
/// use std::time::Duration;
/// use ocf_resources::metadata::parse_duration;
/// assert_eq!(parse_duration("20s"), Some(Duration::from_secs(20)));
/// assert_eq!(parse_duration("20"), Some(Duration::from_secs(20)));
/// assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
/// assert_eq!(parse_duration("2min"), Some(Duration::from_secs(120)));
/// assert_eq!(parse_duration("soon"), None);
/// ```
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: u64 = number.parse().ok()?;
    let unit_ns: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "s" | "sec" | "secs" | "second" | "seconds" => 1_000_000_000,
        "ms" | "msec" | "msecs" => 1_000_000,
        "us" | "usec" | "usecs" => 1_000,
        "m" | "min" | "mins" | "minute" | "minutes" => 60_000_000_000,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3_600_000_000_000,
        _ => return None,
    };
    n.checked_mul(unit_ns).map(Duration::from_nanos)
}

/// Formats a duration the way agents write it: whole seconds as `20s`, else `1500ms`.
pub fn format_duration(d: Duration) -> String {
    let ms = ocf_core::millis::as_millis(d);
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

// ---- a small element tree, so mapping to the model is plain code ----

#[derive(Debug, Default)]
struct Element {
    name: String,
    attrs: Vec<(String, String)>,
    children: Vec<Element>,
    text: String,
}

impl Element {
    fn attr(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn children<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    fn required_attr(&self, key: &'static str) -> Result<String, MetadataError> {
        self.attr(key)
            .map(str::to_owned)
            .ok_or_else(|| MetadataError::MissingAttribute {
                element: self.name.clone(),
                attribute: key,
            })
    }
}

fn xml_error(reader_pos: u64, e: &dyn std::fmt::Display) -> MetadataError {
    MetadataError::Xml {
        position: reader_pos,
        message: e.to_string(),
    }
}

fn start_element(e: &BytesStart<'_>, position: u64) -> Result<Element, MetadataError> {
    let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
    let mut attrs = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|err| xml_error(position, &err))?;
        let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
        let value = a
            .unescape_value()
            .map_err(|err| xml_error(position, &err))?
            .into_owned();
        attrs.push((key, value));
    }
    Ok(Element {
        name,
        attrs,
        children: Vec::new(),
        text: String::new(),
    })
}

/// Reads the document into a tree without recursion (depth is bounded by [`MAX_DEPTH`]).
fn read_tree(text: &str) -> Result<Element, MetadataError> {
    let mut reader = quick_xml::Reader::from_str(text);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let position = reader.buffer_position();
        let event = reader.read_event().map_err(|e| MetadataError::Xml {
            position: reader.error_position(),
            message: e.to_string(),
        })?;
        match event {
            Event::Start(e) | Event::Empty(e) if root.is_some() => {
                let _ = e;
                return Err(MetadataError::TrailingContent { position });
            }
            Event::Start(e) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(MetadataError::TooDeep { limit: MAX_DEPTH });
                }
                stack.push(start_element(&e, position)?);
            }
            Event::Empty(e) => {
                let element = start_element(&e, position)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => root = Some(element),
                }
            }
            Event::End(_) => {
                let Some(element) = stack.pop() else {
                    return Err(MetadataError::Xml {
                        position,
                        message: "end tag without a start tag".to_owned(),
                    });
                };
                match stack.last_mut() {
                    Some(parent) => {
                        // Descriptions may hold markup (`ANY` in the DTD): keep its text.
                        parent.text.push_str(&element.text);
                        parent.children.push(element);
                    }
                    None => root = Some(element),
                }
            }
            Event::Text(t) => {
                let s = t.xml10_content().map_err(|e| xml_error(position, &e))?;
                match stack.last_mut() {
                    Some(el) => el.text.push_str(&s),
                    None if s.trim().is_empty() => {}
                    None => return Err(MetadataError::TrailingContent { position }),
                }
            }
            Event::CData(t) => {
                let s = t.decode().map_err(|e| xml_error(position, &e))?;
                if let Some(el) = stack.last_mut() {
                    el.text.push_str(&s);
                }
            }
            Event::GeneralRef(r) => {
                let resolved =
                    if let Some(c) = r.resolve_char_ref().map_err(|e| xml_error(position, &e))? {
                        c.to_string()
                    } else {
                        let name = r.decode().map_err(|e| xml_error(position, &e))?;
                        quick_xml::escape::resolve_predefined_entity(&name)
                            .ok_or_else(|| MetadataError::Xml {
                                position,
                                message: format!("unknown entity &{name};"),
                            })?
                            .to_owned()
                    };
                match stack.last_mut() {
                    Some(el) => el.text.push_str(&resolved),
                    None => return Err(MetadataError::TrailingContent { position }),
                }
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
        }
    }
    if let Some(open) = stack.pop() {
        return Err(MetadataError::Unclosed { element: open.name });
    }
    root.ok_or(MetadataError::Empty)
}

fn flag(value: Option<&str>) -> bool {
    matches!(
        value.map(|v| v.trim().to_ascii_lowercase()).as_deref(),
        Some("1" | "true" | "yes" | "on")
    )
}

fn read_texts(parent: &Element, name: &str) -> Vec<Text> {
    parent
        .children(name)
        .map(|e| Text {
            lang: e.attr("lang").map(str::to_owned),
            text: e.text.trim().to_owned(),
        })
        .collect()
}

fn from_tree(root: &Element) -> Result<Metadata, MetadataError> {
    if root.name != "resource-agent" {
        return Err(MetadataError::WrongRoot {
            found: root.name.clone(),
        });
    }
    let mut meta = Metadata {
        name: root.required_attr("name")?,
        version: root.attr("version").map(str::to_owned),
        api_version: root.child("version").map(|v| v.text.trim().to_owned()),
        longdesc: read_texts(root, "longdesc"),
        shortdesc: read_texts(root, "shortdesc"),
        parameters: Vec::new(),
        actions: Vec::new(),
    };
    // fence-agents write the short description as an attribute of the root.
    if meta.shortdesc.is_empty() {
        if let Some(s) = root.attr("shortdesc").filter(|s| !s.trim().is_empty()) {
            meta.shortdesc.push(Text::new(None, s.trim()));
        }
    }
    for params in root.children("parameters") {
        for p in params.children("parameter") {
            meta.parameters.push(read_parameter(p)?);
        }
    }
    for actions in root.children("actions") {
        for a in actions.children("action") {
            meta.actions.push(ActionSpec {
                name: a.required_attr("name")?,
                timeout: a.attr("timeout").map(str::to_owned),
                interval: a.attr("interval").map(str::to_owned),
                depth: a.attr("depth").map(str::to_owned),
                role: a.attr("role").map(str::to_owned),
                start_delay: a.attr("start-delay").map(str::to_owned),
            });
        }
    }
    Ok(meta)
}

fn read_parameter(p: &Element) -> Result<Parameter, MetadataError> {
    let content = match p.child("content") {
        Some(c) => Content {
            kind: c
                .attr("type")
                .map_or(ContentType::String, ContentType::from_name),
            default: c.attr("default").map(str::to_owned),
            options: c
                .children("option")
                .filter_map(|o| o.attr("value").map(str::to_owned))
                .collect(),
        },
        None => Content::new(ContentType::String),
    };
    let deprecated = match p.child("deprecated") {
        Some(d) => Some(Deprecation {
            replaced_with: d
                .children("replaced-with")
                .filter_map(|r| r.attr("name").map(str::to_owned))
                .collect(),
            desc: read_texts(d, "desc"),
        }),
        None if flag(p.attr("deprecated")) => Some(Deprecation::default()),
        None => None,
    };
    Ok(Parameter {
        name: p.required_attr("name")?,
        required: flag(p.attr("required")),
        unique: flag(p.attr("unique")),
        unique_group: p.attr("unique-group").map(str::to_owned),
        reloadable: flag(p.attr("reloadable")),
        deprecated,
        longdesc: read_texts(p, "longdesc"),
        shortdesc: read_texts(p, "shortdesc"),
        content,
        obsoletes: p.attr("obsoletes").map(str::to_owned),
        getopt: p
            .child("getopt")
            .and_then(|g| g.attr("mixed"))
            .map(str::to_owned),
    })
}

#[cfg(test)]
mod fence_agent_tests {
    use super::*;

    #[test]
    fn keeps_what_fence_agents_add() {
        let xml = br#"<resource-agent name="fence_x" shortdesc="X switch"><parameters>
<parameter name="password" obsoletes="passwd"><getopt mixed="-p, --password=[password]"/>
<content type="string"/></parameter></parameters></resource-agent>"#;
        let meta = Metadata::parse(xml).unwrap();
        assert_eq!(meta.shortdesc_in("en"), Some("X switch"));
        let p = meta.parameter("password").unwrap();
        assert_eq!(p.obsoletes.as_deref(), Some("passwd"));
        assert_eq!(p.getopt.as_deref(), Some("-p, --password=[password]"));
        assert_eq!(Metadata::parse(meta.to_xml().as_bytes()).unwrap(), meta);
    }
}
