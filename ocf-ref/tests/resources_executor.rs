#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The executor over real agents (heartbeat Dummy, pacemaker Dummy, pacemaker Stateful) and
//! native ones: ordering per resource, the concurrency limit, recurring monitors and cancel,
//! bounded history, and the result stream.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use ocf_ref::resources::{AgentRegistry, ExecutorConfig, LocalExecutor, NativeDummy};
use ocf_resources::{
    Action, ActionRequest, AgentId, AgentOutcome, Executor, ExecutorAdmin, ExitCode, Metadata,
    OpResult, Operation, RecurringId, ResourceAgent, ResourceError, ResourceErrorKind,
    ResourceSpec,
};

const SYSTEM_ROOT: &str = "/usr/lib/ocf";

fn op(action: Action) -> Operation {
    Operation::new(action, Duration::from_secs(20))
}

fn executor(config: ExecutorConfig) -> LocalExecutor {
    let registry = AgentRegistry::new(SYSTEM_ROOT);
    registry.add_native(Arc::new(NativeDummy::new()));
    LocalExecutor::new(Arc::new(registry), config)
}

fn code(r: &ocf_resources::OperationResult) -> Option<ExitCode> {
    r.outcome().and_then(AgentOutcome::exit_code)
}

#[tokio::test]
async fn real_agents_through_the_executor() {
    let dir = tempfile::tempdir().unwrap();
    let exec = executor(ExecutorConfig::default());
    for (name, agent) in [
        ("hb", "ocf:heartbeat:Dummy"),
        ("pm", "ocf:pacemaker:Dummy"),
        ("st", "ocf:pacemaker:Stateful"),
    ] {
        let state = dir
            .path()
            .join(format!("{name}.state"))
            .display()
            .to_string();
        exec.register(ResourceSpec::new(name, agent.parse().unwrap()).param("state", state))
            .await
            .unwrap();
    }
    let mut script = vec![
        ("hb", Action::Monitor, ExitCode::NotRunning),
        ("hb", Action::Start, ExitCode::Success),
        ("hb", Action::Monitor, ExitCode::Success),
        ("pm", Action::Start, ExitCode::Success),
        ("pm", Action::Monitor, ExitCode::Success),
        ("st", Action::Start, ExitCode::Success),
        ("st", Action::Promote, ExitCode::Success),
        ("st", Action::Monitor, ExitCode::RunningPromoted),
        ("st", Action::Demote, ExitCode::Success),
        ("st", Action::Monitor, ExitCode::Success),
    ];
    for name in ["hb", "pm", "st"] {
        script.push((name, Action::Stop, ExitCode::Success));
        script.push((name, Action::Monitor, ExitCode::NotRunning));
    }
    for (name, action, expect) in script {
        let r = exec.execute(name, op(action)).await.unwrap();
        assert_eq!(code(&r), Some(expect), "{name} {action}: {:?}", r.result);
        assert_eq!(r.resource, name);
        assert_eq!(r.action, action);
    }
    let history = exec.history("st").await.unwrap();
    assert_eq!(history.len(), 7);
    assert!(history.windows(2).all(|w| w[0].call_id < w[1].call_id));
}

/// A native agent that records how many runs overlap, overall and per instance.
struct Counting {
    id: AgentId,
    running: AtomicUsize,
    max_running: AtomicUsize,
    per_instance: Mutex<HashMap<String, usize>>,
    max_per_instance: AtomicUsize,
}

impl Counting {
    fn new() -> Self {
        Self {
            id: "ocf:native:Counting".parse().unwrap(),
            running: AtomicUsize::new(0),
            max_running: AtomicUsize::new(0),
            per_instance: Mutex::new(HashMap::new()),
            max_per_instance: AtomicUsize::new(0),
        }
    }
}

#[async_trait]
impl ResourceAgent for Counting {
    fn id(&self) -> &AgentId {
        &self.id
    }
    async fn metadata(&self) -> Result<Metadata, ResourceError> {
        Ok(Metadata::new("Counting"))
    }
    async fn execute(&self, request: ActionRequest) -> Result<AgentOutcome, ResourceError> {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(now, Ordering::SeqCst);
        let mine = {
            let mut m = self.per_instance.lock().unwrap();
            let n = m.entry(request.instance.clone()).or_default();
            *n += 1;
            *n
        };
        self.max_per_instance.fetch_max(mine, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(30)).await;
        *self
            .per_instance
            .lock()
            .unwrap()
            .get_mut(&request.instance)
            .unwrap() -= 1;
        self.running.fetch_sub(1, Ordering::SeqCst);
        Ok(AgentOutcome::exited(
            ExitCode::Success,
            Duration::from_millis(30),
        ))
    }
}

#[tokio::test]
async fn one_at_a_time_per_resource_in_order_and_a_bounded_parallelism() {
    let registry = AgentRegistry::new(SYSTEM_ROOT);
    let counting = Arc::new(Counting::new());
    registry.add_native(counting.clone());
    let exec = LocalExecutor::new(Arc::new(registry), ExecutorConfig::default().concurrency(3));
    for i in 0..6 {
        exec.register(ResourceSpec::new(format!("r{i}"), counting.id.clone()))
            .await
            .unwrap();
    }
    let mut stream = exec.subscribe().await.unwrap();
    let mut tasks = Vec::new();
    for round in 0..4 {
        for i in 0..6 {
            let exec = exec.clone();
            tasks.push(tokio::spawn(async move {
                exec.execute(
                    &format!("r{i}"),
                    op(Action::Monitor).meta("round", round.to_string()),
                )
                .await
                .unwrap()
            }));
        }
    }
    for t in tasks {
        assert!(t.await.unwrap().succeeded());
    }
    assert_eq!(
        counting.max_per_instance.load(Ordering::SeqCst),
        1,
        "two runs overlapped on one resource"
    );
    assert_eq!(
        counting.max_running.load(Ordering::SeqCst),
        3,
        "concurrency limit not reached or exceeded"
    );
    // Per resource, results complete in submission (call id) order.
    let mut last: HashMap<String, u64> = HashMap::new();
    for _ in 0..24 {
        let r = stream.next_result().await.unwrap().unwrap();
        let prev = last.insert(r.resource.clone(), r.call_id).unwrap_or(0);
        assert!(
            r.call_id > prev,
            "{} ran call {} after {prev}",
            r.resource,
            r.call_id
        );
    }
}

