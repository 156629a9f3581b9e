//! Building a node's devices: the agents asked once for their meta-data, the secret files
//! read, every device registered in a new [`LocalFencer`] with its timeout and the levels.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ocf_core::Secret;
use ocf_fencing::{
    AllowAll, DeviceAction, DeviceMetadata, DeviceParams, FenceDevice, FencerAdmin, FencingPolicy,
};

use super::check::{AgentKind, DevicePlan, FencingPlan};
use super::error::NodeDevicesError;
use super::{DeviceSummary, NodeDevices};
use crate::bounded_read::read_private_string;
use crate::fencing::devices::agent::{self, AgentDevice};
use crate::fencing::devices::native::{ManualDevice, NullDevice};
use crate::fencing::devices::stonith::{self, StonithDevice};
use crate::fencing::fencer::{FencerConfig, LocalFencer};

/// The largest secret file read, in bytes (a password or a token, not a document).
///
/// ```
/// assert_eq!(ocf_ref::fencing::node_devices::MAX_SECRET_FILE_BYTES, 4096);
/// ```
pub const MAX_SECRET_FILE_BYTES: u64 = 4096;

/// Reads one secret file: private to its owner, one line (a final line break is dropped),
/// not empty.
fn read_secret(
    plan: &DevicePlan,
    parameter: &str,
    path: &Path,
) -> Result<Secret, NodeDevicesError> {
    let (mut text, _) = read_private_string(path, MAX_SECRET_FILE_BYTES).map_err(|source| {
        NodeDevicesError::SecretFile {
            device: plan.id.clone(),
            parameter: parameter.to_owned(),
            source,
        }
    })?;
    let problem = |problem: &'static str| NodeDevicesError::SecretValue {
        device: plan.id.clone(),
        parameter: parameter.to_owned(),
        path: path.to_owned(),
        problem,
    };
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    if text.is_empty() {
        return Err(problem("is empty; write the value on one line"));
    }
    if text.contains(['\n', '\r']) {
        return Err(problem(
            "holds more than one line; write the value alone on one line",
        ));
    }
    Ok(Secret::new(text))
}

/// The meta-data of every distinct agent of the plan, each asked once.
struct Agents {
    dir: PathBuf,
    fence: BTreeMap<String, (PathBuf, DeviceMetadata)>,
    stonith: BTreeMap<String, DeviceMetadata>,
    plugins: Option<Vec<String>>,
}

impl Agents {
    async fn metadata(
        &mut self,
        plan: &DevicePlan,
        timeout: Duration,
    ) -> Result<Option<DeviceMetadata>, NodeDevicesError> {
        let failed = |source| NodeDevicesError::Metadata {
            device: plan.id.clone(),
            agent: plan.agent.clone(),
            source: Box::new(source),
        };
        match &plan.kind {
            AgentKind::FenceAgent(name) => {
                if let Some((_, md)) = self.fence.get(name) {
                    return Ok(Some(md.clone()));
                }
                let path = agent::resolve_agent(name, &self.dir).map_err(|e| {
                    NodeDevicesError::UnknownAgent {
                        device: plan.id.clone(),
                        agent: name.clone(),
                        problem: match e {
                            ocf_fencing::FenceError::Config { reason, .. } => reason,
                            other => other.to_string(),
                        },
                    }
                })?;
                let md = agent::fetch_metadata(&path, timeout)
                    .await
                    .map_err(failed)?;
                self.fence.insert(name.clone(), (path, md.clone()));
                Ok(Some(md))
            }
            AgentKind::Stonith(plugin) => {
                if let Some(md) = self.stonith.get(plugin) {
                    return Ok(Some(md.clone()));
                }
                let program = stonith::stonith_program();
                if self.plugins.is_none() {
                    let list = stonith::list_plugins(&program, timeout)
                        .await
                        .map_err(failed)?;
                    self.plugins = Some(list);
                }
                if !self.plugins.iter().flatten().any(|p| p == plugin) {
                    return Err(NodeDevicesError::UnknownAgent {
                        device: plan.id.clone(),
                        agent: plan.agent.clone(),
                        problem: format!(
                            "{} -L does not list {plugin}; see `ocf fence plugins`",
                            program.display()
                        ),
                    });
                }
                let md = stonith::plugin_metadata(&program, plugin, timeout)
                    .await
                    .map_err(failed)?;
                self.stonith.insert(plugin.clone(), md.clone());
                Ok(Some(md))
            }
            _ => Ok(None),
        }
    }
}

