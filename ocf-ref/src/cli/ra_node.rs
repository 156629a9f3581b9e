//! `ocf ra run --config` and `ocf ra status`: resource operations through a node daemon's
//! executor (the node's one local resource manager), so what one command starts another
//! sees, with its history.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode as ProcessExit;
use std::time::Duration;

use ocf_resources::executor::{OpResult, Operation, OperationResult, ResourceSpec};
use ocf_resources::{Action, AgentId, Executor, ExecutorAdmin, ExitCode, ResourceError};
use serde::Serialize;

use super::output::print_json;
use super::{CliResult, Failure};
use crate::membership::config::NodeConfig;
use crate::resources::daemon_executor::DaemonExecutor;

/// What `ocf ra run --config` asks the node to run.
#[derive(Debug)]
pub struct NodeRun<'a> {
    /// The node's config (names its socket).
    pub config: &'a Path,
    /// The agent.
    pub agent: &'a AgentId,
    /// The action.
    pub action: Action,
    /// The resource's name in the node's executor.
    pub instance: String,
    /// Its parameters (used when the node does not know the resource yet).
    pub params: BTreeMap<String, String>,
    /// Meta attributes of this operation.
    pub meta: BTreeMap<String, String>,
    /// The operation's timeout.
    pub timeout: Duration,
    /// The interval the agent is told (one run).
    pub interval: Duration,
    /// Monitor depth.
    pub check_level: Option<u32>,
    /// Strict mode.
    pub strict: bool,
    /// JSON output.
    pub json: bool,
}

fn client(config: &Path) -> Result<DaemonExecutor, Box<dyn std::error::Error + Send + Sync>> {
    let config = NodeConfig::load(config)?;
    Ok(DaemonExecutor::new(config.socket_path()))
}

/// Runs one action through the node: registers the resource first when the node does not
/// know it (a known one must have the same agent), then exits with the agent's code.
pub async fn run(req: NodeRun<'_>) -> CliResult {
    let exec = client(req.config)?;
    let known = exec.resources().await?;
    match known.iter().find(|r| r.name == req.instance) {
        Some(r) if &r.agent != req.agent => {
            return Err(Failure::usage(format!(
                "the node runs resource {:?} with agent {}, not {}; pick another --instance",
                req.instance, r.agent, req.agent
            ))
            .into());
        }
        Some(_) => {}
        None => {
            let mut spec = ResourceSpec::new(req.instance.clone(), req.agent.clone());
            spec.params = req.params.clone();
            match exec.register(spec).await {
                Ok(()) | Err(ResourceError::AlreadyRegistered { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    let mut op = Operation::new(req.action, req.timeout).validate(req.strict);
    op.interval = req.interval;
    op.meta = req.meta;
    op.check_level = req.check_level;
    let result = exec.execute(&req.instance, op).await?;
    let code = match &result.result {
        OpResult::Completed { outcome } => super::ra::process_exit_code(outcome),
        OpResult::Error { message } => {
            return Err(format!("the node could not run {}: {message}", req.action).into());
        }
        _ => return Err(format!("the node cancelled {}", req.action).into()),
    };
    if req.json {
        print_json(&result)?;
    } else if let Some(outcome) = result.outcome() {
        print!("{}", outcome.stdout);
        eprint!("{}", outcome.stderr);
        if code != 0 {
            eprintln!(
                "ocf: {} {} on the node: {}",
                req.instance,
                req.action,
                outcome.summary()
            );
        }
    }
    Ok(ProcessExit::from(code))
}

/// One resource as `ocf ra status` shows it.
#[derive(Debug, Serialize)]
struct ResourceStatus {
    name: String,
    agent: String,
    /// From the newest start, stop or monitor result: `Some(true)` running, `Some(false)`
    /// stopped, `None` unknown (no such result, or a failure).
    running: Option<bool>,
    history: Vec<OperationResult>,
}

/// What the newest state-telling result says.
fn running(history: &[OperationResult]) -> Option<bool> {
    history.iter().rev().find_map(|r| {
        let code = r.outcome()?.exit_code()?;
        match (r.action, code) {
            (Action::Start | Action::Promote | Action::Demote, ExitCode::Success)
            | (Action::Monitor, ExitCode::Success | ExitCode::RunningPromoted) => Some(true),
            (Action::Stop, ExitCode::Success) | (Action::Monitor, ExitCode::NotRunning) => {
                Some(false)
            }
            _ => None,
        }
    })
}

/// `ocf ra status --config FILE [RESOURCE]`: the node's resources, each with its state and
/// history.
pub async fn status(config: &Path, resource: Option<&str>, json: bool) -> CliResult {
    let exec = client(config)?;
    let mut out = Vec::new();
    for spec in exec.resources().await? {
        if resource.is_some_and(|r| r != spec.name) {
            continue;
        }
        let history = exec.history(&spec.name).await?;
        out.push(ResourceStatus {
            running: running(&history),
            name: spec.name,
            agent: spec.agent.to_string(),
            history,
        });
    }
    if let Some(r) = resource
        && out.is_empty()
    {
        return Err(ResourceError::UnknownResource { name: r.to_owned() }.into());
    }
    if json {
        print_json(&serde_json::json!({ "resources": out }))?;
        return Ok(ProcessExit::SUCCESS);
    }
    for r in &out {
        let state = match r.running {
            Some(true) => "running",
            Some(false) => "stopped",
            None => "unknown",
        };
        println!("{} ({}): {state}", r.name, r.agent);
        for h in r.history.iter().rev().take(10).rev() {
            let what = h.outcome().map_or_else(
                || format!("{:?}", h.result),
                ocf_resources::AgentOutcome::summary,
            );
            println!(
                "  #{} {}{} at {} ms: {what}",
                h.call_id,
                h.action,
                if h.interval.is_zero() {
                    String::new()
                } else {
                    format!(" every {} ms", h.interval.as_millis())
                },
                h.started_at_ms
            );
        }
    }
    Ok(ProcessExit::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ocf_resources::{AgentOutcome, Status};

    fn result(action: Action, code: ExitCode) -> OperationResult {
        let outcome = AgentOutcome::new(Status::Exited { code }, Duration::ZERO);
        OperationResult::new(
            1,
            "r",
            "ocf:heartbeat:Dummy".parse().unwrap(),
            action,
            OpResult::Completed { outcome },
        )
    }

    #[test]
    fn the_newest_telling_result_decides() {
        assert_eq!(running(&[]), None);
        let h = [
            result(Action::Start, ExitCode::Success),
            result(Action::Monitor, ExitCode::NotRunning),
        ];
        assert_eq!(running(&h), Some(false));
        let h = [
            result(Action::Stop, ExitCode::Success),
            result(Action::Start, ExitCode::Success),
            result(Action::ValidateAll, ExitCode::Success),
        ];
        assert_eq!(running(&h), Some(true));
    }
}
