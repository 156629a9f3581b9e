//! `ocf fence`: fence agents: list them, read their meta-data, run an action, test one; and
//! list cluster-glue's stonith plugin types.
//!
//! Parameters are given as `-p key=value`. Passwords and keys (by name: `password`, `passwd`,
//! `key`, ...) are kept as secrets: never printed, and handed to the agent on its stdin only.
//! Note that `ocf`'s *own* command line is visible in `ps`: for secrets, use
//! `--params-stdin` and write `key=value` lines to `ocf`'s standard input instead.
//!
//! Exit codes of `ocf fence run`: the agent's own (0 success; for `status` 0 on and 2 off;
//! 1 error); 70 when the agent could not be run or timed out. `ocf fence test` exits 0 when
//! no check failed, 1 otherwise.
//!
//! `ocf fence request`, `history` and `watch` ask the fencer a node daemon serves, through
//! the socket its `--config` names ([`DaemonFencer`]). `request` exits 0 only when the target
//! was confirmed fenced, 70 otherwise (the record, when there is one, is printed either way);
//! bad input (an unknown action, an invalid node name, a requester or incident id that is
//! empty, longer than 256 bytes or holds whitespace) is a usage error, 64, and nothing is sent.

use std::fmt::Write as _;
use std::io::{IsTerminal, Read as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use ocf_core::NodeName;
use ocf_fencing::{
    DeviceAction, DeviceParams, FenceAction, FenceError, FenceEvent, FenceRecord, FenceRequest,
    Fencer, HistoryFilter, IncidentId, RequesterId, Targets,
};
use serde::Serialize;

use super::output::{print_json, print_json_line};
use super::{CliResult, EXIT_FAILURE, Failure};
use crate::fencing::daemon_fencer::DaemonFencer;
use crate::fencing::devices::agent::{self, AgentDevice};
use crate::fencing::devices::stonith;
use crate::fencing::tester::{self, TestOptions};
use crate::membership::config::NodeConfig;
use crate::membership::daemon::local_api::MAX_FENCE_TIMEOUT;

/// `ocf fence` subcommands.
#[derive(Debug, Subcommand)]
pub enum FenceCommand {
    /// List the installed fence agents (`fence_*` in the agents directory).
    Agents(AgentsArgs),
    /// List cluster-glue's stonith plugin types (`stonith -L`).
    Plugins(PluginsArgs),
    /// Print an agent's meta-data: its parameters and actions.
    Meta(MetaArgs),
    /// Run one action of an agent.
    Run(RunArgs),
    /// Check an agent's conformance: meta-data, monitor, status, and a power round trip where
    /// that is safe.
    Test(TestArgs),
    /// Ask the node daemon's fencer to fence a node, wait for the outcome and print its
    /// record; exit 0 only when the node was confirmed fenced.
    Request(RequestArgs),
    /// Print the nodes the node daemon's own fence devices can fence ("what machines can you
    /// reset?").
    Targets(TargetsArgs),
    /// Print the node daemon's fencing history, oldest first.
    History(HistoryArgs),
    /// Print the node daemon's fencing events as they happen (one JSON line each with --json).
    Watch(WatchArgs),
}

/// How `ocf fence request`, `history` and `watch` find the node daemon.
#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// The node's configuration file; its daemon's socket is asked.
    #[arg(long)]
    pub config: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `ocf fence request`.
#[derive(Debug, Args)]
pub struct RequestArgs {
    /// The node to fence.
    pub target: NodeName,
    /// What to do to it: reboot, off or on.
    #[arg(long, default_value = "reboot", value_parser = parse_fence_action)]
    pub action: FenceAction,
    /// The incident this request answers (requests naming one incident are fenced once).
    #[arg(long, value_name = "ID")]
    pub incident: Option<IncidentId>,
    /// Who asks (default `operator@<this host>`).
    #[arg(long, value_name = "NAME")]
    pub requester: Option<RequesterId>,
    /// How many seconds to wait for the outcome (at most 600).
    #[arg(long, value_name = "SECS", default_value_t = 120.0, value_parser = parse_fence_timeout)]
    pub timeout: f64,
    #[command(flatten)]
    daemon: DaemonArgs,
}

/// `ocf fence history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Only the records about this node.
    #[arg(long)]
    pub target: Option<NodeName>,
    /// Only the newest N records.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    #[command(flatten)]
    daemon: DaemonArgs,
}

/// `ocf fence targets`.
#[derive(Debug, Args)]
pub struct TargetsArgs {
    #[command(flatten)]
    daemon: DaemonArgs,
}

