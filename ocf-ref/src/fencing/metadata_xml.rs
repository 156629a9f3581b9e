//! Parses the meta-data XML of fence-agents (`action=metadata`) and cluster-glue plugins
//! (`stonith -t TYPE -m`) into [`DeviceMetadata`].
//!
//! Real agents bend the format (a `shortdesc` attribute on the root, `second` as a type,
//! `obsoletes=`, unknown elements such as `<getopt>` and `<vendor-url>`), so the parser is
//! lenient about what it does not need and strict about what it does: a root
//! `<resource-agent name=...>`, well-formed XML, parameters with names.

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use ocf_fencing::{DeviceMetadata, DeviceParameter, ParameterType};

/// Why meta-data could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason} (at byte {position})")]
pub struct MetadataXmlError {
    /// What was wrong.
    pub reason: String,
    /// Where in the input, in bytes.
    pub position: u64,
}

/// Parses meta-data XML.
///
/// ```
/// let md = ocf_ref::fencing::metadata_xml::parse(r#"<?xml version="1.0" ?>
/// <resource-agent name="fence_x" shortdesc="X switch">
///   <parameters>
///     <parameter name="passwd" required="0"><content type="string"/></parameter>
///     <parameter name="plug" required="1"><content type="string"/>
///       <shortdesc lang="en">Outlet &amp; port</shortdesc></parameter>
///   </parameters>
///   <actions><action name="reboot"/><action name="status"/></actions>
/// </resource-agent>"#).unwrap();
/// assert_eq!(md.name, "fence_x");
/// assert_eq!(md.shortdesc, "X switch");
/// assert!(md.parameter("passwd").unwrap().secret);
/// assert_eq!(md.parameter("plug").unwrap().shortdesc, "Outlet & port");
/// assert_eq!(md.plug_parameter(), Some("plug"));
/// assert_eq!(md.actions, ["reboot", "status"]);
/// ```
pub fn parse(xml: &str) -> Result<DeviceMetadata, MetadataXmlError> {
    let mut reader = Reader::from_str(xml);
    reader.config_mut().trim_text(false);
    let mut stack: Vec<String> = Vec::new();
    let mut md: Option<DeviceMetadata> = None;
    let mut param: Option<DeviceParameter> = None;
    let mut select_options: Vec<String> = Vec::new();
    let mut content_type = String::new();
    let mut text = String::new();

    loop {
        let position = reader.buffer_position();
        let err = |reason: String| MetadataXmlError { reason, position };
        let event = reader
            .read_event()
            .map_err(|e| err(format!("malformed XML: {e}")))?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let is_empty = matches!(event, Event::Empty(_));
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                let attrs = attributes(e).map_err(&err)?;
                let get = |k: &str| attrs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
                match (stack.last().map(String::as_str), name.as_str()) {
                    (None, "resource-agent") => {
                        let Some(agent) = get("name").filter(|n| !n.is_empty()) else {
                            return Err(err("<resource-agent> has no name".into()));
                        };
                        let mut m = DeviceMetadata::new(agent);
                        m.shortdesc = get("shortdesc").unwrap_or_default();
                        md = Some(m);
                    }
                    (None, other) => {
                        return Err(err(format!(
                            "the root element is <{other}>, not <resource-agent>"
                        )));
                    }
                    (Some("parameters"), "parameter") => {
                        let Some(pname) = get("name").filter(|n| !n.is_empty()) else {
                            return Err(err("a <parameter> has no name".into()));
                        };
                        let mut p = DeviceParameter::new(pname);
                        p.required = get("required").is_some_and(|v| truthy(&v));
                        p.deprecated = get("deprecated").is_some_and(|v| truthy(&v));
                        p.obsoletes = get("obsoletes");
                        param = Some(p);
                        select_options.clear();
                        content_type.clear();
                    }
                    (Some("parameter"), "getopt") => {
                        // fence-agents: `--password=[password]`; the placeholder marks secrets.
                        if let (Some(p), Some(mixed)) = (param.as_mut(), get("mixed")) {
                            if getopt_placeholder(&mixed)
                                .is_some_and(ocf_fencing::is_secret_placeholder)
                            {
                                p.secret = true;
                            }
                        }
                    }
                    (Some("parameter"), "content") => {
                        content_type = get("type").unwrap_or_default();
                        if let Some(p) = param.as_mut() {
                            p.default = get("default");
                            p.kind = ParameterType::from_xml(&content_type, Vec::new());
                        }
                    }
                    (Some("content"), "option") => {
                        if let Some(v) = get("value") {
                            select_options.push(v);
                        }
                    }
                    (Some("actions"), "action") => {
                        if let (Some(m), Some(a)) = (md.as_mut(), get("name")) {
                            if !m.actions.contains(&a) {
                                m.actions.push(a);
                            }
                        }
                    }
                    _ => {}
                }
                text.clear();
                if is_empty {
                    close(
                        &name,
                        &stack,
                        &mut md,
                        &mut param,
                        &select_options,
                        &content_type,
                        &text,
                    );
                } else {
                    stack.push(name);
                }
            }
            Event::End(_) => {
                let Some(name) = stack.pop() else {
                    return Err(err("an end tag without a start".into()));
                };
                close(
                    &name,
                    &stack,
                    &mut md,
                    &mut param,
                    &select_options,
                    &content_type,
                    &text,
                );
                text.clear();
            }
            Event::Text(t) => {
                let s = t
                    .xml_content()
                    .map_err(|e| err(format!("bad text encoding: {e}")))?;
                text.push_str(&s);
            }
            Event::CData(t) => {
                let s = t
                    .decode()
                    .map_err(|e| err(format!("bad CDATA encoding: {e}")))?;
                text.push_str(&s);
            }
            Event::GeneralRef(r) => {
                if let Ok(Some(c)) = r.resolve_char_ref() {
                    text.push(c);
                } else {
                    let name = r.decode().map_err(|e| err(format!("bad entity: {e}")))?;
                    match quick_xml::escape::resolve_predefined_entity(&name) {
                        Some(s) => text.push_str(s),
                        None => return Err(err(format!("unknown entity &{name};"))),
                    }
                }
            }
            Event::Eof => {
                if let Some(open) = stack.last() {
                    return Err(err(format!("the document ends inside <{open}>")));
                }
                let mut md = md.ok_or_else(|| err("no <resource-agent> element".into()))?;
                mark_obsoleted_secrets(&mut md);
                return Ok(md);
            }
            _ => {}
        }
    }
}

