//! `ocf ra`: resource agents. Every command honours `OCF_ROOT`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::ExitCode as ProcessExit;
use std::time::Duration;

use clap::{Args, Subcommand};
use ocf_resources::metadata::parse_duration;
use ocf_resources::{
    Action, ActionRequest, AgentId, Metadata, Outcome, ResourceAgent, ResourceError, Status,
};
use serde::Serialize;

use super::CliResult;
use super::output::print_json;
use crate::resources::{ScriptAgent, list, ocf_root, tester};

/// The timeout of `ocf ra run` when neither `--timeout` nor the meta-data gives one.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// `ocf ra` subcommands.
#[derive(Debug, Subcommand)]
pub enum RaCommand {
    /// List the installed agents.
    List(ListArgs),
    /// Show an agent's parsed meta-data.
    Meta(MetaArgs),
    /// Run one action of an agent; exits with the agent's OCF exit code.
    Run(RunArgs),
    /// Check an agent against the OCF specification (stricter than ocf-tester).
    Test(TestArgs),
}

/// Arguments of `ocf ra list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this provider's agents (`heartbeat`, `pacemaker`).
    #[arg(long)]
    pub provider: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `ocf ra meta`.
#[derive(Debug, Args)]
pub struct MetaArgs {
    /// The agent, e.g. `ocf:heartbeat:Dummy`.
    pub agent: AgentId,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `ocf ra run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The agent, e.g. `ocf:heartbeat:Dummy`.
    pub agent: AgentId,
    /// The action: start, stop, monitor, promote, demote, meta-data, validate-all, ...
    pub action: Action,
    /// A parameter `name=value` (repeat for more).
    #[arg(short = 'p', long = "param", value_parser = parse_pair)]
    pub params: Vec<(String, String)>,
    /// A meta attribute `name=value` (`OCF_RESKEY_CRM_meta_<name>`; repeat for more).
    #[arg(short = 'm', long = "meta", value_parser = parse_pair)]
    pub meta: Vec<(String, String)>,
    /// The instance name (`OCF_RESOURCE_INSTANCE`); default: the agent's type.
    #[arg(long)]
    pub instance: Option<String>,
    /// How long the action may run (`20s`, `500ms`, `2min`); default: the meta-data's.
    #[arg(long, value_parser = parse_timeout)]
    pub timeout: Option<Duration>,
    /// Monitor depth (`OCF_CHECK_LEVEL`).
    #[arg(long)]
    pub check_level: Option<u32>,
    /// Do not check the parameters against the meta-data first.
    #[arg(long)]
    pub no_validate: bool,
    /// Print the outcome as JSON instead of passing the agent's output through.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `ocf ra test`.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// The agent, e.g. `ocf:pacemaker:Stateful`.
    pub agent: AgentId,
    /// A parameter `name=value` (repeat for more).
    #[arg(short = 'p', long = "param", value_parser = parse_pair)]
    pub params: Vec<(String, String)>,
    /// The instance name used for the test (`OCF_RESOURCE_INSTANCE`).
    #[arg(long, default_value = "ocf-ra-test")]
    pub instance: String,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

fn parse_pair(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("{s:?} is not name=value")),
    }
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    match parse_duration(s) {
        Some(d) if !d.is_zero() => Ok(d),
        Some(_) => Err("the timeout must be more than 0".to_owned()),
        None => Err(format!(
            "{s:?} is not a duration; write e.g. 20s, 500ms or 2min"
        )),
    }
}

/// Runs an `ocf ra` subcommand.
pub async fn run(command: RaCommand) -> CliResult {
    match command {
        RaCommand::List(a) => run_list(&a),
        RaCommand::Meta(a) => run_meta(a).await,
        RaCommand::Run(a) => run_action(a).await,
        RaCommand::Test(a) => run_test(a).await,
    }
}

fn run_list(args: &ListArgs) -> CliResult {
    let agents = list(&ocf_root(), args.provider.as_deref())?;
    if args.json {
        print_json(&agents)?;
    } else {
        for a in &agents {
            if a.executable {
                println!("{}", a.id);
            } else {
                println!("{}  (not executable)", a.id);
            }
        }
    }
    Ok(ProcessExit::SUCCESS)
}

async fn run_meta(args: MetaArgs) -> CliResult {
    let agent = ScriptAgent::from_env(args.agent);
    let meta = agent.metadata().await?;
    if args.json {
        print_json(&meta)?;
    } else {
        print_meta(agent.id(), &meta);
    }
    Ok(ProcessExit::SUCCESS)
}

fn print_meta(id: &AgentId, meta: &Metadata) {
    println!(
        "{id}: {} (agent version {}, OCF API {})",
        meta.shortdesc_in("en").unwrap_or(""),
        meta.version.as_deref().unwrap_or("?"),
        meta.api_version.as_deref().unwrap_or("?"),
    );
    if let Some(long) = meta.longdesc_in("en") {
        println!("\n{long}");
    }
    println!("\nParameters:");
    for p in &meta.parameters {
        let mut flags = Vec::new();
        if p.required {
            flags.push("required".to_owned());
        }
        if p.unique {
            flags.push("unique".to_owned());
        }
        if let Some(g) = &p.unique_group {
            flags.push(format!("unique-group={g}"));
        }
        if p.reloadable {
            flags.push("reloadable".to_owned());
        }
        if p.deprecated.is_some() {
            flags.push("deprecated".to_owned());
        }
        let default = p
            .content
            .default
            .as_deref()
            .map(|d| format!(" default={d:?}"))
            .unwrap_or_default();
        let options = if p.content.options.is_empty() {
            String::new()
        } else {
            format!(" one of {}", p.content.options.join("|"))
        };
        println!(
            "  {} ({}{options}{default}){}{}: {}",
            p.name,
            p.content.kind.as_str(),
            if flags.is_empty() { "" } else { " " },
            flags.join(","),
            p.shortdesc_in("en").unwrap_or(""),
        );
    }
    println!("\nActions:");
    for a in &meta.actions {
        let mut line = format!("  {:<13}", a.name);
        for (k, v) in [
            ("timeout", &a.timeout),
            ("interval", &a.interval),
            ("depth", &a.depth),
            ("role", &a.role),
            ("start-delay", &a.start_delay),
        ] {
            if let Some(v) = v {
                let _ = write!(line, " {k}={v}");
            }
        }
        println!("{line}");
    }
}

/// What `ocf ra run --json` prints.
#[derive(Debug, Serialize)]
struct RunReport<'a> {
    agent: &'a AgentId,
    action: Action,
    instance: &'a str,
    outcome: &'a Outcome,
    /// The process exit code `ocf` uses for this outcome.
    exit_code: u8,
}

/// The exit code of `ocf ra run` for an outcome: the agent's own code; 5 for a missing
/// agent and 4 for a non-executable one (as Pacemaker reports them); 124 for a timeout (as
/// `timeout(1)`); 128+n for death by signal n.
pub fn process_exit_code(outcome: &Outcome) -> u8 {
    match &outcome.status {
        Status::Exited { code } => code.code(),
        Status::UnknownExitCode { code } => (*code & 0xff) as u8,
        Status::NotInstalled { .. } => 5,
        Status::NotExecutable { .. } => 4,
        Status::TimedOut { .. } => 124,
        Status::Signaled { signal } => (128 + (*signal & 0x7f)) as u8,
        _ => super::EXIT_FAILURE,
    }
}

async fn run_action(args: RunArgs) -> CliResult {
    let agent = ScriptAgent::from_env(args.agent.clone());
    let params: BTreeMap<String, String> = args.params.into_iter().collect();
    let timeout = match args.timeout {
        Some(t) => t,
        // Reading the advertised timeout runs meta-data, which validation does anyway.
        None if !args.no_validate && args.action != Action::MetaData => agent
            .metadata()
            .await
            .ok()
            .and_then(|m| m.timeout_for(args.action))
            .unwrap_or(DEFAULT_TIMEOUT),
        None => DEFAULT_TIMEOUT,
    };
    let instance = args
        .instance
        .unwrap_or_else(|| args.agent.kind().to_owned());
    let mut request = ActionRequest::new(args.action, instance.clone(), timeout)
        .params(params)
        .validate(!args.no_validate);
    for (k, v) in args.meta {
        request = request.meta(k, v);
    }
    if let Some(level) = args.check_level {
        request = request.check_level(level);
    }
    let outcome = match agent.execute(request).await {
        Ok(o) => o,
        Err(e @ ResourceError::InvalidParameters(_)) => {
            eprintln!("ocf: {e}");
            // The configuration is wrong: what the agent itself would answer.
            return Ok(ProcessExit::from(
                ocf_resources::ExitCode::ErrConfigured.code(),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let code = process_exit_code(&outcome);
    if args.json {
        print_json(&RunReport {
            agent: &args.agent,
            action: args.action,
            instance: &instance,
            outcome: &outcome,
            exit_code: code,
        })?;
    } else {
        use std::io::Write;
        let _ = std::io::stdout().write_all(outcome.stdout.as_bytes());
        let _ = std::io::stderr().write_all(outcome.stderr.as_bytes());
        let truncated = if outcome.stdout_truncated || outcome.stderr_truncated {
            " (output truncated)"
        } else {
            ""
        };
        match outcome.status {
            Status::Exited { .. } => {
                tracing::info!(
                    "{} {}: {}{truncated}",
                    args.agent,
                    args.action,
                    outcome.summary()
                );
            }
            _ => eprintln!(
                "ocf: {} {}: {}{truncated}",
                args.agent,
                args.action,
                outcome.summary()
            ),
        }
    }
    Ok(ProcessExit::from(code))
}

async fn run_test(args: TestArgs) -> CliResult {
    let agent = ScriptAgent::from_env(args.agent.clone());
    let params: BTreeMap<String, String> = args.params.into_iter().collect();
    let report = tester::test_agent(
        &agent,
        &tester::TestConfig::new(args.instance)
            .params(params)
            .script(tester::ScriptLocation::of(&agent)),
        |check| {
            // Progress on stderr; the report itself goes to stdout.
            if !args.json {
                eprintln!("  ... {}: {:?}", check.name, check.status);
            }
        },
    )
    .await;
    if args.json {
        print_json(&report)?;
    } else {
        print!("{report}");
    }
    Ok(if report.passed() {
        ProcessExit::SUCCESS
    } else {
        ProcessExit::from(1)
    })
}