/// `ocf fence watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    #[command(flatten)]
    daemon: DaemonArgs,
}

/// A fence action for `ocf fence request`: reboot, off or on (status and the others are a
/// device's, not a fencer's).
fn parse_fence_action(text: &str) -> Result<FenceAction, String> {
    text.parse::<FenceAction>()
        .map_err(|_| format!("{text:?} is not a fence action: use reboot, off or on"))
}

fn parse_fence_timeout(text: &str) -> Result<f64, String> {
    let max = MAX_FENCE_TIMEOUT.as_secs_f64();
    match text.parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 && s <= max => Ok(s),
        _ => Err(format!("{text:?} is not a number of seconds in (0, {max}]")),
    }
}

/// Where agents are found and how output is printed.
#[derive(Debug, Args)]
pub struct Common {
    /// The directory holding the `fence_*` agents.
    #[arg(long, env = "OCF_FENCE_AGENTS_DIR", default_value = agent::DEFAULT_AGENTS_DIR)]
    pub agents_dir: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `ocf fence agents`.
#[derive(Debug, Args)]
pub struct AgentsArgs {
    #[command(flatten)]
    common: Common,
}

/// `ocf fence plugins`.
#[derive(Debug, Args)]
pub struct PluginsArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `ocf fence meta`.
#[derive(Debug, Args)]
pub struct MetaArgs {
    /// A `fence_*` name from the agents directory, or a path.
    pub agent: String,
    #[command(flatten)]
    common: Common,
}

/// Agent parameters, from the command line and optionally stdin.
#[derive(Debug, Args)]
pub struct ParamArgs {
    /// A parameter for the agent, `key=value` (repeatable). Secrets by name are redacted.
    #[arg(short = 'p', long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// Also read `key=value` lines from standard input (keeps secrets out of `ps`); blank
    /// lines and lines starting with `#` are skipped, other lines are taken whole.
    #[arg(long)]
    pub params_stdin: bool,
}

/// `ocf fence run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// A `fence_*` name from the agents directory, or a path.
    pub agent: String,
    /// The action: reboot, off, on, status, list, monitor, metadata, validate-all.
    #[arg(short, long)]
    pub action: DeviceAction,
    /// The node to act on, sent to the agent as `plug=`.
    #[arg(short, long)]
    pub target: Option<NodeName>,
    #[command(flatten)]
    params: ParamArgs,
    /// Do not check the parameters against the agent's meta-data first. The check only
    /// warns: the agent's own answer is the result.
    #[arg(long)]
    pub no_validate: bool,
    /// Refuse (exit 65) to run a power action (reboot, off, on) whose parameters fail the
    /// meta-data check; status, list, monitor, metadata and validate-all always run.
    #[arg(long, conflicts_with = "no_validate")]
    pub strict: bool,
    /// Seconds the agent may take.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
    #[command(flatten)]
    common: Common,
}

/// The most `--params-stdin` reads: far more than any agent's parameters, far less than a
/// stream that never ends.
const PARAMS_STDIN_LIMIT: u64 = 1024 * 1024;

/// `ocf fence test`.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// A `fence_*` name from the agents directory, or a path.
    pub agent: String,
    /// The node to check status of and power-cycle, on a multi-host agent (sent as `plug=`).
    #[arg(short, long)]
    pub target: Option<NodeName>,
    #[command(flatten)]
    params: ParamArgs,
    /// Run the off/on/reboot round trip even though the agent may drive real hardware.
    #[arg(long)]
    pub power_cycle: bool,
    /// Seconds each agent call may take.
    #[arg(long, default_value_t = 30)]
    pub timeout: u64,
    #[command(flatten)]
    common: Common,
}

