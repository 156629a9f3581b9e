//! Health checks that gate a node's return to the scheduler: an OCF resource agent's
//! `monitor`, run with a timeout, read as one of three results.
//!
//! | the agent's monitor | result |
//! |---|---|
//! | `OCF_SUCCESS` (0) | [`Health::Pass`] |
//! | `OCF_ERR_GENERIC` (1), `OCF_NOT_RUNNING` (7) | [`Health::Fail`] |
//! | anything else: a timeout, a signal, a configuration error (2–6), no agent | [`Health::Unknown`] |
//!
//! Unknown leaves the node's state as it is: a check that could not say is not a verdict.
//! Parameter values may hold `%n`, replaced by the node's name (`state=/run/health/%n`), and
//! the agent also gets `OCF_RESKEY_node=<node>`. The agent runs where the caller runs (the
//! Slurm bridge's host), so it checks the node from there (a ping, a remote query, a file
//! the node's own checks write).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use ocf_resources::{Action, ActionRequest, AgentId, ExitCode, Status};

use crate::resources::ScriptAgent;

/// What a health check found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Health {
    /// Healthy: the node may return.
    Pass,
    /// Not healthy; why.
    Fail(String),
    /// The check could not say; why. The node's state is left as it is.
    Unknown(String),
}

impl Health {
    /// Reads an agent's monitor status.
    pub fn from_status(status: &Status) -> Self {
        match status {
            Status::Exited {
                code: ExitCode::Success,
            } => Self::Pass,
            Status::Exited {
                code: code @ (ExitCode::ErrGeneric | ExitCode::NotRunning),
            } => Self::Fail(code.name().to_owned()),
            other => Self::Unknown(format!("{other:?}")),
        }
    }
}

/// One health check: an OCF agent, its parameters, a timeout.
#[derive(Debug)]
pub struct HealthCheck {
    agent: ScriptAgent,
    params: BTreeMap<String, String>,
    timeout: Duration,
}

impl HealthCheck {
    /// The agent `id` (`ocf:heartbeat:Dummy`) under the OCF root `root`, with these
    /// parameters (values may hold `%n`), each monitor bounded by `timeout`.
    pub fn new(
        root: impl Into<PathBuf>,
        id: AgentId,
        params: BTreeMap<String, String>,
        timeout: Duration,
    ) -> Self {
        Self {
            agent: ScriptAgent::new(root, id),
            params,
            timeout,
        }
    }

    /// Runs the agent's monitor for `node`.
    pub async fn check(&self, node: &str) -> Health {
        let mut params: BTreeMap<String, String> = self
            .params
            .iter()
            .map(|(k, v)| (k.clone(), v.replace("%n", node)))
            .collect();
        params
            .entry("node".to_owned())
            .or_insert_with(|| node.to_owned());
        let request = ActionRequest::new(Action::Monitor, format!("health-{node}"), self.timeout)
            .params(params);
        match self.agent.run(&request).await {
            Ok(outcome) => Health::from_status(&outcome.status),
            Err(e) => Health::Unknown(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dummy(state: &std::path::Path) -> HealthCheck {
        HealthCheck::new(
            "/usr/lib/ocf",
            "ocf:heartbeat:Dummy".parse().unwrap(),
            BTreeMap::from([(
                "state".to_owned(),
                state.join("health-%n").display().to_string(),
            )]),
            Duration::from_secs(20),
        )
    }

    #[tokio::test]
    async fn the_real_dummy_agent_passes_fails_and_an_absent_one_is_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let check = dummy(dir.path());
        assert!(matches!(check.check("n3").await, Health::Fail(_)));
        std::fs::write(dir.path().join("health-n3"), "").unwrap();
        assert_eq!(check.check("n3").await, Health::Pass);
        assert!(matches!(check.check("n4").await, Health::Fail(_)));
        let absent = HealthCheck::new(
            "/usr/lib/ocf",
            "ocf:heartbeat:NoSuchHealthAgent".parse().unwrap(),
            BTreeMap::new(),
            Duration::from_secs(5),
        );
        assert!(matches!(absent.check("n3").await, Health::Unknown(_)));
    }

    #[test]
    fn statuses() {
        let t = Status::TimedOut {
            after: Duration::from_secs(1),
        };
        assert!(matches!(Health::from_status(&t), Health::Unknown(_)));
        let args = Status::Exited {
            code: ExitCode::ErrArgs,
        };
        assert!(matches!(Health::from_status(&args), Health::Unknown(_)));
    }
}
