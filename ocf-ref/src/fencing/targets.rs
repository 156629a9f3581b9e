//! Reading a device's targets from configuration text, in Pacemaker's notations:
//! `pcmk_host_list` (`"n1 n2,n3"`) and `pcmk_host_map` (`"n1:1;n2:2"`).

use std::collections::BTreeMap;

use ocf_core::NodeName;
use ocf_fencing::{FenceError, Targets};

fn bad(what: &str, reason: String) -> FenceError {
    FenceError::Config {
        device: what.to_owned(),
        reason,
        source: None,
    }
}

/// A static host list: node names separated by spaces, commas or semicolons.
///
/// ```
/// use ocf_fencing::Targets;
/// let t = ocf_ref::fencing::targets::parse_host_list("n1 n2,n3").unwrap();
/// assert_eq!(t, Targets::hosts(["n1", "n2", "n3"].map(|n| n.parse().unwrap())));
/// ```
pub fn parse_host_list(text: &str) -> Result<Targets, FenceError> {
    let mut hosts: Vec<NodeName> = Vec::new();
    for word in text
        .split([' ', ',', ';', '\t', '\n'])
        .filter(|w| !w.is_empty())
    {
        let node = NodeName::new(word).map_err(|e| {
            bad(
                "host list",
                format!("{e}; separate names with spaces or commas"),
            )
        })?;
        if !hosts.contains(&node) {
            hosts.push(node);
        }
    }
    if hosts.is_empty() {
        return Err(bad("host list", "it names no node".into()));
    }
    Ok(Targets::hosts(hosts))
}

/// A host map: `node:plug` pairs separated by semicolons, spaces or commas (`n1:1;n2:2`).
///
/// ```
/// let t = ocf_ref::fencing::targets::parse_host_map("n1:1;n2:vm-two").unwrap();
/// assert_eq!(t.plug_for(&"n2".parse().unwrap()), Some("vm-two"));
/// assert!(ocf_ref::fencing::targets::parse_host_map("n1").is_err());
/// ```
pub fn parse_host_map(text: &str) -> Result<Targets, FenceError> {
    let mut map = BTreeMap::new();
    for pair in text
        .split([';', ' ', ',', '\t', '\n'])
        .filter(|w| !w.is_empty())
    {
        let Some((node, plug)) = pair.split_once(':').or_else(|| pair.split_once('=')) else {
            return Err(bad(
                "host map",
                format!("{pair:?} is not node:plug; write pairs like n1:1;n2:2"),
            ));
        };
        let node = NodeName::new(node).map_err(|e| bad("host map", e.to_string()))?;
        if plug.is_empty() {
            return Err(bad("host map", format!("{node} maps to an empty plug")));
        }
        if map.insert(node.clone(), plug.to_owned()).is_some() {
            return Err(bad("host map", format!("{node} is mapped twice")));
        }
    }
    if map.is_empty() {
        return Err(bad("host map", "it maps no node".into()));
    }
    Ok(Targets::host_map(map))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn refuses_bad_text() {
        assert!(parse_host_list("").is_err());
        assert!(parse_host_list(" , ").is_err());
        assert!(parse_host_map("n1:").is_err());
        assert!(parse_host_map("n1:1;n1:2").is_err());
        assert!(parse_host_map("a=b:1").is_err());
    }

    #[test]
    fn duplicates_in_a_list_collapse() {
        let t = parse_host_list("a a b").unwrap();
        assert_eq!(t.configured().unwrap().len(), 2);
    }

    proptest! {
        #[test]
        fn never_panics(s in any::<String>()) {
            let _ = parse_host_list(&s);
            let _ = parse_host_map(&s);
        }

        #[test]
        fn maps_round_trip(pairs in prop::collection::btree_map("[a-z][a-z0-9-]{0,8}", "[0-9]{1,3}", 1..6)) {
            let text: Vec<String> = pairs.iter().map(|(n, p)| format!("{n}:{p}")).collect();
            let t = parse_host_map(&text.join(";")).unwrap();
            for (n, p) in &pairs {
                prop_assert_eq!(t.plug_for(&n.parse().unwrap()), Some(p.as_str()));
            }
        }
    }
}
