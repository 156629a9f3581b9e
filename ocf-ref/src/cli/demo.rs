//! `ocf demo`: a failover on loopback, end to end (see [`crate::demo`]).

use std::process::ExitCode;

use clap::Args;

use super::CliResult;
use super::output::print_json;
use crate::demo::{DemoOptions, run as run_demo};

/// `ocf demo` arguments.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// How many nodes to start (at least 3).
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Print one JSON object instead of the text timeline.
    #[arg(long)]
    pub json: bool,
}

/// Runs `ocf demo`: exits 0 only when every step happened in order.
pub async fn run(args: DemoArgs) -> CliResult {
    let options = DemoOptions {
        nodes: args.nodes,
        ..DemoOptions::default()
    };
    let json = args.json;
    // Progress goes to stderr so `--json` keeps stdout to the one object.
    let progress = move |line: &str| {
        if json {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    };
    let report = run_demo(&options, &progress).await?;
    if json {
        print_json(&report)?;
    } else if report.ok {
        println!(
            "ok: node {} fenced {} time(s) with {}, {} recovered on node {} ({} after the kill)",
            report.killed_node,
            report.fence_actions,
            report.fence_device,
            report.agent,
            report.recovered_on.unwrap_or_default(),
            report
                .timeline
                .last()
                .zip(report.timeline.first())
                .map_or_else(String::new, |(l, f)| format!("{} ms", l.ms - f.ms)),
        );
    }
    if let Some(why) = &report.failure {
        eprintln!("ocf demo FAILED: {why}");
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