/// Writes text to stdout; a closed pipe (`| head`) is not an error.
fn emit(text: &str) -> std::io::Result<()> {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Runs an `ocf fence` subcommand.
pub async fn run(command: FenceCommand) -> CliResult {
    match command {
        FenceCommand::Agents(a) => agents(&a),
        FenceCommand::Plugins(a) => plugins(&a).await,
        FenceCommand::Meta(a) => meta(&a).await,
        FenceCommand::Run(a) => run_action(a).await,
        FenceCommand::Test(a) => test(a).await,
        FenceCommand::Request(a) => request(a).await,
        FenceCommand::History(a) => history(a).await,
        FenceCommand::Targets(a) => targets(a).await,
        FenceCommand::Watch(a) => watch(a).await,
    }
}

fn agents(args: &AgentsArgs) -> CliResult {
    let list = agent::list_agents(&args.common.agents_dir).map_err(|e| {
        format!(
            "cannot list fence agents in {}: {e}; is fence-agents installed? (--agents-dir or OCF_FENCE_AGENTS_DIR)",
            args.common.agents_dir.display()
        )
    })?;
    if args.common.json {
        print_json(&list)?;
    } else {
        let mut text = String::new();
        for a in &list {
            let _ = writeln!(text, "{}", a.name);
        }
        emit(&text)?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn plugins(args: &PluginsArgs) -> CliResult {
    let types = stonith::list_plugins(&stonith::stonith_program(), Duration::from_secs(30)).await?;
    if args.json {
        print_json(&types)?;
    } else {
        let mut text = types.join("\n");
        text.push('\n');
        emit(&text)?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn meta(args: &MetaArgs) -> CliResult {
    let path = agent::resolve_agent(&args.agent, &args.common.agents_dir)?;
    let md = agent::fetch_metadata(&path, agent::METADATA_TIMEOUT).await?;
    if args.common.json {
        print_json(&md)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut text = String::new();
    let _ = writeln!(text, "{} - {}", md.name, md.shortdesc);
    if !md.longdesc.is_empty() && md.longdesc != md.name {
        let _ = writeln!(text, "\n{}", md.longdesc);
    }
    let _ = writeln!(text, "\nParameters:");
    for p in &md.parameters {
        let mut flags = Vec::new();
        if p.required {
            flags.push("required".to_owned());
        }
        if p.secret {
            flags.push("secret".to_owned());
        }
        if p.deprecated {
            flags.push("deprecated".to_owned());
        }
        if let Some(d) = &p.default {
            flags.push(format!("default {d:?}"));
        }
        let flags = if flags.is_empty() {
            String::new()
        } else {
            format!(" [{}]", flags.join(", "))
        };
        let _ = writeln!(
            text,
            "  {:<24} {:?}{flags}\n      {}",
            p.name, p.kind, p.shortdesc
        );
    }
    let _ = writeln!(text, "\nActions: {}", md.actions.join(" "));
    emit(&text)?;
    Ok(ExitCode::SUCCESS)
}

fn collect_params(
    args: &ParamArgs,
) -> Result<DeviceParams, Box<dyn std::error::Error + Send + Sync>> {
    let mut params = DeviceParams::new();
    // Nothing is trimmed or dropped: a value reaches the agent as written, or the agent
    // call refuses it and names the parameter (`-p '#x=1'` is not a comment here).
    let mut add = |line: &str, origin: &str| -> Result<(), Failure> {
        let Some((k, v)) = line.split_once('=') else {
            // The line may be a bare password: do not echo it.
            return Err(Failure::usage(format!(
                "a parameter from {origin} is not key=value"
            )));
        };
        params.insert(k, v);
        Ok(())
    };
    for p in &args.params {
        add(p, "-p")?;
    }
    if args.params_stdin {
        let stdin = std::io::stdin();
        if stdin.is_terminal() {
            eprintln!("ocf: reading key=value lines from stdin; end with Ctrl-D");
        }
        let mut input = stdin.lock().take(PARAMS_STDIN_LIMIT + 1);
        let mut text = String::new();
        input.read_to_string(&mut text).map_err(|e| {
            Failure::usage(format!("--params-stdin: not text key=value lines ({e})"))
        })?;
        if text.len() as u64 > PARAMS_STDIN_LIMIT {
            return Err(Failure::usage(format!(
                "--params-stdin: more than {PARAMS_STDIN_LIMIT} bytes on standard input"
            ))
            .into());
        }
        for line in text.lines() {
            let line = line.strip_suffix('\r').unwrap_or(line);
            // Blank lines and `#` comment lines are the stdin format's own; every other line
            // is taken whole, so trailing spaces are refused, not silently cut.
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            add(line, "stdin")?;
        }
    }
    Ok(params)
}

/// What `ocf fence run --json` prints.
#[derive(Debug, Serialize)]
struct RunOutput<'a> {
    agent: String,
    target: Option<&'a NodeName>,
    #[serde(flatten)]
    run: &'a agent::AgentRun,
    /// For `status`: the power state the exit code means.
    power: Option<&'static str>,
}

async fn run_action(args: RunArgs) -> CliResult {
    let path = agent::resolve_agent(&args.agent, &args.common.agents_dir)?;
    let params = collect_params(&args.params)?;
    if !args.no_validate {
        // The agent's own answer is the truth: ocf's check warns, and refuses only a power
        // action in strict mode (a refused status or monitor would read as a failed device).
        let md = agent::fetch_metadata(&path, agent::METADATA_TIMEOUT).await?;
        let problems = agent::check_params(&md, &params, args.target.is_some());
        if !problems.is_empty() {
            let text = format!("{}: {}", args.agent, problems.join("; "));
            let power = matches!(
                args.action,
                DeviceAction::Reboot | DeviceAction::Off | DeviceAction::On
            );
            if args.strict && power {
                return Err(Failure::data(format!("{text} (--strict)")).into());
            }
            eprintln!("ocf: warning: {text}");
        }
    }
    if args.action.needs_target() && args.target.is_none() {
        tracing::info!("no --target: fine for single-host agents such as fence_dummy");
    }
    let id = "cli".parse()?;
    let dev = AgentDevice::new(id, &path, params, Targets::Dynamic);
    let plug = args.target.as_ref().map(|t| ("plug", t.as_str()));
    eprintln!(
        "ocf: running {} action={}{}",
        args.agent,
        args.action,
        args.target
            .as_ref()
            .map(|t| format!(" plug={t}"))
            .unwrap_or_default()
    );
    let run = dev
        .run(args.action, plug, Duration::from_secs(args.timeout))
        .await?;
    let power = match (args.action, run.exit_code) {
        (DeviceAction::Status, Some(0)) => Some("on"),
        (DeviceAction::Status, Some(2)) => Some("off"),
        _ => None,
    };
    if args.common.json {
        print_json(&RunOutput {
            agent: args.agent.clone(),
            target: args.target.as_ref(),
            run: &run,
            power,
        })?;
    } else {
        emit(&run.stdout)?;
        if !run.success() && power.is_none() {
            eprint!("{}", run.stderr);
        }
        if let Some(p) = power {
            eprintln!("ocf: power is {p}");
        }
    }
    if run.timed_out {
        return Err(format!(
            "{} action={} timed out after {} s (raise --timeout)",
            args.agent, args.action, args.timeout
        )
        .into());
    }
    match run.exit_code {
        Some(code) => Ok(ExitCode::from(u8::try_from(code).unwrap_or(EXIT_FAILURE))),
        None => Err(format!(
            "{} action={} was killed by a signal",
            args.agent, args.action
        )
        .into()),
    }
}

async fn test(args: TestArgs) -> CliResult {
    let path = agent::resolve_agent(&args.agent, &args.common.agents_dir)?;
    let mut opts = TestOptions::new(path);
    opts.params = collect_params(&args.params)?;
    opts.target = args.target;
    opts.power_cycle = args.power_cycle;
    opts.timeout = Duration::from_secs(args.timeout);
    eprintln!("ocf: testing {} ...", args.agent);
    let report = tester::test_agent(&opts).await;
    if args.common.json {
        print_json(&report)?;
    } else {
        emit(&report.to_string())?;
    }
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The daemon's fencer named by `--config`.
fn daemon_fencer(
    args: &DaemonArgs,
) -> Result<DaemonFencer, Box<dyn std::error::Error + Send + Sync>> {
    let config = NodeConfig::load(&args.config)?;
    Ok(DaemonFencer::new(config.socket_path()))
}

fn outcome_text(o: &ocf_fencing::FenceOutcome) -> String {
    match o {
        ocf_fencing::FenceOutcome::Succeeded => "succeeded".to_owned(),
        ocf_fencing::FenceOutcome::Failed { reason } => format!("failed: {reason}"),
        ocf_fencing::FenceOutcome::TimedOut { after_ms } => {
            format!("timed out after {after_ms} ms")
        }
        other => format!("{other:?}"),
    }
}

/// One record in a line (and its levels after it), for people.
fn record_text(r: &FenceRecord) -> String {
    let outcome = r
        .outcome
        .as_ref()
        .map_or_else(|| "in flight".to_owned(), outcome_text);
    let requesters: Vec<&str> = r.requesters.iter().map(RequesterId::as_str).collect();
    let mut text = format!(
        "#{} {} {}: {outcome}; requested by {}",
        r.id,
        r.target,
        r.action,
        requesters.join(", ")
    );
    if let Some(i) = &r.incident {
        let _ = write!(text, "; incident {i}");
    }
    if let Some(d) = r.duration() {
        let _ = write!(text, "; took {} ms", d.as_millis());
    }
    for l in &r.levels {
        let attempts: Vec<String> = l
            .attempts
            .iter()
            .map(|a| format!("{} {} {}", a.device, a.action, outcome_text(&a.outcome)))
            .collect();
        let _ = write!(
            text,
            "\n  level {}{}: {}",
            l.level,
            l.executor
                .as_ref()
                .map(|e| format!(" on {e}"))
                .unwrap_or_default(),
            attempts.join("; ")
        );
    }
    text
}

fn event_text(e: &FenceEvent) -> String {
    match e {
        FenceEvent::Started { record } => format!("started {}", record_text(record)),
        FenceEvent::Finished { record } => format!("finished {}", record_text(record)),
        FenceEvent::NodeDeath { death } => format!(
            "node death {}: {}; incident {}{}",
            death.target,
            match &death.cause {
                ocf_fencing::DeathCause::Fenced { action } => format!("fenced ({action})"),
                ocf_fencing::DeathCause::NotFenced { reason } => format!("not fenced ({reason})"),
                other => format!("{other:?}"),
            },
            death.incident,
            death
                .record
                .map(|id| format!("; record #{id}"))
                .unwrap_or_default()
        ),
        other => format!("{other:?}"),
    }
}

async fn request(args: RequestArgs) -> CliResult {
    let requester = match args.requester {
        Some(r) => r,
        None => crate::fencing::requester::on_this_host("operator"),
    };
    let fencer = daemon_fencer(&args.daemon)?;
    let mut request = FenceRequest::new(args.target.clone(), args.action, requester)
        .with_timeout(Duration::from_secs_f64(args.timeout));
    if let Some(incident) = args.incident {
        request = request.with_incident(incident);
    }
    eprintln!(
        "ocf: asking the fencer at {} to {} {} (waiting up to {} s)",
        fencer.path().display(),
        args.action,
        args.target,
        args.timeout
    );
    let progress = super::progress::Progress::new(
        args.daemon.json,
        Some(Duration::from_secs_f64(args.timeout)),
    );
    let fenced = super::progress::fencing(&progress, &fencer, &args.target, fencer.fence(request));
    let (record, error) = match fenced.await {
        Ok(record) => (Some(record), None),
        Err(e) => (e.record().cloned(), Some(e)),
    };
    if let Some(record) = &record {
        if args.daemon.json {
            print_json(record)?;
        } else {
            emit(&format!("{}\n", record_text(record)))?;
        }
    }
    match error {
        None if record.as_ref().is_some_and(FenceRecord::succeeded) => Ok(ExitCode::SUCCESS),
        None => Err(format!("{} was not confirmed fenced", args.target).into()),
        Some(e) => Err(e.into()),
    }
}

async fn history(args: HistoryArgs) -> CliResult {
    let fencer = daemon_fencer(&args.daemon)?;
    let mut filter = HistoryFilter::all();
    if let Some(t) = args.target {
        filter = filter.target(t);
    }
    if let Some(n) = args.limit {
        filter = filter.limit(n);
    }
    let records = fencer.history(&filter).await?;
    if args.daemon.json {
        print_json(&records)?;
    } else {
        let mut text = String::new();
        for r in &records {
            let _ = writeln!(text, "{}", record_text(r));
        }
        emit(&text)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `ocf fence targets --json` prints this.
#[derive(Serialize)]
struct TargetsOut {
    targets: Vec<NodeName>,
    errors: Vec<String>,
}

async fn targets(args: TargetsArgs) -> CliResult {
    let fencer = daemon_fencer(&args.daemon)?;
    let (targets, errors) = fencer.targets().await?;
    for e in &errors {
        eprintln!("ocf: warning: {e}");
    }
    if args.daemon.json {
        print_json(&TargetsOut { targets, errors })?;
    } else {
        let mut text = String::new();
        for t in &targets {
            let _ = writeln!(text, "{t}");
        }
        emit(&text)?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn watch(args: WatchArgs) -> CliResult {
    let fencer = daemon_fencer(&args.daemon)?;
    let mut stream = fencer.subscribe().await?;
    eprintln!("ocf: watching the fencer at {}", fencer.path().display());
    loop {
        let event = match stream.next_event().await {
            Ok(Some(event)) => event,
            // The end: the daemon's fencer shut down.
            Ok(None) => break,
            // Events were dropped for us; the stream goes on after the gap.
            Err(FenceError::Lagged { missed }) => {
                eprintln!(
                    "ocf: fell behind: {missed} events were missed (see `ocf fence history`); watching on"
                );
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let written = if args.daemon.json {
            print_json_line(&event)
        } else {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{}", event_text(&event)).and_then(|()| out.flush())
        };
        match written {
            // The reader went away (`| head`): that ends the watch, not an error.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => break,
            other => other?,
        }
    }
    Ok(ExitCode::SUCCESS)
}
