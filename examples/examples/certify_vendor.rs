//! Certify your own implementation: a vendor's resource agent and fence device, written in
//! Rust against the `ocf` traits, run through the `ocf-conformance` suites.
//!
//! `cargo run -p examples --example certify_vendor [-- --json]`
//!
//! `AcmeCache` is a toy promotable resource (a cache with a primary role) that keeps its state
//! in memory; `AcmePdu` is a toy power switch with two outlets. Neither needs `ocf-ref`: the
//! suites need only the traits and a clock, which is four lines on tokio. The process exits 1
//! when a check fails, so the same code serves as a CI gate.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ocf_conformance::fencing::{DeviceOptions, run_device};
use ocf_conformance::resources::{self, Capabilities};
use ocf_conformance::{Clock, Report};
use ocf_core::NodeName;
use ocf_fencing::{
    DeviceId, DeviceMetadata, FenceAction, FenceDevice, FenceError, PowerState, Targets,
};
use ocf_resources::metadata::{ActionSpec, Content, ContentType, Metadata, Parameter, Role};
use ocf_resources::{
    Action, ActionRequest, AgentId, AgentOutcome, ExitCode, ResourceAgent, ResourceError,
};

/// The suites wait on whatever runtime you use; here, tokio.
struct Tokio;

#[async_trait]
impl Clock for Tokio {
    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

/// What the cache instance is doing.
#[derive(Clone, Copy, PartialEq)]
enum CacheState {
    Stopped,
    Running,
    Primary,
}

/// A promotable resource agent, `ocf:acme:Cache`, holding its instances' state in memory.
struct AcmeCache {
    id: AgentId,
    instances: Mutex<BTreeMap<String, CacheState>>,
}

impl AcmeCache {
    fn new() -> Result<Self, Box<dyn std::error::Error>> {
        Ok(Self {
            id: "ocf:acme:Cache".parse()?,
            instances: Mutex::new(BTreeMap::new()),
        })
    }

    fn meta() -> Metadata {
        let mut m = Metadata::new("Cache");
        m.version = Some("1.0".into());
        m.parameters.push(
            Parameter::new(
                "size_mb",
                Content::new(ContentType::Integer).with_default("64"),
            )
            .describe("Cache size", "The cache size in MiB."),
        );
        let t = Duration::from_secs(10);
        m.actions = vec![
            ActionSpec::new(Action::Start, t),
            ActionSpec::new(Action::Stop, t),
            ActionSpec::new(Action::Monitor, t).with_interval(Duration::from_secs(10)),
            ActionSpec::new(Action::Monitor, t)
                .with_interval(Duration::from_secs(9))
                .with_role(Role::Promoted),
            ActionSpec::new(Action::Promote, t),
            ActionSpec::new(Action::Demote, t),
            ActionSpec::new(Action::ValidateAll, t),
            ActionSpec::new(Action::MetaData, Duration::from_secs(5)),
        ];
        m
    }
}

#[async_trait]
impl ResourceAgent for AcmeCache {
    fn id(&self) -> &AgentId {
        &self.id
    }

    async fn metadata(&self) -> Result<Metadata, ResourceError> {
        Ok(Self::meta())
    }

