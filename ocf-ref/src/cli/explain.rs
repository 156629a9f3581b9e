//! `ocf explain INCIDENT|--last --config node.toml [--config other.toml ...] [--json]`: the
//! causal record of an incident (see [`crate::explain`]), from one node or gathered from
//! several, which must agree.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::output::print_json;
use super::{CliResult, Failure};
use crate::explain::Explanation;
use crate::explain::client::explain_at;
use crate::membership::config::NodeConfig;

/// `ocf explain` arguments.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The incident (`n3@left-view-2.1.0`, as `ocf fence history` shows it).
    #[arg(required_unless_present = "last", conflicts_with = "last")]
    pub incident: Option<String>,
    /// The newest incident the (first) node knows.
    #[arg(long)]
    pub last: bool,
    /// A node's configuration file; its daemon is asked. Repeat to gather from several nodes:
    /// their records must agree (exit 1 when they do not).
    #[arg(long, required = true)]
    pub config: Vec<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `ocf explain`.
pub async fn run(args: ExplainArgs) -> CliResult {
    let mut merged: Option<Explanation> = None;
    let mut disagree = Vec::new();
    let mut incident = args.incident.clone();
    for path in &args.config {
        let config = NodeConfig::load(path).map_err(Failure::usage)?;
        let e = explain_at(&config.socket_path(), incident.as_deref()).await?;
        // Every node explains the incident the first one named.
        incident.get_or_insert_with(|| e.incident.clone());
        match &mut merged {
            None => merged = Some(e),
            Some(m) if m.agrees_with(&e) => m.merge(&e),
            Some(_) => disagree.push(path.display().to_string()),
        }
    }
    let Some(e) = merged else {
        return Err(Failure::usage("no --config given").into());
    };
    if args.json {
        print_json(&serde_json::json!({ "explanation": e, "disagree": disagree }))?;
    } else {
        print!("{}", text(&e));
    }
    if disagree.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "ocf explain: these nodes tell incident {} differently: {}",
            e.incident,
            disagree.join(", ")
        );
        Ok(ExitCode::FAILURE)
    }
}

/// The explanation for people, one step a line or a few.
pub fn text(e: &Explanation) -> String {
    let mut out = format!("incident {} (node {})\n", e.incident, e.target);
    if let Some(d) = &e.detection {
        let _ = writeln!(
            out,
            "detection: {} proposed the view without {}",
            d.by, d.target
        );
        let _ = writeln!(out, "  evidence: {}", d.evidence);
    }
    if let Some(v) = &e.view_change {
        let _ = writeln!(
            out,
            "view change: {} [{}] -> {} [{}]: {} of {} votes, {} needed: {}",
            v.previous.as_deref().unwrap_or("?"),
            v.previous_members.join(" "),
            v.view,
            v.members.join(" "),
            v.votes,
            v.expected_votes,
            v.threshold,
            if v.quorate { "quorate" } else { "NOT quorate" }
        );
        for (node, at) in &e.installed {
            let _ = writeln!(out, "  installed on {node} at {at} ms");
        }
    }
    if let Some(f) = &e.fence {
        let r = &f.record;
        let requesters: Vec<String> = r.requesters.iter().map(ToString::to_string).collect();
        let _ = writeln!(
            out,
            "fence decision: record {} {} {} asked by [{}], started {} ms, {}",
            r.id,
            r.action,
            r.target,
            requesters.join(", "),
            r.started_ms,
            match (&r.outcome, f.duration_ms) {
                (Some(o), Some(d)) => format!("{o:?} after {d} ms"),
                _ => "in flight".to_owned(),
            }
        );
        for x in &r.executions {
            let _ = writeln!(
                out,
                "  execution {} on {}: {:?}",
                x.attempt, x.node, x.outcome
            );
        }
        for l in &r.levels {
            for a in &l.attempts {
                let _ = writeln!(
                    out,
                    "  level {} device {} {:?}: {:?} in {} ms (on {})",
                    l.level,
                    a.device,
                    a.action,
                    a.outcome,
                    a.ended_ms.saturating_sub(a.started_ms),
                    l.executor.as_ref().map_or("?".into(), ToString::to_string)
                );
            }
        }
    }
    if let Some(d) = &e.node_death {
        let _ = writeln!(
            out,
            "node death: {} {:?} by {} at {} ms",
            d.target,
            d.cause,
            d.device.as_ref().map_or("-".into(), ToString::to_string),
            d.at_ms
        );
    }
    for r in &e.recoveries {
        let _ = writeln!(
            out,
            "recovery: {} {} on {} exit {} by {} at {} ms",
            r.resource,
            r.action,
            r.node,
            r.exit_code.map_or("-".into(), |c| c.to_string()),
            r.by,
            r.at_ms
        );
    }
    out
}