/// The device's parameters with its secret files read, checked against its agent's meta-data.
fn params_for(plan: &DevicePlan, md: &DeviceMetadata) -> Result<DeviceParams, NodeDevicesError> {
    // A parameter the meta-data calls secret (`--pin=[password]`) may not be inline either.
    for p in md.parameters.iter().filter(|p| p.secret) {
        let dashed = p.name.replace('_', "-");
        if let Some(name) = [p.name.as_str(), dashed.as_str()]
            .into_iter()
            .find(|n| plan.params.contains(n))
        {
            return Err(NodeDevicesError::InlineSecret {
                device: plan.id.clone(),
                parameter: name.to_owned(),
            });
        }
    }
    let mut params = plan.params.clone();
    for (name, path) in &plan.secret_files {
        params.insert_secret(name.clone(), read_secret(plan, name, path)?);
    }
    let params = agent::with_metadata_secrets(&params, md);
    // The fencer always supplies the plug, so `plug`/`port` are never missing.
    if let Some(problem) = agent::param_problems(md, &params, true).into_iter().next() {
        return Err(NodeDevicesError::Parameter {
            device: plan.id.clone(),
            problem,
        });
    }
    if plan.targets == ocf_fencing::Targets::Dynamic && !md.supports(DeviceAction::List) {
        return Err(NodeDevicesError::Targets {
            device: plan.id.clone(),
            field: "hosts",
            problem: format!(
                "{} cannot list its targets (no `list` action): give `hosts` or `host_map`",
                plan.agent
            ),
        });
    }
    Ok(params)
}

/// Builds every device of a checked plan and registers it, with its timeout and the levels,
/// in a new fencer with `config` and `policy`.
pub(super) async fn build(
    plan: FencingPlan,
    mut config: FencerConfig,
    policy: Arc<dyn FencingPolicy>,
) -> Result<NodeDevices, NodeDevicesError> {
    if let Some(t) = plan.device_timeout {
        config = config.device_timeout(t);
    }
    let mut agents = Agents {
        dir: plan.agents_dir.clone().unwrap_or_else(agent::agents_dir),
        fence: BTreeMap::new(),
        stonith: BTreeMap::new(),
        plugins: None,
    };
    let mut built: Vec<(Arc<dyn FenceDevice>, Option<Duration>)> = Vec::new();
    let mut manual = Vec::new();
    for d in &plan.devices {
        let md = agents.metadata(d, agent::METADATA_TIMEOUT).await?;
        let device: Arc<dyn FenceDevice> = match (&d.kind, md) {
            (AgentKind::FenceAgent(name), Some(md)) => {
                let params = params_for(d, &md)?;
                let path = agents
                    .fence
                    .get(name)
                    .map(|(p, _)| p.clone())
                    .unwrap_or_default();
                Arc::new(
                    AgentDevice::new(d.id.clone(), path, params, d.targets.clone())
                        .with_metadata(md),
                )
            }
            (AgentKind::Stonith(plugin), Some(md)) => {
                let params = params_for(d, &md)?;
                Arc::new(
                    StonithDevice::new(d.id.clone(), plugin.clone(), params, d.targets.clone())
                        .with_metadata(md),
                )
            }
            (AgentKind::NativeManual, _) => {
                let dev = Arc::new(ManualDevice::new(
                    d.id.clone(),
                    d.targets.configured().unwrap_or_default(),
                ));
                manual.push(dev.clone());
                dev
            }
            _ => Arc::new(NullDevice::new(
                d.id.clone(),
                d.targets.configured().unwrap_or_default(),
            )),
        };
        built.push((device, d.timeout));
    }
    let fencer = LocalFencer::with(config, policy);
    for (device, timeout) in &built {
        let id = device.id().clone();
        fencer
            .register_device(device.clone())
            .await
            .map_err(|source| NodeDevicesError::Register {
                device: id.clone(),
                source: Box::new(source),
            })?;
        if timeout.is_some() {
            fencer.set_device_timeout(&id, *timeout);
        }
    }
    for (target, levels) in plan.topology {
        fencer
            .set_topology(&target, levels)
            .await
            .map_err(|source| NodeDevicesError::Topology {
                target,
                source: Box::new(source),
            })?;
    }
    let devices = plan
        .devices
        .iter()
        .map(|d| DeviceSummary {
            id: d.id.clone(),
            hosts: d.targets.configured(),
        })
        .collect();
    tracing::info!(devices = built.len(), "fence devices ready");
    Ok(NodeDevices {
        fencer,
        devices,
        lost_node_action: plan.lost_node_action,
        manual,
    })
}

/// The policy [`super::build_fencer`] gives the fencer: the cluster layer decides quorum.
pub(super) fn default_policy() -> Arc<dyn FencingPolicy> {
    Arc::new(AllowAll)
}