/// Applies what an element's end means to the model.
fn close(
    name: &str,
    stack: &[String],
    md: &mut Option<DeviceMetadata>,
    param: &mut Option<DeviceParameter>,
    select_options: &[String],
    content_type: &str,
    text: &str,
) {
    let parent = stack.last().map(String::as_str);
    let text = text.trim();
    match (parent, name) {
        (Some("parameters"), "parameter") => {
            if let (Some(m), Some(mut p)) = (md.as_mut(), param.take()) {
                if content_type == "select" {
                    p.kind = ParameterType::from_xml("select", select_options.to_vec());
                }
                m.parameters.push(p);
            }
        }
        (Some("parameter"), "shortdesc") => {
            if let Some(p) = param.as_mut() {
                text.clone_into(&mut p.shortdesc);
            }
        }
        (Some("resource-agent"), "shortdesc") => {
            if let Some(m) = md.as_mut() {
                if m.shortdesc.is_empty() {
                    text.clone_into(&mut m.shortdesc);
                }
            }
        }
        (Some("resource-agent"), "longdesc") => {
            if let Some(m) = md.as_mut() {
                text.clone_into(&mut m.longdesc);
            }
        }
        _ => {}
    }
}

/// The value placeholder of a getopt spelling: `password` in `-p, --password=[password]`.
fn getopt_placeholder(mixed: &str) -> Option<&str> {
    let (_, rest) = mixed.rsplit_once("=[")?;
    rest.split_once(']').map(|(p, _)| p.trim())
}

/// A parameter that replaces a secret one, or is replaced by one, is secret too
/// (`password` obsoletes `passwd`).
fn mark_obsoleted_secrets(md: &mut DeviceMetadata) {
    let secret_names: Vec<String> = md
        .parameters
        .iter()
        .filter(|p| p.secret)
        .flat_map(|p| std::iter::once(p.name.clone()).chain(p.obsoletes.clone()))
        .collect();
    let replaced_by_secret: Vec<String> = md
        .parameters
        .iter()
        .filter(|p| {
            p.obsoletes
                .as_ref()
                .is_some_and(|o| secret_names.contains(o))
        })
        .map(|p| p.name.clone())
        .collect();
    for p in &mut md.parameters {
        if secret_names.contains(&p.name) || replaced_by_secret.contains(&p.name) {
            p.secret = true;
        }
    }
}

