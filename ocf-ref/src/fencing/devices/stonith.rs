//! cluster-glue stonith plugins, driven through the `stonith` command.
//!
//! `stonith -t TYPE` with `-l` (list hosts), `-S` (device status), `-T reset|on|off HOST`,
//! `-m` (meta-data), `-L` (list plugin types).
//!
//! **How parameters travel.** `stonith` takes them as `name=value` arguments, as `-p` (values
//! in order) or `-F FILE`, all of which put secrets in argv or on disk. We use `-E`: the
//! plugin's configuration names are read from the *environment* of the `stonith` process. A
//! process's environment (`/proc/PID/environ`) is readable only by its owner and root, unlike
//! argv, and it is never written to disk. The child starts from an empty environment (plus
//! `PATH` and `LANG=C`) so nothing of ours leaks into the plugin's configuration. Values travel
//! exactly as given (whitespace, quotes and `#` included); a name that is not an environment
//! name, or that names a variable the process acts on (`PATH`, `LD_*`, `BASH_ENV`), is refused
//! ([`ocf_fencing::check_env_param`]).
//!
//! The `null` plugin says yes to a reset of *any* host name, listed or not; so this device
//! checks the target is in the host list before it asks, whatever the plugin.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use ocf_core::NodeName;
use ocf_fencing::{
    DeviceAction, DeviceId, DeviceMetadata, DeviceParameter, DeviceParams, FenceAction,
    FenceDevice, FenceError, PowerState, Targets,
};
use tokio::sync::OnceCell;

use crate::fencing::metadata_xml;
use crate::process::{self, Finished, ProcessSpec, Termination};

/// Where the `stonith` command is installed by Debian's cluster-glue.
pub const DEFAULT_STONITH: &str = "/usr/sbin/stonith";

/// The `stonith` command: `$OCF_STONITH` if set, else [`DEFAULT_STONITH`].
pub fn stonith_program() -> PathBuf {
    std::env::var_os("OCF_STONITH")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_STONITH), PathBuf::from)
}

/// What `stonith`'s exit code means (cluster-glue's `S_*` return codes).
pub fn describe_exit(code: i32) -> &'static str {
    match code {
        0 => "ok",
        1 => "bad configuration (S_BADCONFIG)",
        2 => "cannot access the device, login or password problem? (S_ACCESS)",
        3 => "invalid argument (S_INVAL)",
        4 => "bad or unknown host name (S_BADHOST)",
        5 => "reset failed (S_RESETFAIL)",
        6 => "timed out talking to the device (S_TIMEOUT)",
        7 => "the host is off (S_ISOFF)",
        8 => "internal plugin failure (S_OOPS)",
        _ => "failed",
    }
}

/// The plugin types `stonith -L` lists.
pub async fn list_plugins(stonith: &Path, timeout: Duration) -> Result<Vec<String>, FenceError> {
    let done = run_raw(stonith, &["-L"], &DeviceParams::new(), timeout, "stonith").await?;
    check(
        &done,
        &name_as_id("stonith")?,
        DeviceAction::List,
        None,
        timeout,
    )?;
    Ok(lines(&done.stdout))
}

