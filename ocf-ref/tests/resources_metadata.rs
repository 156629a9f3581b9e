#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The meta-data of every installed agent (resource-agents' `heartbeat` and Pacemaker's
//! `pacemaker` providers) parses, read by running each agent's `meta-data` for real.

use std::path::Path;

use ocf_ref::resources::{ScriptAgent, list};
use ocf_resources::{Action, Metadata, ResourceAgent};

const ROOT: &str = "/usr/lib/ocf";

#[tokio::test]
async fn every_installed_agent_meta_data_parses() {
    let mut parsed = 0;
    let mut failures = Vec::new();
    let mut present = false;
    for provider in ["heartbeat", "pacemaker"] {
        if !Path::new(ROOT).join("resource.d").join(provider).is_dir() {
            eprintln!(
                "{ROOT}/resource.d/{provider} is not installed; run scripts/install-peers.sh"
            );
            continue;
        }
        present = true;
        for entry in list(Path::new(ROOT), Some(provider)).unwrap() {
            if !entry.executable {
                continue;
            }
            let agent = ScriptAgent::new(ROOT, entry.id.clone());
            match agent.metadata().await {
                Ok(meta) => {
                    // What was read is usable: a name, and the mandatory actions' timeouts.
                    assert!(!meta.name.is_empty(), "{}", entry.id);
                    assert!(meta.advertises(Action::Start), "{} lacks start", entry.id);
                    // And it survives our own write and re-read.
                    assert_eq!(
                        Metadata::parse(meta.to_xml().as_bytes()).unwrap(),
                        meta,
                        "{}",
                        entry.id
                    );
                    parsed += 1;
                }
                Err(e) => failures.push(format!("{}: {e}", entry.id)),
            }
        }
    }
    println!("meta-data of {parsed} installed agents parsed");
    assert!(
        failures.is_empty(),
        "meta-data failed to parse:\n{}",
        failures.join("\n")
    );
    if present {
        assert!(
            parsed >= 150,
            "only {parsed} agents found; expected resource-agents and pacemaker"
        );
        let stateful = ScriptAgent::new(ROOT, "ocf:pacemaker:Stateful".parse().unwrap());
        let meta = stateful.metadata().await.unwrap();
        assert_eq!(meta.api_version(), Some((1, 1)));
        assert!(meta.is_promotable());
    }
}
