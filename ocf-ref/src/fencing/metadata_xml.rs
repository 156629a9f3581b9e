//! Fence device meta-data from the `<resource-agent>` XML of fence-agents
//! (`action=metadata`) and cluster-glue plugins (`stonith -t TYPE -m`).
//!
//! The XML is the OCF resource-agent meta-data format, so it is read by the one parser of
//! that format, [`ocf_resources::Metadata::parse`], and converted here to the fencing model
//! ([`DeviceMetadata`]), adding what only fencing cares about: which parameters hold secrets
//! (by name, by a `[password]`-style getopt placeholder, or because they replace or are
//! replaced by a secret parameter: `obsoletes=`).

use ocf_fencing::{DeviceMetadata, DeviceParameter, ParameterType};
use ocf_resources::MetadataError;
use ocf_resources::metadata::{ContentType, Metadata, Parameter};

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
pub fn parse(xml: &str) -> Result<DeviceMetadata, MetadataError> {
    let agent = Metadata::parse(xml.as_bytes())?;
    if agent.name.trim().is_empty() {
        return Err(MetadataError::MissingAttribute {
            element: "resource-agent".into(),
            attribute: "name",
        });
    }
    Ok(from_agent(&agent))
}

/// The fencing view of an agent's meta-data.
pub fn from_agent(agent: &Metadata) -> DeviceMetadata {
    let mut md = DeviceMetadata::new(agent.name.clone());
    agent
        .shortdesc_in("en")
        .unwrap_or_default()
        .clone_into(&mut md.shortdesc);
    agent
        .longdesc_in("en")
        .unwrap_or_default()
        .clone_into(&mut md.longdesc);
    md.parameters = agent.parameters.iter().map(parameter).collect();
    for a in &agent.actions {
        if !md.actions.contains(&a.name) {
            md.actions.push(a.name.clone());
        }
    }
    mark_obsoleted_secrets(&mut md);
    md
}

fn parameter(p: &Parameter) -> DeviceParameter {
    let mut d = DeviceParameter::new(p.name.clone());
    d.required = p.required;
    d.deprecated = p.deprecated.is_some();
    d.obsoletes.clone_from(&p.obsoletes);
    d.default.clone_from(&p.content.default);
    d.kind = match &p.content.kind {
        ContentType::Select => ParameterType::Select(p.content.options.clone()),
        other => ParameterType::from_xml(other.as_str(), Vec::new()),
    };
    p.shortdesc_in("en")
        .unwrap_or_default()
        .clone_into(&mut d.shortdesc);
    // fence-agents: `--password=[password]`; the placeholder marks secrets.
    if p.getopt
        .as_deref()
        .and_then(getopt_placeholder)
        .is_some_and(ocf_fencing::is_secret_placeholder)
    {
        d.secret = true;
    }
    d
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