/// The configuration names a plugin asks for (`stonith -t TYPE -n`).
pub async fn config_names(
    stonith: &Path,
    plugin: &str,
    timeout: Duration,
) -> Result<Vec<String>, FenceError> {
    let done = run_raw(
        stonith,
        &["-t", plugin, "-n"],
        &DeviceParams::new(),
        timeout,
        plugin,
    )
    .await?;
    check(
        &done,
        &name_as_id(plugin)?,
        DeviceAction::Metadata,
        None,
        timeout,
    )?;
    Ok(done_text(&done.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect())
}

/// A plugin's meta-data (`stonith -t TYPE -m`), falling back to `-n`'s names when a plugin
/// prints none.
pub async fn plugin_metadata(
    stonith: &Path,
    plugin: &str,
    timeout: Duration,
) -> Result<DeviceMetadata, FenceError> {
    let done = run_raw(
        stonith,
        &["-t", plugin, "-m"],
        &DeviceParams::new(),
        timeout,
        plugin,
    )
    .await?;
    let xml = done_text(&done.stdout);
    if done.termination == Termination::Exited(0) && xml.contains("<resource-agent") {
        let mut md = metadata_xml::parse(&xml).map_err(|e| FenceError::Metadata {
            device: plugin.to_owned(),
            reason: e.to_string(),
            source: Some(std::sync::Arc::new(e)),
        })?;
        // The plugin's fence operations, named as fence-agents name them.
        for a in ["reboot", "off", "on", "list", "monitor", "metadata"] {
            if !md.actions.iter().any(|x| x == a) {
                md.actions.push(a.to_owned());
            }
        }
        return Ok(md);
    }
    let names = config_names(stonith, plugin, timeout).await?;
    let mut md = DeviceMetadata::new(plugin);
    md.parameters = names
        .into_iter()
        .map(|n| {
            let mut p = DeviceParameter::new(n);
            p.required = true;
            p
        })
        .collect();
    md.actions = ["reboot", "off", "on", "list", "monitor", "metadata"]
        .map(str::to_owned)
        .to_vec();
    Ok(md)
}

fn done_text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn lines(bytes: &[u8]) -> Vec<String> {
    done_text(bytes)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

async fn run_raw(
    stonith: &Path,
    args: &[&str],
    params: &DeviceParams,
    timeout: Duration,
    who: &str,
) -> Result<Finished, FenceError> {
    let mut spec = ProcessSpec::new(stonith, timeout);
    spec.args = args.iter().map(Into::into).collect();
    spec.env_clear = true;
    spec.env
        .push(("PATH".into(), "/usr/sbin:/usr/bin:/sbin:/bin".into()));
    spec.env.push(("LANG".into(), "C".into()));
    for (key, value) in params.iter() {
        // The environment carries values exactly; names must be plugin names, not variables
        // that stonith, the loader or a plugin's shell act on (PATH, LD_PRELOAD, BASH_ENV).
        ocf_fencing::check_env_param(key, value.expose()).map_err(|refusal| {
            FenceError::BadParameter {
                device: who.to_owned(),
                parameter: key.to_owned(),
                refusal,
            }
        })?;
        spec.env.push((key.into(), value.expose().into()));
    }
    spec.reap_group_on_exit = true;
    spec.kill_grace = Duration::from_millis(500);
    process::run(&spec).await.map_err(|e| FenceError::Config {
        device: who.to_owned(),
        reason: format!(
            "cannot run {}: {e}; is cluster-glue installed?",
            stonith.display()
        ),
        source: Some(std::sync::Arc::new(e)),
    })
}

/// A plugin type as a device id, for errors about the plugin itself.
fn name_as_id(plugin: &str) -> Result<DeviceId, FenceError> {
    DeviceId::new(plugin).map_err(|e| FenceError::Config {
        device: plugin.to_owned(),
        reason: e.to_string(),
        source: None,
    })
}

fn check(
    done: &Finished,
    device: &DeviceId,
    action: DeviceAction,
    target: Option<&NodeName>,
    timeout: Duration,
) -> Result<(), FenceError> {
    let device = device.clone();
    match done.termination {
        Termination::Exited(0) => Ok(()),
        Termination::TimedOut => Err(FenceError::DeviceTimedOut {
            device,
            action,
            target: target.cloned(),
            timeout_ms: ocf_core::millis::as_millis(timeout),
        }),
        Termination::Exited(code) => {
            let stderr = lines(&done.stderr);
            let last = stderr.last().map(|l| format!(": {l}")).unwrap_or_default();
            Err(FenceError::Device {
                device,
                action,
                target: target.cloned(),
                reason: format!("stonith exit code {code}, {}{last}", describe_exit(code)),
                source: None,
            })
        }
        Termination::Signaled(sig) => Err(FenceError::Device {
            device,
            action,
            target: target.cloned(),
            reason: format!("stonith killed by signal {sig}"),
            source: None,
        }),
    }
}

/// A fence device backed by a cluster-glue stonith plugin.
///
/// ```no_run
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use std::time::Duration;
/// use ocf_fencing::{DeviceParams, FenceAction, FenceDevice, Targets};
/// use ocf_ref::fencing::devices::stonith::StonithDevice;
/// let params: DeviceParams = [("hostlist", "n1 n2")].into_iter().collect();
/// let dev = StonithDevice::new("null-1".parse().unwrap(), "null", params, Targets::Dynamic);
/// let hosts = dev.list_targets(Duration::from_secs(10)).await.unwrap();
/// assert_eq!(hosts.len(), 2);
/// dev.fence(&"n1".parse().unwrap(), FenceAction::Reboot, Duration::from_secs(10)).await.unwrap();
/// # });
/// ```
pub struct StonithDevice {
    id: DeviceId,
    plugin: String,
    params: DeviceParams,
    targets: Targets,
    stonith: PathBuf,
    metadata: OnceCell<DeviceMetadata>,
}

impl std::fmt::Debug for StonithDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StonithDevice")
            .field("id", &self.id)
            .field("plugin", &self.plugin)
            .field("params", &self.params)
            .field("targets", &self.targets)
            .finish_non_exhaustive()
    }
}

impl StonithDevice {
    /// A device of plugin type `plugin` (`null`, `external/ipmi`, ...) configured with
    /// `params` (the names `stonith -t TYPE -n` lists). With [`Targets::Dynamic`] the host
    /// list comes from `stonith -l`.
    pub fn new(
        id: DeviceId,
        plugin: impl Into<String>,
        params: DeviceParams,
        targets: Targets,
    ) -> Self {
        Self {
            id,
            plugin: plugin.into(),
            params,
            targets,
            stonith: stonith_program(),
            metadata: OnceCell::new(),
        }
    }

    /// Uses another `stonith` executable.
    #[must_use]
    pub fn with_program(mut self, stonith: impl Into<PathBuf>) -> Self {
        self.stonith = stonith.into();
        self
    }