    async fn execute(&self, request: ActionRequest) -> Result<AgentOutcome, ResourceError> {
        let started = Instant::now();
        if request.action == Action::MetaData {
            return Ok(AgentOutcome::exited(ExitCode::Success, started.elapsed())
                .with_output(Self::meta().to_xml(), String::new()));
        }
        let mut instances = self
            .instances
            .lock()
            .map_err(|_| ResourceError::NotImplemented {
                operation: "execute after a panic",
                implementer: "acme",
            })?;
        let state = instances
            .get(&request.instance)
            .copied()
            .unwrap_or(CacheState::Stopped);
        let (next, code) = match (request.action, state) {
            (Action::Stop, _) => (CacheState::Stopped, ExitCode::Success),
            (Action::Monitor | Action::Promote | Action::Demote, CacheState::Stopped) => {
                (state, ExitCode::NotRunning)
            }
            (Action::ValidateAll, _)
            | (Action::Monitor, CacheState::Running)
            | (Action::Start, CacheState::Primary) => (state, ExitCode::Success),
            (Action::Monitor, CacheState::Primary) => (state, ExitCode::RunningPromoted),
            (Action::Start, CacheState::Stopped | CacheState::Running)
            | (Action::Demote, CacheState::Running | CacheState::Primary) => {
                (CacheState::Running, ExitCode::Success)
            }
            (Action::Promote, CacheState::Running | CacheState::Primary) => {
                (CacheState::Primary, ExitCode::Success)
            }
            _ => (state, ExitCode::ErrUnimplemented),
        };
        instances.insert(request.instance, next);
        Ok(AgentOutcome::exited(code, started.elapsed()))
    }
}

/// A two-outlet power switch: outlet 1 feeds `web1`, outlet 2 `web2`.
struct AcmePdu {
    id: DeviceId,
    targets: Targets,
    off: Mutex<Vec<NodeName>>,
}

impl AcmePdu {
    fn new() -> Result<Self, Box<dyn std::error::Error>> {
        Ok(Self {
            id: "acme-pdu".parse()?,
            targets: Targets::host_map([
                ("web1".parse()?, "1".to_owned()),
                ("web2".parse()?, "2".to_owned()),
            ]),
            off: Mutex::new(Vec::new()),
        })
    }

    fn outlet(&self, target: &NodeName) -> Result<&str, FenceError> {
        self.targets
            .plug_for(target)
            .ok_or_else(|| FenceError::NotATarget {
                device: self.id.clone(),
                target: target.clone(),
            })
    }
}

#[async_trait]
impl FenceDevice for AcmePdu {
    fn id(&self) -> &DeviceId {
        &self.id
    }
    fn targets(&self) -> &Targets {
        &self.targets
    }
    async fn metadata(&self, _timeout: Duration) -> Result<DeviceMetadata, FenceError> {
        let mut md = DeviceMetadata::new("acme_pdu");
        md.actions = ["reboot", "off", "on", "status", "monitor"]
            .map(str::to_owned)
            .to_vec();
        Ok(md)
    }
    async fn list_targets(&self, _timeout: Duration) -> Result<Vec<NodeName>, FenceError> {
        Ok(self.targets.configured().unwrap_or_default())
    }
    async fn fence(
        &self,
        target: &NodeName,
        action: FenceAction,
        _timeout: Duration,
    ) -> Result<(), FenceError> {
        let _outlet = self.outlet(target)?;
        let mut off = self
            .off
            .lock()
            .map_err(|_| FenceError::unavailable("the PDU state is poisoned"))?;
        off.retain(|n| n != target);
        if action == FenceAction::Off {
            off.push(target.clone());
        }
        Ok(())
    }
    async fn status(
        &self,
        target: &NodeName,
        _timeout: Duration,
    ) -> Result<PowerState, FenceError> {
        self.outlet(target)?;
        let off = self
            .off
            .lock()
            .map_err(|_| FenceError::unavailable("the PDU state is poisoned"))?;
        Ok(if off.contains(target) {
            PowerState::Off
        } else {
            PowerState::On
        })
    }
    async fn monitor(&self, _timeout: Duration) -> Result<(), FenceError> {
        Ok(())
    }
}

fn show(report: &Report, json: bool) -> Result<(), Box<dyn std::error::Error>> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        print!("{report}");
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let json = std::env::args().any(|a| a == "--json");

    let cache = AcmeCache::new()?;
    let options = resources::Options::new("cache-1")
        .param("size_mb", "128")
        // Declared, so the suite also checks the meta-data advertises exactly these.
        .capabilities(Capabilities::none().validate_all(true).promotable(true));
    let agent_report = resources::run(&cache, &Tokio, &options).await;
    show(&agent_report, json)?;

    let pdu = AcmePdu::new()?;
    // A toy switch: the power round trip is safe.
    let options = DeviceOptions::new("web1".parse()?, "db1".parse()?).power_cycle(true);
    let device_report = run_device(&pdu, &Tokio, &options).await;
    show(&device_report, json)?;

    if agent_report.passed() && device_report.passed() {
        eprintln!("certified: {} and {}", cache.id(), pdu.id());
        Ok(())
    } else {
        eprintln!("not certified: see the failed checks above");
        std::process::exit(1);
    }
}