#[tokio::test]
async fn recurring_monitor_runs_until_cancelled() {
    let exec = executor(ExecutorConfig::default());
    exec.register(ResourceSpec::new(
        "web",
        "ocf:native:Dummy".parse().unwrap(),
    ))
    .await
    .unwrap();
    exec.execute("web", op(Action::Start)).await.unwrap();
    let mut stream = exec.subscribe().await.unwrap();
    let id = exec
        .start_recurring("web", op(Action::Monitor).every(Duration::from_millis(20)))
        .await
        .unwrap();
    for _ in 0..3 {
        let r = stream.next_result().await.unwrap().unwrap();
        assert_eq!(r.recurring, Some(id));
        assert_eq!(r.interval, Duration::from_millis(20));
        assert_eq!(code(&r), Some(ExitCode::Success));
    }
    exec.cancel_recurring("web", id).await.unwrap();
    // A run already under way may still land; after that, silence.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let before = exec.history("web").await.unwrap().len();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        exec.history("web").await.unwrap().len(),
        before,
        "monitor ran after cancel"
    );
    let err = exec.cancel_recurring("web", id).await.unwrap_err();
    assert_eq!(err.kind(), ResourceErrorKind::UnknownOperation);
}

#[tokio::test]
async fn unregister_stops_recurring_operations() {
    let exec = executor(ExecutorConfig::default());
    exec.register(ResourceSpec::new("a", "ocf:native:Dummy".parse().unwrap()))
        .await
        .unwrap();
    let mut stream = exec.subscribe().await.unwrap();
    exec.start_recurring("a", op(Action::Monitor).every(Duration::from_millis(10)))
        .await
        .unwrap();
    stream.next_result().await.unwrap().unwrap();
    exec.unregister("a").await.unwrap();
    assert!(exec.resources().await.unwrap().is_empty());
    assert_eq!(
        exec.history("a").await.unwrap_err().kind(),
        ResourceErrorKind::UnknownResource
    );
    // The name can be reused at once.
    exec.register(ResourceSpec::new("a", "ocf:native:Dummy".parse().unwrap()))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        exec.history("a").await.unwrap().is_empty(),
        "the old recurring op reached the new resource"
    );
}

#[tokio::test]
async fn history_is_bounded_and_every_subscriber_sees_every_result() {
    let exec = executor(ExecutorConfig::default().history_limit(3));
    exec.register(ResourceSpec::new("h", "ocf:native:Dummy".parse().unwrap()))
        .await
        .unwrap();
    let mut a = exec.subscribe().await.unwrap();
    let mut b = exec.subscribe().await.unwrap();
    let mut ids = Vec::new();
    for action in [
        Action::Monitor,
        Action::Start,
        Action::Monitor,
        Action::Stop,
        Action::Monitor,
    ] {
        ids.push(exec.execute("h", op(action)).await.unwrap().call_id);
    }
    let history: Vec<u64> = exec
        .history("h")
        .await
        .unwrap()
        .iter()
        .map(|r| r.call_id)
        .collect();
    assert_eq!(history, ids[2..]);
    for stream in [&mut a, &mut b] {
        for id in &ids {
            assert_eq!(stream.next_result().await.unwrap().unwrap().call_id, *id);
        }
    }
}

#[tokio::test]
async fn errors_are_typed() {
    let exec = executor(ExecutorConfig::default());
    let err = exec
        .register(ResourceSpec::new(
            "x",
            "ocf:nobody:Nothing".parse().unwrap(),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ResourceErrorKind::AgentNotFound);
    exec.register(ResourceSpec::new("x", "ocf:native:Dummy".parse().unwrap()))
        .await
        .unwrap();
    let err = exec
        .register(ResourceSpec::new("x", "ocf:native:Dummy".parse().unwrap()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ResourceErrorKind::AlreadyRegistered);
    let err = exec.execute("y", op(Action::Start)).await.unwrap_err();
    assert_eq!(err.kind(), ResourceErrorKind::UnknownResource);
    let err = exec
        .start_recurring("x", op(Action::Monitor))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ResourceErrorKind::InvalidRequest);
    let err = exec
        .cancel_recurring("x", RecurringId(999))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ResourceErrorKind::UnknownOperation);

    // Invalid parameters in strict mode: recorded as an error result, the agent never ran.
    exec.register(ResourceSpec::new("bad", "ocf:native:Dummy".parse().unwrap()).param("nope", "1"))
        .await
        .unwrap();
    let r = exec
        .execute("bad", op(Action::Start).validate(true))
        .await
        .unwrap();
    assert!(
        matches!(&r.result, OpResult::Error { message } if message.contains("nope")),
        "{:?}",
        r.result
    );
    // Not strict (the default), the agent judges and its answer is the result.
    let r = exec.execute("bad", op(Action::Start)).await.unwrap();
    assert!(r.succeeded());
    // Results serialize with a stable shape.
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["result"]["result"], "completed");
    assert_eq!(json["result"]["outcome"]["status"]["code"], 0);
    assert_eq!(json["agent"], "ocf:native:Dummy");
}