    /// The same device with its plugin's meta-data already known (read once by whoever
    /// checked the configuration), so it is not asked again.
    ///
    /// ```no_run
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use std::time::Duration;
    /// use ocf_fencing::{DeviceParams, FenceDevice, Targets};
    /// use ocf_ref::fencing::devices::stonith::{StonithDevice, plugin_metadata, stonith_program};
    /// let md = plugin_metadata(&stonith_program(), "null", Duration::from_secs(10)).await.unwrap();
    /// let dev = StonithDevice::new("g".parse().unwrap(), "null", DeviceParams::new(), Targets::Dynamic)
    ///     .with_metadata(md);
    /// assert_eq!(dev.metadata(Duration::ZERO).await.unwrap().name, "null");
    /// # });
    /// ```
    #[must_use]
    pub fn with_metadata(mut self, md: DeviceMetadata) -> Self {
        self.metadata = OnceCell::new_with(Some(md));
        self
    }

    /// The plugin type.
    pub fn plugin(&self) -> &str {
        &self.plugin
    }

    async fn run(
        &self,
        action: DeviceAction,
        extra: &[&str],
        target: Option<&NodeName>,
        timeout: Duration,
    ) -> Result<Finished, FenceError> {
        let mut args = vec!["-t", self.plugin.as_str(), "-E"];
        args.extend_from_slice(extra);
        tracing::debug!(device = %self.id, plugin = %self.plugin, ?args, "running stonith");
        let done = run_raw(
            &self.stonith,
            &args,
            &self.params,
            timeout,
            self.id.as_str(),
        )
        .await?;
        check(&done, &self.id, action, target, timeout).map_err(|e| redact(e, &self.params))?;
        Ok(done)
    }

    async fn plug_for(&self, target: &NodeName, timeout: Duration) -> Result<String, FenceError> {
        let plug = match &self.targets {
            Targets::Dynamic => self
                .list_targets(timeout)
                .await?
                .into_iter()
                .find(|h| h == target)
                .map(String::from),
            configured => configured.plug_for(target).map(str::to_owned),
        };
        plug.ok_or_else(|| FenceError::NotATarget {
            device: self.id.clone(),
            target: target.clone(),
        })
    }
}

fn redact(e: FenceError, params: &DeviceParams) -> FenceError {
    match e {
        FenceError::Device {
            device,
            action,
            target,
            reason,
            source,
        } => FenceError::Device {
            device,
            action,
            target,
            reason: params.redact(&reason),
            source,
        },
        other => other,
    }
}

#[async_trait]
impl FenceDevice for StonithDevice {
    fn id(&self) -> &DeviceId {
        &self.id
    }

    fn targets(&self) -> &Targets {
        &self.targets
    }

    /// Asks the plugin once (within `timeout`, at most
    /// [`METADATA_TIMEOUT`](super::agent::METADATA_TIMEOUT)) and keeps the answer.
    async fn metadata(&self, timeout: Duration) -> Result<DeviceMetadata, FenceError> {
        let limit = timeout.min(super::agent::METADATA_TIMEOUT);
        let fetch = self
            .metadata
            .get_or_try_init(|| plugin_metadata(&self.stonith, &self.plugin, limit));
        // Another caller may be fetching with more time than ours: wait only our own.
        match tokio::time::timeout(timeout, fetch).await {
            Ok(result) => result.cloned(),
            Err(_) => Err(FenceError::DeviceTimedOut {
                device: self.id.clone(),
                action: DeviceAction::Metadata,
                target: None,
                timeout_ms: ocf_core::millis::as_millis(timeout),
            }),
        }
    }

    async fn list_targets(&self, timeout: Duration) -> Result<Vec<NodeName>, FenceError> {
        if let Some(hosts) = self.targets.configured() {
            return Ok(hosts);
        }
        let done = self.run(DeviceAction::List, &["-l"], None, timeout).await?;
        Ok(lines(&done.stdout)
            .into_iter()
            .filter_map(|h| h.parse().ok())
            .collect())
    }

    async fn fence(
        &self,
        target: &NodeName,
        action: FenceAction,
        timeout: Duration,
    ) -> Result<(), FenceError> {
        let started = tokio::time::Instant::now();
        let plug = self.plug_for(target, timeout).await?;
        let left = timeout.saturating_sub(started.elapsed());
        let verb = match action {
            FenceAction::Reboot => "reset",
            FenceAction::Off => "off",
            FenceAction::On => "on",
            other => {
                return Err(FenceError::Unsupported {
                    device: self.id.clone(),
                    action: other.into(),
                });
            }
        };
        self.run(action.into(), &["-T", verb, &plug], Some(target), left)
            .await
            .map(drop)
    }

    async fn status(&self, target: &NodeName, timeout: Duration) -> Result<PowerState, FenceError> {
        // cluster-glue has no per-host power status: `-S` is the device's.
        self.plug_for(target, timeout).await?;
        Err(FenceError::Unsupported {
            device: self.id.clone(),
            action: DeviceAction::Status,
        })
    }

    async fn monitor(&self, timeout: Duration) -> Result<(), FenceError> {
        self.run(DeviceAction::Monitor, &["-S"], None, timeout)
            .await
            .map(drop)
    }
}
