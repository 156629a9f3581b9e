//! Run one resource agent: read its meta-data, then start, monitor and stop it.
//!
//! `cargo run -p examples --example run_agent [ocf:heartbeat:Dummy]`
//!
//! Uses the real agent from Debian's `resource-agents` when installed; `ocf:native:Dummy`
//! (a Rust agent behind the same trait) works everywhere.

use std::time::Duration;

use ocf_ref::resources::ScriptAgent;
use ocf_ref::resources::native::NativeDummy;
use ocf_resources::{Action, ActionRequest, AgentId, ResourceAgent};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let id: AgentId = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ocf:heartbeat:Dummy".into())
        .parse()?;
    let agent: Box<dyn ResourceAgent> = if id.provider() == "native" {
        Box::new(NativeDummy::new())
    } else {
        Box::new(ScriptAgent::from_env(id))
    };

    let md = agent.metadata().await?;
    println!(
        "{} {}: {}",
        agent.id(),
        md.version.as_deref().unwrap_or("(no version)"),
        md.shortdesc_in("en").unwrap_or("")
    );
    for p in &md.parameters {
        println!("  parameter {} (required: {})", p.name, p.required);
    }

    let state = std::env::temp_dir().join(format!("ocf-example-{}.state", std::process::id()));
    for action in [
        Action::Start,
        Action::Monitor,
        Action::Stop,
        Action::Monitor,
    ] {
        let request = ActionRequest::new(action, "example", Duration::from_secs(20))
            .param("state", state.display().to_string())
            .validate(false);
        let outcome = agent.execute(request).await?;
        println!("{action:<8} -> {}", outcome.summary());
    }
    Ok(())
}
