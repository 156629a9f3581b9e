//! `ocf demo`: a failover on loopback, end to end (see [`crate::demo`]).
//!
//! The report goes to stdout (text, or one JSON object with `--json`); progress goes to
//! stderr as text, or as JSON lines (`{"progress": "demo", "message": "...", "elapsed_ms": N,
//! "deadline_ms": N}`, see [`super::progress`]) with `--json`,
//! never mixed into stdout's data. Ctrl-C (SIGINT) or SIGTERM stops every node the demo
//! started and removes its scratch directory, then exits 130.

use std::process::ExitCode;

use clap::Args;

use super::CliResult;
use super::output::print_json;
use super::progress::Progress;
use crate::demo::{DemoError, DemoOptions, run_until};

/// `ocf demo` arguments.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// How many nodes to start (at least 3).
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Print one JSON object instead of the text timeline (progress: JSON lines on stderr).
    #[arg(long)]
    pub json: bool,
    /// Run every node inside this process instead of as `ocf node` processes (faster; the
    /// crash is a stopped engine, not a killed process).
    #[arg(long)]
    pub in_process: bool,
}

/// Resolves on SIGINT or SIGTERM.
async fn interrupted() {
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    match term {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Runs `ocf demo`: exits 0 only when every step happened in order.
pub async fn run(args: DemoArgs) -> CliResult {
    let options = DemoOptions {
        nodes: args.nodes,
        in_process: args.in_process,
        ..DemoOptions::default()
    };
    let json = args.json;
    let reporter = Progress::new(true, Some(options.deadline));
    let progress = move |line: &str| {
        if json {
            reporter.say("demo", line);
        } else {
            println!("{line}");
        }
    };
    let report = match run_until(&options, &progress, interrupted()).await {
        Ok(report) => report,
        Err(DemoError::Interrupted) => {
            eprintln!("ocf demo: {}", DemoError::Interrupted);
            return Ok(ExitCode::from(130));
        }
        Err(e) => return Err(e.into()),
    };
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
