//! `ocf ra`: resource agents. Every command honours `OCF_ROOT`.
//!
//! The agent's own answer is the truth: `ocf ra run` exits with the agent's code. ocf's own
//! check of the parameters against the meta-data only warns (stderr, or `warnings` in
//! `--json`); with `--strict` it refuses a start-like action (exit 65) but never a stop or a
//! monitor. The meta-data (for that check and for the advertised timeout) is read from a
//! cache keyed by the agent file, so a one-shot run costs about one run of the agent.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode as ProcessExit;
use std::time::Duration;

use clap::{Args, Subcommand};
use ocf_resources::metadata::parse_duration;
use ocf_resources::{
    Action, ActionRequest, AgentId, AgentOutcome, Metadata, ResourceAgent, ResourceError,
    ResourceErrorKind, Status,
};
use serde::Serialize;

use super::output::{base64, print_json};
use super::{CliResult, Failure};
use crate::resources::{MetadataCache, RawRun, ScriptAgent, list, ocf_root, tester};

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
    /// The resources a node's executor runs (through its daemon): state and history.
    Status(StatusArgs),
}

/// Arguments of `ocf ra status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The node's configuration file; its daemon's executor is asked.
    #[arg(long)]
    pub config: PathBuf,
    /// Only this resource.
    pub resource: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `ocf ra list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this provider's agents (`heartbeat`, `pacemaker`); a plain name, never a path.
    #[arg(long, value_parser = parse_provider)]
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
    /// A parameter `name=value` (repeat for more); the name must match `[A-Za-z_][A-Za-z0-9_]*`.
    #[arg(short = 'p', long = "param", value_parser = parse_param)]
    pub params: Vec<(String, String)>,
    /// A meta attribute `name=value` (`OCF_RESKEY_CRM_meta_<name>`, `-` as `_`; repeat for
    /// more). `interval` and `timeout` take a duration (`10s`, or a bare number of
    /// milliseconds, the unit the agent sees) and reach the agent as given: `-m interval=10s`
    /// runs one recurring monitor rather than a probe.
    #[arg(short = 'm', long = "meta", value_parser = parse_meta)]
    pub meta: Vec<(String, String)>,
    /// The instance name (`OCF_RESOURCE_INSTANCE`); default: the agent's type. 1-255 of
    /// [A-Za-z0-9_.:+-], starting with a letter, digit or `_`.
    #[arg(long, value_parser = parse_instance)]
    pub instance: Option<String>,
    /// How long the action may run (`20s`, `500ms`, `2min`); default: `-m timeout`, else the
    /// meta-data's, else 20s.
    #[arg(long, value_parser = parse_timeout)]
    pub timeout: Option<Duration>,
    /// Monitor depth (`OCF_CHECK_LEVEL`).
    #[arg(long)]
    pub check_level: Option<u32>,
    /// Refuse (exit 65, the agent not run) a start-like action whose parameters fail the
    /// meta-data check. Stop, demote, monitor and the other observing actions always run.
    #[arg(long, conflicts_with = "no_validate")]
    pub strict: bool,
    /// Skip ocf's own parameter check (no warnings), and with `--timeout` do not read the
    /// meta-data at all.
    #[arg(long)]
    pub no_validate: bool,
    /// Print the outcome as JSON instead of passing the agent's output through.
    #[arg(long)]
    pub json: bool,
    /// Run the action through this node's daemon (its executor, shared with every client of
    /// the node): the resource (`--instance`) is registered there if the node does not know
    /// it yet, and stays, with its history, after this command exits.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// Arguments of `ocf ra test`.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// The agent, e.g. `ocf:pacemaker:Stateful`.
    pub agent: AgentId,
    /// A parameter `name=value` (repeat for more).
    #[arg(short = 'p', long = "param", value_parser = parse_param)]
    pub params: Vec<(String, String)>,
    /// The instance name used for the test (`OCF_RESOURCE_INSTANCE`).
    #[arg(long, default_value = "ocf-ra-test", value_parser = parse_instance)]
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

fn parse_param(s: &str) -> Result<(String, String), String> {
    let (k, v) = parse_pair(s)?;
    ocf_resources::env::check_param_name(&k).map_err(|e| e.to_string())?;
    Ok((k, v))
}

fn parse_meta(s: &str) -> Result<(String, String), String> {
    let (k, v) = parse_pair(s)?;
    ocf_resources::env::check_meta_name(&k).map_err(|e| e.to_string())?;
    if is_op_meta(&k) {
        parse_op_millis(&v)?;
    }
    Ok((k, v))
}

/// `interval` and `timeout`: the meta attributes that carry the operation's own times.
fn is_op_meta(name: &str) -> bool {
    name == ocf_resources::env::META_INTERVAL || name == ocf_resources::env::META_TIMEOUT
}

/// A `-m interval=`/`-m timeout=` value: a bare number is milliseconds (what the agent's
/// variable holds); anything else is a duration with a unit.
fn parse_op_millis(v: &str) -> Result<Duration, String> {
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        return v
            .parse::<u64>()
            .map(Duration::from_millis)
            .map_err(|e| format!("{v:?}: {e}"));
    }
    parse_duration(v).ok_or_else(|| {
        format!("{v:?} is not a duration; write e.g. 10s, 500ms, or 10000 (milliseconds)")
    })
}

fn parse_instance(s: &str) -> Result<String, String> {
    ocf_resources::env::check_instance(s).map_err(|e| e.to_string())?;
    Ok(s.to_owned())
}

fn parse_provider(s: &str) -> Result<String, String> {
    ocf_resources::agent_id::check_provider(s).map_err(|e| e.to_string())?;
    Ok(s.to_owned())
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
    let result = match command {
        RaCommand::List(a) => run_list(&a),
        RaCommand::Meta(a) => run_meta(a).await,
        RaCommand::Run(a) => run_action(a).await,
        RaCommand::Test(a) => run_test(a).await,
        RaCommand::Status(a) => {
            super::ra_node::status(&a.config, a.resource.as_deref(), a.json).await
        }
    };
    result.map_err(with_advice)
}

/// What to run next for an error of the resource API: the library's messages say what went
/// wrong; the command line, which knows its own commands, says where to look.
fn advice(e: &ResourceError) -> Option<&'static str> {
    match e.kind() {
        ResourceErrorKind::AgentNotFound => Some("`ocf ra list` shows the installed agents"),
        ResourceErrorKind::InvalidParameters => Some(
            "`ocf ra meta AGENT` shows what it accepts; without --strict the agent judges them itself",
        ),
        _ => None,
    }
}

/// An error of the resource API with the command line's advice after it.
#[derive(Debug, thiserror::Error)]
#[error("{error}; {advice}")]
struct Advised {
    #[source]
    error: ResourceError,
    advice: &'static str,
}

/// Adds [`advice`] to a [`ResourceError`] (also one inside a [`Failure`]); other errors pass
/// unchanged.
fn with_advice(
    e: Box<dyn std::error::Error + Send + Sync>,
) -> Box<dyn std::error::Error + Send + Sync> {
    let e = match e.downcast::<Failure>() {
        Ok(f) => {
            return Box::new(Failure {
                code: f.code,
                source: with_advice(f.source),
            });
        }
        Err(e) => e,
    };
    match e.downcast::<ResourceError>() {
        Ok(error) => match advice(&error) {
            Some(advice) => Box::new(Advised {
                error: *error,
                advice,
            }),
            None => error,
        },
        Err(e) => e,
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

/// The agent, with the meta-data cache the environment names (if any).
fn script_agent(id: AgentId) -> ScriptAgent {
    let agent = ScriptAgent::from_env(id);
    match MetadataCache::from_env() {
        Some(cache) => agent.with_metadata_cache(cache),
        None => agent,
    }
}

async fn run_meta(args: MetaArgs) -> CliResult {
    // Always the agent's answer now (and the cache refreshed with it).
    let agent = script_agent(args.agent);
    let meta = agent.fresh_metadata().await?;
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
    outcome: &'a AgentOutcome,
    /// The process exit code `ocf` uses for this outcome.
    exit_code: u8,
    /// True when either stream was cut at the capture bound.
    truncated: bool,
    /// What ocf's own parameter check found; the agent ran regardless.
    warnings: &'a [String],
    /// The exact bytes of standard output, only when they are not UTF-8 (`outcome.stdout`
    /// then holds a lossy rendering).
    #[serde(skip_serializing_if = "Option::is_none")]
    stdout_base64: Option<String>,
    /// The exact bytes of standard error, only when they are not UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    stderr_base64: Option<String>,
}

/// The exit code of `ocf ra run` for an outcome: the agent's own code; 5 for a missing
/// agent and 4 for a non-executable one (as Pacemaker reports them); 124 for a timeout (as
/// `timeout(1)`); 128+n for death by signal n.
pub fn process_exit_code(outcome: &AgentOutcome) -> u8 {
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

/// What ocf knows from the meta-data before the run: the advertised timeout and the
/// parameter check's findings.
struct Preflight {
    timeout: Option<Duration>,
    problems: Option<ocf_resources::ValidationError>,
    /// Why the meta-data could not be had, when it was needed for the check.
    unreadable: Option<ResourceError>,
    warnings: Vec<String>,
}

/// Reads the meta-data (from the cache when it matches the agent file) unless nothing needs
/// it, and checks the parameters. Never fails: a problem here is a warning, except that
/// `--strict` turns a start-like action's problems into a refusal (the caller decides).
async fn preflight(
    agent: &ScriptAgent,
    args: &RunArgs,
    params: &BTreeMap<String, String>,
    needs_timeout: bool,
) -> Preflight {
    let mut pre = Preflight {
        timeout: None,
        problems: None,
        unreadable: None,
        warnings: Vec::new(),
    };
    let check = !args.no_validate;
    if args.action == Action::MetaData || !(needs_timeout || check) || !is_runnable(agent) {
        return pre;
    }
    match agent.metadata().await {
        Ok(meta) => {
            pre.timeout = meta.timeout_for(args.action);
            if check {
                if let Err(e) = ocf_resources::validate::validate(&meta, params) {
                    pre.warnings
                        .extend(e.problems.iter().map(ToString::to_string));
                    pre.problems = Some(e);
                }
            }
        }
        Err(e) if check => {
            pre.warnings.push(format!("parameters not checked: {e}"));
            pre.unreadable = Some(e);
        }
        Err(_) => {}
    }
    pre
}

/// True when the agent file exists and has an execute bit: only then is meta-data worth
/// asking for (a missing or non-executable agent gets its own exit code from the run).
fn is_runnable(agent: &ScriptAgent) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(agent.path())
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

async fn run_action(args: RunArgs) -> CliResult {
    let agent = script_agent(args.agent.clone());
    let params: BTreeMap<String, String> = args.params.iter().cloned().collect();
    let mut meta: BTreeMap<String, String> = BTreeMap::new();
    let mut interval = Duration::ZERO;
    let mut meta_timeout = None;
    for (k, v) in &args.meta {
        // Already checked by the argument parser; the agent sees the interval and timeout in
        // milliseconds, whatever unit they were written in.
        let ms = |v: &str| parse_op_millis(v).map_err(Failure::usage);
        if k == ocf_resources::env::META_INTERVAL {
            interval = ms(v)?;
        } else if k == ocf_resources::env::META_TIMEOUT {
            let t = ms(v)?;
            meta_timeout = Some(t);
            meta.insert(k.clone(), ocf_core::millis::as_millis(t).to_string());
        } else {
            meta.insert(k.clone(), v.clone());
        }
    }
    if let Some(config) = &args.config {
        let timeout = args.timeout.or(meta_timeout).unwrap_or(DEFAULT_TIMEOUT);
        return through_node(&args, config, params, meta, timeout, interval).await;
    }
    let needs_timeout = args.timeout.is_none() && meta_timeout.is_none();
    let pre = preflight(&agent, &args, &params, needs_timeout).await;
    if args.strict && ocf_resources::validate::may_refuse(args.action) {
        if let Some(e) = pre.problems {
            return Err(Failure::data(format!(
                "--strict: not running {} {}: {e}; `ocf ra meta {}` shows what it accepts",
                args.agent, args.action, args.agent
            ))
            .into());
        }
        if let Some(e) = pre.unreadable {
            return Err(format!(
                "--strict: not running {} {}: its parameters cannot be checked: {e}",
                args.agent, args.action
            )
            .into());
        }
    }
    let timeout = args
        .timeout
        .or(meta_timeout)
        .or(pre.timeout)
        .unwrap_or(DEFAULT_TIMEOUT);
    if args.timeout.is_none() {
        // The agent is told the timeout it really has.
        meta.remove(ocf_resources::env::META_TIMEOUT);
    }
    let instance = args
        .instance
        .clone()
        .unwrap_or_else(|| args.agent.agent_type().to_owned());
    let mut request = ActionRequest::new(args.action, instance.clone(), timeout)
        .params(params)
        .interval(interval);
    request.meta = meta;
    if let Some(level) = args.check_level {
        request = request.check_level(level);
    }
    let raw = match agent.run_raw(&request).await {
        Ok(raw) => raw,
        Err(e @ ResourceError::Env(_)) => return Err(Failure::usage(e).into()),
        Err(e) => return Err(e.into()),
    };
    let code = process_exit_code(&raw.outcome);
    if args.json {
        print_json(&RunReport {
            agent: &args.agent,
            action: args.action,
            instance: &instance,
            outcome: &raw.outcome,
            exit_code: code,
            truncated: raw.outcome.stdout_truncated || raw.outcome.stderr_truncated,
            warnings: &pre.warnings,
            stdout_base64: std::str::from_utf8(&raw.stdout)
                .is_err()
                .then(|| base64(&raw.stdout)),
            stderr_base64: std::str::from_utf8(&raw.stderr)
                .is_err()
                .then(|| base64(&raw.stderr)),
        })?;
    } else {
        for w in &pre.warnings {
            eprintln!("ocf: warning: {} {}: {w}", args.agent, args.action);
        }
        pass_through(&args, &raw);
    }
    Ok(ProcessExit::from(code))
}

/// `ocf ra run --config`: the action through the node's executor.
async fn through_node(
    args: &RunArgs,
    config: &std::path::Path,
    params: BTreeMap<String, String>,
    meta: BTreeMap<String, String>,
    timeout: Duration,
    interval: Duration,
) -> CliResult {
    super::ra_node::run(super::ra_node::NodeRun {
        config,
        agent: &args.agent,
        action: args.action,
        instance: args
            .instance
            .clone()
            .unwrap_or_else(|| args.agent.agent_type().to_owned()),
        params,
        meta,
        timeout,
        interval,
        check_level: args.check_level,
        strict: args.strict,
        json: args.json,
    })
    .await
}

/// Text mode: the agent's bytes unchanged, then ocf's own remarks on stderr.
fn pass_through(args: &RunArgs, raw: &RawRun) {
    use std::io::Write;
    // A closed stdout (`| head`) is the reader's choice, not a failure of the run.
    let _ = std::io::stdout().lock().write_all(&raw.stdout);
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().lock().write_all(&raw.stderr);
    let outcome = &raw.outcome;
    for (name, cut, kept, total) in [
        (
            "stdout",
            outcome.stdout_truncated,
            raw.stdout.len(),
            raw.stdout_total,
        ),
        (
            "stderr",
            outcome.stderr_truncated,
            raw.stderr.len(),
            raw.stderr_total,
        ),
    ] {
        if cut {
            eprintln!(
                "ocf: {} {}: {name} truncated: the agent wrote {total} bytes, ocf kept the first {kept}",
                args.agent, args.action
            );
        }
    }
    match outcome.status {
        Status::Exited { .. } => {
            tracing::info!("{} {}: {}", args.agent, args.action, outcome.summary());
        }
        _ => eprintln!("ocf: {} {}: {}", args.agent, args.action, outcome.summary()),
    }
}

/// A check's outcome in a word, for the progress lines.
pub fn outcome_word(outcome: &ocf_conformance::CheckOutcome) -> &'static str {
    use ocf_conformance::CheckOutcome;
    match outcome {
        CheckOutcome::Pass => "pass",
        CheckOutcome::Fail(_) => "FAIL",
        CheckOutcome::Warn(_) => "warn",
        _ => "skip",
    }
}

async fn run_test(args: TestArgs) -> CliResult {
    // No meta-data cache: the test judges what the agent answers now.
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
                eprintln!("  ... {}: {}", check.name, outcome_word(&check.outcome));
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