fn attributes(e: &BytesStart<'_>) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|e| format!("bad attribute: {e}"))?;
        let key = String::from_utf8_lossy(a.key.local_name().as_ref()).into_owned();
        let value = a
            .unescape_value()
            .map_err(|e| format!("bad value of attribute {key}: {e}"))?
            .into_owned();
        out.push((key, value));
    }
    Ok(out)
}

fn truthy(v: &str) -> bool {
    matches!(v.trim(), "1" | "true" | "yes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn refuses_what_is_not_meta_data() {
        for bad in [
            "",
            "not xml",
            "<html/>",
            "<resource-agent>",
            "<resource-agent/>",
            "<resource-agent name=\"x\"><parameters><parameter/></parameters></resource-agent>",
            "<resource-agent name=\"x\"></oops>",
            "<resource-agent name=\"x\">&bogus;</resource-agent>",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn reads_stonith_plugin_style() {
        let md = parse(
            r#"<?xml version="1.0"?>
<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">
<resource-agent name="null"><version>1.0</version>
<longdesc lang="en">Dummy</longdesc><shortdesc lang="en">NULL STONITH device</shortdesc>
<parameters><parameter name="hostlist" unique="0" required="1"><content type="string" />
<shortdesc lang="en">Hostlist</shortdesc></parameter></parameters>
<actions><action name="status" timeout="20" /></actions>
<special tag="heartbeat"><version>2.0</version></special>
</resource-agent>"#,
        )
        .unwrap();
        assert_eq!(md.shortdesc, "NULL STONITH device");
        assert_eq!(md.longdesc, "Dummy");
        let p = md.parameter("hostlist").unwrap();
        assert!(p.required && !p.secret);
        assert_eq!(p.shortdesc, "Hostlist");
    }

    #[test]
    fn secrets_come_from_getopt_placeholders_and_obsoletes() {
        let md = parse(
            r#"<resource-agent name="fence_x"><parameters>
<parameter name="bmc_pin"><getopt mixed="--bmc-pin=[password]"/><content type="string"/></parameter>
<parameter name="snmp_phrase"><getopt mixed="-P, --snmp-phrase=[pass]"/><content type="string"/></parameter>
<parameter name="old_pin" deprecated="1"><getopt mixed="--old-pin=[pin]"/></parameter>
<parameter name="new_pin" obsoletes="old_pin"><getopt mixed="--new-pin=[password]"/></parameter>
<parameter name="key"><getopt mixed="-k, --key=[key]"/><content type="string"/></parameter>
<parameter name="plug"><getopt mixed="-n, --plug=[id]"/></parameter>
</parameters></resource-agent>"#,
        )
        .unwrap();
        let secret = |n: &str| md.parameter(n).unwrap().secret;
        assert!(secret("bmc_pin") && secret("snmp_phrase") && secret("new_pin"));
        assert!(secret("old_pin"), "obsoleted by a secret");
        assert!(!secret("key") && !secret("plug"));
        assert_eq!(
            getopt_placeholder("-p, --password=[password]"),
            Some("password")
        );
        assert_eq!(getopt_placeholder("--verbose"), None);
    }

    #[test]
    fn reads_select_options() {
        let md = parse(
            r#"<resource-agent name="x"><parameters><parameter name="method">
<content type="select" default="onoff"><option value="onoff"/><option value="cycle"/></content>
</parameter></parameters></resource-agent>"#,
        )
        .unwrap();
        assert_eq!(
            md.parameter("method").unwrap().kind,
            ParameterType::Select(vec!["onoff".into(), "cycle".into()])
        );
    }

    proptest! {
        #[test]
        fn never_panics(s in any::<String>()) {
            let _ = parse(&s);
        }

        #[test]
        fn never_panics_on_xmlish(s in "[<>/=\"a-z &;!?-]{0,80}") {
            let _ = parse(&format!("<resource-agent name=\"x\">{s}</resource-agent>"));
        }
    }
}
