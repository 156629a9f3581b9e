//! A fencer with a topology: level 1 is a device that fails (the real `fence_dummy` with
//! `type=fail` when installed), level 2 a device that works; two clients ask at once and the
//! hardware is touched once per level.
//!
//! `cargo run -p examples --example fencer_topology`

use std::sync::Arc;
use std::time::Duration;

use ocf_fencing::{
    DeviceParams, FenceAction, FenceDevice, FenceRequest, Fencer, FencerAdmin, HistoryFilter,
    Targets, TopologyLevel,
};
use ocf_ref::fencing::devices::agent::{AgentDevice, agents_dir};
use ocf_ref::fencing::devices::native::{NullDevice, SimulatedDevice, Step};
use ocf_ref::fencing::fencer::LocalFencer;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let target: ocf_core::NodeName = "n3".parse()?;
    let fence_dummy = agents_dir().join("fence_dummy");
    let failing: Arc<dyn FenceDevice> = if fence_dummy.is_file() {
        let mut params = DeviceParams::new();
        params.insert("type", "fail");
        // A failing fence_dummy waits `power_timeout` (20 s by default) before it gives up.
        params.insert("power_timeout", "1");
        Arc::new(AgentDevice::new(
            "ipmi".parse()?,
            fence_dummy,
            params,
            Targets::hosts([target.clone()]),
        ))
    } else {
        Arc::new(SimulatedDevice::constant(
            "ipmi".parse()?,
            [target.clone()],
            Step::fail(Duration::from_millis(50)),
        ))
    };
    let working = Arc::new(NullDevice::new("pdu".parse()?, [target.clone()]));

    let fencer = LocalFencer::new();
    fencer.register_device(failing).await?;
    fencer.register_device(working.clone()).await?;
    fencer
        .set_topology(
            &target,
            vec![
                TopologyLevel::new(["ipmi".parse()?]),
                TopologyLevel::new(["pdu".parse()?]),
            ],
        )
        .await?;

    let ask = |who| fencer.fence(FenceRequest::new(target.clone(), FenceAction::Reboot, who));
    let (ha, hpc) = tokio::join!(ask("pacemaker@n1".parse()?), ask("slurmctld@head".parse()?));
    let (ha, hpc) = (ha?, hpc?);
    println!("both requesters got record {} / {}", ha.id, hpc.id);
    println!("requesters merged: {:?}", ha.requesters);
    for level in &ha.levels {
        println!("level {} succeeded: {}", level.level, level.succeeded);
    }
    println!(
        "the working device was used {} time(s)",
        working.fence_calls()
    );
    let history = fencer.history(&HistoryFilter::all()).await?;
    println!("{}", serde_json::to_string_pretty(&history)?);
    Ok(())
}
